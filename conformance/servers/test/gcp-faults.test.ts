import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectCode, grpc, type Harness, LOCATION, startHarness } from './gcp-support.js';

describe('Cloud KMS server: fault injection', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ faults: { throttleNext: 1, methods: ['GetKeyRing'] } });
    await h.client.createKeyRing({ parent: LOCATION, keyRingId: 'faults', keyRing: {} });
  });
  afterAll(async () => {
    await h.close();
  });
  const name = `${LOCATION}/keyRings/faults`;
  const noRetry = { retry: { retryCodes: [] } };

  it('throttles with RESOURCE_EXHAUSTED as configured at start, then recovers', async () => {
    await expectCode(h.client.getKeyRing({ name }, noRetry), grpc.status.RESOURCE_EXHAUSTED);
    const [ring] = await h.client.getKeyRing({ name }, noRetry);
    expect(ring.name).toBe(name);
  });

  it('throttles every Nth call when set at run time', async () => {
    h.server.faults.set({ throttleEvery: 2 });
    await h.client.getKeyRing({ name }, noRetry);
    await expectCode(h.client.getKeyRing({ name }, noRetry), grpc.status.RESOURCE_EXHAUSTED);
    await h.client.getKeyRing({ name }, noRetry);
    h.server.faults.clear();
  });

  it('adds latency', async () => {
    h.server.faults.set({ latencyMs: 300 });
    await expectCode(
      h.client.getKeyRing({ name }, { timeout: 50, ...noRetry }),
      grpc.status.DEADLINE_EXCEEDED,
    );
    h.server.faults.clear();
    const [ring] = await h.client.getKeyRing({ name }, { timeout: 5000, ...noRetry });
    expect(ring.name).toBe(name);
  });

  it('drops the connection and serves again afterwards', async () => {
    h.server.faults.set({ dropNext: 1 });
    await expectCode(h.client.getKeyRing({ name }, noRetry), grpc.status.UNAVAILABLE);
    const [ring] = await h.client.getKeyRing({ name }, noRetry);
    expect(ring.name).toBe(name);
  });
});
