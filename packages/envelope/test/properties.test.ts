/** Property tests (fast-check): round trips, single-byte flips, streaming = buffer bytes. */

import { isKeyportError } from '@keyport/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { openEnvelope, openStream, sealEnvelope } from '../src/index.js';
import { prepareSeal, sealAll } from '../src/seal.js';
import { sealFrames } from '../src/stream.js';
import { aes, chunked, collect, rsa } from './helpers/keys.js';

const contextArb = fc.dictionary(
  fc.string({ minLength: 1, maxLength: 8 }).filter((k) => !k.startsWith('aws-crypto-')),
  fc.string({ maxLength: 12 }),
  { maxKeys: 4 },
);
const suiteArb = fc.constantFrom(0x0478 as const, 0x0578 as const);

describe('properties', () => {
  it('open(seal(x)) = x for any context, size and frame length', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 2000 }),
        contextArb,
        fc.integer({ min: 1, max: 700 }),
        suiteArb,
        async (pt, context, frameLength, suite) => {
          const msg = await sealEnvelope(pt, { recipients: [aes], context, frameLength, suite });
          const out = await openEnvelope(msg, { trust: [aes], requiredContext: context });
          expect(Buffer.from(out.plaintext).equals(Buffer.from(pt))).toBe(true);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('streaming open in arbitrary chunkings gives the same plaintext', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 3000 }),
        fc.integer({ min: 1, max: 300 }),
        suiteArb,
        async (pt, chunk, suite) => {
          const msg = await sealEnvelope(pt, { recipients: [aes], frameLength: 128, suite });
          const out = await collect(openStream(chunked(msg, chunk), { trust: [aes] }));
          expect(out.equals(Buffer.from(pt))).toBe(true);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('streaming seal writes the same bytes as buffer seal (same session)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 3000 }),
        fc.integer({ min: 1, max: 500 }),
        fc.integer({ min: 1, max: 400 }),
        async (pt, chunk, frameLength) => {
          // Same materials and message id: a copy of the session's frame sealer replays it.
          const session = await prepareSeal({ recipients: [aes], frameLength }, undefined);
          const fresh = { ...session, sealer: Object.create(Object.getPrototypeOf(session.sealer)) };
          Object.assign(fresh.sealer, session.sealer);
          const a = sealAll(session, pt);
          const b = await collect(sealFrames(fresh, chunked(pt, chunk)));
          expect(Buffer.from(a).equals(b)).toBe(true);
        },
      ),
      { numRuns: 40 },
    );
  });

  for (const suite of [0x0478, 0x0578] as const) {
    it(`every single-byte flip is rejected (suite 0x0${suite.toString(16)})`, async () => {
      for (const size of [0, 5, 40]) {
        const pt = Buffer.alloc(size, 7);
        const msg = Buffer.from(
          await sealEnvelope(pt, { recipients: [aes, rsa], context: { k: 'v' }, suite, frameLength: 16 }),
        );
        for (let i = 0; i < msg.length; i++) {
          for (const mask of [0x01, 0x80]) {
            const bad = Buffer.from(msg);
            bad[i] = (bad[i] as number) ^ mask;
            const err = await openEnvelope(bad, { trust: [aes, rsa] }).then(
              () => undefined,
              (e: unknown) => e,
            );
            expect(isKeyportError(err), `byte ${i} mask ${mask} of ${msg.length} accepted`).toBe(true);
          }
        }
      }
    });
  }
});
