/** Node stream adapters: pipeline through createSealStream and createOpenStream. */
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { createOpenStream, createSealStream, openEnvelope, sealStream } from '../src/index.js';
import { aes, collect, flip } from './helpers/keys.js';

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
});
