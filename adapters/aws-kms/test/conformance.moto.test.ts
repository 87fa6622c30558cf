/**
 * The shared suite against moto 5.2.5. moto records key states and grants but does not enforce
 * them, has no import API, answers AccessDenied for foreign/tampered ciphertexts and mishandles
 * DIGEST signatures, so those capabilities are proven on local-kms or declared not emulated.
 */
import { describeProviderConformance } from '@keyport/conformance';
import { AWS_KMS_CAPABILITIES } from '../src/index.js';
import { conformanceFixtures } from './support/conformance.js';
import { providerFor, target } from './support/targets.js';

const notEnforced = (what: string) => ({
  kind: 'not-emulated' as const,
  reason: `moto records ${what} but does not enforce it`,
});

describeProviderConformance({
  name: 'aws-kms on moto 5.2.5',
  provider: { capabilities: AWS_KMS_CAPABILITIES, open: async () => providerFor(target('moto')) },
  fixtures: conformanceFixtures('moto', {
    default: { kind: 'third-party-emulator', name: 'moto 5.2.5' },
    enableDisable: notEnforced('DisableKey (proven on local-kms)'),
    scheduledDeletion: notEnforced('ScheduleKeyDeletion (proven on local-kms)'),
    grants: notEnforced('grants'),
    grantExpiry: notEnforced('grants (expiry is swept by keyport; sweep tested in grants.test.ts)'),
    grantConstraints: notEnforced('grant constraints'),
    encrypt: {
      kind: 'not-emulated',
      reason:
        'moto answers AccessDenied (not InvalidCiphertext) for tampered or foreign ciphertexts and its RSA encryption is a placeholder (proven on local-kms)',
    },
    sign: {
      kind: 'not-emulated',
      reason:
        'moto does not verify DIGEST-type signatures it made (raw signatures checked in crypto.test.ts; proven on local-kms)',
    },
    import: { kind: 'not-emulated', reason: 'moto has no GetParametersForImport (proven on local-kms)' },
    autoRotation: {
      kind: 'not-emulated',
      reason: 'moto does not store RotationPeriodInDays (request checked with a stubbed transport)',
    },
  }),
});
