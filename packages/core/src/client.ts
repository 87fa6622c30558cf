/**
 * `Keyport`: the one entry point user code holds. It routes each call by the key URI's scheme
 * to a registered provider and runs it under one policy: capability check before any network
 * call, retries with backoff and jitter on retryable codes, deadline and abort, error mapping
 * (the adapter's mapError, once), and exactly one audit event per operation.
 */
import { randomBytes } from 'node:crypto';
import type { AuditEvent, AuditSink } from './audit.js';
import { assertCapability, type Capabilities, type Operation } from './capabilities.js';
import type { ContextOptions, DecryptBatchInput, EncryptBatchInput, KeyOperations } from './client-api.js';
import { contextDigest, contextKeys } from './context.js';
import { KeyportError, quote, toKeyportError, UnsupportedError } from './errors.js';
import { DEFAULT_RETRY_POLICY, type RetryPolicy, runWithPolicy } from './policy.js';
import type {
  BatchResult,
  DecryptBatchItem,
  EncryptBatchItem,
  KmsProvider,
  ProviderCallOptions,
} from './provider.js';
import { recordProviderCall } from './telemetry.js';
import type {
  CallOptions,
  CreateKeyRequest,
  DataKeyRequest,
  DataKeyResult,
  DecryptResult,
  EncryptionContext,
  EncryptResult,
  Grant,
  GrantRequest,
  ImportKeyMaterialRequest,
  ImportParameters,
  ImportParametersRequest,
  KeyInfo,
  KeyLike,
  KeyRef,
  MacResult,
  RotationPolicy,
  ScheduleDeletionRequest,
  SigningAlgorithm,
  SignRequest,
  SignResult,
} from './types.js';
import { keyUriScheme, keyUriVersion, type ParsedKeyUri, parseKeyUri } from './uri.js';
import {
  checkAuditSink,
  checkBatchItems,
  checkBytes,
  checkCallOptions,
  checkCreateKeyRequest,
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
  SIGN_OPTIONS,
  signRequestFrom,
} from './validate.js';

export interface KeyportOptions {
  readonly providers: readonly KmsProvider[];
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

/**
 * An operation whose audit event could not be recorded (fail-closed audit). `code` is
 * `Unavailable` when the sink could not write, `Integrity` when it refused a tampered log;
 * `operationError` is the operation's own error when it had failed too.
 */
export class AuditFailure extends KeyportError {
  override readonly name: string = 'AuditFailure';
  operationError: KeyportError | undefined;
}

interface CallSpec<T> {
  readonly op: Operation;
  readonly provider: KmsProvider;
  readonly keyUri: string | undefined;
  readonly context?: EncryptionContext | undefined;
  readonly options: CallOptions | undefined;
  readonly run: (o: ProviderCallOptions) => Promise<T>;
  /** The key version the result names, for audit. */
  readonly versionOf?: (result: T) => string | undefined;
}

const keyVersionOf = (r: { keyVersion: string | undefined }): string | undefined => r.keyVersion;

/** Items in flight at once when a provider has no batch method and core calls it per item. */
export const BATCH_FALLBACK_CONCURRENCY = 16;

type BatchMethod<I, R> = (
  ref: KeyRef,
  items: readonly I[],
  o: ProviderCallOptions,
) => Promise<BatchResult<R>[]>;

export class Keyport implements KeyOperations {
  private readonly providers = new Map<string, KmsProvider>();
  private readonly policy: RetryPolicy;
  private readonly sinks: AuditSink[];
  /** Parsed URIs by string: hot paths call with the same few keys, and parsing is not free. */
  private readonly parsed = new Map<string, ParsedKeyUri>();
  private closed = false;
  private ownDigestKey: Uint8Array | undefined;

  private readonly options: KeyportOptions;

  constructor(options: KeyportOptions) {
    this.options = checkKeyportOptions(options);
    for (const p of this.options.providers) this.register(p);
    this.policy = { ...DEFAULT_RETRY_POLICY, ...this.options.retry };
    this.sinks = [...(this.options.audit ?? [])];
  }

  /** Adds a provider; a second provider for the same scheme is refused, never silently shadowed. */
  register(provider: KmsProvider): void {
    checkProvider(provider);
    if (this.providers.has(provider.scheme)) {
      throw new KeyportError(
        'AlreadyExists',
        `a provider for scheme ${quote(provider.scheme)} is already registered`,
      );
    }
    this.providers.set(provider.scheme, provider);
  }

  addAuditSink(sink: AuditSink): void {
    this.sinks.push(checkAuditSink(sink));
  }

  /** The provider serving a scheme or a URI's scheme. */
  provider(schemeOrUri: string): KmsProvider {
    checkString(schemeOrUri, 'scheme', { min: 1, max: 4096 });
    const scheme = schemeOrUri.includes(':') ? keyUriScheme(schemeOrUri) : schemeOrUri;
    const p = this.providers.get(scheme);
    if (p === undefined) {
      const known = [...this.providers.keys()].join(', ') || 'none';
      throw new KeyportError(
        'InvalidArgument',
        `no provider registered for scheme ${quote(scheme)} (registered: ${known})`,
      );
    }
    return p;
  }

  capabilities(schemeOrUri: string): Capabilities {
    return this.provider(schemeOrUri).capabilities;
  }

  /** Resolves a KeyLike into a validated ref: the URI parses, and a pinned version is not contradicted. */
  private ref(key: KeyLike): { ref: KeyRef; provider: KmsProvider } {
    const given: KeyRef = checkKeyLike(key);
    const parsed = this.parse(given.uri);
    const inUri = keyUriVersion(parsed);
    if (inUri !== undefined && given.version !== undefined && inUri !== given.version) {
      throw new KeyportError('InvalidArgument', 'the key URI and the ref name different versions', {
        keyUri: given.uri,
      });
    }
    const version = given.version ?? inUri;
    const ref: KeyRef = version === undefined ? { uri: given.uri } : { uri: given.uri, version };
    return { ref, provider: this.provider(parsed.scheme) };
  }

  private parse(uri: string): ParsedKeyUri {
    let parsed = this.parsed.get(uri);
    if (parsed === undefined) {
      parsed = parseKeyUri(uri);
      if (this.parsed.size >= 1024) this.parsed.clear();
      this.parsed.set(uri, parsed);
    }
    return parsed;
  }

  private async call<T>(spec: CallSpec<T>): Promise<T> {
    if (this.closed) throw new KeyportError('InvalidArgument', 'this Keyport client is closed');
    const started = performance.now();
    const { provider, op, keyUri } = spec;
    let attempts = 0;
    try {
      assertCapability(provider.capabilities, op, provider.name, keyUri);
      const outcome = await runWithPolicy(
        (signal) => {
          attempts++;
          return spec.run({ signal });
        },
        this.policy,
        { signal: spec.options?.signal, timeoutMs: spec.options?.timeoutMs },
        {
          ...(this.options.random ? { random: this.options.random } : {}),
          mapError: (e) => this.mapError(provider, e, keyUri),
        },
      );
      const recorded = this.emit(
        spec,
        started,
        outcome.attempts,
        'success',
        spec.versionOf?.(outcome.value),
        undefined,
      );
      if (recorded !== undefined) await recorded;
      return outcome.value;
    } catch (e) {
      if (e instanceof AuditFailure) throw e;
      const error = this.mapError(provider, e, keyUri);
      const recorded = this.emit(spec, started, attempts, 'failure', undefined, error);
      if (recorded !== undefined) await recorded;
      throw error;
    }
  }

  private mapError(provider: KmsProvider, e: unknown, keyUri: string | undefined): KeyportError {
    const details = { provider: provider.name, ...(keyUri !== undefined ? { keyUri } : {}) };
    if (e instanceof KeyportError) return e.withDetails(details);
    const mapped = provider.mapError?.(e);
    return (mapped ?? toKeyportError(e)).withDetails(details);
  }

  private emit<T>(
    spec: CallSpec<T>,
    started: number,
    attempts: number,
    outcome: 'success' | 'failure',
    keyVersion: string | undefined,
    error: KeyportError | undefined,
  ): Promise<void> | undefined {
    recordProviderCall(spec, { keyVersion, outcome, errorCode: error?.code, attempts, started });
    if (this.sinks.length === 0) return undefined;
    let digest: string | undefined;
    try {
      digest = spec.context === undefined ? undefined : contextDigest(spec.context, this.digestKey());
    } catch {
      digest = undefined; // an invalid context is reported by the operation itself
    }
    const event: AuditEvent = {
      ts: new Date().toISOString(),
      op: spec.op,
      provider: spec.provider.name,
      keyUri: spec.keyUri,
      keyVersion,
      outcome,
      errorCode: error?.code,
      durationMs: Math.round((performance.now() - started) * 1000) / 1000,
      attempts,
      requestId: error?.requestId,
      contextKeys: spec.context === undefined ? [] : contextKeys(spec.context),
      contextDigest: digest,
    };
    return this.record(event, error);
  }

  /** The digest key: explicit, else a sink's, else one random key for this client. */
  private digestKey(): Uint8Array | undefined {
    const option = this.options.auditDigestKey;
    if (option === 'unkeyed') return undefined;
    if (option !== undefined) return option;
    this.ownDigestKey ??=
      this.sinks.find((s) => s.contextDigestKey !== undefined)?.contextDigestKey ?? randomBytes(32);
    return this.ownDigestKey;
  }

  /**
   * Writes the event to every sink. Fail-closed (the default): resolves once every sink has
   * it and rejects with AuditFailure when one cannot; 'warn': reports and never rejects.
   */
  private async record(event: AuditEvent, operationError: KeyportError | undefined): Promise<void> {
    const failClosed = this.options.onAuditFailure !== 'warn';
    const onError =
      this.options.onAuditError ??
      (failClosed ? () => undefined : (e: unknown) => console.warn('keyport: audit sink failed', e));
    const results = await Promise.allSettled(this.sinks.map(async (sink) => sink.write(event)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed === undefined) return;
    for (const r of results) if (r.status === 'rejected') onError(r.reason);
    if (!failClosed) return;
    const reason = failed.reason;
    const code = reason instanceof KeyportError && reason.code === 'Integrity' ? 'Integrity' : 'Unavailable';
    const failure = new AuditFailure(
      code,
      `the ${event.op} operation could not be audited${operationError ? ` (it failed too: ${operationError.code})` : ''}; nothing is returned without an audit record`,
      {
        provider: event.provider,
        keyUri: event.keyUri,
        retryable: false,
        cause: reason,
      },
    );
    failure.operationError = operationError;
    throw failure;
  }

  private keyCall<T>(
    op: Operation,
    key: KeyLike,
    options: CallOptions | undefined,
    run: (p: KmsProvider, ref: KeyRef, o: ProviderCallOptions) => Promise<T>,
    extra: { context?: EncryptionContext | undefined; versionOf?: (r: T) => string | undefined } = {},
  ): Promise<T> {
    let resolved: { ref: KeyRef; provider: KmsProvider };
    try {
      resolved = this.ref(key);
    } catch (e) {
      return Promise.reject(e);
    }
    const { ref, provider } = resolved;
    return this.call({
      op,
      provider,
      keyUri: ref.uri,
      context: extra.context,
      options,
      run: (o) => run(provider, ref, o),
      ...(extra.versionOf ? { versionOf: extra.versionOf } : {}),
    });
  }

  async createKey(scheme: string, req: CreateKeyRequest, o?: CallOptions): Promise<KeyInfo> {
    const provider = this.provider(scheme);
    const checked = checkCreateKeyRequest(req, 'req', 'extensions');
    const { call } = checkCallOptions(o);
    return this.call({
      op: 'createKey',
      provider,
      keyUri: undefined,
      options: call,
      run: (po) => provider.createKey(checked, po),
      versionOf: (k) => k.primaryVersion,
    });
  }

  async describeKey(key: KeyLike, o?: CallOptions): Promise<KeyInfo> {
    return this.keyCall('describeKey', key, checkCallOptions(o).call, (p, ref, po) => p.describeKey(ref, po));
  }

  /** Pages lazily; each page fetch runs under the call policy, the whole listing emits one audit event. */
  async *listKeys(scheme: string, o?: CallOptions & { pageSize?: number }): AsyncIterable<KeyInfo> {
    const provider = this.provider(scheme);
    const { call, rest } = checkCallOptions(o, 'options', { pageSize: true });
    const pageSize =
      rest.pageSize === undefined ? undefined : checkInteger(rest.pageSize, 'options.pageSize', 1, 10_000);
    yield* this.listCall('listKeys', provider, undefined, call, (po) =>
      provider.listKeys(pageSize === undefined ? po : { ...po, pageSize }),
    );
  }

  async rotateKey(key: KeyLike, o?: CallOptions): Promise<KeyInfo> {
    return this.keyCall('rotateKey', key, checkCallOptions(o).call, (p, ref, po) => p.rotateKey(ref, po), {
      versionOf: (k) => k.primaryVersion,
    });
  }

  async setRotationPolicy(key: KeyLike, policy: RotationPolicy, o?: CallOptions): Promise<KeyInfo> {
    const checked = checkRotationPolicy(policy);
    return this.keyCall('setRotationPolicy', key, checkCallOptions(o).call, (p, ref, po) =>
      p.setRotationPolicy(ref, checked, po),
    );
  }

  async enableKey(key: KeyLike, o?: CallOptions): Promise<KeyInfo> {
    return this.keyCall('enableKey', key, checkCallOptions(o).call, (p, ref, po) => p.enableKey(ref, po));
  }

  async disableKey(key: KeyLike, o?: CallOptions): Promise<KeyInfo> {
    return this.keyCall('disableKey', key, checkCallOptions(o).call, (p, ref, po) => p.disableKey(ref, po));
  }

  async scheduleKeyDeletion(
    key: KeyLike,
    req: ScheduleDeletionRequest = {},
    o?: CallOptions,
  ): Promise<KeyInfo> {
    const checked = checkScheduleDeletion(req, 'req', 'extensions');
    return this.keyCall('scheduleKeyDeletion', key, checkCallOptions(o).call, (p, ref, po) =>
      p.scheduleKeyDeletion(ref, checked, po),
    );
  }

  async cancelKeyDeletion(key: KeyLike, o?: CallOptions): Promise<KeyInfo> {
    return this.keyCall('cancelKeyDeletion', key, checkCallOptions(o).call, (p, ref, po) =>
      p.cancelKeyDeletion(ref, po),
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
      return p.destroyKeyVersion(ref, po);
    });
  }

  async encrypt(key: KeyLike, plaintext: Uint8Array, o?: ContextOptions): Promise<EncryptResult> {
    checkBytes(plaintext, 'plaintext');
    const { call, context } = contextCallOptions(o);
    const req = context === undefined ? {} : { context };
    return this.keyCall('encrypt', key, call, (p, ref, po) => p.encrypt(ref, plaintext, req, po), {
      context,
      versionOf: keyVersionOf,
    });
  }

  async decrypt(key: KeyLike, ciphertext: Uint8Array, o?: ContextOptions): Promise<DecryptResult> {
    checkBytes(ciphertext, 'ciphertext');
    const { call, context } = contextCallOptions(o);
    const req = context === undefined ? {} : { context };
    return this.keyCall('decrypt', key, call, (p, ref, po) => p.decrypt(ref, ciphertext, req, po), {
      context,
      versionOf: keyVersionOf,
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
      (p) => {
        const method = p.encryptBatch;
        return method === undefined ? undefined : (ref, batch, po) => method.call(p, ref, batch, po);
      },
      (ref, item, io) => this.encrypt(ref, item.plaintext, io),
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
      (p) => {
        const method = p.decryptBatch;
        return method === undefined ? undefined : (ref, batch, po) => method.call(p, ref, batch, po);
      },
      (ref, item, io) => this.decrypt(ref, item.ciphertext, io),
    );
  }

  /**
   * A batch: one capability check; with a provider batch method, the whole request runs under
   * the call policy (retried only when the request as a whole fails retryably) and each item's
   * result is mapped and audited on its own; without one, per-item calls (each its own policy
   * run and audit event), at most BATCH_FALLBACK_CONCURRENCY at a time. A whole-request failure
   * or an abort rejects, after every item has been audited as failed.
   */
  private async batchCall<
    I extends { readonly context?: EncryptionContext },
    R extends { readonly keyVersion: string | undefined },
  >(
    op: 'encrypt' | 'decrypt',
    key: KeyLike,
    items: readonly I[],
    o: CallOptions | undefined,
    batchOf: (p: KmsProvider) => BatchMethod<I, R> | undefined,
    single: (ref: KeyRef, item: I, o: ContextOptions) => Promise<R>,
  ): Promise<BatchResult<R>[]> {
    if (this.closed) throw new KeyportError('InvalidArgument', 'this Keyport client is closed');
    const { ref, provider } = this.ref(key);
    if (items.length === 0) return [];
    const started = performance.now();
    let attempts = 0;
    const recorded: Promise<void>[] = [];
    const audit = (item: I, r: BatchResult<R>): void => {
      const pending = this.emit(
        { op, provider, keyUri: ref.uri, context: item.context, options: o, run: () => Promise.resolve() },
        started,
        attempts,
        r.ok ? 'success' : 'failure',
        r.ok ? r.value.keyVersion : undefined,
        r.ok ? undefined : r.error,
      );
      if (pending !== undefined) recorded.push(pending);
    };
    let results: BatchResult<R>[];
    let perItem = false;
    try {
      assertCapability(provider.capabilities, op, provider.name, ref.uri);
      const batch = batchOf(provider);
      perItem = batch === undefined;
      if (batch === undefined) return await this.eachItem(items, o, (item, io) => single(ref, item, io));
      const outcome = await runWithPolicy(
        (signal) => {
          attempts++;
          return batch(ref, items, { signal });
        },
        this.policy,
        { signal: o?.signal, timeoutMs: o?.timeoutMs },
        {
          ...(this.options.random ? { random: this.options.random } : {}),
          mapError: (e) => this.mapError(provider, e, ref.uri),
        },
      );
      results = items.map((_, i) => this.itemResult(provider, ref.uri, outcome.value[i]));
    } catch (e) {
      const error = this.mapError(provider, e, ref.uri);
      // Per-item calls audited themselves; otherwise the request failed as a whole.
      if (!perItem) for (const item of items) audit(item, { ok: false, error });
      await allRecorded(recorded);
      throw error;
    }
    for (const [i, item] of items.entries()) audit(item, results[i] as BatchResult<R>);
    await allRecorded(recorded);
    return results;
  }

  /** An item's result as the caller sees it: errors mapped by the provider, a missing result an error. */
  private itemResult<R>(
    provider: KmsProvider,
    keyUri: string,
    r: BatchResult<R> | undefined,
  ): BatchResult<R> {
    if (r === undefined) {
      return {
        ok: false,
        error: new KeyportError('Internal', 'the provider returned fewer batch results than items', {
          provider: provider.name,
          keyUri,
        }),
      };
    }
    return r.ok ? r : { ok: false, error: this.mapError(provider, r.error, keyUri) };
  }

  /** The fallback: per-item calls with bounded concurrency; an abort still rejects the whole batch. */
  private async eachItem<I extends { readonly context?: EncryptionContext }, R>(
    items: readonly I[],
    o: CallOptions | undefined,
    run: (item: I, o: ContextOptions) => Promise<R>,
  ): Promise<BatchResult<R>[]> {
    const results: BatchResult<R>[] = new Array(items.length);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < items.length) {
        const i = next++;
        const item = items[i] as I;
        const io: ContextOptions = {
          ...(o?.signal !== undefined ? { signal: o.signal } : {}),
          ...(o?.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
          ...(item.context !== undefined ? { context: item.context } : {}),
        };
        try {
          results[i] = { ok: true, value: await run(item, io) };
        } catch (e) {
          results[i] = { ok: false, error: toKeyportError(e) };
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(BATCH_FALLBACK_CONCURRENCY, items.length) }, worker));
    if (o?.signal?.aborted)
      throw new KeyportError('Aborted', 'the operation was aborted', { retryable: false });
    return results;
  }

  async generateDataKey(
    key: KeyLike,
    o?: ContextOptions & Omit<DataKeyRequest, 'context'>,
  ): Promise<DataKeyResult> {
    const { call, context, rest } = contextCallOptions(o, { bytes: true });
    const bytes = rest.bytes === undefined ? undefined : checkInteger(rest.bytes, 'options.bytes', 16, 1024);
    const req: DataKeyRequest = {
      ...(bytes !== undefined ? { bytes } : {}),
      ...(context !== undefined ? { context } : {}),
    };
    return this.keyCall('generateDataKey', key, call, (p, ref, po) => p.generateDataKey(ref, req, po), {
      context,
      versionOf: keyVersionOf,
    });
  }

  async sign(key: KeyLike, message: Uint8Array, o?: CallOptions & SignRequest): Promise<SignResult> {
    checkBytes(message, 'message');
    const { call, rest } = checkCallOptions(o, 'options', SIGN_OPTIONS);
    const req = signRequestFrom(rest);
    return this.keyCall('sign', key, call, (p, ref, po) => p.sign(ref, message, req, po), {
      versionOf: keyVersionOf,
    });
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
    return this.keyCall('verify', key, call, (p, ref, po) => p.verify(ref, message, signature, req, po));
  }

  async mac(key: KeyLike, message: Uint8Array, o?: CallOptions): Promise<MacResult> {
    checkBytes(message, 'message');
    return this.keyCall('mac', key, checkCallOptions(o).call, (p, ref, po) => p.mac(ref, message, po), {
      versionOf: keyVersionOf,
    });
  }

  async verifyMac(key: KeyLike, message: Uint8Array, mac: Uint8Array, o?: CallOptions): Promise<boolean> {
    checkBytes(message, 'message');
    checkBytes(mac, 'mac');
    return this.keyCall('verifyMac', key, checkCallOptions(o).call, (p, ref, po) =>
      p.verifyMac(ref, message, mac, po),
    );
  }

  async getPublicKey(key: KeyLike, o?: CallOptions): Promise<Uint8Array> {
    return this.keyCall('getPublicKey', key, checkCallOptions(o).call, (p, ref, po) => {
      if (p.getPublicKey === undefined) {
        throw new UnsupportedError('getPublicKey', `${p.name} does not expose public keys`);
      }
      return p.getPublicKey(ref, po);
    });
  }

  async createGrant(key: KeyLike, req: GrantRequest, o?: CallOptions): Promise<Grant> {
    const checked = checkGrantRequest(req, 'req', 'extensions');
    return this.keyCall('createGrant', key, checkCallOptions(o).call, (p, ref, po) =>
      p.createGrant(ref, checked, po),
    );
  }

  async *listGrants(key: KeyLike, o?: CallOptions): AsyncIterable<Grant> {
    const { call } = checkCallOptions(o);
    const { ref, provider } = this.ref(key);
    yield* this.listCall('listGrants', provider, ref.uri, call, (po) => provider.listGrants(ref, po));
  }

  async revokeGrant(key: KeyLike, grantId: string, o?: CallOptions): Promise<void> {
    checkString(grantId, 'grantId', { min: 1, max: 1024 });
    return this.keyCall('revokeGrant', key, checkCallOptions(o).call, (p, ref, po) =>
      p.revokeGrant(ref, grantId, po),
    );
  }

  async getImportParameters(
    key: KeyLike,
    req: ImportParametersRequest = {},
    o?: CallOptions,
  ): Promise<ImportParameters> {
    const checked = checkImportParametersRequest(req, 'req', 'extensions');
    return this.keyCall('getImportParameters', key, checkCallOptions(o).call, (p, ref, po) =>
      p.getImportParameters(ref, checked, po),
    );
  }

  async importKeyMaterial(key: KeyLike, req: ImportKeyMaterialRequest, o?: CallOptions): Promise<KeyInfo> {
    const checked = checkImportKeyMaterialRequest(req, 'req', 'extensions');
    return this.keyCall(
      'importKeyMaterial',
      key,
      checkCallOptions(o).call,
      (p, ref, po) => p.importKeyMaterial(ref, checked, po),
      {
        versionOf: (k) => k.primaryVersion,
      },
    );
  }

  /**
   * Runs a provider listing: each `next()` is one attempt under the policy's retries; the
   * listing as a whole emits one audit event when it ends or fails.
   */
  private async *listCall<T>(
    op: Operation,
    provider: KmsProvider,
    keyUri: string | undefined,
    o: CallOptions | undefined,
    open: (po: ProviderCallOptions) => AsyncIterable<T>,
  ): AsyncIterable<T> {
    const started = performance.now();
    const spec: CallSpec<unknown> = { op, provider, keyUri, options: o, run: () => Promise.resolve() };
    const controller = new AbortController();
    const signal = o?.signal ? AbortSignal.any([o.signal, controller.signal]) : controller.signal;
    let pages = 0;
    try {
      assertCapability(provider.capabilities, op, provider.name, keyUri);
      const iterator = open({ signal })[Symbol.asyncIterator]();
      for (;;) {
        const { value: step } = await runWithPolicy(
          () => {
            pages++;
            return iterator.next();
          },
          { ...this.policy, maxAttempts: 1 },
          { signal: o?.signal, timeoutMs: o?.timeoutMs },
          { mapError: (e) => this.mapError(provider, e, keyUri) },
        );
        if (step.done) break;
        yield step.value;
      }
      const recorded = this.emit(spec, started, pages, 'success', undefined, undefined);
      if (recorded !== undefined) await recorded;
    } catch (e) {
      if (e instanceof AuditFailure) throw e;
      const error = this.mapError(provider, e, keyUri);
      const recorded = this.emit(spec, started, pages, 'failure', undefined, error);
      if (recorded !== undefined) await recorded;
      throw error;
    } finally {
      controller.abort();
    }
  }

  /** Closes every provider and audit sink. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.providers.values()].map((p) => p.close?.()));
    await Promise.all(this.sinks.map((s) => s.close?.()));
  }
}

/** Waits for every audit write; the first AuditFailure, if any, is thrown once all settled. */
async function allRecorded(recorded: readonly Promise<void>[]): Promise<void> {
  const failed = (await Promise.allSettled(recorded)).find((r) => r.status === 'rejected');
  if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
}
