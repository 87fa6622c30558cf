/**
 * Hostile input, fuzz style: valid sealed messages mutated at random (bit flips, truncation,
 * length fields set to 0 / 1 / max, frames reordered, duplicated or dropped, trailing bytes,
 * header tags swapped, version and suite bytes changed) go through `openEnvelope`,
 * `openStream` and `rewrapEnvelope`. Whatever the mutation, each of them either gives back the
 * original plaintext for untouched input, or throws a KeyportError with a code from a short
 * list: never a RangeError/TypeError, never plaintext from a frame whose tag did not verify,
 * and never an error that mentions plaintext, key bytes or context values.
 */
import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { isKeyportError } from '@keyport/core';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { openEnvelope, openStream, rewrapEnvelope, sealEnvelope } from '../src/index.js';
import { aes, aesKey, aesOther, chunked, rsa } from './helpers/keys.js';
import { type Layout, layoutOf, plaintextBefore, withField } from './helpers/layout.js';

const F = 32;
/**
 * Runs per property: small in CI, any size through `pnpm fuzz` (KEYPORT_FUZZ_RUNS=1000000).
 * The timeout grows with the run count so a long fuzz run is not cut off by vitest's default.
 */
const fromEnv = Number(process.env.KEYPORT_FUZZ_RUNS ?? 300);
const RUNS = Number.isSafeInteger(fromEnv) && fromEnv > 0 ? fromEnv : 300;
const TIMEOUT = 30_000 + RUNS * 20;
/** Sentinels: none of these may ever appear in an error (message, cause, attempts, stack). */
const CONTEXT_VALUE = 'ctx-VALUE-s3ntinel-äöü-租户';
const PLAINTEXT_MARK = 'PLAINTEXT-s3ntinel';
const context = { tenant: CONTEXT_VALUE, 'purpose-ключ': `${CONTEXT_VALUE}-2` };
const secrets = [
  CONTEXT_VALUE,
  PLAINTEXT_MARK,
  aesKey.toString('hex'),
  aesKey.toString('base64'),
  aesKey.toString('base64url'),
];

interface Sample {
  readonly msg: Buffer;
  readonly pt: Buffer;
  readonly layout: Layout;
  readonly suite: 0x0478 | 0x0578;
}

const samples: Sample[] = [];
const otherMessages: Buffer[] = [];

beforeAll(async () => {
  for (const suite of [0x0478, 0x0578] as const) {
    for (const size of [0, 1, F - 1, F, 3 * F + 5]) {
      const pt = Buffer.alloc(size);
      for (let i = 0; i < size; i++) pt[i] = PLAINTEXT_MARK.charCodeAt(i % PLAINTEXT_MARK.length);
      const msg = Buffer.from(
        await sealEnvelope(pt, { recipients: [aes, rsa], context, suite, frameLength: F }),
      );
      samples.push({ msg, pt, layout: layoutOf(msg), suite });
      // A second message of the same shape, sealed under the same keys: a source of authentic
      // header tags, frames and footers to splice in.
      otherMessages.push(
        Buffer.from(await sealEnvelope(pt, { recipients: [aes, rsa], context, suite, frameLength: F })),
      );
    }
  }
});

type Mutation = (s: Sample, index: number) => Buffer;

const u = fc.nat();
const mutations: fc.Arbitrary<{ name: string; apply: Mutation }> = fc.oneof(
  fc.record({ at: u, mask: fc.integer({ min: 1, max: 255 }) }).map(({ at, mask }) => ({
    name: `flip byte ${at} ^ ${mask}`,
    apply: (s: Sample) => {
      const out = Buffer.from(s.msg);
      const i = at % out.length;
      out[i] = (out[i] as number) ^ mask;
      return out;
    },
  })),
  u.map((n) => ({
    name: `truncate to ${n}`,
    apply: (s: Sample) => s.msg.subarray(0, n % s.msg.length),
  })),
  fc.uint8Array({ minLength: 1, maxLength: 40 }).map((extra) => ({
    name: `append ${extra.length} bytes`,
    apply: (s: Sample) => Buffer.concat([s.msg, extra]),
  })),
  fc
    .record({
      field: u,
      value: fc.oneof(
        fc.constantFrom(0, 1, 0xff, 0xffff, 0xffff_ffff, 0x8000_0000, 0x7fff_ffff),
        fc.nat({ max: 0xffff_ffff }),
      ),
    })
    .map(({ field, value }) => ({
      name: `set field #${field} to ${value}`,
      apply: (s: Sample) => withField(s.msg, s.layout.fields[field % s.layout.fields.length]!, value),
    })),
  fc
    .record({ a: u, b: u, op: fc.constantFrom('swap', 'duplicate', 'drop', 'repeat-final', 'drop-final') })
    .map(({ a, b, op }) => ({
      name: `frames: ${op} ${a} ${b}`,
      apply: (s: Sample) => {
        const frames = s.layout.frames.map((f) => s.msg.subarray(f.start, f.end));
        const i = a % frames.length;
        const j = b % frames.length;
        if (op === 'swap') [frames[i], frames[j]] = [frames[j]!, frames[i]!];
        if (op === 'duplicate') frames.splice(i, 0, frames[i]!);
        if (op === 'drop') frames.splice(i, 1);
        if (op === 'repeat-final') frames.push(frames[frames.length - 1]!);
        if (op === 'drop-final') frames.pop();
        return Buffer.concat([
          s.msg.subarray(0, s.layout.headerLength),
          ...frames,
          s.msg.subarray(s.layout.footerAt),
        ]);
      },
    })),
  fc.constantFrom('header tag', 'body', 'footer').map((part) => ({
    name: `splice the ${part} of another message`,
    apply: (s: Sample, index: number) => {
      const o = otherMessages[index]!;
      const ol = layoutOf(o);
      if (part === 'header tag') {
        return Buffer.concat([
          s.msg.subarray(0, s.layout.tagAt),
          o.subarray(ol.tagAt, ol.headerLength),
          s.msg.subarray(s.layout.headerLength),
        ]);
      }
      if (part === 'body') {
        return Buffer.concat([
          s.msg.subarray(0, s.layout.headerLength),
          o.subarray(ol.headerLength, ol.footerAt),
          s.msg.subarray(s.layout.footerAt),
        ]);
      }
      return Buffer.concat([s.msg.subarray(0, s.layout.footerAt), o.subarray(ol.footerAt)]);
    },
  })),
  fc
    .record({ version: fc.constantFrom(0, 1, 2, 3, 0x80, 0xff), type: fc.constantFrom(0x80, 0x02, 0x00) })
    .map(({ version, type }) => ({
      name: `version byte ${version}, next byte ${type}`,
      apply: (s: Sample) => {
        const out = Buffer.from(s.msg);
        out[0] = version;
        if (version === 1) out[1] = type; // a v1 header has a type byte where v2 has the suite
        return out;
      },
    })),
  fc
    .oneof(fc.constantFrom(0x0014, 0x0046, 0x0078, 0x0178, 0x0378, 0x0478, 0x0578, 0x0678), fc.nat(0xffff))
    .map((suite) => ({
      name: `suite id 0x${suite.toString(16)}`,
      apply: (s: Sample) => withField(s.msg, { name: 'suite', at: 1, width: 2 }, suite),
    })),
  fc.record({ at: u, length: fc.integer({ min: 1, max: 64 }), insert: fc.boolean() }).map((m) => ({
    name: `${m.insert ? 'insert' : 'delete'} ${m.length} bytes at ${m.at}`,
    apply: (s: Sample) => {
      const i = m.at % s.msg.length;
      return m.insert
        ? Buffer.concat([s.msg.subarray(0, i), randomBytes(m.length), s.msg.subarray(i)])
        : Buffer.concat([s.msg.subarray(0, i), s.msg.subarray(i + m.length)]);
    },
  })),
);

const OPEN_CODES = ['InvalidCiphertext', 'Integrity'];

/** Fails unless `e` is a KeyportError with an expected code and no secret in it anywhere. */
function expectCleanError(e: unknown, what: string): void {
  if (!isKeyportError(e)) throw new Error(`${what}: not a KeyportError: ${inspect(e)}`);
  expect(OPEN_CODES, `${what}: code ${e.code} (${e.message})`).toContain(e.code);
  const text = inspect(e, { depth: 8 });
  for (const s of secrets) expect(text.includes(s), `${what}: error text contains a secret`).toBe(false);
}

function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return n;
}

const sampleIndex = fc.nat({ max: 9 });
const trust = [aes, rsa];

describe('fuzzed hostile messages', () => {
  it(
    'openEnvelope: original plaintext for untouched input, a clean KeyportError otherwise',
    async () => {
      await fc.assert(
        fc.asyncProperty(sampleIndex, mutations, async (index, m) => {
          const s = samples[index]!;
          const bad = m.apply(s, index);
          const result = await openEnvelope(bad, { trust }).then(
            (r) => ({ ok: true as const, plaintext: r.plaintext }),
            (e: unknown) => ({ ok: false as const, error: e }),
          );
          if (bad.equals(s.msg)) {
            expect(result.ok, m.name).toBe(true);
            if (result.ok) expect(Buffer.from(result.plaintext).equals(s.pt)).toBe(true);
          } else if (result.ok) {
            throw new Error(`${m.name}: a modified message opened`);
          } else {
            expectCleanError(result.error, m.name);
          }
        }),
        { numRuns: RUNS },
      );
    },
    TIMEOUT,
  );

  it(
    'openStream: emits only frames that verified before the first changed byte',
    async () => {
      await fc.assert(
        fc.asyncProperty(sampleIndex, mutations, fc.integer({ min: 1, max: 50 }), async (index, m, chunk) => {
          const s = samples[index]!;
          const bad = m.apply(s, index);
          const emitted: Uint8Array[] = [];
          const error = await (async () => {
            for await (const p of openStream(chunked(bad, chunk), { trust })) emitted.push(Buffer.from(p));
          })().then(
            () => undefined,
            (e: unknown) => e ?? new Error('undefined thrown'),
          );
          const out = Buffer.concat(emitted);
          // Whatever came out is a prefix of the plaintext, made only of frames lying wholly
          // before the first byte the mutation changed.
          expect(s.pt.subarray(0, out.length).equals(out), `${m.name}: emitted foreign plaintext`).toBe(true);
          if (bad.equals(s.msg)) {
            expect(error, m.name).toBeUndefined();
            expect(out.equals(s.pt)).toBe(true);
            return;
          }
          expect(error, `${m.name}: a modified message streamed to the end`).toBeDefined();
          expectCleanError(error, m.name);
          expect(out.length, `${m.name}: released a frame at or after the change`).toBeLessThanOrEqual(
            plaintextBefore(s.layout, firstDifference(s.msg, bad)),
          );
        }),
        { numRuns: RUNS },
      );
    },
    TIMEOUT,
  );

  it(
    'rewrapEnvelope: a clean KeyportError, or a message that still refuses to open',
    async () => {
      await fc.assert(
        fc.asyncProperty(sampleIndex, mutations, async (index, m) => {
          const s = samples[index]!;
          const bad = m.apply(s, index);
          const rewrapped = await rewrapEnvelope(bad, { trust, add: [aesOther], remove: [rsa] }).then(
            (r) => ({ ok: true as const, msg: r }),
            (e: unknown) => ({ ok: false as const, error: e }),
          );
          if (!rewrapped.ok) {
            expect(bad.equals(s.msg), `${m.name}: untouched input failed`).toBe(false);
            expectCleanError(rewrapped.error, `rewrap: ${m.name}`);
            return;
          }
          // rewrap copies frames without decrypting them (unsigned suites); the damage must
          // then surface when the result is opened, never turn into a message that opens.
          const opened = await openEnvelope(rewrapped.msg, { trust: [aesOther] }).then(
            (r) => ({ ok: true as const, plaintext: r.plaintext }),
            (e: unknown) => ({ ok: false as const, error: e }),
          );
          if (bad.equals(s.msg)) {
            expect(opened.ok, m.name).toBe(true);
            if (opened.ok) expect(Buffer.from(opened.plaintext).equals(s.pt)).toBe(true);
          } else if (opened.ok) {
            throw new Error(`${m.name}: rewrap turned a modified message into one that opens`);
          } else {
            expectCleanError(opened.error, `open after rewrap: ${m.name}`);
          }
        }),
        { numRuns: RUNS },
      );
    },
    TIMEOUT,
  );

  it('every truncation and every single-byte flip of small messages is refused by the stream too', async () => {
    for (const s of samples.filter((x) => x.pt.length <= 1)) {
      for (let n = 0; n < s.msg.length; n++) {
        const flipped = Buffer.from(s.msg);
        flipped[n] = (s.msg[n] as number) ^ 0x40;
        for (const bad of [s.msg.subarray(0, n), flipped]) {
          const emitted: Buffer[] = [];
          const error = await (async () => {
            for await (const p of openStream([bad], { trust })) emitted.push(Buffer.from(p));
          })().then(
            () => new Error(`offset ${n}: accepted`),
            (e: unknown) => e,
          );
          expectCleanError(error, `offset ${n} of ${s.msg.length}`);
          // Signed messages: frames that verified are out before the footer is read.
          expect(Buffer.concat(emitted).length).toBeLessThanOrEqual(plaintextBefore(s.layout, n));
        }
      }
    }
  });
});
