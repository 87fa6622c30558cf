/**
 * The local provider is the suite's first subject and passes it completely: a keystore in a
 * temporary directory, an owner, grantees opened on the same file, and a clock the suite moves.
 */
import { createDecipheriv } from 'node:crypto';
import {
  type EncryptionContext,
  encodeContext,
  FRAME_MECHANISMS,
  readFrame,
  splitGcmBody,
} from '@keyport/core';
import { LOCAL_CAPABILITIES } from '@keyport/local';
import { afterAll } from 'vitest';
import { describeProviderConformance, uniqueKeyNames } from '../src/index.js';
import { tempKeystore } from './support/local-keystore.js';

const keystore = tempKeystore('local');
afterAll(() => keystore.remove());

/** Opens a local AES-GCM ciphertext (core's keyport frame | IV 12 | ciphertext | tag 16) with the raw material. */
function openLocalAesGcm(
  material: Uint8Array,
  ciphertext: Uint8Array,
  context: EncryptionContext,
): Uint8Array {
  const frame = readFrame(ciphertext);
  if (frame.mechanism !== FRAME_MECHANISMS.AES_256_GCM) throw new Error('not a local AES-GCM ciphertext');
  const gcm = splitGcmBody(frame.body);
  const decipher = createDecipheriv('aes-256-gcm', material, gcm.iv);
  decipher.setAAD(encodeContext(context));
  decipher.setAuthTag(gcm.tag);
  return Buffer.concat([decipher.update(gcm.ciphertext), decipher.final()]);
}

describeProviderConformance({
  name: 'local',
  provider: { capabilities: LOCAL_CAPABILITIES, open: () => keystore.open('owner') },
  fixtures: {
    keyName: uniqueKeyNames('local'),
    missingKeyUri: () => keystore.missingKeyUri(),
    // RSA_3072 and RSA_4096 take the RSA_2048 code path here and cost seconds per key to generate.
    keySpecs: ['AES_256', 'RSA_2048', 'EC_P256', 'EC_P384', 'HMAC_256'],
    proofs: { default: { kind: 'real-provider', name: '@keyport/local' } },
    grantee: {
      newPrincipal: (hint) => `grantee-${hint}-${Math.random().toString(36).slice(2, 8)}`,
      providerFor: (principal) => keystore.open(principal),
    },
    clock: { now: keystore.now, advance: keystore.advance },
    publicKey: (ref) => {
      const owner = keystore.owner;
      if (owner === undefined) throw new Error('the keystore is not open');
      return owner.getPublicKey(ref, { signal: new AbortController().signal });
    },
    openWithImportedMaterial: openLocalAesGcm,
  },
});
