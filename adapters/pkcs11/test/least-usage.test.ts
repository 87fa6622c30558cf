/** Keys carry only the usage attributes they need; ECDSA verify takes strict DER only. */
import { randomBytes } from 'node:crypto';
import { wrapForImport } from '@keyport/conformance';
import pkcs11js from 'pkcs11js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Pkcs11Provider } from '../src/index.js';
import { openProvider, signal, uniqueName } from './support.js';

const P = pkcs11js;
const USAGE = {
  CKA_ENCRYPT: P.CKA_ENCRYPT,
  CKA_DECRYPT: P.CKA_DECRYPT,
  CKA_SIGN: P.CKA_SIGN,
  CKA_VERIFY: P.CKA_VERIFY,
  CKA_WRAP: P.CKA_WRAP,
  CKA_UNWRAP: P.CKA_UNWRAP,
  CKA_DERIVE: P.CKA_DERIVE,
  CKA_SIGN_RECOVER: P.CKA_SIGN_RECOVER,
  CKA_VERIFY_RECOVER: P.CKA_VERIFY_RECOVER,
} as const;

describe('review', () => {
  let provider: Pkcs11Provider;
  beforeAll(async () => {
    provider = await openProvider();
  });
  afterAll(() => provider.close());

  function usageOf(label: string): Promise<Record<string, string[]>> {
    return provider.pool.run(signal(), (session) => {
      const p11 = provider.p11;
      p11.C_FindObjectsInit(session, [{ type: P.CKA_LABEL, value: label }]);
      const handles = p11.C_FindObjects(session, 100);
      p11.C_FindObjectsFinal(session);
      const out: Record<string, string[]> = {};
      for (const h of handles) {
        const [cls] = p11.C_GetAttributeValue(session, h, [{ type: P.CKA_CLASS }]);
        const c = cls?.value.readUInt32LE(0);
        if (c === P.CKO_DATA) continue;
        const name = c === P.CKO_SECRET_KEY ? 'secret' : c === P.CKO_PRIVATE_KEY ? 'private' : 'public';
        const on: string[] = [];
        for (const [k, type] of Object.entries(USAGE)) {
          try {
            const [a] = p11.C_GetAttributeValue(session, h, [{ type }]);
            if (a?.value[0] === 1) on.push(k);
          } catch {
            /* not an attribute of this class */
          }
        }
        out[name] = on.sort();
      }
      return out;
    });
  }

  // SoftHSM2 defaults every usage attribute a template leaves out to true: an AES key could wrap
  // (and then C_Decrypt the wrapped blob of an exportable key: its material in the clear), an RSA
  // decryption key could sign, the import key could C_Decrypt the wrapped material.
  it.each([
    ['AES_256', 'encrypt_decrypt', { secret: ['CKA_DECRYPT', 'CKA_ENCRYPT'] }],
    ['HMAC_256', 'mac', { secret: ['CKA_SIGN', 'CKA_VERIFY'] }],
    ['RSA_2048', 'encrypt_decrypt', { private: ['CKA_DECRYPT'], public: ['CKA_ENCRYPT'] }],
    ['RSA_2048', 'sign_verify', { private: ['CKA_SIGN'], public: ['CKA_VERIFY'] }],
    ['EC_P256', 'sign_verify', { private: ['CKA_SIGN'], public: ['CKA_VERIFY'] }],
  ] as const)('a new %s %s key carries only the usage attributes it needs', async (spec, usage, expected) => {
    const name = uniqueName('usage');
    await provider.createKey({ name, spec, usage }, { signal: signal() });
    expect(await usageOf(name)).toEqual(expected);
  });

  it('the import pair is wrap-only / unwrap-only, and an imported key only encrypts and decrypts', async () => {
    const name = uniqueName('usage-import');
    const key = await provider.createKey({ name, spec: 'AES_256', external: true }, { signal: signal() });
    expect(await usageOf(name)).toEqual({ private: ['CKA_UNWRAP'], public: ['CKA_WRAP'] });
    for (const algorithm of provider.capabilities.import) {
      const n = uniqueName('usage-import');
      const k = await provider.createKey({ name: n, spec: 'AES_256', external: true }, { signal: signal() });
      const params = await provider.getImportParameters({ uri: k.uri }, { algorithm }, { signal: signal() });
      await provider.importKeyMaterial(
        { uri: k.uri },
        { algorithm, wrappedMaterial: wrapForImport(algorithm, params.wrappingPublicKey, randomBytes(32)) },
        { signal: signal() },
      );
      expect(await usageOf(n)).toEqual({ secret: ['CKA_DECRYPT', 'CKA_ENCRYPT'] });
    }
    expect(key.uri).toContain(name);
  });

  // A BER reading of ECDSA signatures accepted other encodings of one signature as valid
  // (node:crypto/OpenSSL refuses them): signatures were malleable.
  it('ECDSA verify refuses non-canonical DER encodings of a valid signature', async () => {
    const ec = await provider.createKey(
      { name: uniqueName('ec-der'), spec: 'EC_P256', usage: 'sign_verify' },
      { signal: signal() },
    );
    const msg = randomBytes(10);
    const sig = Buffer.from((await provider.sign({ uri: ec.uri }, msg, {}, { signal: signal() })).signature);
    const verify = (s: Uint8Array) =>
      provider.verify({ uri: ec.uri }, msg, s, { algorithm: 'ECDSA_SHA_256' }, { signal: signal() });
    expect(await verify(sig)).toBe(true);
    const seq = (body: Buffer) => Buffer.concat([Buffer.from([0x30, body.length]), body]);
    const rLen = sig[3] as number;
    const r = sig.subarray(4, 4 + rLen);
    const s = sig.subarray(4 + rLen);
    // r with one more leading zero than DER allows
    expect(await verify(seq(Buffer.concat([Buffer.from([0x02, rLen + 1, 0]), r, s])))).toBe(false);
    // r's length in the long form
    expect(await verify(seq(Buffer.concat([Buffer.from([0x02, 0x81, rLen]), r, s])))).toBe(false);
    // the sequence's length in the long form
    expect(await verify(Buffer.concat([Buffer.from([0x30, 0x81, sig.length - 2]), sig.subarray(2)]))).toBe(
      false,
    );
  });
});
