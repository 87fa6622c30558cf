/**
 * The whole conformance suite against SoftHSM2 2.6.1. The provider is built synchronously at
 * collection (so the suite chooses its tests from the capabilities the module really declares)
 * and closed after the suite.
 */
import { createDecipheriv, randomBytes } from 'node:crypto';
import { describeProviderConformance, uniqueKeyNames } from '@keyport/conformance';
import { type EncryptionContext, encodeContext } from '@keyport/core';
import { afterAll } from 'vitest';
import { Pkcs11Provider } from '../src/index.js';
import { SOFTHSM_PROOFS } from './proofs.js';
import { providerOptions } from './support.js';

const provider = new Pkcs11Provider(providerOptions());
afterAll(() => provider.close());

/** Opens a keyport PKCS#11 AES-GCM ciphertext (0x01 | version | IV | ct | tag) with the raw material. */
function openAesGcm(material: Uint8Array, ciphertext: Uint8Array, context: EncryptionContext): Uint8Array {
  const bytes = Buffer.from(ciphertext);
  if (bytes[0] !== 0x01) throw new Error('not an AES-GCM ciphertext');
  const decipher = createDecipheriv('aes-256-gcm', material, bytes.subarray(5, 17));
  decipher.setAAD(encodeContext(context));
  decipher.setAuthTag(bytes.subarray(bytes.length - 16));
  return Buffer.concat([decipher.update(bytes.subarray(17, bytes.length - 16)), decipher.final()]);
}

describeProviderConformance({
  name: 'pkcs11 (SoftHSM2 2.6.1)',
  provider,
  fixtures: {
    keyName: uniqueKeyNames('p11'),
    missingKeyUri: () =>
      `pkcs11:token=${provider.tokenLabel};object=missing-${randomBytes(6).toString('hex')}`,
    // RSA_3072/RSA_4096 take the RSA_2048 code path and cost seconds per key pair in SoftHSM2;
    // test/keys.test.ts creates one RSA_3072 key.
    keySpecs: ['AES_256', 'RSA_2048', 'EC_P256', 'EC_P384', 'HMAC_256'],
    proofs: SOFTHSM_PROOFS,
    publicKey: (ref) => provider.getPublicKey(ref),
    openWithImportedMaterial: openAesGcm,
    concurrency: 16,
  },
});
