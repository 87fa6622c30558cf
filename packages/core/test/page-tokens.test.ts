import { describe, expect, it } from 'vitest';
import { KeyportError, PageTokens } from '../src/index.js';

const endless = () => new KeyportError('Internal', 'endless listing');

describe('PageTokens', () => {
  it('follows fresh tokens and ends on none or an empty one', () => {
    const tokens = new PageTokens(endless);
    expect(tokens.next('a')).toBe('a');
    expect(tokens.next('b')).toBe('b');
    expect(tokens.next(undefined)).toBeUndefined();
    expect(tokens.next(null)).toBeUndefined();
    expect(tokens.next('')).toBeUndefined();
    expect(tokens.followed).toBe(2);
  });

  it('refuses a token given again, at once or after a cycle', () => {
    const again = new PageTokens(endless);
    again.next('t1');
    expect(() => again.next('t1')).toThrow('endless listing');
    const cycle = new PageTokens(endless);
    for (const t of ['x', 'y', 'z']) cycle.next(t);
    expect(() => cycle.next('x')).toThrowError(expect.objectContaining({ code: 'Internal' }));
  });

  it('keeps long tokens as digests and still tells them apart', () => {
    const tokens = new PageTokens(endless);
    const long = 'c'.repeat(10_000);
    expect(tokens.next(long)).toBe(long);
    expect(tokens.next(`${long}d`)).toBe(`${long}d`);
    expect(() => tokens.next('c'.repeat(10_000))).toThrow('endless listing');
  });

  it('never takes a short token for a long one whose digest it spells', async () => {
    const { createHash } = await import('node:crypto');
    const long = 'e'.repeat(100);
    const digest = createHash('sha256').update(long).digest('base64');
    const tokens = new PageTokens(endless);
    tokens.next(long);
    expect(tokens.next(digest)).toBe(digest);
    expect(tokens.next(`#${digest}`)).toBe(`#${digest}`);
  });

  it('treats __proto__ and other prototype names as ordinary tokens', () => {
    const tokens = new PageTokens(endless);
    for (const t of ['__proto__', 'constructor', 'toString']) expect(tokens.next(t)).toBe(t);
    expect(() => tokens.next('__proto__')).toThrow('endless listing');
  });
});
