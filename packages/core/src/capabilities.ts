/**
 * Capabilities are plain data: what a provider can do, per key spec. Core checks them before
 * any network call (an undeclared operation throws UnsupportedError), the conformance suite
 * chooses its tests from them, and the README's capability matrix is generated from them.
 */
import { UnsupportedError } from './errors.js';
import type { ImportWrappingAlgorithm, KeySpec, KeyUsage, SigningAlgorithm } from './types.js';

/** `native`: the provider does it; `emulated`: keyport does it client-side with documented guarantees. */
export type Support = 'native' | 'emulated' | 'none';

export interface Capabilities {
  /** Key specs the provider can create, with the usages it offers for each. */
  readonly keySpecs: Partial<Readonly<Record<KeySpec, readonly KeyUsage[]>>>;
  /** Binding an encryption context to symmetric ciphertexts. */
  readonly context: Support;
  readonly dataKeys: Support;
  readonly listKeys: boolean;
  /**
   * `versioned`: rotation creates an addressable version; `transparent`: rotation happens
   * (old ciphertexts keep opening) but versions cannot be named; `none`: no rotation.
   */
  readonly rotation: 'versioned' | 'transparent' | 'none';
  readonly autoRotation: boolean;
  readonly enableDisable: boolean;
  /** Scheduled deletion with a waiting period, and cancellation. */
  readonly scheduledDeletion: Support;
  readonly destroyVersion: boolean;
  readonly grants: Support;
  readonly grantExpiry: 'native' | 'swept' | 'none';
  readonly grantConstraints: boolean;
  readonly import: readonly ImportWrappingAlgorithm[];
  readonly signingAlgorithms: readonly SigningAlgorithm[];
}

/** Every operation of the provider contract, as named in audit events and capability checks. */
export const OPERATIONS = [
  'createKey',
  'describeKey',
  'listKeys',
  'rotateKey',
  'setRotationPolicy',
  'enableKey',
  'disableKey',
  'scheduleKeyDeletion',
  'cancelKeyDeletion',
  'destroyKeyVersion',
  'encrypt',
  'decrypt',
  'generateDataKey',
  'sign',
  'verify',
  'mac',
  'verifyMac',
  'getPublicKey',
  'createGrant',
  'listGrants',
  'revokeGrant',
  'getImportParameters',
  'importKeyMaterial',
] as const;
export type Operation = (typeof OPERATIONS)[number];

function anySpecWith(caps: Capabilities, usage: KeyUsage): boolean {
  return Object.values(caps.keySpecs).some((usages) => usages?.includes(usage));
}

/**
 * The capability an operation needs, or undefined when it is always available. Returns the
 * capability's name when the provider declares it unavailable.
 */
export function missingCapability(caps: Capabilities, op: Operation): string | undefined {
  switch (op) {
    case 'listKeys':
      return caps.listKeys ? undefined : 'listKeys';
    case 'rotateKey':
      return caps.rotation === 'none' ? 'rotation' : undefined;
    case 'setRotationPolicy':
      return caps.autoRotation ? undefined : 'autoRotation';
    case 'enableKey':
    case 'disableKey':
      return caps.enableDisable ? undefined : 'enableDisable';
    case 'scheduleKeyDeletion':
    case 'cancelKeyDeletion':
      return caps.scheduledDeletion === 'none' ? 'scheduledDeletion' : undefined;
    case 'destroyKeyVersion':
      return caps.destroyVersion ? undefined : 'destroyVersion';
    case 'encrypt':
    case 'decrypt':
      return anySpecWith(caps, 'encrypt_decrypt') ? undefined : 'encrypt';
    case 'generateDataKey':
      return caps.dataKeys === 'none' ? 'dataKeys' : undefined;
    case 'sign':
    case 'verify':
      return anySpecWith(caps, 'sign_verify') ? undefined : 'sign';
    case 'mac':
    case 'verifyMac':
      return anySpecWith(caps, 'mac') ? undefined : 'mac';
    case 'createGrant':
    case 'listGrants':
    case 'revokeGrant':
      return caps.grants === 'none' ? 'grants' : undefined;
    case 'getImportParameters':
    case 'importKeyMaterial':
      return caps.import.length === 0 ? 'import' : undefined;
    default:
      return undefined;
  }
}

export function assertCapability(caps: Capabilities, op: Operation, provider: string, keyUri?: string): void {
  const missing = missingCapability(caps, op);
  if (missing !== undefined) {
    throw new UnsupportedError(missing, `${provider} does not support ${missing} (needed by ${op})`, {
      provider,
      keyUri,
    });
  }
}

/** Does this provider offer `usage` for keys of `spec`? */
export function supportsSpec(caps: Capabilities, spec: KeySpec, usage?: KeyUsage): boolean {
  const usages = caps.keySpecs[spec];
  return usages !== undefined && (usage === undefined || usages.includes(usage));
}
