import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  contextDigest,
  contextEntries,
  decodeContext,
  encodeContext,
  isKeyportError,
  toEncryptionContext,
  toMessageContext,
} from '../src/index.js';

const ctx = fc.dictionary(fc.string({ minLength: 1, unit: 'grapheme' }), fc.string({ unit: 'grapheme' }), {
  maxKeys: 6,
});

describe('canonical context encoding', () => {
  it('round-trips through decodeContext', () => {
    fc.assert(
      fc.property(ctx, (c) => {
        expect(decodeContext(encodeContext(c))).toEqual(c);
      }),
    );
  });

  it('is injective: different contexts never share an encoding', () => {
    fc.assert(
      fc.property(ctx, ctx, (a, b): void => {
        const same = JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort());
        expect(Buffer.from(encodeContext(a)).equals(Buffer.from(encodeContext(b)))).toBe(same);
      }),
    );
  });

  it('is byte for byte the specified encoding (a plain reference encoder, any Unicode)', () => {
    // The format written out plainly: UTF-8 by Buffer, pairs sorted by Buffer.compare of the key.
    const reference = (c: Record<string, string>): Buffer => {
      const pairs = Object.entries(c)
        .map(([k, v]) => [Buffer.from(k, 'utf8'), Buffer.from(v, 'utf8')] as const)
        .sort((a, b) => Buffer.compare(a[0], b[0]));
      if (pairs.length === 0) return Buffer.alloc(0);
      const u32 = (n: number) => {
        const b = Buffer.alloc(4);
        b.writeUInt32BE(n);
        return b;
      };
      return Buffer.concat([
        u32(pairs.length),
        ...pairs.flatMap(([k, v]) => [u32(k.length), k, u32(v.length), v]),
      ]);
    };
    // Units chosen where UTF-16 order and UTF-8 byte order disagree: surrogate pairs (astral
    // characters) against U+E000..U+FFFF, and 1-, 2- and 3-byte characters around them.
    const unit = fc.constantFrom(
      'a',
      'z',
      '~',
      '\u007f',
      '\u0080',
      'é',
      '\u07ff',
      '\u0800',
      '中',
      '\ud7ff',
      '\ue000',
      '\uffff',
      '\ufffd',
      '😀',
      '\u{10000}',
      '\u{10ffff}',
      '\u{1d11e}',
    );
    const text = (min: number) => fc.array(unit, { minLength: min, maxLength: 5 }).map((u) => u.join(''));
    const tricky = fc.dictionary(text(1), text(0), { maxKeys: 8 });
    fc.assert(
      fc.property(fc.oneof(tricky, ctx), (c) => {
        const expected = reference(c);
        expect(Buffer.from(encodeContext(c)).equals(expected)).toBe(true);
        expect(Buffer.from(encodeContext(new Map(Object.entries(c)))).equals(expected)).toBe(true);
        const keys = Object.keys(c).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
        expect(contextEntries(c).map(([k]) => Buffer.from(k).toString('utf8'))).toEqual(keys);
      }),
      { numRuns: 2000 },
    );
    // Keys JavaScript treats specially are ordinary pairs, in byte order.
    const special = JSON.parse('{"__proto__":"p","10":"ten","2":"two","constructor":"c"}');
    expect(Buffer.from(encodeContext(special)).equals(reference(special))).toBe(true);
    expect(decodeContext(encodeContext(special))).toEqual(special);
  });

  it('ignores insertion order', () => {
    expect(encodeContext({ a: '1', b: '2' })).toEqual(encodeContext({ b: '2', a: '1' }));
  });

  it('does not let bytes move between pairs', () => {
    expect(encodeContext({ ab: 'c' })).not.toEqual(encodeContext({ a: 'bc' }));
  });

  it('encodes the empty context as zero bytes', () => {
    expect(encodeContext({})).toHaveLength(0);
    expect(encodeContext(undefined)).toHaveLength(0);
  });

  it('refuses lone surrogates and non-string values without echoing them', () => {
    for (const bad of [{ k: '\ud800' }, { k: 3 as unknown as string }, { '': 'x' }]) {
      try {
        encodeContext(bad);
        expect.unreachable();
      } catch (e) {
        expect(isKeyportError(e, 'InvalidArgument')).toBe(true);
        expect(String((e as Error).message)).not.toContain('\ud800');
      }
    }
  });

  it('rejects non-canonical encodings', () => {
    const good = encodeContext({ a: '1', b: '2' });
    expect(() => decodeContext(good.subarray(0, good.length - 1))).toThrow();
    expect(() => decodeContext(Uint8Array.from([...good, 0]))).toThrow();
    expect(() => decodeContext(Uint8Array.from([0, 0, 0, 0]))).toThrow();
  });

  it('digest is stable and keyed digests differ', () => {
    expect(contextDigest({ a: '1' })).toBe(contextDigest({ a: '1' }));
    expect(contextDigest({ a: '1' }, new Uint8Array(32))).not.toBe(contextDigest({ a: '1' }));
  });
});

describe('toMessageContext: a context read from a message', () => {
  it('takes an empty key (ESDKs write one), and every later check takes the result as it is', () => {
    const c = toMessageContext({ '': 'v', a: 'b' });
    expect(c).toEqual({ '': 'v', a: 'b' });
    expect(Object.isFrozen(c)).toBe(true);
    expect(toEncryptionContext(c)).toBe(c);
    // The encoding sorts the empty key first, as the ESDK does.
    expect(contextEntries(c).map(([k]) => k.length)).toEqual([0, 1]);
  });

  it('keeps every other rule, and a caller context still refuses an empty key', () => {
    expect(() => toEncryptionContext({ '': 'v' })).toThrow(/must not be empty/);
    expect(() => toEncryptionContext({ ...toMessageContext({ '': 'v' }) })).toThrow(/must not be empty/);
    for (const bad of [{ '': 1 }, { a: '\ud800' }, ['x'], null]) {
      expect(() => toMessageContext(bad)).toThrow(expect.objectContaining({ code: 'InvalidArgument' }));
    }
  });
});
