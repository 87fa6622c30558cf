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
import { realpathSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isKeyportError, Keyport, withKeyportSpan } from '@keyport/core';
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
  try {
    await session(dir);
  } finally {
    // 4. At shutdown, however the work ended: flush spans, export the metrics, and unregister,
    // so a failed run leaves no global provider or metric timer behind.
    try {
      await tracerProvider.shutdown();
      await meterProvider.shutdown();
    } finally {
      trace.disable();
      metrics.disable();
      context.disable();
    }
  }
}

/** 2. Ordinary keyport code: nothing telemetry-specific in it. */
async function session(dir: string): Promise<void> {
  const kp = new Keyport({
    providers: [
      // A demo passphrase: never ship a default like this; read it from a secret store.
      await openLocalKeystore({ path: join(dir, 'otel.kp'), passphrase: 'demo passphrase', create: true }),
    ],
  });
  try {
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
    // A refused call: its span has status ERROR and error.type InvalidCiphertext. Only that
    // refusal is expected; a success or any other error is a real problem and is not hidden.
    const { ciphertext } = await kp.encrypt(key.uri, new TextEncoder().encode('x'), { context: context_ });
    const refused = await kp.decrypt(key.uri, ciphertext, { context: { tenant: 'someone else' } }).then(
      () => undefined,
      (error: unknown) => error,
    );
    if (!isKeyportError(refused) || refused.code !== 'InvalidCiphertext') {
      throw new Error('opentelemetry example: a decrypt under another context was not refused', {
        cause: refused,
      });
    }
  } finally {
    await kp.close();
  }
}

/**
 * True when `argv1` (the script node was given) is this module, compared as real paths: a URL
 * built from the path by hand breaks on `#`, `%` or `?` in a directory name, and a path through
 * a symlink names the module by another path; either way the program would do nothing, silently.
 */
export function isEntryPoint(moduleUrl: string, argv1: string | undefined): boolean {
  if (argv1 === undefined) return false;
  try {
    return realpathSync(argv1) === realpathSync(fileURLToPath(moduleUrl));
  } catch {
    return false; // not a file (a REPL, `node -e`): not run as the program
  }
}

if (isEntryPoint(import.meta.url, process.argv[1])) {
  const dir = await mkdtemp(join(tmpdir(), 'keyport-otel-'));
  try {
    await tracedSession(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
