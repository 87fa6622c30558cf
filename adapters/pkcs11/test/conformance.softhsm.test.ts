/**
 * The whole conformance suite against SoftHSM2 2.6.1. The provider is built synchronously at
 * collection (so the suite chooses its tests from the capabilities the module really declares)
 * and closed after the suite.
 */
import { createDecipheriv, randomBytes } from 'node:crypto';
import { describeProviderConformance, uniqueKeyNames } from '@keyport/conformance';
import {
  type EncryptionContext,
  encodeContext,
  FRAME_MECHANISMS,
  readFrame,
  splitGcmBody,
} from '@keyport/core';
import { afterAll } from 'vitest';
import { Pkcs11Provider } from '../src/index.js';
import { SOFTHSM_PROOFS } from './proofs.js';
import { providerOptions } from './support.js';

const provider = new Pkcs11Provider(providerOptions());
afterAll(() => provider.close());

/** Opens a keyport PKCS#11 AES-GCM ciphertext (core's keyport frame) with the raw material. */
function openAesGcm(material: Uint8Array, ciphertext: Uint8Array, context: EncryptionContext): Uint8Array {
  const frame = readFrame(ciphertext);
  if (frame.mechanism !== FRAME_MECHANISMS.AES_256_GCM) throw new Error('not an AES-GCM ciphertext');
  const gcm = splitGcmBody(frame.body);
  const decipher = createDecipheriv('aes-256-gcm', material, gcm.iv);
  decipher.setAAD(encodeContext(context));
  decipher.setAuthTag(gcm.tag);
  return Buffer.concat([decipher.update(gcm.ciphertext), decipher.final()]);
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
