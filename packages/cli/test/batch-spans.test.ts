/**
 * With an OpenTelemetry tracer provider registered, each Vault/OpenBao batch request of a
 * migration is one `keyport migrate.batch` span (operation and size as attributes) whose child
 * is the batched provider call's span; no context value becomes an attribute. Against OpenBao.
 */
import { randomBytes } from 'node:crypto';
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TransitBatchRecipient } from '../src/index.js';
import { awsToOpenbaoWorkspace } from './support/emulators.js';

const spans = new InMemorySpanExporter();
const tracerProvider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter: spans })] });
beforeAll(() => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(tracerProvider);
});
afterAll(() => {
  trace.disable();
  context.disable();
});

describe('migration batch spans', () => {
  it('one keyport migrate.batch span per batch request, parent of its provider call', async () => {
    const { keys, vault, baoUri } = await awsToOpenbaoWorkspace('batch-spans');
    const batcher = new TransitBatchRecipient({ uri: baoUri, provider: vault });
    const dataKeys = Array.from({ length: 12 }, () => randomBytes(32));
    const edks = await Promise.all(dataKeys.map((k, i) => batcher.wrap(k, { tenant: `secret-tenant-${i}` })));
    await Promise.all(edks.map((edk, i) => batcher.unwrap(edk, { tenant: `secret-tenant-${i}` })));
    await tracerProvider.forceFlush();
    const finished = spans.getFinishedSpans();
    const batches = finished.filter((s) => s.name === 'keyport migrate.batch');
    expect(batches).toHaveLength(batcher.stats.encryptRequests + batcher.stats.decryptRequests);
    expect(batches.map((s) => s.attributes['keyport.batch.operation']).sort()).toContain('encrypt');
    expect(batches.reduce((n, s) => n + Number(s.attributes['keyport.batch.size']), 0)).toBe(24);
    const ids = new Set(batches.map((s) => s.spanContext().spanId));
    const children = finished.filter(
      (s) => s.parentSpanContext !== undefined && ids.has(s.parentSpanContext.spanId),
    );
    expect(children.length).toBeGreaterThan(0);
    expect(JSON.stringify(finished.map((s) => s.attributes))).not.toContain('secret-tenant');
    await keys.close();
  });
});
