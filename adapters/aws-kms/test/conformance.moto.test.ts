/**
 * The shared suite against moto 5.2.5. moto records key states and grants but does not enforce
 * them, has no import API, answers AccessDenied for foreign/tampered ciphertexts and mishandles
 * DIGEST signatures, so those capabilities are proven on local-kms or declared not emulated.
 */
import { describeProviderConformance } from '@keyport/conformance';
import { AWS_KMS_CAPABILITIES } from '../src/index.js';
import { MOTO_PROOFS } from './proofs.js';
import { conformanceFixtures } from './support/conformance.js';
import { providerFor, target } from './support/targets.js';

describeProviderConformance({
  name: 'aws-kms on moto 5.2.5',
  provider: { capabilities: AWS_KMS_CAPABILITIES, open: async () => providerFor(target('moto')) },
  fixtures: conformanceFixtures('moto', MOTO_PROOFS),
});
