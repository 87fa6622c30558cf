/**
 * OpenTelemetry for keyport, through `@opentelemetry/api` when the application has it installed
 * (an optional peer dependency) and has registered something with it. Otherwise every function
 * here returns after one check: no import, no allocation. With it, the API's globally registered
 * tracer and meter providers are used (a meter alone: no spans; a tracer alone: no metrics).
 *
 * - Every provider call through `Keyport` ends as one CLIENT span `keyport <operation>` with
 *   semantic attributes, plus metrics: `keyport.client.calls` and `keyport.client.errors`
 *   (counters) and `keyport.client.duration` (histogram, seconds).
 * - `withKeyportSpan` wraps a larger unit of work (an envelope seal or open, a migration batch)
 *   in an active span, so the provider calls it makes become its children.
 *
 * Attributes never carry a context value, plaintext, key material or a credential: only the
 * provider name, the operation, the key URI with its query, user info and PIN removed
 * (`redactKeyUri`), the key version, the outcome, the error code and the retry count.
 */
import { createRequire } from 'node:module';
import type { Operation } from './capabilities.js';

/** The subset of `@opentelemetry/api` keyport uses, typed here so core needs no dependency. */
interface Attributes {
  [key: string]: string | number | boolean | undefined;
}
interface Span {
  setAttribute(key: string, value: string | number | boolean): unknown;
  setStatus(status: { code: number; message?: string }): unknown;
  end(endTime?: number): void;
}
interface Tracer {
  startSpan(name: string, options?: { kind?: number; attributes?: Attributes; startTime?: number }): Span;
  startActiveSpan<R>(
    name: string,
    options: { kind?: number; attributes?: Attributes },
    fn: (span: Span) => R,
  ): R;
}
interface Counter {
  add(value: number, attributes?: Attributes): void;
}
interface Histogram {
  record(value: number, attributes?: Attributes): void;
}
interface Meter {
  createCounter(name: string, options?: { description?: string; unit?: string }): Counter;
  createHistogram(
    name: string,
    options?: { description?: string; unit?: string; advice?: { explicitBucketBoundaries?: number[] } },
  ): Histogram;
}
interface TracerProvider {
  getTracer(name: string, version?: string): Tracer;
  /** On the API's global proxy: the registered provider, or the API's no-op one. */
  getDelegate?(): unknown;
}
interface OtelApi {
  trace: { getTracerProvider(): TracerProvider };
  ProxyTracerProvider: new () => { getDelegate(): unknown };
  metrics: { getMeterProvider(): { getMeter(name: string, version?: string): Meter } };
  SpanKind: { INTERNAL: number; CLIENT: number };
  SpanStatusCode: { OK: number; ERROR: number };
  /** Since API 1.3; absent on older ones (then instruments are always used). */
  createNoopMeter?: () => object;
}

const SCOPE = '@keyport/core';

/** undefined: not looked up yet; null: not installed. */
let api: OtelApi | null | undefined;

/**
 * Where `@opentelemetry/api` 1.x keeps whatever an application registers (a tracer or meter
 * provider, a context manager, a propagator, a logger): absent until the first registration.
 */
const OTEL_GLOBALS = Symbol.for('opentelemetry.js.api.1');

/**
 * The API, or null when it is not installed or nothing is registered with it. In the second case
 * every call into it would be a no-op, so it is not even loaded: requiring it (one of many
 * SDKs' dependencies, so usually installed) cost a CLI command ~10 ms of its start. It is loaded
 * on the first call after an application registers something.
 */
function otel(): OtelApi | null {
  if ((globalThis as Record<symbol, unknown>)[OTEL_GLOBALS] === undefined) return null;
  if (api === undefined) {
    try {
      api = createRequire(import.meta.url)('@opentelemetry/api') as OtelApi;
    } catch {
      api = null;
    }
  }
  return api;
}

let tracerCache: { readonly provider: unknown; readonly tracer: Tracer } | undefined;

/** keyport's tracer from the current global tracer provider (looked up again when it changes). */
function tracer(o: OtelApi): Tracer {
  const provider = o.trace.getTracerProvider();
  if (tracerCache?.provider !== provider) tracerCache = { provider, tracer: provider.getTracer(SCOPE) };
  return tracerCache.tracer;
}

interface Instruments {
  readonly provider: unknown;
  /** The API's no-op meter (no application registered a meter provider): nothing to record. */
  readonly noop: boolean;
  readonly calls: Counter;
  readonly errors: Counter;
  readonly duration: Histogram;
}
let instruments: Instruments | undefined;

/** Metric instruments of the current global meter provider (re-created when it changes). */
function metricInstruments(o: OtelApi): Instruments {
  const provider = o.metrics.getMeterProvider();
  if (instruments?.provider === provider) return instruments;
  const meter = provider.getMeter(SCOPE);
  const noopMeter = o.createNoopMeter?.();
  instruments = {
    provider,
    noop: noopMeter !== undefined && meter.constructor === noopMeter.constructor,
    calls: meter.createCounter('keyport.client.calls', {
      description: 'Provider operations called through a Keyport client',
      unit: '{call}',
    }),
    errors: meter.createCounter('keyport.client.errors', {
      description: 'Provider operations that failed, by error code',
      unit: '{call}',
    }),
    duration: meter.createHistogram('keyport.client.duration', {
      description: 'Duration of provider operations, retries included',
      unit: 's',
      advice: {
        explicitBucketBoundaries: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      },
    }),
  };
  return instruments;
}

/**
 * A key URI fit for telemetry: the query (endpoints, `pin-source`, `module-path`, any token a
 * user put there), user info and a PKCS#11 `pin-value` attribute are removed. What is left names
 * the key, never a secret.
 */
export function redactKeyUri(uri: string): string {
  const hash = uri.indexOf('#');
  const fragment = hash === -1 ? '' : uri.slice(hash);
  let rest = hash === -1 ? uri : uri.slice(0, hash);
  const query = rest.indexOf('?');
  if (query !== -1) rest = rest.slice(0, query);
  // A named instance (`pkcs11+hsm2:`) and any case of the scheme too: its PIN is as secret.
  const pkcs11 = /^pkcs11(?:\+[a-z0-9-]*)?:/i.exec(rest);
  if (pkcs11 !== null) {
    const attrs = rest
      .slice(pkcs11[0].length)
      .split(';')
      .filter((a) => !/^pin-(value|source)=/i.test(a));
    return `${pkcs11[0]}${attrs.join(';')}`;
  }
  // scheme://user:secret@host/... -> scheme://host/...
  return rest.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, '$1') + fragment;
}

/** Which call: the client's own description of it. */
export interface ProviderCallSpec {
  readonly op: Operation;
  readonly provider: { readonly name: string };
  readonly keyUri: string | undefined;
}

/** How one finished provider call went. */
export interface ProviderCallOutcome {
  readonly keyVersion?: string | undefined;
  readonly outcome: 'success' | 'failure';
  readonly errorCode?: string | undefined;
  /** Attempts made under the retry policy (retries = attempts - 1). */
  readonly attempts: number;
  /** `performance.now()` when the call started. */
  readonly started: number;
}

/**
 * Records one finished provider call as a span (with its real start and end times, a child of
 * the context active when the call was made) and as metrics. Called by `Keyport` for every call.
 */
export function recordProviderCall(spec: ProviderCallSpec, result: ProviderCallOutcome): void {
  const o = otel();
  if (o === null) return;
  const m = metricInstruments(o);
  const tracing = keyportTracingActive();
  // Nothing to record or build when no application registered a meter or a tracer provider.
  if (m.noop && !tracing) return;
  const call = { ...result, op: spec.op, provider: spec.provider.name, keyUri: spec.keyUri };
  const elapsedMs = performance.now() - call.started;
  const attributes: Attributes = {
    'keyport.provider': call.provider,
    'keyport.operation': call.op,
    'keyport.outcome': call.outcome,
  };
  if (call.errorCode !== undefined) attributes['error.type'] = call.errorCode;
  if (!m.noop) {
    m.calls.add(1, attributes);
    if (call.outcome === 'failure') m.errors.add(1, attributes);
    m.duration.record(elapsedMs / 1000, attributes);
  }
  // No span to build (redacted URI, attributes) when no application registered a tracer.
  if (!tracing) return;

  const now = Date.now();
  const span = tracer(o).startSpan(`keyport ${call.op}`, {
    kind: o.SpanKind.CLIENT,
    startTime: now - elapsedMs,
    attributes: {
      ...attributes,
      'keyport.retry_count': Math.max(0, call.attempts - 1),
      ...(call.keyUri !== undefined ? { 'keyport.key.uri': redactKeyUri(call.keyUri) } : {}),
      ...(call.keyVersion !== undefined ? { 'keyport.key.version': call.keyVersion } : {}),
    },
  });
  span.setStatus(
    call.outcome === 'success'
      ? { code: o.SpanStatusCode.OK }
      : { code: o.SpanStatusCode.ERROR, message: call.errorCode ?? 'failure' },
  );
  span.end(now);
}

let noopDelegate: unknown;

/**
 * Whether a span started now would be recorded: the API is installed and an application has
 * registered a tracer provider. Hot paths (a 1 KiB seal) check this before building a span, so
 * an application with the API but no SDK pays one comparison, not a no-op span.
 */
export function keyportTracingActive(): boolean {
  const o = otel();
  if (o === null) return false;
  const provider = o.trace.getTracerProvider();
  if (typeof provider.getDelegate !== 'function') return true;
  noopDelegate ??= new o.ProxyTracerProvider().getDelegate();
  return provider.getDelegate() !== noopDelegate;
}

/** Attributes a caller may put on a `withKeyportSpan` span: names and counts, never secrets. */
export type KeyportSpanAttributes = Readonly<Record<string, string | number | boolean>>;

/**
 * Runs `fn` inside an active span named `name` (e.g. `keyport envelope.seal`,
 * `keyport migrate.batch`), so the provider calls it makes are its children. The span ends when
 * the returned promise settles, with status ERROR and `error.type` (a `KeyportError` code or the
 * error's name) when it rejects. Without `@opentelemetry/api`, simply `fn()`.
 */
export async function withKeyportSpan<T>(
  name: string,
  attributes: KeyportSpanAttributes,
  fn: () => Promise<T>,
): Promise<T> {
  const o = otel();
  if (o === null) return fn();
  return tracer(o).startActiveSpan(
    name,
    { kind: o.SpanKind.INTERNAL, attributes: { ...attributes } },
    async (span) => {
      try {
        const value = await fn();
        span.setStatus({ code: o.SpanStatusCode.OK });
        return value;
      } catch (e) {
        const type = errorType(e);
        span.setAttribute('error.type', type);
        span.setStatus({ code: o.SpanStatusCode.ERROR, message: type });
        throw e;
      } finally {
        span.end();
      }
    },
  );
}

/** An error's code or class name only: messages may quote input. */
function errorType(e: unknown): string {
  if (typeof e === 'object' && e !== null) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^[A-Za-z0-9_.-]{1,64}$/.test(code)) return code;
    const name = (e as { name?: unknown }).name;
    if (typeof name === 'string' && /^[A-Za-z0-9_.-]{1,64}$/.test(name)) return name;
  }
  return 'Error';
}
