import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { contextDigest, decodeContext, encodeContext, isKeyportError } from '../src/index.js';

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
