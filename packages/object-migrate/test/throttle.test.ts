/** Throttling: classified per provider, backed off and retried, counted in the report. */
import { KeyportError } from '@keyport/core';
import { sealEnvelope } from '@keyport/envelope';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseObjectLocation } from '../src/location.js';
import type { ObjectStore } from '../src/store.js';
import { isThrottle, providerError } from '../src/throttle.js';
import { runShard } from '../src/worker.js';
import { type TestKeys, testKeys } from './helpers/keys.js';
import { endpointsFor, freshBucket } from './helpers/stores.js';

let k: TestKeys;
beforeAll(async () => {
  k = await testKeys();
});
afterAll(async () => {
  await k?.close();
});

describe('throttling', () => {
  it("recognises each provider's slow-down answers", () => {
    expect(isThrottle(503, 'SlowDown')).toBe(true);
    expect(isThrottle(undefined, 'ServerBusy')).toBe(true);
    expect(isThrottle(429, undefined)).toBe(true);
    expect(isThrottle(404, 'NoSuchKey')).toBe(false);
    expect(providerError('gs', 'get', 429, 'rateLimitExceeded', new Error('x'))).toMatchObject({
      code: 'Throttled',
    });
    expect(providerError('s3', 'put', 403, 'AccessDenied', new Error('x'))).toMatchObject({
      code: 'AccessDenied',
    });
  });

  it('a worker backs off and retries throttled calls, and reports them per provider', async () => {
    const uri = `${await freshBucket('moto')}/t/`;
    const real = parseObjectLocation(uri, endpointsFor('moto'));
    for (let i = 0; i < 5; i++)
      await real.store.put(
        `t/o${i}`,
        await sealEnvelope(Buffer.from(`v${i}`), { recipients: [k.from], keys: k.keys }),
      );
    // The real store, answering "slow down" to the first three reads as S3 does under load.
    let refusals = 3;
    const slowing: ObjectStore = {
      ...real.store,
      list: (p, s) => real.store.list(p, s),
      async get(key, signal) {
        if (!key.includes('.keyport-migrate/') && refusals-- > 0)
          throw providerError('s3', 'get', 503, 'SlowDown', new Error('Please reduce your request rate.'));
        return real.store.get(key, signal);
      },
      put: (key, body, o) => real.store.put(key, body, o),
    };
    const report = await runShard({
      location: { store: slowing, prefix: 't/' },
      from: k.from,
      to: k.to,
      keys: k.keys,
      concurrency: 1,
      maxRps: 100,
    });
    expect(report.counts).toMatchObject({ listed: 5, migrated: 5, failed: 0 });
    expect(report.calls.s3).toMatchObject({ throttled: 3 });
    expect(report.calls.s3?.calls).toBeGreaterThanOrEqual(5 * 2 + 3);
    expect(report.calls['kms:local']?.calls).toBeGreaterThan(0);
  });

  it('gives up after the attempts and reports the object as failed, typed', async () => {
    const uri = `${await freshBucket('moto')}/u/`;
    const real = parseObjectLocation(uri, endpointsFor('moto'));
    await real.store.put('u/x', await sealEnvelope(Buffer.from('x'), { recipients: [k.from], keys: k.keys }));
    const always: ObjectStore = {
      ...real.store,
      list: (p, s) => real.store.list(p, s),
      async get(key, signal) {
        if (!key.includes('.keyport-migrate/'))
          throw new KeyportError('Throttled', 's3 get: throttled', { provider: 's3' });
        return real.store.get(key, signal);
      },
      put: (key, body, o) => real.store.put(key, body, o),
    };
    const report = await runShard({
      location: { store: always, prefix: 'u/' },
      from: k.from,
      to: k.to,
      keys: k.keys,
    });
    expect(report.counts).toMatchObject({ listed: 1, failed: 1 });
    expect(report.failures[0]).toMatchObject({ key: 'u/x', code: 'Throttled' });
  }, 60_000);
});
