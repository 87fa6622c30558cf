/**
 * Who proves each capability of @keyport/aws-kms, per emulator. The conformance runs and the
 * README capability matrix both read these tables.
 */
import type { ProofTable } from '@keyport/conformance';

const notEnforced = (what: string) => ({
  kind: 'not-emulated' as const,
  reason: `moto records ${what} but does not enforce it`,
});

export const MOTO_PROOFS: ProofTable = {
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
};

const noGrants = {
  kind: 'not-emulated' as const,
  reason: 'local-kms has no grant API; moto stores grants without enforcing them',
};

export const LOCAL_KMS_PROOFS: ProofTable = {
  default: { kind: 'third-party-emulator', name: 'local-kms v0.0.0-20260228092603-2a5e92d09ab6' },
  rotation: { kind: 'not-emulated', reason: 'local-kms has no RotateKeyOnDemand (proven on moto)' },
  autoRotation: {
    kind: 'not-emulated',
    reason: 'local-kms does not store RotationPeriodInDays (request checked with a stubbed transport)',
  },
  grants: noGrants,
  grantExpiry: noGrants,
  grantConstraints: noGrants,
};
