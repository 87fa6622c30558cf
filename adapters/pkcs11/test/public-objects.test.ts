/**
 * PKCS#11 lets any application that can open a session on the token create public token objects
 * without logging in (a R/W public session), and use public key objects (CKA_PRIVATE false)
 * without the PIN. keyport makes every metadata object and every secret or private key private:
 * a public metadata object is not a key's metadata (else one recording a version its writer
 * generated public made keyport seal new data under a key they use without the PIN), and a
 * recorded version whose secret or private key object is public is refused (Integrity).
 * The objects are planted through the provider's logged-in session here; they are the same
 * objects a process without the PIN makes.
 */
import type { KeyInfo } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { APPLICATION, versionId } from '../src/objects.js';
import { P, type Template } from '../src/p11.js';
import { signal, uniqueName, useProvider } from './support.js';

const t = useProvider({ keyCacheMs: 0 });
const { onToken, nameOf, forgeMetadata } = t;

const o = () => ({ signal: signal() });

/** An AES-256 key generated in the token, sensitive, never extractable, local — and public. */
function plantPublicAes(label: string, version: number) {
  return onToken((session) =>
    t.provider.p11.C_GenerateKeyAsync(session, { mechanism: P.CKM_AES_KEY_GEN }, [
      { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
      { type: P.CKA_TOKEN, value: true },
      { type: P.CKA_PRIVATE, value: false },
      { type: P.CKA_LABEL, value: label },
      { type: P.CKA_ID, value: versionId(version) },
      { type: P.CKA_VALUE_LEN, value: 32 },
      { type: P.CKA_SENSITIVE, value: true },
      { type: P.CKA_EXTRACTABLE, value: false },
      { type: P.CKA_ENCRYPT, value: true },
      { type: P.CKA_DECRYPT, value: true },
    ]),
  );
}

/** A public metadata object under `label`, as keyport's JSON, newer than any keyport writes. */
function plantPublicMetadata(label: string, versions: number[]) {
  const at = '2026-01-01T00:00:00.000Z';
  const meta = {
    format: 1,
    seq: 1e9,
    spec: 'AES_256',
    usage: 'encrypt_decrypt',
    labels: {},
    createdAt: at,
    origin: 'provider',
    versions: Object.fromEntries(versions.map((v) => [String(v), { createdAt: at }])),
  };
  const template: Template = [
    { type: P.CKA_CLASS, value: P.CKO_DATA },
    { type: P.CKA_TOKEN, value: true },
    { type: P.CKA_PRIVATE, value: false },
    { type: P.CKA_LABEL, value: label },
    { type: P.CKA_APPLICATION, value: APPLICATION },
    { type: P.CKA_VALUE, value: Buffer.from(JSON.stringify(meta), 'utf8') },
  ];
  return onToken((session) => t.provider.p11.C_CreateObject(session, template));
}

async function listed(): Promise<string[]> {
  const uris: string[] = [];
  for await (const k of t.provider.listKeys({ signal: signal() })) uris.push(k.uri);
  return uris;
}

describe('public objects (writable without the PIN) are not keyport keys', () => {
  it('a newer public metadata object recording a public version is not the key: encrypt keeps sealing under the recorded primary', async () => {
    const key: KeyInfo = await t.provider.createKey(
      { name: uniqueName('public-meta'), spec: 'AES_256' },
      o(),
    );
    const name = nameOf(key);
    await plantPublicAes(name, 1000);
    await plantPublicMetadata(name, [1, 1000]);
    const sealed = await t.provider.encrypt({ uri: key.uri }, Buffer.from('secret'), {}, o());
    expect(sealed.keyVersion).toBe('1');
    const info = await t.provider.describeKey({ uri: key.uri }, o());
    expect(info.primaryVersion).toBe('1');
    const opened = await t.provider.decrypt({ uri: key.uri }, sealed.ciphertext, {}, o());
    expect(Buffer.from(opened.plaintext).toString()).toBe('secret');
    // Writes read the private metadata too: a rotation numbers past the planted ID, as keyport's.
    const rotated = await t.provider.rotateKey({ uri: key.uri }, o());
    expect(rotated.primaryVersion).toBe('1001');
  });

  it('a public metadata object alone is no key: NotFound, and not listed', async () => {
    const name = uniqueName('public-only');
    await plantPublicAes(name, 1);
    await plantPublicMetadata(name, [1]);
    const uri = t.provider.uriFor(name);
    await expect(t.provider.encrypt({ uri }, Buffer.from('x'), {}, o())).rejects.toMatchObject({
      code: 'NotFound',
    });
    expect(await listed()).not.toContain(uri);
  });

  it('a recorded version whose secret key object is public (anyone with the PIN can plant one) is refused: Integrity', async () => {
    const key = await t.provider.createKey({ name: uniqueName('public-version'), spec: 'AES_256' }, o());
    await plantPublicAes(nameOf(key), 2);
    await forgeMetadata(key, 2);
    await expect(t.provider.encrypt({ uri: key.uri }, Buffer.from('x'), {}, o())).rejects.toMatchObject({
      code: 'Integrity',
      retryable: false,
      message: expect.stringMatching(/version 2 .*secret key object is not CKA_PRIVATE/),
    });
    // Version 1, keyport's, still opens what it sealed when pinned.
    const pinned = t.provider.uriFor(nameOf(key), 1);
    const sealed = await t.provider.encrypt({ uri: pinned }, Buffer.from('old'), {}, o());
    const opened = await t.provider.decrypt({ uri: key.uri }, sealed.ciphertext, {}, o());
    expect(Buffer.from(opened.plaintext).toString()).toBe('old');
  });

  it('a recorded RSA version whose private key object is public is refused: Integrity', async () => {
    const key = await t.provider.createKey(
      { name: uniqueName('public-rsa'), spec: 'RSA_2048', usage: 'sign_verify' },
      o(),
    );
    const label = nameOf(key);
    await onToken((session) =>
      t.provider.p11.C_GenerateKeyPairAsync(
        session,
        { mechanism: P.CKM_RSA_PKCS_KEY_PAIR_GEN },
        [
          { type: P.CKA_TOKEN, value: true },
          { type: P.CKA_LABEL, value: label },
          { type: P.CKA_ID, value: versionId(2) },
          { type: P.CKA_MODULUS_BITS, value: 2048 },
          { type: P.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
          { type: P.CKA_VERIFY, value: true },
        ],
        [
          { type: P.CKA_TOKEN, value: true },
          { type: P.CKA_PRIVATE, value: false },
          { type: P.CKA_LABEL, value: label },
          { type: P.CKA_ID, value: versionId(2) },
          { type: P.CKA_SENSITIVE, value: true },
          { type: P.CKA_EXTRACTABLE, value: false },
          { type: P.CKA_SIGN, value: true },
        ],
      ),
    );
    await forgeMetadata(key, 2);
    await expect(t.provider.sign({ uri: key.uri }, Buffer.from('m'), {}, o())).rejects.toMatchObject({
      code: 'Integrity',
      message: expect.stringMatching(/version 2 .*private key object is not CKA_PRIVATE/),
    });
  });
});
