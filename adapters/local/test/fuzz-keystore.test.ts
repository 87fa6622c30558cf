/**
 * Fuzzing the keystore file parser: mutated files end in a valid body or a typed KeyportError
 * (Integrity, AccessDenied), quickly — never another exception, never a hang. Four layers, each
 * reaching deeper: raw bytes; raw bytes with the unkeyed digest recomputed; the JSON text
 * re-sealed under the right passphrase; the JSON structure (fields replaced, removed, retyped)
 * re-sealed. The run count per property comes from KEYPORT_FUZZ_RUNS (`pnpm fuzz <n>`).
 *
 * Key derivation is the one step not fuzzed per input (scrypt costs milliseconds): keys for the
 * file's own header are derived once; a header whose salt or parameters were mutated gets
 * unrelated keys, which is what a real derivation gives it too (the passphrase check fails).
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isKeyportError } from '@keyport/core';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseSealedBody } from '../src/keystore-file.js';
import { type DerivedKeys, deriveKeys, readHeader, seal, unseal } from '../src/sealed-file.js';
import { newKeystore, o, PASSPHRASE } from './helpers.js';

const RUNS = Number(process.env.KEYPORT_FUZZ_RUNS ?? 150);
/** KEYPORT_FUZZ_SEED replays a reported failure (fast-check prints the seed). */
const PARAMS = {
  numRuns: RUNS,
  ...(process.env.KEYPORT_FUZZ_SEED === undefined ? {} : { seed: Number(process.env.KEYPORT_FUZZ_SEED) }),
};
/** Generous per-input bound: a parse that takes this long is a hang for our purposes. */
const SLOW_MS = 2_000;
const TIMEOUT = Math.max(60_000, RUNS * 10);

let file: Buffer;
let keys: DerivedKeys;
let body: unknown;
const stats = { accepted: 0, byCode: new Map<string, number>(), slowestMs: 0 };

beforeAll(async () => {
  const { kp, path } = await newKeystore();
  await kp.createKey(
    { name: 'aes', spec: 'AES_256', labels: { team: 'a' }, rotation: { periodDays: 30 } },
    o,
  );
  await kp.createKey({ name: 'hmac', spec: 'HMAC_256' }, o);
  await kp.createKey({ name: 'p256', spec: 'EC_P256' }, o);
  await kp.createKey({ name: 'p384', spec: 'EC_P384' }, o);
  await kp.createKey({ name: 'rsa', spec: 'RSA_2048', description: 'd' }, o);
  await kp.rotateKey({ uri: kp.keyUri('aes') }, o);
  await kp.createGrant(
    { uri: kp.keyUri('aes') },
    { grantee: 'app', operations: ['decrypt'], constraints: { contextSubset: { tenant: 'a' } } },
    o,
  );
  const ext = await kp.createKey({ name: 'ext', spec: 'AES_256', external: true }, o);
  await kp.getImportParameters({ uri: ext.uri }, {}, o);
  await kp.scheduleKeyDeletion({ uri: kp.keyUri('hmac') }, { days: 7 }, o);
  file = await readFile(path);
  const header = readHeader(file);
  keys = await deriveKeys(Buffer.from(PASSPHRASE), header.params, header.salt);
  body = JSON.parse(unseal(file, keys).toString('utf8'));
}, 60_000);

/** Keys for a header: the real ones for the file's own KDF bytes, unrelated ones otherwise. */
function keysFor(bytes: Uint8Array): DerivedKeys {
  const header = readHeader(bytes);
  const same =
    header.salt.equals(keys.salt) &&
    header.params.log2N === keys.params.log2N &&
    header.params.r === keys.params.r &&
    header.params.p === keys.params.p;
  if (same) return keys;
  const other = randomBytes(64);
  return {
    params: header.params,
    salt: header.salt,
    bodyKey: other.subarray(0, 32),
    checkKey: other.subarray(32),
  };
}

/** Opens mutated bytes as the keystore does; asserts the outcome is a body or a typed error. */
function check(bytes: Uint8Array): void {
  const started = performance.now();
  try {
    const parsed = parseSealedBody(bytes, keysFor(bytes));
    // An accepted body is one the keystore can write back.
    expect(JSON.parse(JSON.stringify(parsed))).toBeTypeOf('object');
    stats.accepted++;
  } catch (error) {
    if (!isKeyportError(error)) throw error;
    expect(['Integrity', 'AccessDenied']).toContain(error.code);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: messages stay printable
    expect(error.message).not.toMatch(/[\u0000-\u001f]/);
    stats.byCode.set(error.code, (stats.byCode.get(error.code) ?? 0) + 1);
  } finally {
    const ms = performance.now() - started;
    stats.slowestMs = Math.max(stats.slowestMs, ms);
    expect(ms, 'one parse took too long').toBeLessThan(SLOW_MS);
  }
}

function withDigest(bytes: Buffer): Buffer {
  if (bytes.length < 32) return bytes;
  const head = bytes.subarray(0, bytes.length - 32);
  return Buffer.concat([head, createHash('sha256').update(head).digest()]);
}

/** Byte-level edits: flips, overwrites, truncation, insertion, duplication. */
const byteEdit = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.nat(255) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), data: fc.uint8Array({ maxLength: 64 }) }),
  fc.record({ kind: fc.constant('repeat' as const), at: fc.nat(), length: fc.nat(256) }),
);
type ByteEdit = typeof byteEdit extends fc.Arbitrary<infer T> ? T : never;

function applyBytes(source: Buffer, edits: readonly ByteEdit[]): Buffer {
  let b = Buffer.from(source);
  for (const e of edits) {
    const at = b.length === 0 ? 0 : e.at % (b.length + 1);
    switch (e.kind) {
      case 'flip':
        if (at < b.length) b[at] = (b[at] as number) ^ (1 << e.bit);
        break;
      case 'set':
        if (at < b.length) b[at] = e.value;
        break;
      case 'truncate':
        b = b.subarray(0, at);
        break;
      case 'insert':
        b = Buffer.concat([b.subarray(0, at), e.data, b.subarray(at)]);
        break;
      case 'repeat':
        b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + e.length), b.subarray(at)]);
        break;
    }
  }
  return b;
}

/** Values an attacker would try in a JSON field. */
const hostileValue = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom(
    -8.64e15,
    8.64e15,
    1e308,
    -1,
    0,
    2 ** 32,
    2 ** 53,
    '-271821-04-20T00:00:00.000Z',
    '+275760-09-13T00:00:00.000Z',
    '1970-01-01T00:00:00.000Z',
    '',
    'AAAA',
    '!!!!',
    'x'.repeat(70_000),
    { __proto__: null, polluted: 'x' },
    JSON.parse('{"__proto__":{"polluted":"x"}}'),
    [],
    {},
    null,
    'RSA_4096',
    'EC_P256',
    'destroyed',
    'pending_import',
  ),
);

type Json = unknown;

/** Every (container, key) in a JSON value. */
function slots(value: Json, out: Array<[Record<string, Json> | Json[], string | number]> = []) {
  if (Array.isArray(value)) {
    value.forEach((v, i) => {
      out.push([value, i]);
      slots(v, out);
    });
  } else if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) {
      out.push([value as Record<string, Json>, k]);
      slots(v, out);
    }
  }
  return out;
}

const structuralEdit = fc.record({
  slot: fc.nat(),
  action: fc.constantFrom('replace', 'delete', 'duplicate', 'swap-material'),
  value: hostileValue,
  other: fc.nat(),
});
type StructuralEdit = typeof structuralEdit extends fc.Arbitrary<infer T> ? T : never;

function applyStructural(source: Json, edits: readonly StructuralEdit[]): Json {
  const copy = structuredClone(source);
  for (const e of edits) {
    const all = slots(copy);
    if (all.length === 0) break;
    const [container, key] = all[e.slot % all.length] as [Record<string | number, Json>, string | number];
    switch (e.action) {
      case 'replace':
        // A copy: fast-check may hand the same value to several edits, and placing one object
        // twice and then inside itself would make the harness (not the parser) recurse forever.
        container[key] = structuredClone(e.value);
        break;
      case 'delete':
        if (Array.isArray(container)) container.splice(key as number, 1);
        else delete container[key];
        break;
      case 'duplicate':
        if (Array.isArray(container)) container.push(structuredClone(container[key]));
        else container[`${key}`] = structuredClone(container[key]);
        break;
      case 'swap-material': {
        // Material of one version moved to another key's version: right encoding, wrong type.
        const materials = all.filter(([, k]) => k === 'material');
        const [from, fromKey] = materials[e.other % Math.max(1, materials.length)] ?? [];
        if (from !== undefined)
          container[key] = structuredClone((from as Record<string | number, Json>)[fromKey as string]);
        break;
      }
    }
  }
  return copy;
}

/** Text-level edits of the JSON before sealing: cuts, splices, deep nesting, odd escapes. */
const textEdit = fc.record({
  at: fc.nat(),
  cut: fc.nat(32),
  insert: fc.oneof(
    fc.string({ maxLength: 16 }),
    fc.constantFrom(
      '[',
      ']',
      '{',
      '}',
      '"',
      '\\',
      '\\u0000',
      '\\ud800',
      ',',
      ':',
      '[[[[[[[[',
      '1e999',
      'null',
      '"__proto__":1,',
    ),
    fc.constant('['.repeat(5_000)),
  ),
});

describe('fuzz: keystore file parse', () => {
  it('the unmutated file opens (the harness is sound)', () => {
    expect(() => parseSealedBody(file, keys)).not.toThrow();
  });

  it(
    'raw byte mutations: only typed errors',
    () => {
      fc.assert(
        fc.property(fc.array(byteEdit, { minLength: 1, maxLength: 6 }), (edits) =>
          check(applyBytes(file, edits)),
        ),
        PARAMS,
      );
    },
    TIMEOUT,
  );

  it(
    'raw byte mutations with the digest recomputed: only typed errors',
    () => {
      fc.assert(
        fc.property(fc.array(byteEdit, { minLength: 1, maxLength: 6 }), (edits) =>
          check(withDigest(applyBytes(file, edits))),
        ),
        PARAMS,
      );
    },
    TIMEOUT,
  );

  it(
    'JSON text mutations re-sealed under the passphrase: only typed errors',
    () => {
      const text = JSON.stringify(body);
      fc.assert(
        fc.property(fc.array(textEdit, { minLength: 1, maxLength: 4 }), (edits) => {
          let t = text;
          for (const e of edits) {
            const at = e.at % (t.length + 1);
            t = t.slice(0, at) + e.insert + t.slice(at + e.cut);
          }
          check(seal(Buffer.from(t, 'utf8'), keys));
        }),
        PARAMS,
      );
    },
    TIMEOUT,
  );

  it(
    'JSON structure mutations re-sealed under the passphrase: only typed errors',
    () => {
      fc.assert(
        fc.property(fc.array(structuralEdit, { minLength: 1, maxLength: 4 }), (edits) => {
          check(seal(Buffer.from(JSON.stringify(applyStructural(body, edits)), 'utf8'), keys));
        }),
        PARAMS,
      );
    },
    TIMEOUT,
  );

  it('reports what it saw', () => {
    const summary = {
      runsPerProperty: RUNS,
      accepted: stats.accepted,
      errors: Object.fromEntries(stats.byCode),
      slowestMs: Math.round(stats.slowestMs * 10) / 10,
    };
    if (RUNS > 1_000) console.log(`fuzz-keystore: ${JSON.stringify(summary)}`);
    expect(stats.byCode.get('Integrity') ?? 0).toBeGreaterThan(0);
  });
});
