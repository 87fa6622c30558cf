/** Throttling: classified per provider, backed off and retried, counted in the report. */
import { KeyportError } from '@keyport/core';
import { sealEnvelope } from '@keyport/envelope';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseObjectLocation } from '../src/location.js';
import { s3Store } from '../src/s3.js';
import type { ObjectStore } from '../src/store.js';
import { isThrottle, MAX_MAX_RPS, MIN_MAX_RPS, providerError, TokenBucket } from '../src/throttle.js';
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

  it('a token bucket keeps to a rate below one call a second: 0.5 lets one through, then one every 2 s', async () => {
    const bucket = new TokenBucket(0.5);
    const t0 = performance.now();
    await bucket.take();
    expect(performance.now() - t0).toBeLessThan(100);
    await bucket.take();
    const seconds = (performance.now() - t0) / 1000;
    expect(seconds).toBeGreaterThan(1.9);
    expect(seconds).toBeLessThan(3);
  });

  it(`a token bucket takes rates from ${MIN_MAX_RPS} to ${MAX_MAX_RPS} a second, or Infinity; nothing else`, () => {
    for (const rate of [MIN_MAX_RPS, 0.01, 0.5, 1.5, MAX_MAX_RPS, Number.POSITIVE_INFINITY])
      expect(new TokenBucket(rate).ratePerSecond).toBe(rate);
    // 1e-9: a wait past 2^31 ms, which Node's timers fire at once, every millisecond.
    for (const rate of [0, -1, 1e-9, MIN_MAX_RPS / 2, MAX_MAX_RPS * 2, Number.NaN, Number.NEGATIVE_INFINITY])
      expect(() => new TokenBucket(rate), String(rate)).toThrow(
        expect.objectContaining({ code: 'InvalidArgument', message: expect.stringContaining('maxRps') }),
      );
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

  it('every listing page is a storage call the rate limit waits for, however few entries it holds', async () => {
    const uri = `${await freshBucket('moto')}/r/`;
    const bucket = uri.slice('s3://'.length).split('/')[0] as string;
    const e = endpointsFor('moto');
    // One entry to a page: six objects are seven listing requests (the last one empty).
    const paged = s3Store({
      bucket,
      endpoint: e.s3Endpoint as string,
      region: e.s3Region as string,
      pageSize: 1,
    });
    for (let i = 0; i < 6; i++)
      await paged.put(
        `r/o${i}`,
        await sealEnvelope(Buffer.from(`v${i}`), { recipients: [k.from], keys: k.keys }),
      );
    const pages = { requested: 0, metered: 0 };
    const counting: ObjectStore = {
      ...paged,
      list: (p, signal, beforePage) =>
        paged.list(p, signal, async () => {
          pages.requested++;
          // The worker's hook: its token bucket and its call count.
          if (beforePage !== undefined) {
            pages.metered++;
            await beforePage();
          }
        }),
    };
    const report = await runShard({
      location: { store: counting, prefix: 'r/' },
      from: k.from,
      to: k.to,
      keys: k.keys,
      maxRps: 1000,
    });
    expect(report.counts).toMatchObject({ listed: 6, migrated: 6, failed: 0 });
    // Before, a listing took one token per 1,000 entries: six pages of one went by as one call.
    expect(pages.requested).toBeGreaterThanOrEqual(7);
    expect(pages.metered).toBe(pages.requested);
    expect(report.calls.s3?.calls).toBeGreaterThanOrEqual(pages.requested + 6 * 2);
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
