/**
 * Provenance (version-provenance.test.ts) says where a key's material has been, not how strong
 * the key is: anyone with the PIN can generate a weaker key in the token — local, sensitive,
 * never extractable, so every provenance check passes — put it under a key's label and record it
 * as a version in a newer metadata object. keyport refuses (Integrity) a version that is not the
 * key its spec says: an AES key of 16 or 24 bytes under AES_256, a short generic secret or an
 * AES key under HMAC_256, an RSA-1024 pair under RSA_2048, a P-384 pair under EC_P256, and an
 * RSA-1024 import wrapping pair.
 *
 * And a metadata object is read whole, on every call: one longer than keyport ever writes is
 * refused (KeyStateConflict, as too many objects under a label are), and keyport never writes
 * one (createKey bounds labels and description).
 */

import type { KeyInfo } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { CURVES } from '../src/der.js';
import { type KeyMetadata, readMetadata, writeMetadata } from '../src/key-store.js';
import { IMPORT_KEY_ID, versionId } from '../src/objects.js';
import { type Handle, P, type Template } from '../src/p11.js';
import { keptKeyTemplate, metadataTemplate, signal, uniqueName, useProvider } from './support.js';

/** key-store.ts MAX_METADATA_BYTES and MAX_DESCRIPTIVE_BYTES, as documented in the README. */
const MAX_METADATA_BYTES = 1024 * 1024;
const MAX_DESCRIPTIVE_BYTES = 64 * 1024;

const t = useProvider({ keyCacheMs: 0 });
const { onToken, nameOf, forgeMetadata } = t;

const o = () => ({ signal: signal() });

/** A secret key generated in the token as keyport generates one (local, sensitive, never extractable). */
function plantSecret(key: KeyInfo, version: number, mechanism: number, keyType: number, bytes: number) {
  return onToken((session) =>
    t.provider.p11.C_GenerateKeyAsync(session, { mechanism }, [
      { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
      { type: P.CKA_KEY_TYPE, value: keyType },
      ...keptKeyTemplate(nameOf(key), versionId(version)),
      { type: P.CKA_VALUE_LEN, value: bytes },
      { type: P.CKA_ENCRYPT, value: true },
      { type: P.CKA_DECRYPT, value: true },
      { type: P.CKA_SIGN, value: true },
      { type: P.CKA_VERIFY, value: true },
    ]),
  );
}

/** A key pair generated in the token as keyport generates one, under `label` with CKA_ID `id`. */
function plantPair(label: string, id: Buffer, mechanism: number, publicExtra: Template) {
  return onToken((session) =>
    t.provider.p11.C_GenerateKeyPairAsync(
      session,
      { mechanism },
      [
        { type: P.CKA_TOKEN, value: true },
        { type: P.CKA_LABEL, value: label },
        { type: P.CKA_ID, value: id },
        { type: P.CKA_ENCRYPT, value: mechanism === P.CKM_RSA_PKCS_KEY_PAIR_GEN },
        { type: P.CKA_WRAP, value: mechanism === P.CKM_RSA_PKCS_KEY_PAIR_GEN },
        { type: P.CKA_VERIFY, value: true },
        ...publicExtra,
      ],
      [
        ...keptKeyTemplate(label, id),
        { type: P.CKA_DECRYPT, value: mechanism === P.CKM_RSA_PKCS_KEY_PAIR_GEN },
        { type: P.CKA_UNWRAP, value: mechanism === P.CKM_RSA_PKCS_KEY_PAIR_GEN },
        { type: P.CKA_SIGN, value: true },
      ],
    ),
  );
}

const rsaBits = (bits: number): Template => [
  { type: P.CKA_MODULUS_BITS, value: bits },
  { type: P.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
];

const refused = (what: RegExp) => ({
  code: 'Integrity',
  retryable: false,
  message: expect.stringMatching(what),
});

describe('a recorded version that is not the key its spec says is refused', () => {
  for (const bytes of [16, 24]) {
    it(`an AES-${bytes * 8} key generated in the token under an AES_256 key`, async () => {
      const key = await t.provider.createKey({ name: uniqueName(`aes${bytes * 8}`), spec: 'AES_256' }, o());
      const before = await t.provider.encrypt({ uri: key.uri }, Buffer.from('old'), {}, o());
      await plantSecret(key, 2, P.CKM_AES_KEY_GEN, P.CKK_AES, bytes);
      await forgeMetadata(key, 2);
      await expect(t.provider.encrypt({ uri: key.uri }, Buffer.from('new'), {}, o())).rejects.toMatchObject(
        refused(
          new RegExp(`version 2 .*secret key object is a ${bytes * 8}-bit key \\(CKA_VALUE_LEN ${bytes}\\)`),
        ),
      );
      await expect(t.provider.generateDataKey({ uri: key.uri }, {}, o())).rejects.toMatchObject({
        code: 'Integrity',
      });
      // Version 1 (keyport's) still opens what it sealed.
      const opened = await t.provider.decrypt({ uri: key.uri }, before.ciphertext, {}, o());
      expect(Buffer.from(opened.plaintext).toString()).toBe('old');
    });
  }

  it('a 16-byte generic secret, and a 32-byte AES key, under an HMAC_256 key', async () => {
    const short = await t.provider.createKey({ name: uniqueName('hmac-short'), spec: 'HMAC_256' }, o());
    await plantSecret(short, 2, P.CKM_GENERIC_SECRET_KEY_GEN, P.CKK_GENERIC_SECRET, 16);
    await forgeMetadata(short, 2);
    await expect(t.provider.mac({ uri: short.uri }, Buffer.from('m'), o())).rejects.toMatchObject(
      refused(/128-bit key \(CKA_VALUE_LEN 16\)/),
    );
    const aes = await t.provider.createKey({ name: uniqueName('hmac-aes'), spec: 'HMAC_256' }, o());
    await plantSecret(aes, 2, P.CKM_AES_KEY_GEN, P.CKK_AES, 32);
    await forgeMetadata(aes, 2);
    await expect(t.provider.mac({ uri: aes.uri }, Buffer.from('m'), o())).rejects.toMatchObject(
      refused(/CKA_KEY_TYPE 0x1f, not CKK_GENERIC_SECRET/),
    );
  });

  for (const usage of ['encrypt_decrypt', 'sign_verify'] as const) {
    it(`an RSA-1024 pair generated in the token under an RSA_2048 key (${usage})`, async () => {
      const key = await t.provider.createKey({ name: uniqueName('rsa1024'), spec: 'RSA_2048', usage }, o());
      await plantPair(nameOf(key), versionId(2), P.CKM_RSA_PKCS_KEY_PAIR_GEN, rsaBits(1024));
      await forgeMetadata(key, 2);
      const use =
        usage === 'encrypt_decrypt'
          ? t.provider.encrypt({ uri: key.uri }, Buffer.from('new'), {}, o())
          : t.provider.sign({ uri: key.uri }, Buffer.from('m'), { algorithm: 'RSASSA_PSS_SHA_256' }, o());
      await expect(use).rejects.toMatchObject(
        refused(/private key object is an RSA-1024 key \(CKA_MODULUS\), not the RSA-2048 key/),
      );
      await expect(t.provider.getPublicKey({ uri: key.uri }, o())).rejects.toMatchObject({
        code: 'Integrity',
      });
    });
  }

  it('a P-384 pair generated in the token under an EC_P256 key', async () => {
    const key = await t.provider.createKey({ name: uniqueName('p384'), spec: 'EC_P256' }, o());
    await plantPair(nameOf(key), versionId(2), P.CKM_EC_KEY_PAIR_GEN, [
      { type: P.CKA_EC_PARAMS, value: CURVES.EC_P384.oid },
    ]);
    await forgeMetadata(key, 2);
    await expect(
      t.provider.sign({ uri: key.uri }, Buffer.from('m'), { algorithm: 'ECDSA_SHA_256' }, o()),
    ).rejects.toMatchObject(refused(/private key object is not a key on P-256 \(CKA_EC_PARAMS\)/));
    await expect(t.provider.getPublicKey({ uri: key.uri }, o())).rejects.toMatchObject({ code: 'Integrity' });
  });

  it("an RSA-1024 pair in place of a pending import's wrapping pair: no material is wrapped to it", async () => {
    const key = await t.provider.createKey(
      { name: uniqueName('import1024'), spec: 'AES_256', external: true },
      o(),
    );
    const name = nameOf(key);
    await onToken((session) => {
      t.provider.p11.C_FindObjectsInit(session, [
        { type: P.CKA_LABEL, value: name },
        { type: P.CKA_ID, value: IMPORT_KEY_ID },
      ]);
      const found = t.provider.p11.C_FindObjects(session, 2);
      t.provider.p11.C_FindObjectsFinal(session);
      for (const h of found) t.provider.p11.C_DestroyObject(session, h);
    });
    await plantPair(name, IMPORT_KEY_ID, P.CKM_RSA_PKCS_KEY_PAIR_GEN, rsaBits(1024));
    const algorithm = t.provider.capabilities.import[0];
    if (algorithm === undefined) throw new Error('the module offers no import wrapping');
    await expect(t.provider.getImportParameters({ uri: key.uri }, { algorithm }, o())).rejects.toMatchObject(
      refused(/import wrapping key pair .*RSA-1024 key \(CKA_MODULUS\), not the RSA-2048 key/),
    );
  });

  it('keys keyport made of every spec keep working', async () => {
    for (const [spec, usage] of [
      ['AES_256', 'encrypt_decrypt'],
      ['HMAC_256', 'mac'],
      ['RSA_3072', 'encrypt_decrypt'],
      ['EC_P384', 'sign_verify'],
    ] as const) {
      const key = await t.provider.createKey({ name: uniqueName(`ok-${spec}`), spec, usage }, o());
      await t.provider.rotateKey({ uri: key.uri }, o());
      if (spec === 'HMAC_256') {
        const mac = await t.provider.mac({ uri: key.uri }, Buffer.from('m'), o());
        expect(mac.keyVersion).toBe('2');
      } else if (spec === 'EC_P384') {
        const signed = await t.provider.sign(
          { uri: key.uri },
          Buffer.from('m'),
          { algorithm: 'ECDSA_SHA_384' },
          o(),
        );
        expect(signed.keyVersion).toBe('2');
      } else {
        const sealed = await t.provider.encrypt({ uri: key.uri }, Buffer.from('x'), {}, o());
        expect(sealed.keyVersion).toBe('2');
      }
    }
  });
});

describe('metadata values are bounded', () => {
  /** Valid metadata for `key` (seq 1000, newer than keyport's), made `bytes` long by a label. */
  async function plantMetadata(key: KeyInfo, bytes: number): Promise<Handle> {
    const name = nameOf(key);
    const current = await onToken((session) => readMetadata(t.provider.p11, session, name, key.uri));
    if (current === undefined) throw new Error('no metadata');
    const meta: KeyMetadata = { ...current.meta, seq: 1000, labels: { pad: '' } };
    const pad = bytes - Buffer.byteLength(JSON.stringify(meta));
    const value = Buffer.from(JSON.stringify({ ...meta, labels: { pad: 'x'.repeat(pad) } }));
    expect(value.length).toBe(bytes);
    return onToken((session) => t.provider.p11.C_CreateObject(session, metadataTemplate(name, value, true)));
  }

  it('a metadata object longer than keyport writes is refused on every call, and listed as unmodeled', async () => {
    const key = await t.provider.createKey({ name: uniqueName('huge-meta'), spec: 'AES_256' }, o());
    const planted = await plantMetadata(key, 4 * MAX_METADATA_BYTES);
    const tooLarge = {
      code: 'KeyStateConflict',
      retryable: false,
      message: expect.stringMatching(/metadata object of 4194304 bytes under the label .*at most 1048576/),
    };
    await expect(t.provider.describeKey({ uri: key.uri }, o())).rejects.toMatchObject(tooLarge);
    await expect(t.provider.encrypt({ uri: key.uri }, Buffer.from('x'), {}, o())).rejects.toMatchObject(
      tooLarge,
    );
    const listed = [];
    for await (const k of t.provider.listKeys(o())) if (k.uri === key.uri) listed.push(k);
    expect(listed).toEqual([{ uri: key.uri, unmodeled: expect.stringMatching(/4194304 bytes/) }]);
    // Removed, the key is as keyport left it.
    await onToken((session) => t.provider.p11.C_DestroyObject(session, planted));
    expect((await t.provider.describeKey({ uri: key.uri }, o())).labels).toEqual({});
  });

  it('a metadata object of exactly the bound is read', async () => {
    const key = await t.provider.createKey({ name: uniqueName('big-meta'), spec: 'AES_256' }, o());
    const planted = await plantMetadata(key, MAX_METADATA_BYTES);
    const info = await t.provider.describeKey({ uri: key.uri }, o());
    expect(info.labels.pad?.length).toBeGreaterThan(MAX_METADATA_BYTES - 1000);
    await onToken((session) => t.provider.p11.C_DestroyObject(session, planted));
  });

  it('createKey refuses labels and description beyond the bound, before writing anything', async () => {
    const name = uniqueName('big-labels');
    const labels = Object.fromEntries(
      Array.from({ length: 4 }, (_, i) => [`l${i}`, 'é'.repeat(MAX_DESCRIPTIVE_BYTES / 8)]),
    );
    await expect(t.provider.createKey({ name, spec: 'AES_256', labels }, o())).rejects.toMatchObject({
      code: 'InvalidArgument',
      message: expect.stringMatching(/labels and req.description take \d+ bytes as JSON; .* at most 65536/),
    });
    // Nothing was written: the name is free.
    const key = await t.provider.createKey({ name, spec: 'AES_256', labels: { l0: 'é' } }, o());
    expect(key.labels).toEqual({ l0: 'é' });
    // Core's own limits on a description (8192 characters) always fit.
    const described = await t.provider.createKey(
      { name: uniqueName('long-description'), spec: 'AES_256', description: '\u0001'.repeat(8192) },
      o(),
    );
    expect(described.description?.length).toBe(8192);
  });

  it('keyport never writes metadata longer than it reads', async () => {
    const key = await t.provider.createKey({ name: uniqueName('write-bound'), spec: 'AES_256' }, o());
    const name = nameOf(key);
    await onToken((session) => {
      const current = readMetadata(t.provider.p11, session, name, key.uri);
      if (current === undefined) throw new Error('no metadata');
      const { seq: _seq, format: _format, ...meta } = current.meta;
      expect(() =>
        writeMetadata(
          t.provider.p11,
          session,
          name,
          { ...meta, labels: { pad: 'x'.repeat(MAX_METADATA_BYTES) } },
          current,
        ),
      ).toThrow(expect.objectContaining({ code: 'KeyStateConflict' }));
    });
    // The old metadata is still the key's.
    expect((await t.provider.describeKey({ uri: key.uri }, o())).labels).toEqual({});
  });
});
