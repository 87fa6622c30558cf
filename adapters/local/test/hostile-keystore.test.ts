/**
 * Hostile keystore files: fields an attacker (or bit rot with a recomputed digest) controls.
 * Whatever the file says, opening it ends quickly with a KeyportError; nothing throws
 * node:crypto's RangeError later. Bodies are re-sealed under the right passphrase, which is
 * the only way to reach the JSON validation.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { deriveKeys, readHeader, seal, unseal } from '../src/sealed-file.js';
import {
  expectCode,
  type KeystoreBody,
  keystoreWithBody,
  newKeystore,
  o,
  open,
  PASSPHRASE,
} from './helpers.js';

/** Re-seals the keystore's body JSON text after `edit`, under the right passphrase. */
async function editBodyText(path: string, edit: (json: string) => string): Promise<void> {
  const file = await readFile(path);
  const header = readHeader(file);
  const keys = await deriveKeys(Buffer.from(PASSPHRASE), header.params, header.salt);
  await writeFile(path, seal(Buffer.from(edit(unseal(file, keys).toString('utf8'))), keys));
}

/** Rewrites the KDF bytes of a keystore and recomputes its (unkeyed) digest. */
async function withKdfBytes(path: string, log2N: number, r: number, p: number): Promise<void> {
  const file = Buffer.from(await readFile(path));
  file[10] = log2N;
  file[11] = r;
  file[12] = p;
  const body = file.subarray(0, file.length - 32);
  await writeFile(path, Buffer.concat([body, createHash('sha256').update(body).digest()]));
}

describe('hostile keystore files', () => {
  it('scrypt parameters each in range but together enormous are refused before deriving', async () => {
    // Before: N = 2^22, r = 32, p = 16 (16 GiB, 2^31 mixes) made open run for hours.
    const { path } = await newKeystore();
    for (const [log2N, r, p] of [
      [22, 32, 16],
      [22, 8, 1],
      [20, 8, 8],
    ] as const) {
      await withKdfBytes(path, log2N, r, p);
      await expectCode(open({ path }), 'Integrity');
    }
  });

  it('creating a keystore with a combined scrypt cost over the bounds is InvalidArgument', async () => {
    const { path } = await newKeystore();
    await expectCode(
      open({ path: `${path}.new`, create: true, kdf: { log2N: 22, r: 8, p: 1 } }),
      'InvalidArgument',
    );
  });

  it('a keystore path that is a directory is InvalidArgument, not a raw EISDIR', async () => {
    const { path } = await newKeystore();
    await mkdir(`${path}.d`);
    await expectCode(open({ path: `${path}.d` }), 'InvalidArgument');
    await expectCode(open({ path: `${path}.d`, create: true }), 'InvalidArgument');
  });

  const edits: Record<string, (b: KeystoreBody) => void> = {
    'AES material of 3 bytes': (b) => {
      b.keys[0]!.versions[0]!.material = 'AAAA';
    },
    'material that is not base64': (b) => {
      b.keys[0]!.versions[0]!.material = '!!!!';
    },
    'material as a number': (b) => {
      b.keys[0]!.versions[0]!.material = 42;
    },
    'a primary version that does not exist': (b) => {
      b.keys[0]!.primaryVersion = 7;
    },
    'duplicate version numbers': (b) => {
      b.keys[0]!.versions.push({ ...b.keys[0]!.versions[0] });
    },
    'a rotation period beyond the documented range': (b) => {
      b.keys[0]!.rotationPeriodDays = 1e308;
    },
    'versions as an object': (b) => {
      (b.keys[0] as Record<string, unknown>).versions = { 0: {} };
    },
    // Before: these opened. A name no URI can address made listKeys fail (InvalidArgument) for
    // every key; a grant id revokeGrant refuses could never be revoked; a rotation date without
    // a period never advanced, so every use of the key added a version and wrote the file.
    'a key name no key URI can address': (b) => {
      b.keys[0]!.name = 'has space';
    },
    'an empty key name': (b) => {
      b.keys[0]!.name = '';
    },
    'an empty grant id': (b) => {
      b.keys[0]!.grants = [
        { id: '', grantee: 'x', operations: ['decrypt'], createdAt: new Date().toISOString() },
      ];
    },
    'a rotation date without a rotation period': (b) => {
      delete b.keys[0]!.rotationPeriodDays;
      b.keys[0]!.nextRotationAt = '2020-01-01T00:00:00.000Z';
    },
    'a grant with operations as a string': (b) => {
      b.keys[0]!.grants = [
        { id: 'g', grantee: 'x', operations: 'encrypt', createdAt: new Date().toISOString() },
      ];
    },
  };
  for (const [name, edit] of Object.entries(edits)) {
    it(`a sealed body with ${name} is Integrity on open`, async () => {
      const path = await keystoreWithBody({ spec: 'AES_256', rotation: { periodDays: 30 } }, edit);
      await expectCode(open({ path }), 'Integrity');
    });
  }

  it('the validation accepts what the keystore itself writes', async () => {
    const path = await keystoreWithBody({ spec: 'AES_256', rotation: { periodDays: 30 } }, () => undefined);
    const kp = await open({ path });
    const { ciphertext } = await kp.encrypt({ uri: kp.keyUri('k') }, new Uint8Array(3), { context: {} }, o);
    expect(ciphertext.length).toBeGreaterThan(3);
  });

  it('a key at the last version number is not rotated past it: the keystore still opens', async () => {
    // Before: rotation wrote version 2^32, which every later open refused (Integrity): one
    // rotate of a hand-edited key put every key of the keystore out of reach.
    const last = 2 ** 32 - 1;
    const path = await keystoreWithBody({ spec: 'AES_256', rotation: { periodDays: 30 } }, (b) => {
      const key = b.keys[0] as Record<string, unknown> & KeystoreBody['keys'][number];
      key.versions[0]!.version = last;
      key.primaryVersion = last;
      key.nextRotationAt = '2000-01-01T00:00:00.000Z'; // automatic rotation long due
    });
    const kp = await open({ path });
    const uri = kp.keyUri('k');
    await expectCode(kp.rotateKey({ uri }, o), 'KeyStateConflict');
    const { ciphertext, keyVersion } = await kp.encrypt({ uri }, new Uint8Array(3), { context: {} }, o);
    expect(keyVersion).toBe(String(last));
    await kp.createKey({ name: 'other', spec: 'AES_256' }, o);
    const reopened = await open({ path });
    const { plaintext } = await reopened.decrypt({ uri }, ciphertext, { context: {} }, o);
    expect([...plaintext]).toEqual([0, 0, 0]);
    expect((await reopened.describeKey({ uri }, o)).primaryVersion).toBe(String(last));
  });

  it('a sealed body nested 100,000 levels deep in a field nobody reads is Integrity on open', async () => {
    // Before: it opened (JSON.parse is not recursive), and every later write threw a raw
    // RangeError from structuredClone: the keystore could never be changed again.
    const { kp, path } = await newKeystore();
    await kp.createKey({ name: 'k', spec: 'AES_256' }, o);
    const depth = 100_000;
    await editBodyText(
      path,
      (json) => `${json.slice(0, -1)},"extra":${'['.repeat(depth)}${']'.repeat(depth)}}`,
    );
    await expectCode(open({ path }), 'Integrity');
  });

  it('brackets and escaped quotes inside strings do not count as nesting', async () => {
    const label = `"[{\\"${'['.repeat(100)}{`;
    const { kp, path } = await newKeystore();
    await kp.createKey({ name: 'k', spec: 'AES_256', labels: { note: label, [label]: 'x' } }, o);
    const reopened = await open({ path });
    await reopened.createKey({ name: 'j', spec: 'AES_256' }, o);
    expect((await reopened.describeKey({ uri: reopened.keyUri('k') }, o)).labels).toEqual({
      note: label,
      [label]: 'x',
    });
  });
});
