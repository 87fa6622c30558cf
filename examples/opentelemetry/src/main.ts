/**
 * keyport with OpenTelemetry: register a tracer and a meter provider (here exporting to the
 * console; in production an OTLP exporter), and every provider call a `Keyport` client makes
 * becomes a span `keyport <operation>` with its provider, operation, key URI (query, user info
 * and PIN removed), key version, outcome, error code and retry count, and counts in the
 * `keyport.client.calls` / `keyport.client.errors` counters and the `keyport.client.duration`
 * histogram. `withKeyportSpan` groups the calls of one unit of work under a parent span.
 *
 * Nothing else is needed: `@keyport/core` finds `@opentelemetry/api` when the application has
 * it installed, and does nothing at all when it is absent. Context values, plaintext and key
 * material never become attributes.
 *
 * Run it from the repository root (the build takes the workspace packages it imports with it):
 * `pnpm exec turbo run build --filter=@keyport/example-opentelemetry... && node examples/opentelemetry/dist/main.js`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Keyport, withKeyportSpan } from '@keyport/core';
import { openEnvelope, sealEnvelope } from '@keyport/envelope';
import { openLocalKeystore } from '@keyport/local';
import { context, metrics, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  ConsoleMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { ConsoleSpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';

export async function tracedSession(dir: string): Promise<void> {
  // 1. OpenTelemetry set up once at start-up, before the first keyport call.
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  const tracerProvider = new TracerProvider({
    spanProcessors: [new SimpleSpanProcessor({ exporter: new ConsoleSpanExporter() })],
  });
  trace.setGlobalTracerProvider(tracerProvider);
  const metricReader = new PeriodicExportingMetricReader({
    exporter: new ConsoleMetricExporter(),
    exportIntervalMillis: 60_000,
  });
  const meterProvider = new MeterProvider({ readers: [metricReader] });
  metrics.setGlobalMeterProvider(meterProvider);

  // 2. Ordinary keyport code: nothing telemetry-specific in it.
  const kp = new Keyport({
    providers: [
      await openLocalKeystore({ path: join(dir, 'otel.kp'), passphrase: 'demo passphrase', create: true }),
    ],
  });
  const key = await kp.createKey('local', { name: 'orders', spec: 'AES_256' });
  const context_ = { tenant: 'acme' };
  // 3. A unit of work: its provider calls become children of one span.
  await withKeyportSpan('keyport orders.reseal', { 'app.order.count': 2 }, async () => {
    for (const order of ['order #1', 'order #2']) {
      const { ciphertext } = await kp.encrypt(key.uri, new TextEncoder().encode(order), {
        context: context_,
      });
      await kp.decrypt(key.uri, ciphertext, { context: context_ });
    }
  });
  // Envelopes: `keyport envelope.seal` / `keyport envelope.open` spans around their provider calls.
  const message = await sealEnvelope(new TextEncoder().encode('order #3'), {
    recipients: [key.uri],
    context: context_,
    keys: kp,
  });
  await openEnvelope(message, { trust: [key.uri], requiredContext: context_, keys: kp });
  // A refused call: its span has status ERROR and error.type InvalidCiphertext.
  const { ciphertext } = await kp.encrypt(key.uri, new TextEncoder().encode('x'), { context: context_ });
  await kp.decrypt(key.uri, ciphertext, { context: { tenant: 'someone else' } }).catch(() => undefined);
  await kp.close();

  // 4. At shutdown: flush spans and export the metrics.
  await tracerProvider.shutdown();
  await meterProvider.shutdown();
  trace.disable();
  metrics.disable();
  context.disable();
}

if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const dir = await mkdtemp(join(tmpdir(), 'keyport-otel-'));
  try {
    await tracedSession(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
