// One real call through pkcs11js against SoftHSM2: log in to the token the harness
// initialised, generate a session AES key, and encrypt and decrypt with AES-GCM.
import { randomBytes } from 'node:crypto';
// The default export: the namespace import lacks the constants (DESIGN.md).
import pkcs11js from 'pkcs11js';
import { describe, expect, it } from 'vitest';
import { requireTarget } from '../harness/env.js';

describe('smoke: SoftHSM2 (PKCS#11)', () => {
  it('generates an AES key on the keyport token and round-trips AES-GCM', () => {
    const env = requireTarget('softhsm');
    const p11 = new pkcs11js.PKCS11();
    p11.load(env.KEYPORT_SOFTHSM_MODULE);
    p11.C_Initialize();
    try {
      const slot = p11
        .C_GetSlotList(true)
        .find((s) => p11.C_GetTokenInfo(s).label.trim() === env.KEYPORT_SOFTHSM_TOKEN);
      if (slot === undefined)
        throw new Error(`token ${env.KEYPORT_SOFTHSM_TOKEN} not found in ${env.SOFTHSM2_CONF}`);
      const session = p11.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
      p11.C_Login(session, pkcs11js.CKU_USER, env.KEYPORT_SOFTHSM_PIN);
      const key = p11.C_GenerateKey(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
        { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
        { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
        { type: pkcs11js.CKA_TOKEN, value: false },
        { type: pkcs11js.CKA_ENCRYPT, value: true },
        { type: pkcs11js.CKA_DECRYPT, value: true },
      ]);
      const mechanism = {
        mechanism: pkcs11js.CKM_AES_GCM,
        parameter: {
          type: pkcs11js.CK_PARAMS_GCM,
          iv: randomBytes(12),
          ivBits: 96,
          aad: Buffer.from('purpose=smoke'),
          tagBits: 128,
        },
      };
      const plaintext = Buffer.from('softhsm smoke');
      p11.C_EncryptInit(session, mechanism, key);
      const ciphertext = Buffer.from(p11.C_Encrypt(session, plaintext, Buffer.alloc(plaintext.length + 16)));
      expect(ciphertext.length).toBe(plaintext.length + 16);
      expect(ciphertext.subarray(0, plaintext.length).equals(plaintext)).toBe(false);
      p11.C_DecryptInit(session, mechanism, key);
      const decrypted = Buffer.from(p11.C_Decrypt(session, ciphertext, Buffer.alloc(ciphertext.length)));
      expect(decrypted.toString()).toBe('softhsm smoke');
      p11.C_Logout(session);
      p11.C_CloseSession(session);
    } finally {
      p11.C_Finalize();
    }
  });
});
