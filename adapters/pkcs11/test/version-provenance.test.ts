/**
 * Anyone with the PIN can write a newer metadata object recording a version, and put a key object
 * they made under the key's label for it (planted-versions.test.ts covers the unrecorded ones).
 * What the token says of that object cannot be forged: keyport refuses (Integrity) a version
 * whose secret or private key object is not sensitive, is extractable though the key was not
 * created exportable, was not generated in the token, was ever readable or extractable — or whose
 * public key was not generated in the token or is not its private key's pair — so nothing is
 * sealed, opened, signed or wrapped under material someone may know. Exportable keys (BYOK
 * export) and imported keys (BYOK import: unwrapped, so neither local nor always sensitive) keep
 * working, and a forged `exportable` does not make a planted extractable version usable.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { wrapForImport } from '@keyport/conformance';
import type { KeyInfo } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { IMPORT_KEY_ID, versionId } from '../src/objects.js';
import { P, type Template } from '../src/p11.js';
import { keptKeyTemplate, signal, uniqueName, useProvider } from './support.js';

const t = useProvider({ keyCacheMs: 0 });
const { onToken, nameOf, forgeMetadata } = t;

const o = () => ({ signal: signal() });

const aesUsage: Template = [
  { type: P.CKA_ENCRYPT, value: true },
  { type: P.CKA_DECRYPT, value: true },
];

/** An AES key object from bytes known outside the token, under `key`'s label as `version`. */
function plantFromBytes(key: KeyInfo, version: number, sensitive: boolean, extractable: boolean) {
  return onToken((session) =>
    t.provider.p11.C_CreateObject(session, [
      { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
      { type: P.CKA_KEY_TYPE, value: P.CKK_AES },
      { type: P.CKA_TOKEN, value: true },
      { type: P.CKA_PRIVATE, value: true },
      { type: P.CKA_LABEL, value: nameOf(key) },
      { type: P.CKA_ID, value: versionId(version) },
      { type: P.CKA_VALUE, value: randomBytes(32) },
      { type: P.CKA_SENSITIVE, value: sensitive },
      { type: P.CKA_EXTRACTABLE, value: extractable },
      ...aesUsage,
    ]),
  );
}

/** An AES key generated in the token, sensitive but extractable (C_WrapKey can take it out). */
function plantGeneratedExtractable(key: KeyInfo, version: number) {
  return onToken((session) =>
    t.provider.p11.C_GenerateKeyAsync(session, { mechanism: P.CKM_AES_KEY_GEN }, [
      { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
      { type: P.CKA_TOKEN, value: true },
      { type: P.CKA_PRIVATE, value: true },
      { type: P.CKA_LABEL, value: nameOf(key) },
      { type: P.CKA_ID, value: versionId(version) },
      { type: P.CKA_VALUE_LEN, value: 32 },
      { type: P.CKA_SENSITIVE, value: true },
      { type: P.CKA_EXTRACTABLE, value: true },
      ...aesUsage,
    ]),
  );
}

const refused = (what: RegExp) => ({
  code: 'Integrity',
  retryable: false,
  message: expect.stringMatching(what),
});

describe('a recorded version whose objects keyport did not make is refused', () => {
  it('a non-sensitive, extractable key from known bytes: encrypt and decrypt refuse it, describe still works', async () => {
    const key = await t.provider.createKey({ name: uniqueName('forged-plain'), spec: 'AES_256' }, o());
    const before = await t.provider.encrypt({ uri: key.uri }, Buffer.from('old'), {}, o());
    await plantFromBytes(key, 2, false, true);
    await forgeMetadata(key, 2);
    await expect(t.provider.encrypt({ uri: key.uri }, Buffer.from('new'), {}, o())).rejects.toMatchObject(
      refused(/version 2 .*secret key object is not CKA_SENSITIVE/),
    );
    await expect(t.provider.generateDataKey({ uri: key.uri }, {}, o())).rejects.toMatchObject({
      code: 'Integrity',
    });
    // The versions keyport made still open what they sealed; the key can be inspected.
    const opened = await t.provider.decrypt({ uri: key.uri }, before.ciphertext, {}, o());
    expect(Buffer.from(opened.plaintext).toString()).toBe('old');
    expect((await t.provider.describeKey({ uri: key.uri }, o())).primaryVersion).toBe('2');
  });

  it('a sensitive, non-extractable key made from known bytes (CKA_LOCAL false) is refused', async () => {
    const key = await t.provider.createKey({ name: uniqueName('forged-created'), spec: 'AES_256' }, o());
    await plantFromBytes(key, 2, true, false);
    await forgeMetadata(key, 2);
    await expect(t.provider.encrypt({ uri: key.uri }, Buffer.from('new'), {}, o())).rejects.toMatchObject(
      refused(/CKA_LOCAL false/),
    );
  });

  it('a key generated extractable is refused under a non-exportable key, even with a forged exportable', async () => {
    const key = await t.provider.createKey({ name: uniqueName('forged-extractable'), spec: 'AES_256' }, o());
    await plantGeneratedExtractable(key, 2);
    await forgeMetadata(key, 2);
    await expect(t.provider.encrypt({ uri: key.uri }, Buffer.from('new'), {}, o())).rejects.toMatchObject(
      refused(/CKA_EXTRACTABLE though the key was not created exportable/),
    );
    // Version 1 was generated never-extractable: the token says the key is not exportable.
    await forgeMetadata(key, 2, { exportable: true });
    await expect(t.provider.encrypt({ uri: key.uri }, Buffer.from('new'), {}, o())).rejects.toMatchObject({
      code: 'Integrity',
    });
  });

  it("an RSA version whose public key is not its private key's pair is refused", async () => {
    const key = await t.provider.createKey(
      { name: uniqueName('forged-pair'), spec: 'RSA_2048', usage: 'encrypt_decrypt' },
      o(),
    );
    const name = nameOf(key);
    await onToken(async (session) => {
      const pair = (label: string, id: Buffer) =>
        t.provider.p11.C_GenerateKeyPairAsync(
          session,
          { mechanism: P.CKM_RSA_PKCS_KEY_PAIR_GEN },
          [
            { type: P.CKA_TOKEN, value: true },
            { type: P.CKA_LABEL, value: label },
            { type: P.CKA_ID, value: id },
            { type: P.CKA_ENCRYPT, value: true },
            { type: P.CKA_MODULUS_BITS, value: 2048 },
            { type: P.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
          ],
          [...keptKeyTemplate(label, id), { type: P.CKA_DECRYPT, value: true }],
        );
      // A sound private half under version 2; the public half is another pair's (whose private
      // half the forger could have taken out of the token).
      const sound = await pair(name, versionId(2));
      const other = await pair(uniqueName('elsewhere'), Buffer.from('other'));
      t.provider.p11.C_DestroyObject(session, sound.publicKey);
      t.provider.p11.C_SetAttributeValue(session, other.publicKey, [
        { type: P.CKA_LABEL, value: name },
        { type: P.CKA_ID, value: versionId(2) },
      ]);
    });
    await forgeMetadata(key, 2);
    await expect(t.provider.encrypt({ uri: key.uri }, Buffer.from('new'), {}, o())).rejects.toMatchObject(
      refused(/public key object is not the pair of the private key object/),
    );
  });

  it("a pending import's wrapping public key someone else made is refused: no material is wrapped to them", async () => {
    const key = await t.provider.createKey(
      { name: uniqueName('forged-import'), spec: 'AES_256', external: true },
      o(),
    );
    const foreign = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' });
    await onToken((session) => {
      const name = nameOf(key);
      t.provider.p11.C_FindObjectsInit(session, [
        { type: P.CKA_CLASS, value: P.CKO_PUBLIC_KEY },
        { type: P.CKA_LABEL, value: name },
      ]);
      const [real] = t.provider.p11.C_FindObjects(session, 1);
      t.provider.p11.C_FindObjectsFinal(session);
      if (real === undefined) throw new Error('no import public key');
      t.provider.p11.C_DestroyObject(session, real);
      t.provider.p11.C_CreateObject(session, [
        { type: P.CKA_CLASS, value: P.CKO_PUBLIC_KEY },
        { type: P.CKA_KEY_TYPE, value: P.CKK_RSA },
        { type: P.CKA_TOKEN, value: true },
        { type: P.CKA_LABEL, value: name },
        { type: P.CKA_ID, value: IMPORT_KEY_ID },
        { type: P.CKA_WRAP, value: true },
        { type: P.CKA_MODULUS, value: Buffer.from(foreign.n as string, 'base64url') },
        { type: P.CKA_PUBLIC_EXPONENT, value: Buffer.from(foreign.e as string, 'base64url') },
      ]);
    });
    const algorithm = t.provider.capabilities.import[0];
    if (algorithm === undefined) throw new Error('the module offers no import wrapping');
    await expect(t.provider.getImportParameters({ uri: key.uri }, { algorithm }, o())).rejects.toMatchObject(
      refused(/import wrapping key pair/),
    );
  });
  it("a pending import's wrapping public key from another in-token pair (not the private key's pair) is refused", async () => {
    const key = await t.provider.createKey(
      { name: uniqueName('forged-import-pair'), spec: 'AES_256', external: true },
      o(),
    );
    await onToken(async (session) => {
      const name = nameOf(key);
      t.provider.p11.C_FindObjectsInit(session, [
        { type: P.CKA_CLASS, value: P.CKO_PUBLIC_KEY },
        { type: P.CKA_LABEL, value: name },
      ]);
      const [real] = t.provider.p11.C_FindObjects(session, 1);
      t.provider.p11.C_FindObjectsFinal(session);
      if (real === undefined) throw new Error('no import public key');
      t.provider.p11.C_DestroyObject(session, real);
      // Generated in the token (CKA_LOCAL true), its private half extractable: the forger can
      // wrap that out and read what is wrapped to the public half.
      const other = await t.provider.p11.C_GenerateKeyPairAsync(
        session,
        { mechanism: P.CKM_RSA_PKCS_KEY_PAIR_GEN },
        [
          { type: P.CKA_TOKEN, value: true },
          { type: P.CKA_LABEL, value: uniqueName('elsewhere') },
          { type: P.CKA_WRAP, value: true },
          { type: P.CKA_MODULUS_BITS, value: 2048 },
          { type: P.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
        ],
        [
          { type: P.CKA_TOKEN, value: true },
          { type: P.CKA_PRIVATE, value: true },
          { type: P.CKA_SENSITIVE, value: true },
          { type: P.CKA_EXTRACTABLE, value: true },
          { type: P.CKA_UNWRAP, value: true },
        ],
      );
      t.provider.p11.C_SetAttributeValue(session, other.publicKey, [
        { type: P.CKA_LABEL, value: name },
        { type: P.CKA_ID, value: IMPORT_KEY_ID },
      ]);
    });
    const algorithm = t.provider.capabilities.import[0];
    if (algorithm === undefined) throw new Error('the module offers no import wrapping');
    await expect(t.provider.getImportParameters({ uri: key.uri }, { algorithm }, o())).rejects.toMatchObject(
      refused(
        /import wrapping key pair of this key: its public key object is not the pair of the private key object/,
      ),
    );
  });
});

describe('versions keyport made are used as before', () => {
  it('an exportable key, rotated: every version encrypts and wraps for export', async () => {
    const key = await t.provider.createKey(
      { name: uniqueName('exportable'), spec: 'AES_256', exportable: true },
      o(),
    );
    const rotated = await t.provider.rotateKey({ uri: key.uri }, o());
    expect(rotated.primaryVersion).toBe('2');
    expect((await t.provider.encrypt({ uri: key.uri }, Buffer.from('x'), {}, o())).keyVersion).toBe('2');
    const importer = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const spki = importer.publicKey.export({ type: 'spki', format: 'der' });
    for (const version of ['1', '2']) {
      const wrapped = await t.provider.wrapKeyForExport(
        { uri: key.uri, version },
        { wrappingPublicKeySpki: spki, algorithm: 'RSAES_OAEP_SHA_1' },
      );
      expect(wrapped.length).toBe(256);
    }
  });

  it('an imported key (unwrapped: not local, not always sensitive), then rotated, encrypts with both versions', async () => {
    const key = await t.provider.createKey(
      { name: uniqueName('imported'), spec: 'AES_256', external: true },
      o(),
    );
    const algorithm = t.provider.capabilities.import[0];
    if (algorithm === undefined) throw new Error('the module offers no import wrapping');
    const params = await t.provider.getImportParameters({ uri: key.uri }, { algorithm }, o());
    await t.provider.importKeyMaterial(
      { uri: key.uri },
      { algorithm, wrappedMaterial: wrapForImport(algorithm, params.wrappingPublicKey, randomBytes(32)) },
      o(),
    );
    const first = await t.provider.encrypt({ uri: key.uri }, Buffer.from('one'), {}, o());
    expect(first.keyVersion).toBe('1');
    await t.provider.rotateKey({ uri: key.uri }, o());
    expect((await t.provider.encrypt({ uri: key.uri }, Buffer.from('two'), {}, o())).keyVersion).toBe('2');
    const opened = await t.provider.decrypt({ uri: key.uri }, first.ciphertext, {}, o());
    expect(Buffer.from(opened.plaintext).toString()).toBe('one');
  });
});
