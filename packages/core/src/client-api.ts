/**
 * The portable API user code calls: every operation names its key by URI (or KeyRef), the
 * provider is chosen by the URI's scheme. `Keyport` (client.ts) implements it by routing to a
 * registered provider through the call policy (retries, deadline, abort, capability check, audit).
 */
import type { Capabilities } from './capabilities.js';
import type { BatchResult, DecryptBatchItem, EncryptBatchItem } from './provider.js';
import type {
  CallOptions,
  CreateKeyRequest,
  DataKeyRequest,
  DataKeyResult,
  DecryptResult,
  EncryptResult,
  Grant,
  GrantRequest,
  ImportKeyMaterialRequest,
  ImportParameters,
  ImportParametersRequest,
  KeyInfo,
  KeyLike,
  MacResult,
  RotationPolicy,
  ScheduleDeletionRequest,
  SigningAlgorithm,
  SignRequest,
  SignResult,
  UnmodeledKey,
} from './types.js';
import type { ContextInput } from './validate.js';

export interface ContextOptions extends CallOptions {
  /** A plain object or a Map of strings; `__proto__` and friends are ordinary keys. */
  readonly context?: ContextInput;
}

/** `listKeys`' options. */
export interface ListKeysOptions extends CallOptions {
  /** Page size hint for providers that page. */
  readonly pageSize?: number;
  /** Hears of each key keyport has no spec for (not yielded); a throw ends the listing. */
  readonly onUnmodeledKey?: (key: UnmodeledKey) => void;
}

/** An item of `encryptBatch`: the context may be a plain object or a Map of strings. */
export interface EncryptBatchInput extends Omit<EncryptBatchItem, 'context'> {
  readonly context?: ContextInput;
}

/** An item of `decryptBatch`, as `EncryptBatchInput`. */
export interface DecryptBatchInput extends Omit<DecryptBatchItem, 'context'> {
  readonly context?: ContextInput;
}

export interface KeyOperations {
  /** Capabilities of the provider serving `scheme` (or the URI's scheme). */
  capabilities(schemeOrUri: string): Capabilities;

  /** `scheme` picks the provider: 'local', 'aws-kms', ... */
  createKey(scheme: string, req: CreateKeyRequest, o?: CallOptions): Promise<KeyInfo>;
  describeKey(key: KeyLike, o?: CallOptions): Promise<KeyInfo>;
  /**
   * The keys keyport can describe. A key it has no spec for is not yielded: `onUnmodeledKey`
   * (called before the listing goes on) hears of each, so an inventory can report it.
   */
  listKeys(scheme: string, o?: ListKeysOptions): AsyncIterable<KeyInfo>;
  rotateKey(key: KeyLike, o?: CallOptions): Promise<KeyInfo>;
  setRotationPolicy(key: KeyLike, policy: RotationPolicy, o?: CallOptions): Promise<KeyInfo>;
  enableKey(key: KeyLike, o?: CallOptions): Promise<KeyInfo>;
  disableKey(key: KeyLike, o?: CallOptions): Promise<KeyInfo>;
  scheduleKeyDeletion(key: KeyLike, req?: ScheduleDeletionRequest, o?: CallOptions): Promise<KeyInfo>;
  cancelKeyDeletion(key: KeyLike, o?: CallOptions): Promise<KeyInfo>;
  destroyKeyVersion(key: KeyLike, o?: CallOptions): Promise<KeyInfo>;

  encrypt(key: KeyLike, plaintext: Uint8Array, o?: ContextOptions): Promise<EncryptResult>;
  decrypt(key: KeyLike, ciphertext: Uint8Array, o?: ContextOptions): Promise<DecryptResult>;
  /**
   * Encrypts many items under one key: one provider request where the provider batches (else one
   * call per item, at most 16 at a time), one result and one audit event per item. Rejects only
   * when the request as a whole fails (after its retries) or is aborted.
   */
  encryptBatch(
    key: KeyLike,
    items: readonly EncryptBatchInput[],
    o?: CallOptions,
  ): Promise<BatchResult<EncryptResult>[]>;
  /** Decrypts many items under one key, as `encryptBatch`. */
  decryptBatch(
    key: KeyLike,
    items: readonly DecryptBatchInput[],
    o?: CallOptions,
  ): Promise<BatchResult<DecryptResult>[]>;
  generateDataKey(key: KeyLike, o?: ContextOptions & Omit<DataKeyRequest, 'context'>): Promise<DataKeyResult>;
  sign(key: KeyLike, message: Uint8Array, o?: CallOptions & SignRequest): Promise<SignResult>;
  verify(
    key: KeyLike,
    message: Uint8Array,
    signature: Uint8Array,
    o: CallOptions & SignRequest & { algorithm: SigningAlgorithm },
  ): Promise<boolean>;
  mac(key: KeyLike, message: Uint8Array, o?: CallOptions): Promise<MacResult>;
  verifyMac(key: KeyLike, message: Uint8Array, mac: Uint8Array, o?: CallOptions): Promise<boolean>;

  /** SPKI DER public key of an asymmetric key (the pinned or primary version). */
  getPublicKey(key: KeyLike, o?: CallOptions): Promise<Uint8Array>;

  createGrant(key: KeyLike, req: GrantRequest, o?: CallOptions): Promise<Grant>;
  listGrants(key: KeyLike, o?: CallOptions): AsyncIterable<Grant>;
  revokeGrant(key: KeyLike, grantId: string, o?: CallOptions): Promise<void>;

  getImportParameters(
    key: KeyLike,
    req?: ImportParametersRequest,
    o?: CallOptions,
  ): Promise<ImportParameters>;
  importKeyMaterial(key: KeyLike, req: ImportKeyMaterialRequest, o?: CallOptions): Promise<KeyInfo>;
}
