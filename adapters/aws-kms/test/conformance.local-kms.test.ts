/**
 * The shared suite against local-kms: it enforces key states, does real RSA and imports material,
 * but has no grant API and no RotateKeyOnDemand (both answer 501), so those are proven on moto or
 * declared not emulated.
 */
import { describeProviderConformance } from '@keyport/conformance';
import { AWS_KMS_CAPABILITIES } from '../src/index.js';
import { conformanceFixtures } from './support/conformance.js';
import { providerFor, target } from './support/targets.js';

const noGrants = {
  kind: 'not-emulated' as const,
  reason: 'local-kms has no grant API; moto stores grants without enforcing them',
};

describeProviderConformance({
  name: 'aws-kms on local-kms',
  provider: { capabilities: AWS_KMS_CAPABILITIES, open: async () => providerFor(target('local-kms')) },
  fixtures: conformanceFixtures('local-kms', {
    default: { kind: 'third-party-emulator', name: 'local-kms v0.0.0-20260228092603-2a5e92d09ab6' },
    rotation: { kind: 'not-emulated', reason: 'local-kms has no RotateKeyOnDemand (proven on moto)' },
    autoRotation: {
      kind: 'not-emulated',
      reason: 'local-kms does not store RotationPeriodInDays (request checked with a stubbed transport)',
    },
    grants: noGrants,
    grantExpiry: noGrants,
    grantConstraints: noGrants,
  }),
});
