/**
 * Hostile keystore files: fields an attacker (or bit rot with a recomputed digest) controls.
 * Whatever the file says, opening it ends quickly with a KeyportError; nothing throws
 * node:crypto's RangeError later. Bodies are re-sealed under the right passphrase, which is
 * the only way to reach the JSON validation.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { expectCode, type KeystoreBody, keystoreWithBody, newKeystore, o, open } from './helpers.js';

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
});
