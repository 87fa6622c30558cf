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

export interface KmsProvider {
  /** URI scheme this provider serves: 'aws-kms', 'gcp-kms', 'local', ... */
  readonly scheme: string;
  /** A short, stable provider name for audit and errors (often the scheme). */
  readonly name: string;
  readonly capabilities: Capabilities;

  /**
   * Validates a URI of this driver's scheme (never with an instance selector: core strips it);
   * `version` is the version it pins. Without it core uses its built-in grammar for the scheme.
   */
  parseUri?(uri: string): KeyRef;
  /** The canonical URI of `ref.uri`'s key pinned to `ref.version` (unpinned when undefined). */
  formatUri?(ref: KeyRef): string;
  /**
   * Whether a plain URI of this scheme (no instance selector) names a key this instance serves,
   * when the URI says so itself (a Vault URI names its server). Lets URIs written before a second
   * instance was configured keep reaching the right one; without it the scheme's default applies.
   */
  claimsUri?(uri: string): boolean;

  createKey(req: CreateKeyRequest, o: ProviderCallOptions): Promise<KeyInfo>;
  describeKey(ref: KeyRef, o: ProviderCallOptions): Promise<KeyInfo>;
  listKeys(o: ListOptions): AsyncIterable<KeyInfo>;
  rotateKey(ref: KeyRef, o: ProviderCallOptions): Promise<KeyInfo>;
  setRotationPolicy(ref: KeyRef, policy: RotationPolicy, o: ProviderCallOptions): Promise<KeyInfo>;
  enableKey(ref: KeyRef, o: ProviderCallOptions): Promise<KeyInfo>;
  disableKey(ref: KeyRef, o: ProviderCallOptions): Promise<KeyInfo>;
  scheduleKeyDeletion(ref: KeyRef, req: ScheduleDeletionRequest, o: ProviderCallOptions): Promise<KeyInfo>;
  cancelKeyDeletion(ref: KeyRef, o: ProviderCallOptions): Promise<KeyInfo>;
  /** `ref.version` is required. */
  destroyKeyVersion(ref: KeyRef, o: ProviderCallOptions): Promise<KeyInfo>;

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
   * Many encryptions under one key in one request (optional): one result per item, in order.
   * Throws only when the request as a whole fails (core retries that); an item's own failure is
   * its result. Without it core falls back to one `encrypt` per item.
   */
  encryptBatch?(
    ref: KeyRef,
    items: readonly EncryptBatchItem[],
    o: ProviderCallOptions,
  ): Promise<BatchResult<EncryptResult>[]>;
  /** Many decryptions in one request (optional), as `encryptBatch`. */
  decryptBatch?(
    ref: KeyRef,
    items: readonly DecryptBatchItem[],
    o: ProviderCallOptions,
  ): Promise<BatchResult<DecryptResult>[]>;
  generateDataKey(ref: KeyRef, req: DataKeyRequest, o: ProviderCallOptions): Promise<DataKeyResult>;
  sign(ref: KeyRef, message: Uint8Array, req: SignRequest, o: ProviderCallOptions): Promise<SignResult>;
  verify(
    ref: KeyRef,
    message: Uint8Array,
    signature: Uint8Array,
    req: SignRequest & { algorithm: SigningAlgorithm },
    o: ProviderCallOptions,
  ): Promise<boolean>;
  mac(ref: KeyRef, message: Uint8Array, o: ProviderCallOptions): Promise<MacResult>;
  verifyMac(ref: KeyRef, message: Uint8Array, mac: Uint8Array, o: ProviderCallOptions): Promise<boolean>;

  createGrant(ref: KeyRef, req: GrantRequest, o: ProviderCallOptions): Promise<Grant>;
  listGrants(ref: KeyRef, o: ListOptions): AsyncIterable<Grant>;
  revokeGrant(ref: KeyRef, grantId: string, o: ProviderCallOptions): Promise<void>;

  /** The public key of an asymmetric key version, SPKI DER; optional (Unsupported when absent). */
  getPublicKey?(ref: KeyRef, o: ProviderCallOptions): Promise<Uint8Array>;

  getImportParameters(
    ref: KeyRef,
    req: ImportParametersRequest,
    o: ProviderCallOptions,
  ): Promise<ImportParameters>;
  importKeyMaterial(ref: KeyRef, req: ImportKeyMaterialRequest, o: ProviderCallOptions): Promise<KeyInfo>;

  /**
   * Turns a raw error thrown by this provider's SDK into a KeyportError (code, request id,
   * retryable). Core calls it once per failure; KeyportErrors thrown directly pass through.
   */
  mapError?(error: unknown): KeyportError | undefined;
  /** Releases sessions, sockets and handles. */
  close?(): Promise<void>;
}
