/**
 * Fuzzing `verifyAuditText` over random mutations of a valid log and its anchor: it never
 * throws, always answers with a typed verdict, and never calls a changed log intact. And the
 * sink opening a mutated log either refuses it with a typed error, or keeps every byte up to
 * its anchored head and repairs only a crash-shaped tail — the change, if any, still caught by
 * verify.
 * Run count: KEYPORT_FUZZ_RUNS (default 200; `pnpm fuzz` runs any size).
 */
import { readFile, writeFile } from 'node:fs/promises';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type AuditProblemKind,
  isKeyportError,
  JsonlAuditSink,
  verifyAuditLog,
  verifyAuditText,
} from '../src/index.js';
import { event, KEY, tempLog, type WrittenLog, writeLog } from './support/audit.js';

const RUNS = Number(process.env.KEYPORT_FUZZ_RUNS ?? 200);
/** A deadline that grows with the run count (a run takes well under 1 ms here). */
const TIMEOUT_MS = Math.max(30_000, RUNS * 2);
const KINDS: readonly AuditProblemKind[] = [
  'malformed',
  'edited',
  'forged',
  'dropped',
  'reordered',
  'duplicated',
  'after-head',
  'truncated',
  'torn-tail',
  'rewritten',
  'rolled-back',
  'anchor-missing',
  'anchor-invalid',
];

type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'set'; at: number; char: string }
  | { kind: 'insert'; at: number; text: string }
  | { kind: 'cut'; at: number; length: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'delete-line'; line: number }
  | { kind: 'duplicate-line'; line: number; to: number }
  | { kind: 'swap-lines'; a: number; b: number }
  | { kind: 'append'; text: string }
  | { kind: 'anchor'; inner: Mutation };

const fraction = fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true });
const idx = (f: number, n: number): number => Math.floor(f * n);
const junk = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.constantFrom('\n', '"', '}', ',"mac":"', '0', 'f', 'F', ' ', '\\u0030', '1e0', '\r'),
);

const base: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fraction, bit: fc.integer({ min: 0, max: 6 }) }),
  fc.record({
    kind: fc.constant('set' as const),
    at: fraction,
    char: fc.string({ minLength: 1, maxLength: 1 }),
  }),
  fc.record({ kind: fc.constant('insert' as const), at: fraction, text: junk }),
  fc.record({ kind: fc.constant('cut' as const), at: fraction, length: fc.integer({ min: 1, max: 200 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fraction }),
  fc.record({ kind: fc.constant('delete-line' as const), line: fraction }),
  fc.record({ kind: fc.constant('duplicate-line' as const), line: fraction, to: fraction }),
  fc.record({ kind: fc.constant('swap-lines' as const), a: fraction, b: fraction }),
  fc.record({ kind: fc.constant('append' as const), text: junk }),
);
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 4, arbitrary: base },
  { weight: 1, arbitrary: base.map((inner) => ({ kind: 'anchor' as const, inner })) },
);

function apply(text: string, m: Mutation): string {
  const lines = text.split('\n');
  lines.pop();
  const rejoin = (ls: string[]): string => ls.map((l) => `${l}\n`).join('');
  switch (m.kind) {
    case 'flip': {
      const at = idx(m.at, text.length);
      return text.slice(0, at) + String.fromCharCode(text.charCodeAt(at) ^ (1 << m.bit)) + text.slice(at + 1);
    }
    case 'set': {
      const at = idx(m.at, text.length);
      return text.slice(0, at) + m.char + text.slice(at + 1);
    }
    case 'insert': {
      const at = idx(m.at, text.length + 1);
      return text.slice(0, at) + m.text + text.slice(at);
    }
    case 'cut': {
      const at = idx(m.at, text.length);
      return text.slice(0, at) + text.slice(at + m.length);
    }
    case 'truncate':
      return text.slice(0, idx(m.at, text.length));
    case 'delete-line':
      lines.splice(idx(m.line, lines.length), 1);
      return rejoin(lines);
    case 'duplicate-line': {
      const from = idx(m.line, lines.length);
      lines.splice(idx(m.to, lines.length + 1), 0, lines[from] as string);
      return rejoin(lines);
    }
    case 'swap-lines': {
      const a = idx(m.a, lines.length);
      const b = idx(m.b, lines.length);
      [lines[a], lines[b]] = [lines[b] as string, lines[a] as string];
      return rejoin(lines);
    }
    case 'append':
      return text + m.text;
    case 'anchor':
      return text; // applied to the anchor by the caller
  }
}

describe('audit verify fuzz', () => {
  let log: WrittenLog;
  beforeAll(async () => {
    log = await writeLog(12);
  });

  it(
    `never throws and never accepts a mutated log or anchor (${RUNS} runs)`,
    () => {
      fc.assert(
        fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (mutations) => {
          let text = log.text;
          let anchor = log.anchor;
          for (const m of mutations) {
            if (m.kind === 'anchor') anchor = apply(anchor, m.inner);
            else text = apply(text, m);
          }
          const v = verifyAuditText(text, KEY, anchor);
          expect(typeof v.ok).toBe('boolean');
          if (text === log.text && anchor === log.anchor) {
            expect(v.ok).toBe(true);
            return;
          }
          expect(v.ok).toBe(false);
          expect(KINDS).toContain(v.problem?.kind);
          expect(Number.isInteger(v.problem?.line)).toBe(true);
        }),
        { numRuns: RUNS },
      );
    },
    TIMEOUT_MS,
  );
});

describe('audit sink open fuzz', () => {
  let log: WrittenLog;
  beforeAll(async () => {
    log = await writeLog(6);
  });

  const runs = Math.max(1, Math.floor(RUNS / 4)); // each run writes files

  it(
    `refuses a mutated log with a typed error or repairs it without losing a record (${runs} runs)`,
    async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(base, { minLength: 1, maxLength: 3 }), async (mutations) => {
          const text = mutations.reduce(apply, log.text);
          const path = await tempLog();
          await writeFile(path, text);
          await writeFile(`${path}.anchor`, log.anchor);
          let sink: JsonlAuditSink;
          try {
            sink = await JsonlAuditSink.open(path, { hmacKey: KEY });
          } catch (e) {
            expect(isKeyportError(e, 'Integrity'), String(e)).toBe(true);
            return;
          }
          await sink.write(event(99));
          await sink.close();
          // Opening checks the head, not every record (verify does): what it accepted it kept
          // byte for byte up to the anchored size, and verify flags any change before the head.
          const after = await readFile(path);
          const anchored = Buffer.byteLength(log.text);
          const kept = Buffer.from(text).subarray(0, anchored);
          expect(after.subarray(0, anchored).equals(kept)).toBe(true);
          expect((await verifyAuditLog(path, KEY)).ok).toBe(kept.equals(Buffer.from(log.text)));
        }),
        { numRuns: runs },
      );
    },
    TIMEOUT_MS * 20,
  );
});
