/**
 * The rules every listing is held to, on the guard itself (the stores' wiring is in
 * listings.test.ts): runs of empty pages, pages far over the size asked, and keys in the order
 * the service lists in. For Azure, several orders: a listing may follow any one of them, and no
 * listing that passes can give a key twice, checked here against reference comparators on many
 * random listings.
 */
import { KeyportError } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import {
  AZURE_ORDERS,
  ListingGuard,
  MAX_EMPTY_PAGES,
  maxPageEntries,
  type StoreProvider,
  UTF8_ORDER,
} from '../src/store.js';

const internal = (run: () => unknown, message: string) => {
  let error: unknown;
  try {
    run();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(KeyportError);
  expect(error).toMatchObject({ code: 'Internal' });
  expect((error as Error).message).toContain(message);
};

describe('runs of empty pages', () => {
  it(`a key between runs of ${MAX_EMPTY_PAGES - 1} starts the count again; ${MAX_EMPTY_PAGES} in a row end it`, () => {
    const guard = new ListingGuard('gs', UTF8_ORDER, 1000);
    let n = 0;
    const empty = (count: number) => {
      for (let i = 0; i < count; i++) guard.next(`t${n++}`);
    };
    empty(MAX_EMPTY_PAGES - 1);
    guard.key('a');
    guard.next(`t${n++}`);
    empty(MAX_EMPTY_PAGES - 1);
    internal(() => guard.next(`t${n++}`), `${MAX_EMPTY_PAGES} empty pages in a row`);
  });

  it('a listing whose last empty page ends it is complete, however long the run', () => {
    const guard = new ListingGuard('azblob', AZURE_ORDERS, 1000);
    for (let i = 0; i < MAX_EMPTY_PAGES - 1; i++) guard.next(`t${i}`);
    expect(guard.next(undefined)).toBeUndefined();
  });
});

describe('pages far over the size asked', () => {
  it('twice the size asked, and at least the size asked + 1000, is the most a page may hold', () => {
    expect(maxPageEntries(1)).toBe(1001);
    expect(maxPageEntries(1000)).toBe(2000);
    expect(maxPageEntries(5000)).toBe(10_000);
    const guard = new ListingGuard('s3', UTF8_ORDER, 1000);
    guard.page(0);
    guard.page(2000);
    internal(() => guard.page(2001), 'a page of 2001 entries when asked for at most 1000');
    internal(() => guard.page(3_000_000), 'a page of 3000000 entries');
  });
});

/** Reference orders, written apart from the guard's: by bytes or code units, flat or path by path. */
type Compare = (a: string, b: string) => number;
const utf8: Compare = (a, b) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
const utf16: Compare = (a, b) => (a < b ? -1 : a > b ? 1 : 0);
const pathwise =
  (within: Compare): Compare =>
  (a, b) => {
    const x = a.split('/');
    const y = b.split('/');
    for (let i = 0; i < Math.min(x.length, y.length); i++) {
      const c = within(x[i] as string, y[i] as string);
      if (c !== 0) return c;
    }
    return x.length - y.length;
  };
const REFERENCE: Record<string, Compare> = {
  'utf16 flat': utf16,
  'utf8 flat': utf8,
  'utf16 by path': pathwise(utf16),
  'utf8 by path': pathwise(utf8),
};

/** A small seeded generator (mulberry32), so a failure names a listing that can be run again. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Characters where the orders disagree: `/` against `-` and `.`, surrogates against U+E000+. */
const ALPHABET = ['a', 'A', 'b', '-', '.', '/', '\u00fc', '\ue000', '\uff01', '\u{1f600}'];

function randomKey(next: () => number): string {
  let key = 'p/';
  const length = 1 + Math.floor(next() * 4);
  for (let i = 0; i < length; i++) key += ALPHABET[Math.floor(next() * ALPHABET.length)];
  return key;
}

/** How many of `keys` the guard takes before it refuses one (all of them: `keys.length`). */
function taken(provider: StoreProvider, orders: typeof AZURE_ORDERS, keys: readonly string[]): number {
  const guard = new ListingGuard(provider, orders, 1000);
  for (let i = 0; i < keys.length; i++) {
    try {
      guard.key(keys[i] as string);
    } catch (e) {
      expect(e).toMatchObject({ code: 'Internal' });
      return i;
    }
    if (i % 3 === 2) guard.next(`t${i}`);
  }
  return keys.length;
}

describe('keys in the order the service lists in', () => {
  it('an Azure listing sorted in any of its four orders is taken whole', () => {
    const next = random(1);
    for (let round = 0; round < 300; round++) {
      const keys = [...new Set(Array.from({ length: 12 }, () => randomKey(next)))];
      for (const [name, compare] of Object.entries(REFERENCE)) {
        const sorted = [...keys].sort(compare);
        expect(taken('azblob', AZURE_ORDERS, sorted), `${name}: ${JSON.stringify(sorted)}`).toBe(
          sorted.length,
        );
      }
    }
  });

  it('no listing the Azure guard takes gives a key twice, and each one taken follows one of the orders', () => {
    const next = random(2);
    let refused = 0;
    for (let round = 0; round < 3000; round++) {
      // Keys from a handful, so repeats and out-of-order keys come often.
      const pool = Array.from({ length: 5 }, () => randomKey(next));
      const keys = Array.from({ length: 8 }, () => pool[Math.floor(next() * pool.length)] as string);
      const n = taken('azblob', AZURE_ORDERS, keys);
      if (n < keys.length) refused++;
      const given = keys.slice(0, n);
      expect(new Set(given).size, JSON.stringify(given)).toBe(given.length);
      const follows = Object.values(REFERENCE).some((compare) =>
        given.every((k, i) => i === 0 || compare(given[i - 1] as string, k) < 0),
      );
      expect(follows, JSON.stringify(given)).toBe(true);
      // And the guard refuses exactly at the first key that no order explains any more.
      if (n < keys.length) {
        const longer = keys.slice(0, n + 1);
        const explained = Object.values(REFERENCE).some((compare) =>
          longer.every((k, i) => i === 0 || compare(longer[i - 1] as string, k) < 0),
        );
        expect(explained, JSON.stringify(longer)).toBe(false);
      }
    }
    expect(refused).toBeGreaterThan(1000);
  });

  it('S3 and Cloud Storage are held to UTF-8 byte order alone', () => {
    // U+FF01 before U+1F600 in UTF-8; UTF-16 has them the other way round.
    expect(taken('s3', UTF8_ORDER, ['p/\uff01', 'p/\u{1f600}'])).toBe(2);
    expect(taken('s3', UTF8_ORDER, ['p/\u{1f600}', 'p/\uff01'])).toBe(1);
    // Depth-first (`/` first) is no order S3 or Cloud Storage lists in.
    expect(taken('gs', UTF8_ORDER, ['p/a/x', 'p/a-b'])).toBe(1);
    const next = random(3);
    for (let round = 0; round < 300; round++) {
      const keys = [...new Set(Array.from({ length: 12 }, () => randomKey(next)))].sort(utf8);
      expect(taken('gs', UTF8_ORDER, keys), JSON.stringify(keys)).toBe(keys.length);
    }
  });
});
