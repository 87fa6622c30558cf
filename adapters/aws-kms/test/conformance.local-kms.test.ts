/**
 * The shared suite against local-kms: it enforces key states, does real RSA and imports material,
 * but has no grant API and no RotateKeyOnDemand (both answer 501), so those are proven on moto or
 * declared not emulated.
 */
import { describeProviderConformance } from '@keyport/conformance';
import { AWS_KMS_CAPABILITIES } from '../src/index.js';
import { LOCAL_KMS_PROOFS } from './proofs.js';
import { conformanceFixtures } from './support/conformance.js';
import { providerFor, target } from './support/targets.js';

describeProviderConformance({
  name: 'aws-kms on local-kms',
  provider: { capabilities: AWS_KMS_CAPABILITIES, open: async () => providerFor(target('local-kms')) },
  fixtures: conformanceFixtures('local-kms', LOCAL_KMS_PROOFS),
});
