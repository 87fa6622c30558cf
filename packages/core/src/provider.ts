/**
 * The provider contract: what an adapter implements. An adapter is a translation layer —
 * neutral request in, SDK call, neutral result or raw error out. It does not retry, audit or
 * check capabilities: `Keyport` (client.ts) wraps every provider with one call policy that does.
 *
 * Every method receives a `signal` that combines the caller's AbortSignal with the call
 * policy's deadline; adapters pass it to the SDK call.
 */
import type { Capabilities } from './capabilities.js';
import type { KeyportError } from './errors.js';
import type {
  CreateKeyRequest,
  DataKeyRequest,
  DataKeyResult,
  DecryptResult,
  EncryptionContext,
  EncryptRequest,
  EncryptResult,
  Grant,
  GrantRequest,
  ImportKeyMaterialRequest,
  ImportParameters,
  ImportParametersRequest,
  KeyInfo,
  KeyRef,
  MacResult,
  RotationPolicy,
  ScheduleDeletionRequest,
  SigningAlgorithm,
  SignRequest,
  SignResult,
  UnmodeledKey,
} from './types.js';

/** What every provider method receives from core. */
export interface ProviderCallOptions {
  readonly signal: AbortSignal;
}

export interface ListOptions extends ProviderCallOptions {
  /** Page size hint for providers that page. */
  readonly pageSize?: number;
}

/** One item's outcome in a batch: a failed item fails alone, the others keep their results. */
export type BatchResult<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: KeyportError };

export interface EncryptBatchItem {
  readonly plaintext: Uint8Array;
  readonly context?: EncryptionContext;
}

export interface DecryptBatchItem {
  readonly ciphertext: Uint8Array;
  readonly context?: EncryptionContext;
}

/**
 * The one required interface: everything a key-encryption key needs. Eight members; what else a
 * provider offers it declares by implementing the optional capability interfaces below, and core
 * answers UnsupportedError for the rest — a driver never contains a stub.
 */
export interface Driver {
  /** URI scheme this driver serves: 'aws-kms', 'gcp-kms', 'acme', ... */
  readonly scheme: string;
  /** Per-key-spec data (usages, context binding, rotation style...); see capabilities.ts. */
  readonly capabilities: Capabilities;
  /**
   * Validates a URI of this driver's scheme (never with an instance selector: core strips it);
   * `version` is the version it pins. Anything ambiguous is an InvalidArgument.
   */
  parseUri(uri: string): KeyRef;
  /** The canonical URI of `ref.uri`'s key pinned to `ref.version` (unpinned when undefined). */
  formatUri(ref: KeyRef): string;
  encrypt(
    ref: KeyRef,
    plaintext: Uint8Array,
    req: EncryptRequest,
    o: ProviderCallOptions,
  ): Promise<EncryptResult>;
  decrypt(
    ref: KeyRef,
    ciphertext: Uint8Array,
    req: EncryptRequest,
    o: ProviderCallOptions,
  ): Promise<DecryptResult>;
  /**
   * Turns a raw error thrown by this driver's SDK into a KeyportError (code, request id,
   * retryable), or undefined to let core classify it. Core calls it once per failure;
   * KeyportErrors thrown directly pass through.
   */
  mapError(error: unknown): KeyportError | undefined;
  /** Releases sessions, sockets and handles. */
  close(): Promise<void>;
}

/** Optional: a short, stable name for audit and errors (default: the scheme). */
export interface NamedDriver {
  readonly name: string;
}

/** Optional: whether a plain URI names a key of this instance (see registry.ts). */
export interface UriClaims {
  /**
   * Whether a plain URI of this scheme (no instance selector) names a key this instance serves,
   * when the URI says so itself (a Vault URI names its server). Lets URIs written before a second
   * instance was configured keep reaching the right one; without it the scheme's default applies.
   */
  claimsUri(uri: string): boolean;
}

/** Optional: creating, reading and listing keys. */
export interface KeyManagement {
  createKey(req: CreateKeyRequest, o: ProviderCallOptions): Promise<KeyInfo>;
  describeKey(ref: KeyRef, o: ProviderCallOptions): Promise<KeyInfo>;
  /** Every key; one keyport has no spec for is yielded as an UnmodeledKey, never left out. */
  listKeys(o: ListOptions): AsyncIterable<KeyInfo | UnmodeledKey>;
}

/** Optional: rotation on demand. */
export interface KeyRotation {
  rotateKey(ref: KeyRef, o: ProviderCallOptions): Promise<KeyInfo>;
}

/** Optional: automatic rotation. */
export interface RotationPolicies {
  setRotationPolicy(ref: KeyRef, policy: RotationPolicy, o: ProviderCallOptions): Promise<KeyInfo>;
}

/** Optional: disabling and re-enabling keys. */
export interface KeyStates {
  enableKey(ref: KeyRef, o: ProviderCallOptions): Promise<KeyInfo>;
  disableKey(ref: KeyRef, o: ProviderCallOptions): Promise<KeyInfo>;
}

/** Optional: deletion after a waiting period, and its cancellation. */
export interface ScheduledDeletion {
  scheduleKeyDeletion(ref: KeyRef, req: ScheduleDeletionRequest, o: ProviderCallOptions): Promise<KeyInfo>;
  cancelKeyDeletion(ref: KeyRef, o: ProviderCallOptions): Promise<KeyInfo>;
}

/** Optional: destroying one key version (`ref.version` is always set). */
export interface VersionDestruction {
  destroyKeyVersion(ref: KeyRef, o: ProviderCallOptions): Promise<KeyInfo>;
}

/** Optional: data keys made by the provider (without it core can emulate them, see client.ts). */
export interface DataKeys {
  generateDataKey(ref: KeyRef, req: DataKeyRequest, o: ProviderCallOptions): Promise<DataKeyResult>;
}

/** Optional: asymmetric signatures. */
export interface Signing {
  sign(ref: KeyRef, message: Uint8Array, req: SignRequest, o: ProviderCallOptions): Promise<SignResult>;
  verify(
    ref: KeyRef,
    message: Uint8Array,
    signature: Uint8Array,
    req: SignRequest & { algorithm: SigningAlgorithm },
    o: ProviderCallOptions,
  ): Promise<boolean>;
}

/** Optional: the public key of an asymmetric key version, SPKI DER. */
export interface PublicKeys {
  getPublicKey(ref: KeyRef, o: ProviderCallOptions): Promise<Uint8Array>;
}

/** Optional: MACs. */
export interface Macs {
  mac(ref: KeyRef, message: Uint8Array, o: ProviderCallOptions): Promise<MacResult>;
  verifyMac(ref: KeyRef, message: Uint8Array, mac: Uint8Array, o: ProviderCallOptions): Promise<boolean>;
}

/** Optional: grants. */
export interface Grants {
  createGrant(ref: KeyRef, req: GrantRequest, o: ProviderCallOptions): Promise<Grant>;
  listGrants(ref: KeyRef, o: ListOptions): AsyncIterable<Grant>;
  revokeGrant(ref: KeyRef, grantId: string, o: ProviderCallOptions): Promise<void>;
}

/** Optional: importing key material (BYOK). */
export interface KeyImport {
  getImportParameters(
    ref: KeyRef,
    req: ImportParametersRequest,
    o: ProviderCallOptions,
  ): Promise<ImportParameters>;
  importKeyMaterial(ref: KeyRef, req: ImportKeyMaterialRequest, o: ProviderCallOptions): Promise<KeyInfo>;
}

/**
 * Optional: many items under one key in one request, one result per item in order. Throws only
 * when the request as a whole fails (core retries that); an item's own failure is its result.
 * Without it core falls back to one `encrypt`/`decrypt` per item.
 */
export interface Batch {
  encryptBatch(
    ref: KeyRef,
    items: readonly EncryptBatchItem[],
    o: ProviderCallOptions,
  ): Promise<BatchResult<EncryptResult>[]>;
  decryptBatch(
    ref: KeyRef,
    items: readonly DecryptBatchItem[],
    o: ProviderCallOptions,
  ): Promise<BatchResult<DecryptResult>[]>;
}

/**
 * Optional: how a second request of an operation behaves on this driver, where core cannot know
 * (see repeat.ts). `once`: it would do the work again (a new version, a second grant), so core
 * does not repeat it after an ambiguous failure (a timeout, a dropped connection); `harmless`:
 * it changes nothing more, so core retries it. Keys are neutral operation names (`createKey`)
 * or this driver's own operation names as `driverCall` takes them (`frobnicate`); they override
 * core's table for this driver. An operation not named keeps core's rule, and a driver's own
 * operation core has no rule for is retried.
 */
export interface RepeatDeclarations {
  readonly repeats: Readonly<Record<string, 'harmless' | 'once'>>;
}

/** Every optional capability interface; a driver implements any of them, whole. */
export type DriverCapabilities = NamedDriver &
  RepeatDeclarations &
  UriClaims &
  KeyManagement &
  KeyRotation &
  RotationPolicies &
  KeyStates &
  ScheduledDeletion &
  VersionDestruction &
  DataKeys &
  Signing &
  PublicKeys &
  Macs &
  Grants &
  KeyImport &
  Batch;

/** What core holds: a driver plus whichever capability interfaces it implements. */
export type KmsProvider = Driver & Partial<DriverCapabilities>;

/** The optional methods, by name. */
export type OptionalMethod = {
  [K in keyof DriverCapabilities]: DriverCapabilities[K] extends (...args: never[]) => unknown ? K : never;
}[keyof DriverCapabilities];

/** Type guard: does the driver implement `method`? (Capabilities are found by presence.) */
export function implementsMethod<K extends OptionalMethod>(
  driver: KmsProvider,
  method: K,
): driver is KmsProvider & Pick<DriverCapabilities, K> {
  return typeof (driver as Partial<DriverCapabilities>)[method] === 'function';
}

/** The driver's audit/error name. */
export function driverName(driver: KmsProvider): string {
  return typeof driver.name === 'string' ? driver.name : driver.scheme;
}
