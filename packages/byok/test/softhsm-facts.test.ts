/**
 * What SoftHSM2 2.6.1 does with the attributes and mechanisms BYOK depends on, asked of the
 * module directly with pkcs11js (its default export from ESM). These facts decide the design:
 * OAEP SHA-1 for every wrap, and no CKA_WRAP_WITH_TRUSTED on keys wrapped for a cloud target
 * (see the README, "Extractable, but only wrapped").
 */
import { generateKeyPairSync } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { env } from './support.js';

const P = pkcs11js;
type Session = Buffer;

describe('SoftHSM2 facts for BYOK', () => {
  const p11 = new P.PKCS11();
  let session: Session;
  beforeAll(() => {
    const e = env('softhsm');
    p11.load(e.KEYPORT_SOFTHSM_MODULE as string);
    p11.C_Initialize();
    const slot = p11
      .C_GetSlotList(true)
      .find((s) => p11.C_GetTokenInfo(s).label.trimEnd() === e.KEYPORT_SOFTHSM_TOKEN);
    if (slot === undefined) throw new Error('the SoftHSM2 token is missing');
    session = p11.C_OpenSession(slot, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION);
    p11.C_Login(session, P.CKU_USER, e.KEYPORT_SOFTHSM_PIN as string);
  });
  afterAll(() => {
    p11.C_CloseSession(session);
    p11.C_Finalize();
  });

  const aesKey = (extra: { type: number; value: boolean }[]) =>
    p11.C_GenerateKey(session, { mechanism: P.CKM_AES_KEY_GEN }, [
      { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
      { type: P.CKA_KEY_TYPE, value: P.CKK_AES },
      { type: P.CKA_TOKEN, value: false },
      { type: P.CKA_VALUE_LEN, value: 32 },
      { type: P.CKA_SENSITIVE, value: true },
      ...extra,
    ]);
  const jwk = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' });
  const wrappingKey = (extra: { type: number; value: boolean }[] = []) =>
    p11.C_CreateObject(session, [
      { type: P.CKA_CLASS, value: P.CKO_PUBLIC_KEY },
      { type: P.CKA_KEY_TYPE, value: P.CKK_RSA },
      { type: P.CKA_TOKEN, value: false },
      { type: P.CKA_WRAP, value: true },
      { type: P.CKA_MODULUS, value: Buffer.from(jwk.n as string, 'base64url') },
      { type: P.CKA_PUBLIC_EXPONENT, value: Buffer.from(jwk.e as string, 'base64url') },
      ...extra,
    ]);
  const oaep = (sha256: boolean) => ({
    mechanism: P.CKM_RSA_PKCS_OAEP,
    parameter: {
      type: P.CK_PARAMS_RSA_OAEP,
      hashAlg: sha256 ? P.CKM_SHA256 : P.CKM_SHA_1,
      mgf: sha256 ? P.CKG_MGF1_SHA256 : P.CKG_MGF1_SHA1,
      source: 1,
    },
  });
  const ckr = (f: () => unknown): string => {
    try {
      f();
      return 'CKR_OK';
    } catch (e) {
      return (e as Error).message.split(':')[0] ?? '';
    }
  };

  it('C_WrapKey with CKM_RSA_PKCS_OAEP takes SHA-1 parameters only', () => {
    const key = aesKey([{ type: P.CKA_EXTRACTABLE, value: true }]);
    const pub = wrappingKey();
    expect(p11.C_WrapKey(session, oaep(false), pub, key, Buffer.alloc(512)).length).toBe(256);
    expect(ckr(() => p11.C_WrapKey(session, oaep(true), pub, key, Buffer.alloc(512)))).toBe(
      'CKR_ARGUMENTS_BAD',
    );
  });

  it('CKA_EXTRACTABLE false is CKR_KEY_UNEXTRACTABLE; CKA_SENSITIVE keeps CKA_VALUE unreadable', () => {
    const locked = aesKey([{ type: P.CKA_EXTRACTABLE, value: false }]);
    expect(ckr(() => p11.C_WrapKey(session, oaep(false), wrappingKey(), locked, Buffer.alloc(512)))).toBe(
      'CKR_KEY_UNEXTRACTABLE',
    );
    const open = aesKey([{ type: P.CKA_EXTRACTABLE, value: true }]);
    expect(ckr(() => p11.C_GetAttributeValue(session, open, [{ type: P.CKA_VALUE }]))).toBe(
      'CKR_ATTRIBUTE_SENSITIVE',
    );
  });

  it('CKA_WRAP_WITH_TRUSTED is enforced, and only the SO can mark a wrapping key CKA_TRUSTED', () => {
    const guarded = aesKey([
      { type: P.CKA_EXTRACTABLE, value: true },
      { type: P.CKA_WRAP_WITH_TRUSTED, value: true },
    ]);
    expect(ckr(() => p11.C_WrapKey(session, oaep(false), wrappingKey(), guarded, Buffer.alloc(512)))).toBe(
      'CKR_KEY_NOT_WRAPPABLE',
    );
    expect(ckr(() => wrappingKey([{ type: P.CKA_TRUSTED, value: true }]))).toBe('CKR_ATTRIBUTE_READ_ONLY');
  });
});
