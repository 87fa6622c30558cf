/**
 * `Keyport`: the one entry point user code holds. It resolves each key URI to a configured
 * driver instance (registry.ts) and runs every call through one path (driver-call.ts): capability
 * check before any network call, retries, deadline and abort, error mapping, one audit event.
 * What a driver does not implement, core answers with UnsupportedError — or, for data keys,
 * emulates (emulated-data-keys.ts). Batches and listings have their own modules.
 */
import type { AuditSink } from './audit.js';
import { type BatchMethod, runBatch } from './batch.js';
import {
  type Capabilities,
  capabilityOfMethod,
  effectiveCapabilities,
  isDriverOperationName,
  type Operation,
} from './capabilities.js';
import type {
  ContextOptions,
  DecryptBatchInput,
  EncryptBatchInput,
  KeyOperations,
  ListKeysOptions,
} from './client-api.js';
import { type CallSpec, DriverCalls } from './driver-call.js';
import { DATA_KEY_BYTES, emulatedDataKey } from './emulated-data-keys.js';
import { describeType, type ErrorCode, KeyportError, UnsupportedError } from './errors.js';
import { type SweptGrant, sweepExpiredGrants as sweepGrants } from './grant-sweep.js';
import { isUnmodeledKey } from './key-rules.js';
import { runListing } from './list.js';
import { checkedPolicy, DEFAULT_RETRY_POLICY, type RetryPolicy } from './policy.js';
import {
  type BatchResult,
  type DecryptBatchItem,
  type DriverCapabilities,
  driverName,
  type EncryptBatchItem,
  implementsMethod,
  type KmsProvider,
  type OptionalMethod,
  type ProviderCallOptions,
} from './provider.js';
import { type DriverInstance, DriverRegistry, grammarOf, type ProviderInstances } from './registry.js';
import { booleanResult, bytesResult, dataKeyResult } from './result-shape.js';
import type {
  CallOptions,
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
  KeyLike,
  KeyRef,
  KeyState,
  MacResult,
  RotationPolicy,
  ScheduleDeletionRequest,
  SigningAlgorithm,
  SignRequest,
  SignResult,
  UnmodeledKey,
} from './types.js';
import { KEY_SPECS, USAGES_BY_SPEC } from './types.js';
import {
  checkAuditSink,
  checkBatchItems,
  checkBytes,
  checkCallOptions,
  checkCreateKeyRequest,
  checkDate,
  checkGrantRequest,
  checkImportKeyMaterialRequest,
  checkImportParametersRequest,
  checkInteger,
  checkKeyLike,
  checkKeyportOptions,
  checkProvider,
  checkRotationPolicy,
  checkScheduleDeletion,
  checkString,
  contextCallOptions,
  DATA_KEY_OPTIONS,
  invalidArgument,
  LIST_OPTIONS,
  recordCallOptions,
  SIGN_OPTIONS,
  signRequestFrom,
} from './validate.js';

export { AuditFailure } from './driver-call.js';

/** `sweepExpiredGrants`' own option beside the call options. */
const SWEEP_OPTIONS = { now: true } as const;

export interface KeyportOptions {
  /**
   * Driver instances under names of your choosing (`{ prod: awsKms(a), dr: awsKms(b) }`, URIs
   * `aws-kms+dr://…` address one), or a list, each instance named after its scheme.
   */
  readonly providers: ProviderInstances;
  /** scheme → instance name: which instance plain `<scheme>://` URIs address when several serve it. */
  readonly defaults?: Readonly<Record<string, string>>;
  readonly retry?: Partial<RetryPolicy>;
  readonly audit?: readonly AuditSink[];
  /**
   * Key for audit context digests (HMAC-SHA256). Default: the key a sink offers (the JSONL
   * sink derives one from its audit key), else a random key for this client's lifetime.
   * `'unkeyed'` opts out into bare SHA-256, which a dictionary of likely values can reverse.
   */
  readonly auditDigestKey?: Uint8Array | 'unkeyed';
  /**
   * What an operation does when a sink cannot record its event: `'fail'` (default) rejects it
   * with an `AuditFailure` error (after the provider call, which may have had effects);
   * `'warn'` returns the result and reports the failure to `onAuditError`.
   */
  readonly onAuditFailure?: 'fail' | 'warn';
  /** Jitter source, for tests. */
  readonly random?: () => number;
  /** Told of every sink failure (in both modes). Defaults to a console warning in `'warn'` mode. */
  readonly onAuditError?: (error: unknown) => void;
}

const keyVersionOf = (r: { keyVersion: string | undefined }): string | undefined => r.keyVersion;

/** What each operation's driver answer must look like (result-shape.ts), made once. */
const CHECK = {
  encrypt: bytesResult('encrypt', 'ciphertext'),
  decrypt: bytesResult('decrypt', 'plaintext'),
  sign: bytesResult('sign', 'signature'),
  mac: bytesResult('mac', 'mac'),
  verify: booleanResult('verify'),
  verifyMac: booleanResult('verifyMac'),
} as const;

export { BATCH_FALLBACK_CONCURRENCY } from './batch.js';

/** A key resolved to its driver instance: `ref` is what the driver sees, `uri` what the caller wrote. */
interface ResolvedKey {
  readonly ref: KeyRef;
  readonly uri: string;
  readonly instance: DriverInstance;
}

export class Keyport implements KeyOperations {
  private readonly registry: DriverRegistry;
  private readonly sinks: AuditSink[];
  private readonly calls: DriverCalls;
  /** Resolved URIs by string: hot paths call with the same few keys, and parsing is not free. */
  private readonly parsed = new Map<string, { ref: KeyRef; instance: DriverInstance }>();
  private closed = false;

  constructor(given: KeyportOptions) {
    const options = checkKeyportOptions(given);
    this.registry = new DriverRegistry(options.providers, options.defaults);
    this.sinks = [...(options.audit ?? [])];
    this.calls = new DriverCalls({
      policy: checkedPolicy({ ...DEFAULT_RETRY_POLICY, ...options.retry }),
      sinks: this.sinks,
      auditDigestKey: options.auditDigestKey,
      onAuditFailure: options.onAuditFailure,
      random: options.random,
      onAuditError: options.onAuditError,
    });
  }

  /**
   * Adds a driver instance under `name` (default: its scheme); a second instance under the same
   * name is refused, never silently shadowed.
   */
  register(provider: KmsProvider, name: string = provider?.scheme): void {
    checkProvider(provider);
    this.registry.add(name, provider);
    this.parsed.clear();
  }

  /** The configured instances, by name. */
  instances(): readonly DriverInstance[] {
    return this.registry.instances();
  }

  addAuditSink(sink: AuditSink): void {
    this.sinks.push(checkAuditSink(sink));
  }

  /** The driver an instance name, a scheme (its default instance) or a key URI addresses. */
  provider(nameSchemeOrUri: string): KmsProvider {
    checkString(nameSchemeOrUri, 'scheme', { min: 1, max: 4096 });
    return this.registry.resolve(nameSchemeOrUri).driver;
  }

  /** What the instance can do: its declared capabilities, less what its driver does not implement. */
  capabilities(nameSchemeOrUri: string): Capabilities {
    return effectiveCapabilities(this.provider(nameSchemeOrUri));
  }

  /**
   * Resolves a KeyLike: the instance it addresses, and a validated driver-level ref (the URI
   * parses by the driver's grammar, and a pinned version is not contradicted).
   */
  private ref(key: KeyLike): ResolvedKey {
    const given: KeyRef = checkKeyLike(key);
    const { ref: inUri, instance } = this.parse(given.uri);
    if (inUri.version !== undefined && given.version !== undefined && inUri.version !== given.version) {
      throw new KeyportError('InvalidArgument', 'the key URI and the ref name different versions', {
        keyUri: given.uri,
      });
    }
    const version = given.version ?? inUri.version;
    const ref: KeyRef = version === undefined ? { uri: inUri.uri } : { uri: inUri.uri, version };
    return { ref, uri: given.uri, instance };
  }

  private parse(uri: string): { ref: KeyRef; instance: DriverInstance } {
    let parsed = this.parsed.get(uri);
    if (parsed === undefined) {
      const { driverUri, ...instance } = this.registry.resolveUri(uri);
      const driver = instance.driver;
      const ref = grammarOf(driver, instance.name).parseUri(driverUri);
      parsed = { ref: { ...ref, uri: driverUri }, instance };
      if (this.parsed.size >= 1024) this.parsed.clear();
      this.parsed.set(uri, parsed);
    }
    return parsed;
  }

  /** A result as the caller sees it: URIs the driver wrote carry the instance selector. */
  private outward<T>(instance: DriverInstance, value: T): T {
    if (instance.name === instance.driver.scheme || value === null || typeof value !== 'object') return value;
    const v = value as { uri?: unknown; keyUri?: unknown };
    if (typeof v.uri === 'string') return { ...value, uri: this.registry.publicUri(instance, v.uri) };
    if (typeof v.keyUri === 'string')
      return { ...value, keyUri: this.registry.publicUri(instance, v.keyUri) };
    return value;
  }

  private call<T>(spec: CallSpec<T>): Promise<T> {
    if (this.closed)
      return Promise.reject(new KeyportError('InvalidArgument', 'this Keyport client is closed'));
    return this.calls.run(spec);
  }

  private keyCall<T>(
    op: Operation,
    key: KeyLike,
    options: CallOptions | undefined,
    run: (p: KmsProvider, ref: KeyRef, o: ProviderCallOptions) => Promise<T>,
    extra: {
      context?: EncryptionContext | undefined;
      versionOf?: (r: T) => string | undefined;
      check?: (r: unknown) => void;
      /** See CallSpec.confirmRepeat; given the driver and its ref. */
      confirmRepeat?: (
        p: KmsProvider,
        ref: KeyRef,
        error: KeyportError,
        o: ProviderCallOptions,
      ) => Promise<{ readonly value: T } | undefined>;
    } = {},
  ): Promise<T> {
    let resolved: ResolvedKey;
    try {
      resolved = this.ref(key);
    } catch (e) {
      return Promise.reject(e);
    }
    const { ref, uri, instance } = resolved;
    const provider = instance.driver;
    const confirm = extra.confirmRepeat;
    return this.call({
      op,
      provider,
      keyUri: uri,
      context: extra.context,
      options,
      // Most instances go by their scheme and outward changes nothing: no extra promise step.
      run:
        instance.name === provider.scheme
          ? (o) => run(provider, ref, o)
          : async (o) => this.outward(instance, await run(provider, ref, o)),
      ...(extra.versionOf ? { versionOf: extra.versionOf } : {}),
      check: extra.check,
      ...(confirm !== undefined
        ? {
            confirmRepeat: async (error: KeyportError, o: ProviderCallOptions) => {
              const done = await confirm(provider, ref, error, o);
              return done && { value: this.outward(instance, done.value) };
            },
          }
        : {}),
    });
  }

  /** `instance`: an instance name, or a scheme for its default instance. */
  async createKey(instance: string, req: CreateKeyRequest, o?: CallOptions): Promise<KeyInfo> {
    checkString(instance, 'scheme', { min: 1, max: 4096 });
    const target = this.registry.resolve(instance);
    const provider = target.driver;
    const checked = checkCreateKeyRequest(req, 'req', 'extensions');
    const { call } = checkCallOptions(o);
    return this.call({
      op: 'createKey',
      provider,
      keyUri: undefined,
      options: call,
      run: async (po) => {
        assertKeySpec(effectiveCapabilities(provider), checked, driverName(provider));
        return this.outward(target, await need(provider, 'createKey')(checked, po));
      },
      versionOf: (k) => k.primaryVersion,
    });
  }

  async describeKey(key: KeyLike, o?: CallOptions): Promise<KeyInfo> {
    return this.keyCall('describeKey', key, checkCallOptions(o).call, (p, ref, po) =>
      need(p, 'describeKey')(ref, po),
    );
  }

  /** Pages lazily; each page fetch runs under the call policy, the whole listing emits one audit event. */
  async *listKeys(instance: string, o?: ListKeysOptions): AsyncIterable<KeyInfo> {
    checkString(instance, 'scheme', { min: 1, max: 4096 });
    const target = this.registry.resolve(instance);
    const provider = target.driver;
    const { call, rest } = checkCallOptions(o, 'options', LIST_OPTIONS);
    const pageSize =
      rest.pageSize === undefined ? undefined : checkInteger(rest.pageSize, 'options.pageSize', 1, 10_000);
    const onUnmodeled = rest.onUnmodeledKey;
    if (onUnmodeled !== undefined && typeof onUnmodeled !== 'function')
      throw new KeyportError('InvalidArgument', 'options.onUnmodeledKey must be a function');
    for await (const key of runListing(this.calls, 'listKeys', provider, undefined, call, (po) =>
      need(provider, 'listKeys')(pageSize === undefined ? po : { ...po, pageSize }),
    )) {
      const entry = this.outward(target, key);
      if (!isUnmodeledKey(entry)) yield entry;
      else if (onUnmodeled !== undefined)
        (onUnmodeled as (k: UnmodeledKey) => void)({ uri: entry.uri, unmodeled: entry.unmodeled });
    }
  }

  async rotateKey(key: KeyLike, o?: CallOptions): Promise<KeyInfo> {
    return this.keyCall(
      'rotateKey',
      key,
      checkCallOptions(o).call,
      (p, ref, po) => need(p, 'rotateKey')(ref, po),
      {
        versionOf: (k) => k.primaryVersion,
      },
    );
  }

  async setRotationPolicy(key: KeyLike, policy: RotationPolicy, o?: CallOptions): Promise<KeyInfo> {
    const checked = checkRotationPolicy(policy);
    return this.keyCall('setRotationPolicy', key, checkCallOptions(o).call, (p, ref, po) =>
      need(p, 'setRotationPolicy')(ref, checked, po),
    );
  }

  async enableKey(key: KeyLike, o?: CallOptions): Promise<KeyInfo> {
    return this.keyCall('enableKey', key, checkCallOptions(o).call, (p, ref, po) =>
      need(p, 'enableKey')(ref, po),
    );
  }

  async disableKey(key: KeyLike, o?: CallOptions): Promise<KeyInfo> {
    return this.keyCall('disableKey', key, checkCallOptions(o).call, (p, ref, po) =>
      need(p, 'disableKey')(ref, po),
    );
  }

  async scheduleKeyDeletion(
    key: KeyLike,
    req: ScheduleDeletionRequest = {},
    o?: CallOptions,
  ): Promise<KeyInfo> {
    const checked = checkScheduleDeletion(req, 'req', 'extensions');
    return this.keyCall(
      'scheduleKeyDeletion',
      key,
      checkCallOptions(o).call,
      (p, ref, po) => need(p, 'scheduleKeyDeletion')(ref, checked, po),
      // A repeat refused because the deletion is scheduled: the lost first attempt's work.
      { confirmRepeat: keyNowIn((state) => state === 'pending_deletion', ['KeyStateConflict', 'NotFound']) },
    );
  }

  async cancelKeyDeletion(key: KeyLike, o?: CallOptions): Promise<KeyInfo> {
    return this.keyCall(
      'cancelKeyDeletion',
      key,
      checkCallOptions(o).call,
      (p, ref, po) => need(p, 'cancelKeyDeletion')(ref, po),
      // A repeat refused because nothing is pending deletion any more: the first attempt's work.
      {
        confirmRepeat: keyNowIn((state) => state === 'enabled' || state === 'disabled', ['KeyStateConflict']),
      },
    );
  }

  async destroyKeyVersion(key: KeyLike, o?: CallOptions): Promise<KeyInfo> {
    return this.keyCall('destroyKeyVersion', key, checkCallOptions(o).call, (p, ref, po) => {
      if (ref.version === undefined) {
        throw new KeyportError(
          'InvalidArgument',
          'destroyKeyVersion needs a key version (in the URI or the ref)',
        );
      }
      return need(p, 'destroyKeyVersion')(ref, po);
    });
  }

  encrypt(key: KeyLike, plaintext: Uint8Array, o?: ContextOptions): Promise<EncryptResult> {
    return this.bytesCall('encrypt', key, plaintext, 'plaintext', o, (p, ref, req, po) =>
      p.encrypt(ref, plaintext, req, po),
    );
  }

  decrypt(key: KeyLike, ciphertext: Uint8Array, o?: ContextOptions): Promise<DecryptResult> {
    return this.bytesCall('decrypt', key, ciphertext, 'ciphertext', o, (p, ref, req, po) =>
      p.decrypt(ref, ciphertext, req, po),
    );
  }

  /**
   * encrypt and decrypt, the per-record calls: the bytes and the context checked, then one key
   * call. Not an async function (one promise step less per call); a bad argument still arrives
   * as a rejected promise, never as a throw.
   */
  private bytesCall<T extends { keyVersion: string | undefined }>(
    op: 'encrypt' | 'decrypt',
    key: KeyLike,
    bytes: Uint8Array,
    name: string,
    o: ContextOptions | undefined,
    run: (p: KmsProvider, ref: KeyRef, req: EncryptRequest, po: ProviderCallOptions) => Promise<T>,
  ): Promise<T> {
    let call: CallOptions | undefined;
    let req: EncryptRequest;
    try {
      checkBytes(bytes, name);
      const checked = recordCallOptions(o);
      call = checked.call;
      req = checked.context === undefined ? {} : { context: checked.context };
    } catch (e) {
      return Promise.reject(e);
    }
    return this.keyCall(op, key, call, (p, ref, po) => run(p, ref, req, po), {
      context: req.context,
      versionOf: keyVersionOf,
      check: CHECK[op],
    });
  }

  async encryptBatch(
    key: KeyLike,
    items: readonly EncryptBatchInput[],
    o?: CallOptions,
  ): Promise<BatchResult<EncryptResult>[]> {
    return this.batchCall(
      'encrypt',
      key,
      checkBatchItems(items, 'plaintext') as unknown as EncryptBatchItem[],
      checkCallOptions(o).call,
      (p) => (implementsMethod(p, 'encryptBatch') ? p.encryptBatch.bind(p) : undefined),
      (k, item, io) => this.encrypt(k, item.plaintext, io),
    );
  }

  async decryptBatch(
    key: KeyLike,
    items: readonly DecryptBatchInput[],
    o?: CallOptions,
  ): Promise<BatchResult<DecryptResult>[]> {
    return this.batchCall(
      'decrypt',
      key,
      checkBatchItems(items, 'ciphertext') as unknown as DecryptBatchItem[],
      checkCallOptions(o).call,
      (p) => (implementsMethod(p, 'decryptBatch') ? p.decryptBatch.bind(p) : undefined),
      (k, item, io) => this.decrypt(k, item.ciphertext, io),
    );
  }

  /** A batch under one key: the driver's batch method when it has one (see batch.ts). */
  private async batchCall<
    I extends { readonly context?: EncryptionContext },
    R extends { readonly keyVersion: string | undefined },
  >(
    op: 'encrypt' | 'decrypt',
    key: KeyLike,
    items: readonly I[],
    o: CallOptions | undefined,
    batchOf: (p: KmsProvider) => BatchMethod<I, R> | undefined,
    single: (key: KeyLike, item: I, o: ContextOptions) => Promise<R>,
  ): Promise<BatchResult<R>[]> {
    if (this.closed) throw new KeyportError('InvalidArgument', 'this Keyport client is closed');
    const { ref, uri, instance } = this.ref(key);
    const provider = instance.driver;
    return runBatch(this.calls, op, { ref, uri, provider }, items, o, batchOf(provider), (item, io) =>
      single(key, item, io),
    );
  }

  async generateDataKey(
    key: KeyLike,
    o?: ContextOptions & Omit<DataKeyRequest, 'context'>,
  ): Promise<DataKeyResult> {
    const { call, context, rest } = contextCallOptions(o, DATA_KEY_OPTIONS);
    const bytes =
      rest.bytes === undefined
        ? undefined
        : checkInteger(rest.bytes, 'options.bytes', DATA_KEY_BYTES.min, DATA_KEY_BYTES.max);
    const req: DataKeyRequest = {
      ...(bytes !== undefined ? { bytes } : {}),
      ...(context !== undefined ? { context } : {}),
    };
    return this.keyCall(
      'generateDataKey',
      key,
      call,
      (p, ref, po) =>
        !implementsMethod(p, 'generateDataKey') && p.capabilities.dataKeys === 'emulated'
          ? emulatedDataKey(p, ref, req, po)
          : need(p, 'generateDataKey')(ref, req, po),
      { context, versionOf: keyVersionOf, check: dataKeyResult(bytes ?? DATA_KEY_BYTES.default) },
    );
  }

  async sign(key: KeyLike, message: Uint8Array, o?: CallOptions & SignRequest): Promise<SignResult> {
    checkBytes(message, 'message');
    const { call, rest } = checkCallOptions(o, 'options', SIGN_OPTIONS);
    const req = signRequestFrom(rest);
    return this.keyCall(
      'sign',
      key,
      call,
      (p, ref, po) => {
        assertSigningAlgorithm(p, req.algorithm);
        return need(p, 'sign')(ref, message, req, po);
      },
      { versionOf: keyVersionOf, check: CHECK.sign },
    );
  }

  async verify(
    key: KeyLike,
    message: Uint8Array,
    signature: Uint8Array,
    o: CallOptions & SignRequest & { algorithm: SigningAlgorithm },
  ): Promise<boolean> {
    checkBytes(message, 'message');
    checkBytes(signature, 'signature');
    const { call, rest } = checkCallOptions(o, 'options', SIGN_OPTIONS);
    const sr = signRequestFrom(rest);
    if (sr.algorithm === undefined)
      throw new KeyportError('InvalidArgument', 'options.algorithm: verify needs the signing algorithm');
    const req = { ...sr, algorithm: sr.algorithm };
    return this.keyCall(
      'verify',
      key,
      call,
      (p, ref, po) => {
        assertSigningAlgorithm(p, req.algorithm);
        return need(p, 'verify')(ref, message, signature, req, po);
      },
      { check: CHECK.verify },
    );
  }

  async mac(key: KeyLike, message: Uint8Array, o?: CallOptions): Promise<MacResult> {
    checkBytes(message, 'message');
    return this.keyCall(
      'mac',
      key,
      checkCallOptions(o).call,
      (p, ref, po) => need(p, 'mac')(ref, message, po),
      { versionOf: keyVersionOf, check: CHECK.mac },
    );
  }

  async verifyMac(key: KeyLike, message: Uint8Array, mac: Uint8Array, o?: CallOptions): Promise<boolean> {
    checkBytes(message, 'message');
    checkBytes(mac, 'mac');
    return this.keyCall(
      'verifyMac',
      key,
      checkCallOptions(o).call,
      (p, ref, po) => need(p, 'verifyMac')(ref, message, mac, po),
      { check: CHECK.verifyMac },
    );
  }

  async getPublicKey(key: KeyLike, o?: CallOptions): Promise<Uint8Array> {
    return this.keyCall('getPublicKey', key, checkCallOptions(o).call, (p, ref, po) =>
      need(p, 'getPublicKey')(ref, po),
    );
  }

  async createGrant(key: KeyLike, req: GrantRequest, o?: CallOptions): Promise<Grant> {
    const checked = checkGrantRequest(req, 'req', 'extensions');
    return this.keyCall('createGrant', key, checkCallOptions(o).call, (p, ref, po) => {
      if (ref.version !== undefined) {
        // No provider grants one version: the grant would cover every version, old and future,
        // which is more than a caller naming a version asked for.
        throw new KeyportError(
          'InvalidArgument',
          'a grant covers every version of a key: name the key without a version',
          { provider: driverName(p), keyUri: ref.uri },
        );
      }
      const constrained = checked.constraints !== undefined && Object.keys(checked.constraints).length > 0;
      if (constrained && !effectiveCapabilities(p).grantConstraints) {
        // Refused, never granted without its constraint: that grant would allow more than asked.
        throw new UnsupportedError('grantConstraints', `${driverName(p)} grants take no constraints`, {
          provider: driverName(p),
        });
      }
      return need(p, 'createGrant')(ref, checked, po);
    });
  }

  async *listGrants(key: KeyLike, o?: CallOptions): AsyncIterable<Grant> {
    const { call } = checkCallOptions(o);
    const { ref, uri, instance } = this.ref(key);
    const provider = instance.driver;
    for await (const grant of runListing(this.calls, 'listGrants', provider, uri, call, (po) =>
      need(provider, 'listGrants')(ref, po),
    )) {
      yield this.outward(instance, grant);
    }
  }

  async revokeGrant(key: KeyLike, grantId: string, o?: CallOptions): Promise<void> {
    checkString(grantId, 'grantId', { min: 1, max: 1024 });
    return this.keyCall(
      'revokeGrant',
      key,
      checkCallOptions(o).call,
      (p, ref, po) => need(p, 'revokeGrant')(ref, grantId, po),
      // A repeat that finds no such grant: the lost first attempt revoked it.
      {
        confirmRepeat: async (_p, _ref, error) =>
          error.code === 'NotFound' ? { value: undefined } : undefined,
      },
    );
  }

  async getImportParameters(
    key: KeyLike,
    req: ImportParametersRequest = {},
    o?: CallOptions,
  ): Promise<ImportParameters> {
    const checked = checkImportParametersRequest(req, 'req', 'extensions');
    return this.keyCall('getImportParameters', key, checkCallOptions(o).call, (p, ref, po) => {
      const offered = effectiveCapabilities(p).import;
      if (checked.algorithm !== undefined && !offered.includes(checked.algorithm)) {
        throw new UnsupportedError(
          'import',
          `${driverName(p)} does not wrap imports with ${checked.algorithm}`,
        );
      }
      return need(p, 'getImportParameters')(ref, checked, po);
    });
  }

  async importKeyMaterial(key: KeyLike, req: ImportKeyMaterialRequest, o?: CallOptions): Promise<KeyInfo> {
    const checked = checkImportKeyMaterialRequest(req, 'req', 'extensions');
    return this.keyCall(
      'importKeyMaterial',
      key,
      checkCallOptions(o).call,
      (p, ref, po) => need(p, 'importKeyMaterial')(ref, checked, po),
      { versionOf: (k) => k.primaryVersion },
    );
  }

  /**
   * Runs an operation only one driver offers (AWS ReEncrypt, Vault key deletion...) on the same
   * path as the neutral ones: the key resolved to its instance, deadline, retries on retryable
   * codes, abort, the driver's error mapping, and one audit event named `<scheme>:<name>`.
   * `run` receives the driver (narrow it with the adapter's guard) and the driver-level ref.
   */
  driverCall<T>(
    key: KeyLike,
    name: string,
    run: (driver: KmsProvider, ref: KeyRef, o: ProviderCallOptions) => Promise<T>,
    o?: ContextOptions,
  ): Promise<T> {
    let resolved: ResolvedKey;
    let op: Operation;
    let checked: ReturnType<typeof contextCallOptions>;
    try {
      checked = contextCallOptions(o);
      resolved = this.ref(key);
      op = driverOperation(resolved.instance.driver, name);
    } catch (e) {
      return Promise.reject(e);
    }
    const { ref, uri, instance } = resolved;
    return this.call({
      op,
      provider: instance.driver,
      keyUri: uri,
      context: checked.context,
      options: checked.call,
      run: async (po) => this.outward(instance, await run(instance.driver, ref, po)),
    });
  }

  /**
   * `driverCall` for operations that name no single key (a grant sweep over many keys, retiring
   * a grant by token, a ReEncrypt between two keys): `instance` is an instance name, a scheme or
   * a key URI of the instance; `refOf` turns a caller's key
   * into the driver-level ref, refusing keys of another instance.
   */
  instanceCall<T>(
    instance: string,
    name: string,
    run: (driver: KmsProvider, o: ProviderCallOptions, refOf: (key: KeyLike) => KeyRef) => Promise<T>,
    o?: CallOptions,
  ): Promise<T> {
    let target: DriverInstance;
    let op: Operation;
    let call: CallOptions;
    try {
      checkString(instance, 'instance', { min: 1, max: 4096 });
      target = this.registry.resolve(instance);
      op = driverOperation(target.driver, name);
      // Checked and copied like every call's options: an unknown option is refused, and a getter
      // cannot hand the policy one signal and the audit wait another.
      call = checkCallOptions(o).call;
    } catch (e) {
      return Promise.reject(e);
    }
    const refOf = (key: KeyLike): KeyRef => {
      const r = this.ref(key);
      if (r.instance.name !== target.name) {
        throw new KeyportError('InvalidArgument', `key is not served by instance "${target.name}"`, {
          keyUri: r.uri,
        });
      }
      return r.ref;
    };
    return this.call({
      op,
      provider: target.driver,
      keyUri: instance.includes(':') ? instance : undefined,
      options: call,
      run: (po) => run(target.driver, po, refOf),
    });
  }

  /**
   * Revokes the grants on `keys` whose expiry has passed, for drivers that declare
   * `grantExpiry: 'swept'` (their provider never expires grants itself). Every listing and
   * revocation runs under the call policy and is audited. `now` is for tests and clock skew.
   */
  async sweepExpiredGrants(
    keys: readonly KeyLike[],
    o?: CallOptions & { now?: Date },
  ): Promise<SweptGrant[]> {
    // Checked like every other public call: a `now` of NaN or a string used to decide which
    // grants had expired, and an unchecked signal reached the driver as it was.
    if (!Array.isArray(keys))
      throw invalidArgument('keys', `expected an array of keys, got ${describeType(keys)}`);
    const { call, rest } = checkCallOptions(o, 'options', SWEEP_OPTIONS);
    const now = rest.now === undefined ? new Date() : checkDate(rest.now, 'options.now');
    for (const key of keys) {
      const { instance, uri } = this.ref(key);
      const expiry = effectiveCapabilities(instance.driver).grantExpiry;
      if (expiry !== 'swept') {
        throw new UnsupportedError(
          'grantExpiry',
          `${driverName(instance.driver)} grants expire ${expiry === 'native' ? 'on their own' : 'never'}; nothing to sweep`,
          {
            provider: driverName(instance.driver),
            keyUri: uri,
          },
        );
      }
    }
    return sweepGrants(this, keys, now, call.signal);
  }

  /** Closes every provider and audit sink. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.registry.closeAll();
    await Promise.all(this.sinks.map((s) => s.close?.()));
  }
}

/** `createKeyport({ providers: { prod: awsKms(a), dr: awsKms(b) } })`: the same as `new Keyport(…)`. */
export function createKeyport(options: KeyportOptions): Keyport {
  return new Keyport(options);
}

/**
 * A confirmRepeat for a lifecycle call: when the repeat failed with one of `codes`, the key is
 * described, and a state `done` accepts is the call's answer (what the lost first attempt did).
 */
function keyNowIn(
  done: (state: KeyState) => boolean,
  codes: readonly ErrorCode[],
): (
  p: KmsProvider,
  ref: KeyRef,
  error: KeyportError,
  o: ProviderCallOptions,
) => Promise<{ value: KeyInfo } | undefined> {
  return async (p, ref, error, o) => {
    if (!codes.includes(error.code) || p.describeKey === undefined) return undefined;
    const info = await p.describeKey(ref, o);
    return done(info.state) ? { value: info } : undefined;
  };
}

/** The driver's method, bound; UnsupportedError naming the capability when it does not implement it. */
function need<K extends OptionalMethod>(p: KmsProvider, method: K): DriverCapabilities[K] {
  if (!implementsMethod(p, method)) {
    const capability = capabilityOfMethod(method);
    throw new UnsupportedError(
      capability,
      `${driverName(p)} does not support ${capability} (needed by ${method})`,
      {
        provider: driverName(p),
      },
    );
  }
  return (p[method] as (...args: unknown[]) => unknown).bind(p) as DriverCapabilities[K];
}

function driverOperation(driver: KmsProvider, name: string): Operation {
  // A string, not an object whose toString could answer the test and the audit differently.
  if (!isDriverOperationName(name)) {
    throw new KeyportError('InvalidArgument', 'a driver operation name is letters and digits');
  }
  return `${driver.scheme}:${name}`;
}

/**
 * The neutral key-spec rule, before any call: an unknown spec or a usage the spec cannot have is
 * InvalidArgument; a spec or usage the driver does not declare is UnsupportedError.
 */
function assertKeySpec(caps: Capabilities, req: CreateKeyRequest, provider: string): void {
  if (req === null || typeof req !== 'object' || !(KEY_SPECS as readonly unknown[]).includes(req.spec)) {
    throw new KeyportError('InvalidArgument', `unknown key spec (known: ${KEY_SPECS.join(', ')})`);
  }
  if (req.usage !== undefined && !USAGES_BY_SPEC[req.spec].includes(req.usage)) {
    throw new KeyportError('InvalidArgument', `${req.spec} keys cannot be used for ${String(req.usage)}`);
  }
  const offered = caps.keySpecs[req.spec];
  if (offered === undefined || (req.usage !== undefined && !offered.includes(req.usage))) {
    const what = req.usage === undefined ? req.spec : `${req.spec} for ${req.usage}`;
    throw new UnsupportedError('keySpecs', `${provider} does not offer ${what} keys`, { provider });
  }
}

/** A signing algorithm the driver does not declare is UnsupportedError, before any call. */
function assertSigningAlgorithm(p: KmsProvider, algorithm: SigningAlgorithm | undefined): void {
  if (algorithm !== undefined && !p.capabilities.signingAlgorithms.includes(algorithm)) {
    throw new UnsupportedError(
      'signingAlgorithms',
      `${driverName(p)} does not sign with ${String(algorithm)}`,
    );
  }
}
