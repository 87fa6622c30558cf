/**
 * Part and block sizes are checked where a store is made, against each service's own bounds:
 * before, 0 looped forever cutting parts and NaN buffered a whole object. And migrateObject's
 * maxAttempts is a bounded integer (NaN retried a conflicting object without end).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseObjectLocation } from '../src/location.js';
import { migrateObject } from '../src/migrate-object.js';
import type { ObjectStore } from '../src/store.js';
import { type TestKeys, testKeys } from './helpers/keys.js';

const codeOf = (f: () => unknown): string | undefined => {
  try {
    f();
    return undefined;
  } catch (e) {
    return (e as { code?: string }).code;
  }
};

describe('part sizes', () => {
  const KiB = 1024;
  const MiB = 1024 * KiB;
  it.each([
    [
      's3://bucket/p',
      [0, -1, Number.NaN, Number.POSITIVE_INFINITY, 1.5, '8', 5 * MiB - 1, 5 * 1024 * MiB + 1],
    ],
    ['gs://bucket/p', [0, Number.NaN, 128 * KiB, 300 * KiB, 5 * 1024 * MiB + 256 * KiB]],
    ['azblob://account/container/p', [0, Number.NaN, 1.5, 4000 * MiB + 1]],
  ] as const)('%s refuses %j', (uri, sizes) => {
    for (const partSize of sizes) {
      expect(
        codeOf(() => parseObjectLocation(uri, { partSize: partSize as number })),
        String(partSize),
      ).toBe('InvalidArgument');
    }
  });

  it.each([
    ['s3://bucket/p', 5 * MiB],
    ['gs://bucket/p', 256 * KiB],
    ['azblob://account/container/p', 1],
  ] as const)('%s takes its smallest part, %i bytes', (uri, partSize) => {
    expect(codeOf(() => parseObjectLocation(uri, { partSize }))).toBeUndefined();
  });
});

describe('migrateObject maxAttempts', () => {
  let k: TestKeys;
  beforeAll(async () => {
    k = await testKeys();
  });
  afterAll(async () => {
    await k?.close();
  });

  it('refuses NaN, Infinity, 0 and 1.5 before touching the store', async () => {
    // Any call on this store would throw a TypeError: refusal must come first.
    const untouched = {} as ObjectStore;
    for (const maxAttempts of [Number.NaN, Number.POSITIVE_INFINITY, 0, 1.5]) {
      await expect(
        migrateObject(untouched, 'a', { from: k.from, to: k.to, keys: k.keys, maxAttempts }),
        String(maxAttempts),
      ).rejects.toMatchObject({ code: 'InvalidArgument' });
    }
  });
});
