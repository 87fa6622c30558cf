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
/** An operation of the neutral API. */
export type NeutralOperation = (typeof OPERATIONS)[number];
/**
 * An operation only one driver offers (`aws-kms:reEncrypt`, `hcvault:deleteKey`), run through
 * the same call path as the neutral ones (`Keyport.driverCall`): named `<scheme>:<name>`.
 */
export type DriverOperation = `${string}:${string}`;
/** What audit events and capability checks name. */
export type Operation = NeutralOperation | DriverOperation;

/** The `<name>` of a driver operation: letters and digits, starting with a letter. */
export function isDriverOperationName(name: unknown): name is string {
  return typeof name === 'string' && /^[A-Za-z][A-Za-z0-9]*$/.test(name);
}

/** Checked on every encrypt and decrypt: a plain loop (no array of values, no closure). */
function anySpecWith(caps: Capabilities, usage: KeyUsage): boolean {
  const specs = caps.keySpecs as Readonly<Record<string, readonly KeyUsage[] | undefined>>;
  for (const spec of Object.keys(specs)) if (specs[spec]?.includes(usage)) return true;
  return false;
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

/** The capability name an optional driver method stands for (what UnsupportedError names). */
const CAPABILITY_OF_METHOD: Readonly<Record<string, string>> = {
  createKey: 'keys',
  describeKey: 'keys',
  listKeys: 'listKeys',
  rotateKey: 'rotation',
  setRotationPolicy: 'autoRotation',
  enableKey: 'enableDisable',
  disableKey: 'enableDisable',
  scheduleKeyDeletion: 'scheduledDeletion',
  cancelKeyDeletion: 'scheduledDeletion',
  destroyKeyVersion: 'destroyVersion',
  generateDataKey: 'dataKeys',
  sign: 'sign',
  verify: 'sign',
  getPublicKey: 'getPublicKey',
  mac: 'mac',
  verifyMac: 'mac',
  createGrant: 'grants',
  listGrants: 'grants',
  revokeGrant: 'grants',
  getImportParameters: 'import',
  importKeyMaterial: 'import',
};

export function capabilityOfMethod(method: string): string {
  return CAPABILITY_OF_METHOD[method] ?? method;
}

/** Structural view of a driver, enough to see which optional methods it has. */
interface DriverShape {
  readonly capabilities: Capabilities;
}

const cache = new WeakMap<object, Capabilities>();

/**
 * A driver's capabilities as core serves them: what it declares, less what it does not
 * implement (a capability is found by presence of its methods). Data keys stay available
 * when declared `emulated`: core draws and wraps them itself.
 */
export function effectiveCapabilities(driver: DriverShape): Capabilities {
  const known = cache.get(driver);
  if (known !== undefined) return known;
  const has = (m: string): boolean => typeof (driver as unknown as Record<string, unknown>)[m] === 'function';
  const c = driver.capabilities;
  const usages = (list: readonly KeyUsage[]): KeyUsage[] =>
    list.filter((u) =>
      u === 'sign_verify'
        ? has('sign') && has('verify')
        : u === 'mac'
          ? has('mac') && has('verifyMac')
          : true,
    );
  const keySpecs: Partial<Record<KeySpec, readonly KeyUsage[]>> = {};
  for (const [spec, list] of Object.entries(c.keySpecs) as [KeySpec, readonly KeyUsage[]][]) {
    const kept = usages(list);
    if (kept.length > 0) keySpecs[spec] = kept;
  }
  const grants = has('createGrant') && has('listGrants') && has('revokeGrant');
  const out: Capabilities = {
    ...c,
    keySpecs,
    dataKeys: has('generateDataKey') || c.dataKeys === 'emulated' ? c.dataKeys : 'none',
    listKeys: c.listKeys && has('listKeys'),
    rotation: has('rotateKey') ? c.rotation : 'none',
    autoRotation: c.autoRotation && has('setRotationPolicy'),
    enableDisable: c.enableDisable && has('enableKey') && has('disableKey'),
    scheduledDeletion: has('scheduleKeyDeletion') && has('cancelKeyDeletion') ? c.scheduledDeletion : 'none',
    destroyVersion: c.destroyVersion && has('destroyKeyVersion'),
    grants: grants ? c.grants : 'none',
    grantExpiry: grants ? c.grantExpiry : 'none',
    grantConstraints: grants && c.grantConstraints,
    import: has('getImportParameters') && has('importKeyMaterial') ? c.import : [],
  };
  cache.set(driver, out);
  return out;
}
