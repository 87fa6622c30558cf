import { context, metrics, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
  type ResourceMetrics,
} from '@opentelemetry/sdk-metrics';
import {
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Keyport, KeyportError, type KmsProvider, redactKeyUri, withKeyportSpan } from '../src/index.js';
import { AES_ONLY_CAPABILITIES } from './support/capabilities.js';

const caps = AES_ONLY_CAPABILITIES;

// Values that must never reach telemetry.
const CONTEXT_VALUE = 'ctx-value-7f3a9c';
const PLAINTEXT = 'plaintext-marker-51d2';
const DATA_KEY = Uint8Array.from({ length: 32 }, (_, i) => (i * 37 + 11) & 0xff);
const PIN = 'pin-4242-secret';
const TOKEN = 'tok-secret-9981';

/** A provider that keeps a "key" in memory: XOR with one byte, enough to see bytes move. */
function memoryProvider(behaviour: { throttleFirst?: boolean } = {}): KmsProvider {
  let throttled = behaviour.throttleFirst === true;
  const xor = (b: Uint8Array): Uint8Array => b.map((x) => x ^ 0x5a);
  return {
    scheme: 'local',
    name: 'local',
    capabilities: caps,
    parseUri: (uri: string) => ({ uri }),
    encrypt: async (_ref: unknown, plaintext: Uint8Array) => {
      if (throttled) {
        throttled = false;
        throw new KeyportError('Throttled', 'slow down', { retryable: true });
      }
      return { ciphertext: xor(plaintext), keyVersion: '3' };
    },
    decrypt: async (_ref: unknown, ciphertext: Uint8Array) => ({
      plaintext: xor(ciphertext),
      keyVersion: '3',
    }),
    generateDataKey: async () => ({ plaintext: DATA_KEY, wrapped: xor(DATA_KEY), keyVersion: '3' }),
    close: async () => {},
  } as unknown as KmsProvider;
}

const spans = new InMemorySpanExporter();
const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
const reader = new PeriodicExportingMetricReader({
  exporter: metricExporter,
  exportIntervalMillis: 3_600_000,
});
const contextManager = new AsyncLocalStorageContextManager();
const tracerProvider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter: spans })] });

/** The spans ended so far (SimpleSpanProcessor exports asynchronously). */
async function finishedSpans(): Promise<ReadableSpan[]> {
  await tracerProvider.forceFlush();
  return spans.getFinishedSpans();
}

beforeAll(() => {
  context.setGlobalContextManager(contextManager.enable());
  trace.setGlobalTracerProvider(tracerProvider);
  metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
});
afterAll(() => {
  trace.disable();
  metrics.disable();
  context.disable();
});
beforeEach(() => spans.reset());

async function collectMetrics(): Promise<ResourceMetrics> {
  const { resourceMetrics, errors } = await reader.collect();
  expect(errors).toEqual([]);
  return resourceMetrics;
}

/** Every string an exporter would see for these spans and metrics. */
function everyExportedString(finished: readonly ReadableSpan[], resourceMetrics: ResourceMetrics): string {
  return JSON.stringify({
    spans: finished.map((s) => ({
      name: s.name,
      attributes: s.attributes,
      events: s.events,
      status: s.status,
    })),
    metrics: resourceMetrics.scopeMetrics.flatMap((sm) =>
      sm.metrics.map((m) => ({ name: m.descriptor.name, points: m.dataPoints.map((p) => p.attributes) })),
    ),
  });
}

const uri = 'local://k.kp#orders';

describe('OpenTelemetry through @opentelemetry/api', () => {
  it('records one CLIENT span per provider call, with provider, operation, key URI, version, outcome and retries', async () => {
    const kp = new Keyport({
      providers: [memoryProvider({ throttleFirst: true })],
      retry: { baseDelayMs: 1 },
    });
    const { ciphertext } = await kp.encrypt(uri, new TextEncoder().encode(PLAINTEXT), {
      context: { tenant: CONTEXT_VALUE },
    });
    await kp.decrypt(uri, ciphertext, { context: { tenant: CONTEXT_VALUE } });
    const finished = await finishedSpans();
    expect(finished.map((s) => s.name)).toEqual(['keyport encrypt', 'keyport decrypt']);
    const [encrypt, decrypt] = finished as [ReadableSpan, ReadableSpan];
    expect(encrypt.kind).toBe(2); // SpanKind.CLIENT
    expect(encrypt.attributes).toEqual({
      'keyport.provider': 'local',
      'keyport.operation': 'encrypt',
      'keyport.outcome': 'success',
      'keyport.retry_count': 1,
      'keyport.key.uri': uri,
      'keyport.key.version': '3',
    });
    expect(encrypt.status.code).toBe(1); // OK
    expect(decrypt.attributes['keyport.retry_count']).toBe(0);
    // Real start and end: the span covers the retry's backoff.
    const ms = (t: [number, number]): number => t[0] * 1e3 + t[1] / 1e6;
    expect(ms(encrypt.endTime)).toBeGreaterThanOrEqual(ms(encrypt.startTime));
  });

  it('a failure ends its span with status ERROR and error.type, and counts as an error', async () => {
    const before = await collectMetrics();
    const errorsBefore = sumOf(before, 'keyport.client.errors', { 'error.type': 'Unsupported' });
    const kp = new Keyport({ providers: [memoryProvider()] });
    await expect(kp.rotateKey(uri)).rejects.toMatchObject({ code: 'Unsupported' });
    const [span] = await finishedSpans();
    expect(span?.name).toBe('keyport rotateKey');
    expect(span?.status).toMatchObject({ code: 2, message: 'Unsupported' });
    expect(span?.attributes).toMatchObject({ 'keyport.outcome': 'failure', 'error.type': 'Unsupported' });
    const after = await collectMetrics();
    expect(sumOf(after, 'keyport.client.errors', { 'error.type': 'Unsupported' })).toBe(errorsBefore + 1);
  });

  it('counts calls and records their latency in seconds', async () => {
    const before = sumOf(await collectMetrics(), 'keyport.client.calls', { 'keyport.operation': 'decrypt' });
    const kp = new Keyport({ providers: [memoryProvider()] });
    for (let i = 0; i < 3; i++) await kp.decrypt(uri, new Uint8Array([1, 2, 3]));
    const after = await collectMetrics();
    expect(sumOf(after, 'keyport.client.calls', { 'keyport.operation': 'decrypt' })).toBe(before + 3);
    const histogram = metricNamed(after, 'keyport.client.duration');
    expect(histogram.descriptor.unit).toBe('s');
    const point = histogram.dataPoints.find((p) => p.attributes['keyport.operation'] === 'decrypt');
    const value = point?.value as { count: number; sum: number };
    expect(value.count).toBeGreaterThanOrEqual(3);
    expect(value.sum).toBeLessThan(value.count); // seconds, not milliseconds
  });

  it('never exports a context value, plaintext or key material', async () => {
    const kp = new Keyport({ providers: [memoryProvider()] });
    await kp.encrypt(uri, new TextEncoder().encode(PLAINTEXT), { context: { tenant: CONTEXT_VALUE } });
    const dataKey = await kp.generateDataKey(uri, { bytes: 32, context: { tenant: CONTEXT_VALUE } });
    expect(dataKey.plaintext).toEqual(DATA_KEY);
    await expect(
      kp.decrypt(uri, new TextEncoder().encode(PLAINTEXT), { context: { [CONTEXT_VALUE]: CONTEXT_VALUE } }),
    ).resolves.toBeDefined();
    const exported = everyExportedString(await finishedSpans(), await collectMetrics());
    expect(await finishedSpans()).toHaveLength(3);
    for (const secret of [
      CONTEXT_VALUE,
      PLAINTEXT,
      Buffer.from(DATA_KEY).toString('hex'),
      Buffer.from(DATA_KEY).toString('base64'),
      Array.from(DATA_KEY).join(','),
    ]) {
      expect(exported).not.toContain(secret);
    }
    expect((await finishedSpans())[0]?.attributes['keyport.key.uri']).toBe('local://k.kp#orders');
  });

  it('withKeyportSpan parents the provider calls it makes, and records a failure by code only', async () => {
    const kp = new Keyport({ providers: [memoryProvider()] });
    await withKeyportSpan('keyport envelope.seal', { 'keyport.recipients': 1 }, async () => {
      await kp.encrypt(uri, new Uint8Array([1]));
    });
    const [child, parent] = await finishedSpans();
    expect(parent?.name).toBe('keyport envelope.seal');
    expect(child?.parentSpanContext?.spanId).toBe(parent?.spanContext().spanId);
    expect(child?.spanContext().traceId).toBe(parent?.spanContext().traceId);

    spans.reset();
    await expect(
      withKeyportSpan('keyport migrate.batch', {}, async () => {
        throw new KeyportError('InvalidCiphertext', `bad input ${PLAINTEXT}`);
      }),
    ).rejects.toMatchObject({ code: 'InvalidCiphertext' });
    const [failed] = await finishedSpans();
    expect(failed?.status).toEqual({ code: 2, message: 'InvalidCiphertext' });
    expect(JSON.stringify(failed?.attributes)).not.toContain(PLAINTEXT);
  });
});

describe('redactKeyUri', () => {
  it.each([
    ['aws-kms://alias/orders?region=eu-west-1&endpoint=http://127.0.0.1:1', 'aws-kms://alias/orders'],
    [`hcvault://user:${TOKEN}@vault:8200/transit/keys/k`, 'hcvault://vault:8200/transit/keys/k'],
    [
      `pkcs11:token=hsm;object=k;pin-value=${PIN}?module-path=/x.so&pin-source=file:/p`,
      'pkcs11:token=hsm;object=k',
    ],
    [`pkcs11+hsm2:token=hsm;pin-value=${PIN};object=k`, 'pkcs11+hsm2:token=hsm;object=k'],
    [`PKCS11:token=hsm;PIN-VALUE=${PIN}`, 'PKCS11:token=hsm'],
    ['local:///var/keys.kp#orders', 'local:///var/keys.kp#orders'],
    [
      'gcp-kms://projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/2',
      'gcp-kms://projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/2',
    ],
  ])('%s -> %s', (input, expected) => {
    expect(redactKeyUri(input)).toBe(expected);
  });
});

function metricNamed(rm: ResourceMetrics, name: string) {
  const found = rm.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === name);
  if (found === undefined) throw new Error(`no metric ${name}`);
  return found;
}

function sumOf(rm: ResourceMetrics, name: string, match: Record<string, string>): number {
  const metric = rm.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === name);
  if (metric === undefined) return 0;
  return metric.dataPoints
    .filter((p) => Object.entries(match).every(([k, v]) => p.attributes[k] === v))
    .reduce((n, p) => n + (p.value as number), 0);
}
