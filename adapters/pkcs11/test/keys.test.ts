/** What keyport leaves in the token: attributes, the version scheme, URIs, and RSA_3072. */
import { createPublicKey, randomBytes, verify } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Pkcs11Provider, versionId } from '../src/index.js';
import { openProvider, signal, uniqueName } from './support.js';

const P = pkcs11js;

describe('keys in the token', () => {
  let provider: Pkcs11Provider;
  beforeAll(async () => {
    provider = await openProvider();
  });
  afterAll(() => provider.close());

  /** Raw attributes of every object labelled `label`, read around keyport. */
  function objects(label: string, cls: number): Promise<Array<Record<string, Buffer>>> {
    return provider.pool.run(signal(), (session) => {
      const p11 = provider.p11;
      p11.C_FindObjectsInit(session, [
        { type: P.CKA_LABEL, value: label },
        { type: P.CKA_CLASS, value: cls },
      ]);
      const handles = p11.C_FindObjects(session, 100);
      p11.C_FindObjectsFinal(session);
      return handles.map((h) => {
        const wanted =
          cls === P.CKO_PUBLIC_KEY
            ? [P.CKA_ID, P.CKA_VERIFY, P.CKA_ENCRYPT]
            : [
                P.CKA_ID,
                P.CKA_SENSITIVE,
                P.CKA_EXTRACTABLE,
                P.CKA_TOKEN,
                P.CKA_ENCRYPT,
                P.CKA_DECRYPT,
                P.CKA_SIGN,
              ];
        const attrs = p11.C_GetAttributeValue(
          session,
          h,
          wanted.map((type) => ({ type })),
        );
        return Object.fromEntries(attrs.map((a) => [String(a.type), a.value]));
      });
    });
  }
  const flag = (o: Record<string, Buffer> | undefined, type: number) => o?.[String(type)]?.[0] === 1;

  it('generates AES keys sensitive, non-extractable, on the token; versions share the label with the version in CKA_ID', async () => {
    const name = uniqueName('attrs');
    const key = await provider.createKey({ name, spec: 'AES_256' }, { signal: signal() });
    expect(key.uri).toBe(`pkcs11:token=${provider.tokenLabel};object=${name}`);
    await provider.rotateKey({ uri: key.uri }, { signal: signal() });
    const found = await objects(name, P.CKO_SECRET_KEY);
    expect(found).toHaveLength(2);
    const ids = found.map((o) => o[String(P.CKA_ID)]?.toString('hex')).sort();
    expect(ids).toEqual([versionId(1).toString('hex'), versionId(2).toString('hex')]);
    for (const o of found) {
      expect(flag(o, P.CKA_SENSITIVE)).toBe(true);
      expect(flag(o, P.CKA_EXTRACTABLE)).toBe(false);
      expect(flag(o, P.CKA_TOKEN)).toBe(true);
    }
  });

  it('disabling clears CKA_ENCRYPT/CKA_DECRYPT in the token itself; enabling restores them', async () => {
    const name = uniqueName('disable');
    const key = await provider.createKey({ name, spec: 'AES_256' }, { signal: signal() });
    await provider.disableKey({ uri: key.uri }, { signal: signal() });
    let [o] = await objects(name, P.CKO_SECRET_KEY);
    expect(flag(o, P.CKA_ENCRYPT) || flag(o, P.CKA_DECRYPT)).toBe(false);
    await expect(
      provider.encrypt({ uri: key.uri }, randomBytes(4), {}, { signal: signal() }),
    ).rejects.toMatchObject({
      message: expect.stringContaining('CKR_KEY_FUNCTION_NOT_PERMITTED'),
    });
    await provider.enableKey({ uri: key.uri }, { signal: signal() });
    [o] = await objects(name, P.CKO_SECRET_KEY);
    expect(flag(o, P.CKA_ENCRYPT) && flag(o, P.CKA_DECRYPT)).toBe(true);
  });

  it('a pinned version (x-version= or id=) encrypts under that version', async () => {
    const key = await provider.createKey(
      { name: uniqueName('pinned'), spec: 'AES_256' },
      { signal: signal() },
    );
    await provider.rotateKey({ uri: key.uri }, { signal: signal() });
    const viaXVersion = await provider.encrypt(
      { uri: `${key.uri};x-version=1` },
      randomBytes(8),
      {},
      { signal: signal() },
    );
    expect(viaXVersion.keyVersion).toBe('1');
    const viaId = await provider.encrypt(
      { uri: `${key.uri};id=%6b%70%76%31%00%00%00%01` },
      randomBytes(8),
      {},
      {
        signal: signal(),
      },
    );
    expect(viaId.keyVersion).toBe('1');
    const primary = await provider.encrypt({ uri: key.uri }, randomBytes(8), {}, { signal: signal() });
    expect(primary.keyVersion).toBe('2');
    await expect(
      provider.encrypt({ uri: `${key.uri};x-version=7` }, randomBytes(8), {}, { signal: signal() }),
    ).rejects.toMatchObject({ code: 'NotFound' });
  });

  it('refuses URIs for another token, without object=, or with a foreign id=', async () => {
    const s = { signal: signal() };
    await expect(provider.describeKey({ uri: 'pkcs11:token=other;object=k' }, s)).rejects.toMatchObject({
      code: 'InvalidArgument',
    });
    await expect(provider.describeKey({ uri: 'pkcs11:id=%01' }, s)).rejects.toMatchObject({
      code: 'InvalidArgument',
    });
    await expect(provider.describeKey({ uri: 'pkcs11:object=k;id=%01' }, s)).rejects.toMatchObject({
      code: 'InvalidArgument',
    });
  });

  it('an RSA-OAEP ciphertext refuses an encryption context (UnsupportedError) rather than ignoring it', async () => {
    const key = await provider.createKey(
      { name: uniqueName('rsa-ctx'), spec: 'RSA_2048', usage: 'encrypt_decrypt' },
      { signal: signal() },
    );
    await expect(
      provider.encrypt({ uri: key.uri }, randomBytes(8), { context: { a: 'b' } }, { signal: signal() }),
    ).rejects.toMatchObject({ code: 'Unsupported' });
  });

  it('RSA_3072: PSS and PKCS#1 v1.5 signatures verify with node:crypto against the token’s public key', async () => {
    const key = await provider.createKey(
      { name: uniqueName('rsa3072'), spec: 'RSA_3072', usage: 'sign_verify' },
      { signal: signal() },
    );
    const spki = await provider.getPublicKey({ uri: key.uri });
    const pub = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
    expect(pub.asymmetricKeyDetails?.modulusLength).toBe(3072);
    const message = randomBytes(100);
    const pss = await provider.sign(
      { uri: key.uri },
      message,
      { algorithm: 'RSASSA_PSS_SHA_256' },
      { signal: signal() },
    );
    expect(
      verify(
        'sha256',
        message,
        { key: pub, padding: 6 /* RSA_PKCS1_PSS_PADDING */, saltLength: 32 },
        pss.signature,
      ),
    ).toBe(true);
    const v15 = await provider.sign(
      { uri: key.uri },
      message,
      { algorithm: 'RSASSA_PKCS1_V1_5_SHA_256' },
      { signal: signal() },
    );
    expect(verify('sha256', message, pub, v15.signature)).toBe(true);
  });
});
