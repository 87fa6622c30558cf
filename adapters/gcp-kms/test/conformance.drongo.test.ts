/**
 * The conformance suite over REST (the client's fallback mode) against drongo, a third-party
 * Cloud KMS mock, for what it has: key rings, symmetric crypto keys, encrypt/decrypt with AAD and
 * CRC32C. Everything else is declared not emulated in DRONGO_PROOFS, with the reason.
 */
import { describeProviderConformance, uniqueKeyNames } from '@keyport/conformance';
import { GCP_KMS_CAPABILITIES } from '../src/index.js';
import { DRONGO_PROOFS } from './proofs.js';
import { drongoProvider } from './support/targets.js';

const KEY_RING = `projects/keyport-drongo/locations/global/keyRings/run-${Date.now().toString(36)}`;

describeProviderConformance({
  name: 'gcp-kms (REST, drongo 0.8.0)',
  provider: { capabilities: GCP_KMS_CAPABILITIES, open: () => drongoProvider({ keyRing: KEY_RING }) },
  fixtures: {
    keyName: uniqueKeyNames('gcp'),
    missingKeyUri: () => `gcp-kms://${KEY_RING}/cryptoKeys/missing-${Date.now().toString(36)}`,
    keySpecs: ['AES_256'],
    proofs: DRONGO_PROOFS,
  },
});
