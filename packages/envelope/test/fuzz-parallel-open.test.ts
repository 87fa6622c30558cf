/**
 * Fuzz: the parallel paths must agree with the sequential one on every mutated message. A 4 MiB
 * message with small frames (so frames are many) is mutated at random (bit flips anywhere, in
 * frame prefixes especially, truncation, a frame dropped or duplicated, bytes appended) and
 * opened with `openEnvelope` at concurrency 1 and 4 (from ordinary and from shared memory) and
 * with `openStream` at 1 and 4: the results (error code, or plaintext) are the same, a modified
 * message never opens, and the stream releases only plaintext from frames before the first
 * changed byte. Runs: KEYPORT_FUZZ_RUNS (small in CI).
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseHeader } from '../src/header.js';
import { openEnvelope, openStream, sealEnvelope } from '../src/index.js';
import { resolveLimits } from '../src/limits.js';
import { PARALLEL_MIN_BYTES } from '../src/parallel.js';
import { aes, chunked } from './helpers/keys.js';

// Each case opens a 4 MiB message four times, so a `pnpm fuzz` run size counts ten cases as one.
const fromEnv = Number(process.env.KEYPORT_FUZZ_RUNS);
const RUNS = Number.isSafeInteger(fromEnv) && fromEnv > 0 ? Math.max(1, Math.ceil(fromEnv / 10)) : 25;
const F = 64 * 1024;
const FRAME = 4 + 12 + F + 16;

let pt: Buffer;
let msg: Buffer;
let headerLength: number;
beforeAll(async () => {
  pt = randomBytes(PARALLEL_MIN_BYTES + 777);
  msg = Buffer.from(await sealEnvelope(pt, { recipients: [aes], frameLength: F, context: { f: 'uzz' } }));
  headerLength = parseHeader(msg, resolveLimits())?.length as number;
});

type Mutation = { name: string; apply: () => Buffer };
const frames = () => Math.floor((msg.length - headerLength) / FRAME);
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }).map(({ at, bit }) => ({
    name: `flip bit ${bit} anywhere (${at})`,
    apply: () => {
      const b = Buffer.from(msg);
      const i = headerLength + (at % (b.length - headerLength));
      b[i] = (b[i] as number) ^ (1 << bit);
      return b;
    },
  })),
  fc.record({ k: fc.nat(), off: fc.integer({ min: 0, max: 15 }) }).map(({ k, off }) => ({
    name: `flip in frame prefix (${k}, ${off})`,
    apply: () => {
      const b = Buffer.from(msg);
      const i = headerLength + (k % frames()) * FRAME + off;
      b[i] = (b[i] as number) ^ 0x01;
      return b;
    },
  })),
  fc.nat().map((n) => ({
    name: `truncate (${n})`,
    apply: () => msg.subarray(0, headerLength + (n % (msg.length - headerLength))),
  })),
  fc.record({ k: fc.nat(), dup: fc.boolean() }).map(({ k, dup }) => ({
    name: `${dup ? 'duplicate' : 'drop'} frame (${k})`,
    apply: () => {
      const at = headerLength + (k % frames()) * FRAME;
      const f = msg.subarray(at, at + FRAME);
      return dup
        ? Buffer.concat([msg.subarray(0, at), f, f, msg.subarray(at + FRAME)])
        : Buffer.concat([msg.subarray(0, at), msg.subarray(at + FRAME)]);
    },
  })),
  fc.uint8Array({ minLength: 1, maxLength: 40 }).map((extra) => ({
    name: 'append bytes',
    apply: () => Buffer.concat([msg, extra]),
  })),
);

async function openWhole(bad: Buffer, concurrency: number): Promise<string> {
  return openEnvelope(bad, { trust: [aes], concurrency }).then(
    (r) => (Buffer.from(r.plaintext).equals(pt) ? 'same plaintext' : 'OTHER PLAINTEXT'),
    (e: { code?: string }) => `error ${e.code}`,
  );
}

async function openStreamed(
  bad: Buffer,
  concurrency: number,
): Promise<{ outcome: string; released: Buffer }> {
  const parts: Buffer[] = [];
  const outcome = await (async () => {
    for await (const p of openStream(chunked(bad, 50_000), { trust: [aes], concurrency }))
      parts.push(Buffer.from(p));
  })().then(
    () => 'ok',
    (e: { code?: string }) => `error ${e.code}`,
  );
  return { outcome, released: Buffer.concat(parts) };
}

function firstDifference(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return n;
}

describe('fuzz: parallel open agrees with sequential open', () => {
  it(
    'same outcome at concurrency 1 and 4, buffer and stream; nothing released past the first change',
    async () => {
      await fc.assert(
        fc.asyncProperty(mutation, async (m) => {
          const bad = m.apply();
          const changed = !bad.equals(msg);
          const one = await openWhole(bad, 1);
          const four = await openWhole(bad, 4);
          expect(four, m.name).toBe(one);
          // The same bytes in shared memory: the workers read them in place.
          const inShared = Buffer.from(new SharedArrayBuffer(bad.length));
          inShared.set(bad);
          expect(await openWhole(inShared, 4), `${m.name}, shared`).toBe(one);
          if (changed) expect(one, m.name).toMatch(/^error (InvalidCiphertext|Integrity)$/);
          const s1 = await openStreamed(bad, 1);
          const s4 = await openStreamed(bad, 4);
          expect(s4.outcome, m.name).toBe(s1.outcome);
          expect(s4.released.equals(s1.released), m.name).toBe(true);
          expect(pt.subarray(0, s4.released.length).equals(s4.released), m.name).toBe(true);
          if (changed) {
            // Frames lying wholly before the first changed byte may be released, no others
            // (bytes appended after an intact message: the whole plaintext, then an error).
            const diff = firstDifference(msg, bad);
            const bound = diff >= msg.length ? pt.length : Math.floor((diff - headerLength) / FRAME) * F;
            expect(s4.released.length, m.name).toBeLessThanOrEqual(bound);
          }
        }),
        { numRuns: RUNS },
      );
    },
    30_000 + RUNS * 2_000,
  );
});
