/**
 * The streams and the data-key cache: concurrent fills against a small `maxEntries`,
 * a filler's abort reaching callers that did not abort, an abort while frames are in flight at
 * the stream workers, and a non-bytes chunk when `plaintextLength` is given.
 */
import { randomBytes } from 'node:crypto';
import { KeyportError } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { CORES } from '../src/frame-pool.js';
import {
  DataKeyCache,
  openEnvelope,
  openStream,
  type Recipient,
  sealEnvelope,
  sealStream,
} from '../src/index.js';
import { aes, collect } from './helpers/keys.js';

const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e: unknown) => (e instanceof KeyportError ? e.code : `not a KeyportError: ${String(e)}`),
  );

describe('data-key cache under concurrency', () => {
  it('n keys filled at once over a small maxEntries make n provider calls, not n(n+1)/2', async () => {
    const cache = new DataKeyCache({ maxAgeMs: 60_000, maxEntries: 1 });
    const fill = async () => ({ dataKey: randomBytes(32) });
    const got = await Promise.all(
      Array.from({ length: 20 }, (_, i) => cache.acquire(`k${i}`, 0, fill, () => i)),
    );
    expect(got).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(cache.stats.fills).toBe(20);
    expect(cache.size).toBe(1);

    // The same through sealEnvelope: 20 contexts at once, raw AES (whose wraps settle together).
    const sealCache = new DataKeyCache({ maxAgeMs: 60_000, maxEntries: 5 });
    const plaintext = randomBytes(5);
    const msgs = await Promise.all(
      Array.from({ length: 20 }, (_, v) =>
        sealEnvelope(plaintext, { recipients: [aes], cache: sealCache, context: { v: String(v) } }),
      ),
    );
    expect(sealCache.stats.fills).toBe(20);
    for (const m of msgs.slice(0, 3)) {
      expect(Buffer.from((await openEnvelope(m, { trust: [aes] })).plaintext).equals(plaintext)).toBe(true);
    }
  });

  it('the filler is charged like any user: maxMessages still bounds the uses of one data key', async () => {
    const cache = new DataKeyCache({ maxAgeMs: 60_000, maxMessages: 3 });
    const keys: Uint8Array[] = [];
    const fill = async () => ({ dataKey: randomBytes(32) });
    await Promise.all(
      Array.from({ length: 7 }, () =>
        cache.acquire('k', 0, fill, (m) => keys.push(Uint8Array.from(m.dataKey))),
      ),
    );
    expect(cache.stats.fills).toBe(3);
    const counts = new Map<string, number>();
    for (const k of keys)
      counts.set(Buffer.from(k).toString('hex'), (counts.get(Buffer.from(k).toString('hex')) ?? 0) + 1);
    expect([...counts.values()].sort()).toEqual([1, 3, 3]);
  });

  it("a filler's abort does not fail the callers waiting on its fill: they fill for themselves", async () => {
    let wraps = 0;
    /** `aes`, whose wrap takes 30 ms and honours the call's signal (as a KMS call does). */
    const slow: Recipient = {
      id: aes.id,
      async wrap(dataKey, context, env) {
        wraps++;
        await new Promise<void>((resolve, reject) => {
          const t = setTimeout(resolve, 30);
          env.signal?.addEventListener('abort', () => {
            clearTimeout(t);
            reject(new KeyportError('Aborted', 'the operation was aborted'));
          });
        });
        return aes.wrap(dataKey, context, env);
      },
      matches: (edk) => aes.matches(edk),
      unwrap: (edk, context, env) => aes.unwrap(edk, context, env),
    };
    const cache = new DataKeyCache({ maxAgeMs: 60_000 });
    const controller = new AbortController();
    const plaintext = randomBytes(5);
    const aborted = sealEnvelope(plaintext, { recipients: [slow], cache, signal: controller.signal });
    const others = Array.from({ length: 3 }, () => sealEnvelope(plaintext, { recipients: [slow], cache }));
    setTimeout(() => controller.abort(), 5);
    expect(await codeOf(aborted)).toBe('Aborted');
    const sealed = await Promise.all(others);
    // One more fill for the three (single-flight still), not one each.
    expect(wraps).toBe(2);
    for (const m of sealed) {
      expect(Buffer.from((await openEnvelope(m, { trust: [aes] })).plaintext).equals(plaintext)).toBe(true);
    }
    // Any other failure still reaches every waiter (a provider that is down is asked once).
    let fills = 0;
    const failing = async () => {
      fills++;
      await new Promise((r) => setTimeout(r, 5));
      throw new KeyportError('Unavailable', 'down');
    };
    const results = await Promise.all(
      Array.from({ length: 4 }, () => codeOf(cache.acquire('x', 0, failing, () => 1))),
    );
    expect(results).toEqual(['Unavailable', 'Unavailable', 'Unavailable', 'Unavailable']);
    expect(fills).toBe(1);
  });
});

describe('streams', () => {
  const F = 64 * 1024;
  it.skipIf(CORES < 2)(
    'openStream with frames in flight releases no frame after an abort (as the sequential path)',
    async () => {
      const plaintext = randomBytes(8 * F);
      const msg = await sealEnvelope(plaintext, { recipients: [aes], frameLength: F, concurrency: 1 });
      for (const concurrency of [1, 2]) {
        const controller = new AbortController();
        let got = 0;
        const err = await (async () => {
          for await (const p of openStream([msg], { trust: [aes], signal: controller.signal, concurrency })) {
            got += p.length;
            controller.abort();
          }
        })().catch((e: unknown) => e);
        expect((err as KeyportError).code).toBe('Aborted');
        // The piece given before the abort, and nothing of any later frame.
        expect(got).toBeLessThanOrEqual(F);
      }
    },
  );

  it('a chunk that is not bytes is InvalidArgument with plaintextLength too, never a TypeError', async () => {
    for (const chunk of [null, undefined, 'text', 42, new ArrayBuffer(4)]) {
      for (const plaintextLength of [undefined, 4]) {
        const run = collect(
          sealStream([chunk as unknown as Uint8Array], {
            recipients: [aes],
            ...(plaintextLength === undefined ? {} : { plaintextLength }),
          }),
        );
        expect(await codeOf(run)).toBe('InvalidArgument');
      }
    }
  });
});
