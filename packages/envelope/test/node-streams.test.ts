/** Node stream adapters: pipeline through createSealStream and createOpenStream. */
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { KeyOperations } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { createOpenStream, createSealStream, openEnvelope, sealEnvelope, sealStream } from '../src/index.js';
import { aes, collect, flip } from './helpers/keys.js';
import { localKms } from './helpers/local-kms.js';

describe('Node streams', () => {
  for (const concurrency of [1, 3]) {
    it(`seal and open through a pipeline (concurrency ${concurrency})`, async () => {
      const pt = randomBytes(300_000);
      const parts: Buffer[] = [];
      await pipeline(
        Readable.from([pt.subarray(0, 1000), pt.subarray(1000, 250_000), pt.subarray(250_000)]),
        createSealStream({ recipients: [aes], frameLength: 65536, suite: 0x0578, concurrency }),
        createOpenStream({ trust: [aes], concurrency }),
        new Writable({
          write(chunk: Buffer, _enc, cb) {
            parts.push(chunk);
            cb();
          },
        }),
      );
      expect(Buffer.concat(parts).equals(pt)).toBe(true);
    });
  }

  it('a Node Readable is a valid source, and a broken message errors the pipeline', async () => {
    const pt = randomBytes(5000);
    const msg = await collect(sealStream(Readable.from([pt]), { recipients: [aes], frameLength: 1024 }));
    expect(Buffer.from((await openEnvelope(msg, { trust: [aes] })).plaintext).equals(pt)).toBe(true);
    flip(msg, msg.length - 1);
    await expect(
      pipeline(
        Readable.from([msg]),
        createOpenStream({ trust: [aes] }),
        new Writable({ write: (_c, _e, cb) => cb() }),
      ),
    ).rejects.toMatchObject({ code: 'Integrity' });
  });
  it('destroying a seal or open stream aborts the KMS call it waits on', async () => {
    const kms = await localKms(1);
    try {
      const uri = kms.uris[0] as string;
      const message = await sealEnvelope(randomBytes(64), { recipients: [uri], keys: kms.keys });
      // The same KMS, but stalled: calls answer only when their signal fires.
      const seen: AbortSignal[] = [];
      const stalled = (_uri: string, _bytes?: unknown, o?: { signal?: AbortSignal }) =>
        new Promise<never>((_, reject) => {
          const signal = (o ?? (_bytes as { signal?: AbortSignal } | undefined))?.signal;
          if (signal === undefined) return;
          seen.push(signal);
          signal.addEventListener('abort', () => reject(signal.reason), { once: true });
        });
      const keys = { generateDataKey: stalled, decrypt: stalled } as unknown as KeyOperations;
      for (const [make, input] of [
        [() => createSealStream({ recipients: [uri], keys }), randomBytes(16)],
        [() => createOpenStream({ trust: [uri], keys }), Buffer.from(message)],
      ] as const) {
        seen.length = 0;
        const stream = make();
        stream.on('error', () => undefined);
        stream.resume(); // a reader: the stream starts its work
        stream.write(input);
        await until(() => seen.length === 1);
        stream.destroy();
        // Before: the destroyed stream's call kept an unaborted signal until the KMS answered.
        await until(() => seen[0]?.aborted === true);
      }
    } finally {
      await kms.close();
    }
  });
});

/** Resolves once `done()` holds (polled), or fails after 5 s. */
async function until(done: () => boolean): Promise<void> {
  const end = Date.now() + 5_000;
  while (!done()) {
    if (Date.now() > end) throw new Error('condition not reached within 5 s');
    await new Promise((r) => setTimeout(r, 5));
  }
}
