/**
 * Which tests a provider gets, decided from its declared capabilities and its fixtures alone
 * (pure, so the selection logic is unit-tested without any provider).
 */
import {
  type Capabilities,
  IMPORT_WRAPPING_ALGORITHMS,
  type ImportWrappingAlgorithm,
  KEY_SPECS,
  type KeySpec,
  type KeyUsage,
  type NeutralOperation as Operation,
  type SigningAlgorithm,
} from '@keyport/core';
import {
  type ConformanceFixtures,
  GRANT_CONSTRAINT_KINDS,
  type GrantConstraintKind,
  isCredentialGrantee,
  type Proof,
  proofFor,
} from './fixtures.js';

/** The rows of the capability matrix; each names one group of suite tests. */
export const CONFORMANCE_CAPABILITIES = [
  'keys',
  'listKeys',
  'encrypt',
  'context',
  'dataKeys',
  'rotation',
  'autoRotation',
  'enableDisable',
  'scheduledDeletion',
  'destroyVersion',
  'grants',
  'grantExpiry',
  'grantConstraints',
  'import',
  'sign',
  'mac',
] as const;
export type ConformanceCapability = (typeof CONFORMANCE_CAPABILITIES)[number];

function specsWith(caps: Capabilities, usage: KeyUsage): KeySpec[] {
  return KEY_SPECS.filter((s) => caps.keySpecs[s]?.includes(usage) === true);
}

const supportValue = (s: 'native' | 'emulated' | 'none'): string | undefined =>
  s === 'none' ? undefined : s;

/**
 * What the provider declares for a capability, as matrix text; undefined when declared
 * unavailable (the suite then expects UnsupportedError).
 */
export function declaredValue(caps: Capabilities, capability: ConformanceCapability): string | undefined {
  const list = (items: readonly string[]): string | undefined =>
    items.length > 0 ? items.join(', ') : undefined;
  switch (capability) {
    case 'keys':
      return list(KEY_SPECS.filter((s) => caps.keySpecs[s] !== undefined));
    case 'listKeys':
      return caps.listKeys ? 'yes' : undefined;
    case 'encrypt':
      return list(specsWith(caps, 'encrypt_decrypt'));
    case 'context':
      return specsWith(caps, 'encrypt_decrypt').length > 0 ? supportValue(caps.context) : undefined;
    case 'dataKeys':
      return supportValue(caps.dataKeys);
    case 'rotation':
      return caps.rotation === 'none' ? undefined : caps.rotation;
    case 'autoRotation':
      return caps.autoRotation ? 'yes' : undefined;
    case 'enableDisable':
      return caps.enableDisable ? 'yes' : undefined;
    case 'scheduledDeletion':
      return supportValue(caps.scheduledDeletion);
    case 'destroyVersion':
      return caps.destroyVersion ? 'yes' : undefined;
    case 'grants':
      return supportValue(caps.grants);
    case 'grantExpiry':
      return caps.grants === 'none' || caps.grantExpiry === 'none' ? undefined : caps.grantExpiry;
    case 'grantConstraints':
      return caps.grants !== 'none' && caps.grantConstraints ? 'yes' : undefined;
    case 'import':
      return list(caps.import);
    case 'sign':
      return specsWith(caps, 'sign_verify').length > 0 ? list(caps.signingAlgorithms) : undefined;
    case 'mac':
      return list(specsWith(caps, 'mac'));
  }
}

/** Operations core refuses (UnsupportedError, before any provider call) when a capability is declared unavailable. */
export const CORE_CHECKED_OPERATIONS: Partial<Record<ConformanceCapability, readonly Operation[]>> = {
  listKeys: ['listKeys'],
  rotation: ['rotateKey'],
  autoRotation: ['setRotationPolicy'],
  enableDisable: ['enableKey', 'disableKey'],
  scheduledDeletion: ['scheduleKeyDeletion', 'cancelKeyDeletion'],
  destroyVersion: ['destroyKeyVersion'],
  encrypt: ['encrypt', 'decrypt'],
  dataKeys: ['generateDataKey'],
  sign: ['sign', 'verify'],
  mac: ['mac', 'verifyMac'],
  grants: ['createGrant', 'listGrants', 'revokeGrant'],
  import: ['getImportParameters', 'importKeyMaterial'],
};

/** The signing algorithms that fit a key spec at all. */
export function algorithmsForSpec(spec: KeySpec): readonly SigningAlgorithm[] {
  if (spec.startsWith('RSA_')) return ['RSASSA_PSS_SHA_256', 'RSASSA_PKCS1_V1_5_SHA_256'];
  if (spec === 'EC_P256') return ['ECDSA_SHA_256'];
  if (spec === 'EC_P384') return ['ECDSA_SHA_384'];
  return [];
}

export interface SpecPlan {
  readonly spec: KeySpec;
  readonly usages: readonly KeyUsage[];
}

export interface ConformancePlan {
  /** Specs the suite creates keys of, with the usages it exercises. */
  readonly specs: readonly SpecPlan[];
  /** Declared available and proven by some target: these topics run. */
  readonly exercised: ReadonlySet<ConformanceCapability>;
  /** Declared available but nothing here can prove it: declared, not exercised. */
  readonly notEmulated: ReadonlyArray<{ capability: ConformanceCapability; reason: string }>;
  /** Declared unavailable: the suite checks UnsupportedError instead. */
  readonly unsupported: readonly ConformanceCapability[];
  /** Specs the provider does not declare: createKey must throw UnsupportedError. */
  readonly undeclaredSpecs: readonly KeySpec[];
  /** Declared algorithms per exercised signing spec: what sign/verify tests run. */
  readonly signingAlgorithms: ReadonlyArray<{ spec: KeySpec; algorithm: SigningAlgorithm }>;
  /** Algorithms that fit an exercised spec but are not declared: sign must throw UnsupportedError. */
  readonly undeclaredSigningAlgorithms: ReadonlyArray<{ spec: KeySpec; algorithm: SigningAlgorithm }>;
  /** Wrapping algorithms not declared while import is: getImportParameters must throw UnsupportedError. */
  readonly undeclaredImportAlgorithms: readonly ImportWrappingAlgorithm[];
  /**
   * How grant tests act as the grantee: `principal` (grant to a principal that exists first) or
   * `credential` (the grant mints the grantee's credential); undefined without the fixture.
   */
  readonly granteeForm: 'principal' | 'credential' | undefined;
  /** Constraint kinds tested to allow what they say; the others must throw UnsupportedError. */
  readonly grantConstraintKinds: readonly GrantConstraintKind[];
  /** A capability is declared and claimed proven, but a fixture it needs is absent (a failure). */
  readonly missingFixtures: ReadonlyArray<{ capability: ConformanceCapability; fixture: string }>;
  /** Every capability with the value declared and the proof behind it, for the summary. */
  readonly rows: ReadonlyArray<{
    capability: ConformanceCapability;
    declared: string | undefined;
    proof: Proof;
  }>;
}

export function planConformance(
  caps: Capabilities,
  fixtures: Pick<ConformanceFixtures, 'keySpecs' | 'proofs' | 'grantee' | 'grantConstraintKinds'>,
): ConformancePlan {
  const declaredSpecs = KEY_SPECS.filter((s) => caps.keySpecs[s] !== undefined);
  const wanted = fixtures.keySpecs ?? declaredSpecs;
  const specs = declaredSpecs
    .filter((s) => wanted.includes(s))
    .map((spec) => ({ spec, usages: caps.keySpecs[spec] ?? [] }));

  const exercised = new Set<ConformanceCapability>();
  const notEmulated: Array<{ capability: ConformanceCapability; reason: string }> = [];
  const unsupported: ConformanceCapability[] = [];
  const rows: Array<{ capability: ConformanceCapability; declared: string | undefined; proof: Proof }> = [];
  for (const capability of CONFORMANCE_CAPABILITIES) {
    const declared = declaredValue(caps, capability);
    const proof = proofFor(fixtures.proofs, capability);
    rows.push({ capability, declared, proof });
    if (declared === undefined) unsupported.push(capability);
    else if (proof.kind === 'not-emulated') notEmulated.push({ capability, reason: proof.reason });
    else exercised.add(capability);
  }

  const missingFixtures: Array<{ capability: ConformanceCapability; fixture: string }> = [];
  if (exercised.has('grants') && fixtures.grantee === undefined) {
    missingFixtures.push({ capability: 'grants', fixture: 'grantee' });
  }
  const grantConstraintKinds = GRANT_CONSTRAINT_KINDS.filter(
    (k) => fixtures.grantConstraintKinds?.includes(k) ?? true,
  );
  if (exercised.has('grantConstraints') && grantConstraintKinds.length === 0) {
    // Declaring grantConstraints while enforcing no kind of constraint is a contradiction.
    missingFixtures.push({ capability: 'grantConstraints', fixture: 'grantConstraintKinds (at least one)' });
  }

  const undeclaredSigningAlgorithms = specs
    .filter((s) => s.usages.includes('sign_verify'))
    .flatMap((s) =>
      algorithmsForSpec(s.spec)
        .filter((a) => !caps.signingAlgorithms.includes(a))
        .map((algorithm) => ({ spec: s.spec, algorithm })),
    );

  const signingAlgorithms = specs
    .filter((s) => s.usages.includes('sign_verify'))
    .flatMap((s) =>
      algorithmsForSpec(s.spec)
        .filter((a) => caps.signingAlgorithms.includes(a))
        .map((algorithm) => ({ spec: s.spec, algorithm })),
    );

  return {
    specs,
    signingAlgorithms,
    exercised,
    notEmulated,
    unsupported,
    undeclaredSpecs: KEY_SPECS.filter((s) => !declaredSpecs.includes(s)),
    undeclaredSigningAlgorithms,
    undeclaredImportAlgorithms:
      caps.import.length === 0 ? [] : IMPORT_WRAPPING_ALGORITHMS.filter((a) => !caps.import.includes(a)),
    granteeForm:
      fixtures.grantee === undefined
        ? undefined
        : isCredentialGrantee(fixtures.grantee)
          ? 'credential'
          : 'principal',
    grantConstraintKinds,
    missingFixtures,
    rows,
  };
}

/** Specs in the plan serving `usage`, symmetric first. */
export function specsFor(plan: ConformancePlan, usage: KeyUsage): KeySpec[] {
  return plan.specs.filter((s) => s.usages.includes(usage)).map((s) => s.spec);
}

/** The value the provider declared for a capability (matrix text), undefined when unavailable. */
export function declaredIn(plan: ConformancePlan, capability: ConformanceCapability): string | undefined {
  return plan.rows.find((r) => r.capability === capability)?.declared;
}
