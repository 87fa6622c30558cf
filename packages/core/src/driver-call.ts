/**
 * The one path every driver call takes: closed-client check, capability check before any
 * network call, retries with backoff and jitter on retryable codes (for operations that must not
 * run twice, only after failures that certainly had no effect: repeat.ts), deadline and abort, error
 * mapping (the driver's mapError, once), and exactly one audit event. Neutral operations,
 * batches, listings and driver-only operations (`Keyport.driverCall`) all run through it.
 */
import { randomBytes } from 'node:crypto';
import type { AuditEvent, AuditSink } from './audit.js';
import { assertCapability, type Operation } from './capabilities.js';
import { contextDigest, contextKeys } from './context.js';
import { KeyportError, toKeyportError } from './errors.js';
import { follow, type RetryPolicy, runWithPolicy, unfollow } from './policy.js';
import { driverName, type KmsProvider, type ProviderCallOptions } from './provider.js';
import { certainlyWithoutEffect, repeatRule, settleOnce } from './repeat.js';
import { recordProviderCall } from './telemetry.js';
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
  /** Throws (Internal) when the driver resolved with the wrong shape (result-shape.ts). */
  readonly check?: ((result: unknown) => void) | undefined;
  /**
   * For an operation a repeat finds done (a deletion already scheduled, a grant already gone):
   * once an earlier attempt failed so that it may have taken effect (a timeout, a dropped
   * connection, a 5xx), a later attempt's failure is given here, and an answer means the
   * provider's state shows the work done: it is the call's result. Without it, the first
   * attempt's lost success came back as the repeat's refusal (KeyStateConflict: "already
   * pending deletion").
   */
  readonly confirmRepeat?:
    | ((error: KeyportError, o: ProviderCallOptions) => Promise<{ readonly value: T } | undefined>)
    | undefined;
}

export interface CallSettings {
  readonly policy: RetryPolicy;
  readonly sinks: readonly AuditSink[];
  /** See KeyportOptions.auditDigestKey. */
  readonly auditDigestKey?: Uint8Array | 'unkeyed' | undefined;
  /** See KeyportOptions.onAuditFailure. */
  readonly onAuditFailure?: 'fail' | 'warn' | undefined;
  /** Jitter source, for tests. */
  readonly random?: (() => number) | undefined;
  readonly onAuditError?: ((error: unknown) => void) | undefined;
}

/**
 * An operation whose audit event could not be recorded (fail-closed audit). `code` is
 * `Unavailable` when the sink could not write, `Integrity` when it refused a tampered log,
 * `Aborted` when the caller's signal fired while the write was still pending;
 * `operationError` is the operation's own error when it had failed too.
 */
export class AuditFailure extends KeyportError {
  override readonly name: string = 'AuditFailure';
  operationError: KeyportError | undefined;
}

/** Runs driver calls under one policy and audits them; one per `Keyport`. */
export class DriverCalls {
  private ownDigestKey: Uint8Array | undefined;

  constructor(readonly settings: CallSettings) {}

  async run<T>(spec: CallSpec<T>): Promise<T> {
    const started = performance.now();
    const { provider, op, keyUri } = spec;
    let attempts = 0;
    try {
      assertCapability(provider.capabilities, op, driverName(provider), keyUri);
      const rule = repeatRule(op, provider);
      const confirm = spec.confirmRepeat;
      // Set once an attempt failed in a way that may have taken effect (see confirmRepeat).
      let mayHaveLanded = false;
      const outcome = await runWithPolicy(
        (signal) => {
          attempts++;
          if (!mayHaveLanded || confirm === undefined) return spec.run({ signal });
          return spec.run({ signal }).catch(async (e: unknown) => {
            const done = await confirm(this.mapError(provider, e, keyUri), { signal }).catch(() => undefined);
            if (done === undefined) throw e;
            return done.value;
          });
        },
        this.settings.policy,
        { signal: spec.options?.signal, timeoutMs: spec.options?.timeoutMs },
        {
          ...(this.settings.random ? { random: this.settings.random } : {}),
          mapError: (e) => this.mapError(provider, e, keyUri),
          // Only operations that must not run twice, or whose repeat may find the work done, look
          // at their failures again.
          settle:
            rule.repeat === 'once'
              ? (e, cutOff) => settleOnce(op, rule, e, cutOff)
              : confirm === undefined
                ? undefined
                : (e, cutOff) => {
                    if (!certainlyWithoutEffect(e) && (e.retryable || cutOff)) mayHaveLanded = true;
                    return e;
                  },
        },
      );
      spec.check?.(outcome.value);
      const recorded = this.emit(
        spec,
        started,
        outcome.attempts,
        'success',
        spec.versionOf?.(outcome.value),
        undefined,
      );
      if (recorded !== undefined) await this.untilAborted(recorded, spec, undefined);
      return outcome.value;
    } catch (e) {
      if (e instanceof AuditFailure) throw e;
      const error = this.mapError(provider, e, keyUri);
      const recorded = this.emit(spec, started, attempts, 'failure', undefined, error);
      if (recorded !== undefined) await this.untilAborted(recorded, spec, error);
      throw error;
    }
  }

  /**
   * A call's pending audit write, bounded by the caller's signal: a sink that never settles must
   * not hold a call its caller gave up on (`signal: AbortSignal.timeout(…)` would bound nothing).
   * Once the signal fires the write gets one more turn of the event loop (a sink that has written
   * has answered by then); after that, fail-closed, the call rejects with an AuditFailure of code
   * `Aborted` (its record may be missing); in 'warn' mode the failure is reported and the call
   * returns. Without a signal the wait is the sink's own. Only calls with sinks get here.
   */
  untilAborted(
    recorded: Promise<void>,
    spec: Pick<CallSpec<unknown>, 'op' | 'provider' | 'keyUri' | 'options'>,
    operationError: KeyportError | undefined,
  ): Promise<void> {
    const signal = spec.options?.signal;
    if (signal === undefined) return recorded;
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const onAbort = (): void => {
        setImmediate(() => {
          if (settled) return;
          settled = true;
          const failure = new AuditFailure(
            'Aborted',
            `the ${spec.op} operation was aborted while its audit record was pending; the record may be missing`,
            { provider: driverName(spec.provider), keyUri: spec.keyUri, retryable: false },
          );
          failure.operationError = operationError;
          const failClosed = this.settings.onAuditFailure !== 'warn';
          const tell =
            this.settings.onAuditError ??
            (failClosed ? undefined : (e: unknown) => console.warn('keyport: audit sink failed', e));
          try {
            tell?.(failure);
          } catch {
            // A throwing handler must not become an uncaught exception on this timer turn.
          }
          if (failClosed) reject(failure);
          else resolve();
        });
      };
      if (signal.aborted) onAbort();
      else follow(signal, onAbort);
      recorded.then(
        () => {
          if (settled) return;
          settled = true;
          unfollow(signal, onAbort);
          resolve();
        },
        (e: unknown) => {
          if (settled) return;
          settled = true;
          unfollow(signal, onAbort);
          reject(e);
        },
      );
    });
  }

  mapError(provider: KmsProvider, e: unknown, keyUri: string | undefined): KeyportError {
    const details = { provider: driverName(provider), ...(keyUri !== undefined ? { keyUri } : {}) };
    // mapError is required of drivers; one written against the older contract may lack it.
    const error = e instanceof KeyportError ? e : (driverMapped(provider, e) ?? toKeyportError(e));
    return withInstance(error, keyUri).withDetails(details);
  }

  /**
   * Reports one finished call to telemetry and its audit event to every sink. Returns the
   * pending audit write (undefined without sinks): fail-closed, it rejects with AuditFailure.
   */
  emit<T>(
    spec: Pick<CallSpec<T>, 'op' | 'provider' | 'keyUri' | 'context'>,
    started: number,
    attempts: number,
    outcome: 'success' | 'failure',
    keyVersion: string | undefined,
    error: KeyportError | undefined,
  ): Promise<void> | undefined {
    const provider = driverName(spec.provider);
    recordProviderCall(
      { op: spec.op, provider: { name: provider }, keyUri: spec.keyUri },
      { keyVersion, outcome, errorCode: error?.code, attempts, started },
    );
    if (this.settings.sinks.length === 0) return undefined;
    let digest: string | undefined;
    try {
      digest = spec.context === undefined ? undefined : contextDigest(spec.context, this.digestKey());
    } catch {
      digest = undefined; // an invalid context is reported by the operation itself
    }
    // Frozen (its type says readonly): every sink gets this one object, so a sink that edited it
    // would change what the sinks after it record.
    const event: AuditEvent = Object.freeze({
      ts: new Date().toISOString(),
      op: spec.op,
      provider,
      keyUri: spec.keyUri,
      keyVersion,
      outcome,
      errorCode: error?.code,
      durationMs: Math.round((performance.now() - started) * 1000) / 1000,
      attempts,
      requestId: error?.requestId,
      contextKeys: Object.freeze(spec.context === undefined ? [] : contextKeys(spec.context)),
      contextDigest: digest,
    });
    return this.record(event, error);
  }

  /** The digest key: explicit, else a sink's, else one random key for this client. */
  private digestKey(): Uint8Array | undefined {
    const option = this.settings.auditDigestKey;
    if (option === 'unkeyed') return undefined;
    if (option !== undefined) return option;
    this.ownDigestKey ??=
      this.settings.sinks.find((s) => s.contextDigestKey !== undefined)?.contextDigestKey ?? randomBytes(32);
    return this.ownDigestKey;
  }

  /**
   * Writes the event to every sink. Fail-closed (the default): resolves once every sink has
   * it and rejects with AuditFailure when one cannot; 'warn': reports and never rejects.
   */
  private async record(event: AuditEvent, operationError: KeyportError | undefined): Promise<void> {
    const failClosed = this.settings.onAuditFailure !== 'warn';
    const onError =
      this.settings.onAuditError ??
      (failClosed ? () => undefined : (e: unknown) => console.warn('keyport: audit sink failed', e));
    const results = await Promise.allSettled(this.settings.sinks.map(async (sink) => sink.write(event)));
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
}

/**
 * The driver's own mapping of a raw error. A mapError that throws or answers something other
 * than a KeyportError (a string, a plain `{ code }`) is a driver bug: the raw error then goes
 * the way of any unmapped one (Internal, reduced cause), so the caller still gets a typed error
 * and the failure is still audited, instead of the mapper's own exception escaping unaudited.
 * Runs only for failed calls.
 */
function driverMapped(provider: KmsProvider, e: unknown): KeyportError | undefined {
  let mapped: unknown;
  try {
    mapped = provider.mapError?.(e);
  } catch {
    return undefined;
  }
  return mapped instanceof KeyportError ? mapped : undefined;
}

/** Waits for every audit write; the first AuditFailure, if any, is thrown once all settled. */
export async function allRecorded(recorded: readonly Promise<void>[]): Promise<void> {
  const failed = (await Promise.allSettled(recorded)).find((r) => r.status === 'rejected');
  if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
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
    // V8's `stack` accessor reads the original's hidden slot: copied as its text.
    stack: { value: error.stack, writable: true, configurable: true },
    keyUri: { value: qualifyKeyUri(error.keyUri, caller.instance), enumerable: true },
  });
}
