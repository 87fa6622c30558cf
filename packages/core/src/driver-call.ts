/**
 * The one path every driver call takes: closed-client check, capability check before any
 * network call, retries with backoff and jitter on retryable codes, deadline and abort, error
 * mapping (the driver's mapError, once), and exactly one audit event. Neutral operations,
 * batches, listings and driver-only operations (`Keyport.driverCall`) all run through it.
 */
import type { AuditEvent, AuditSink } from './audit.js';
import { assertCapability, type Operation } from './capabilities.js';
import { contextDigest, contextKeys } from './context.js';
import { KeyportError, toKeyportError } from './errors.js';
import { type RetryPolicy, runWithPolicy } from './policy.js';
import { driverName, type KmsProvider, type ProviderCallOptions } from './provider.js';
import type { CallOptions, EncryptionContext } from './types.js';
import { qualifyKeyUri, splitKeyUri } from './uri.js';

export interface CallSpec<T> {
  readonly op: Operation;
  readonly provider: KmsProvider;
  /** The URI as the caller wrote it (instance selector included), for errors and audit. */
  readonly keyUri: string | undefined;
  readonly context?: EncryptionContext | undefined;
  readonly options: CallOptions | undefined;
  readonly run: (o: ProviderCallOptions) => Promise<T>;
  /** The key version the result names, for audit. */
  readonly versionOf?: (result: T) => string | undefined;
}

export interface CallSettings {
  readonly policy: RetryPolicy;
  readonly sinks: readonly AuditSink[];
  /** Key for audit context digests (HMAC); without it digests are plain SHA-256. */
  readonly auditDigestKey?: Uint8Array | undefined;
  /** Jitter source, for tests. */
  readonly random?: (() => number) | undefined;
  readonly onAuditError?: ((error: unknown) => void) | undefined;
}

/** Runs driver calls under one policy and audits them; one per `Keyport`. */
export class DriverCalls {
  constructor(readonly settings: CallSettings) {}

  async run<T>(spec: CallSpec<T>): Promise<T> {
    const started = performance.now();
    const { provider, op, keyUri } = spec;
    let attempts = 0;
    try {
      assertCapability(provider.capabilities, op, driverName(provider), keyUri);
      const outcome = await runWithPolicy(
        (signal) => {
          attempts++;
          return spec.run({ signal });
        },
        this.settings.policy,
        { signal: spec.options?.signal, timeoutMs: spec.options?.timeoutMs },
        {
          ...(this.settings.random ? { random: this.settings.random } : {}),
          mapError: (e) => this.mapError(provider, e, keyUri),
        },
      );
      this.emit(spec, started, outcome.attempts, 'success', spec.versionOf?.(outcome.value), undefined);
      return outcome.value;
    } catch (e) {
      const error = this.mapError(provider, e, keyUri);
      this.emit(spec, started, attempts, 'failure', undefined, error);
      throw error;
    }
  }

  mapError(provider: KmsProvider, e: unknown, keyUri: string | undefined): KeyportError {
    const details = { provider: driverName(provider), ...(keyUri !== undefined ? { keyUri } : {}) };
    const error = e instanceof KeyportError ? e : (provider.mapError(e) ?? toKeyportError(e));
    return withInstance(error, keyUri).withDetails(details);
  }

  emit<T>(
    spec: Pick<CallSpec<T>, 'op' | 'provider' | 'keyUri' | 'context'>,
    started: number,
    attempts: number,
    outcome: 'success' | 'failure',
    keyVersion: string | undefined,
    error: KeyportError | undefined,
  ): void {
    const { sinks } = this.settings;
    if (sinks.length === 0) return;
    let digest: string | undefined;
    try {
      digest =
        spec.context === undefined ? undefined : contextDigest(spec.context, this.settings.auditDigestKey);
    } catch {
      digest = undefined; // an invalid context is reported by the operation itself
    }
    const event: AuditEvent = {
      ts: new Date().toISOString(),
      op: spec.op,
      provider: driverName(spec.provider),
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
    const onError =
      this.settings.onAuditError ?? ((e: unknown) => console.warn('keyport: audit sink failed', e));
    for (const sink of sinks) {
      try {
        const pending = sink.write(event);
        if (pending instanceof Promise) pending.catch(onError);
      } catch (e) {
        onError(e);
      }
    }
  }
}

/**
 * Drivers name keys without the instance selector; an error a driver raised about a key of the
 * instance the caller addressed names it the way the caller does.
 */
function withInstance(error: KeyportError, callerUri: string | undefined): KeyportError {
  if (callerUri === undefined || error.keyUri === undefined || error.keyUri === callerUri) return error;
  let caller: ReturnType<typeof splitKeyUri>;
  let named: ReturnType<typeof splitKeyUri>;
  try {
    caller = splitKeyUri(callerUri);
    named = splitKeyUri(error.keyUri);
  } catch {
    return error;
  }
  if (caller.instance === undefined || named.instance !== undefined || named.scheme !== caller.scheme)
    return error;
  const relabelled = Object.create(Object.getPrototypeOf(error)) as KeyportError;
  return Object.defineProperties(relabelled, {
    ...Object.getOwnPropertyDescriptors(error),
    keyUri: { value: qualifyKeyUri(error.keyUri, caller.instance), enumerable: true },
  });
}
