/** `merge`, which interleaves the providers' key listings of an inventory. */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { merge } from '../src/pool.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

async function* counting(n: number, tag: string): AsyncGenerator<string> {
  for (let i = 0; i < n; i++) {
    await new Promise((r) => setImmediate(r));
    yield `${tag}${i}`;
  }
}

describe('merge', () => {
  it('yields every item of every source, each source in its own order', async () => {
    const got: string[] = [];
    for await (const item of merge([counting(5, 'a'), counting(0, 'b'), counting(3, 'c')])) got.push(item);
    expect(got.filter((x) => x.startsWith('a'))).toEqual(['a0', 'a1', 'a2', 'a3', 'a4']);
    expect(got.filter((x) => x.startsWith('c'))).toEqual(['c0', 'c1', 'c2']);
    expect(got).toHaveLength(8);
  });

  it('keeps nothing a fast source gave while a slow one has not answered', async () => {
    let release: (() => void) | undefined;
    async function* slow(): AsyncGenerator<Uint8Array> {
      await new Promise<void>((r) => {
        release = r;
      });
      yield new Uint8Array(1);
    }
    const refs: WeakRef<Uint8Array>[] = [];
    async function* fast(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 64; i++) {
        await new Promise((r) => setImmediate(r));
        const item = new Uint8Array(256 * 1024);
        refs.push(new WeakRef(item));
        yield item;
      }
    }
    let count = 0;
    for await (const item of merge([slow(), fast()])) {
      count++;
      if (count === 64) {
        await new Promise((r) => setImmediate(r));
        gc();
        // Racing the slow source's pending step once per item kept all 64 alive.
        expect(refs.filter((r) => r.deref() !== undefined).length).toBeLessThanOrEqual(2);
        release?.();
      }
      expect(item).toBeInstanceOf(Uint8Array);
    }
    expect(count).toBe(65);
  });

  it('fails with the first error and closes the other sources', async () => {
    let closed = false;
    async function* endless(): AsyncGenerator<number> {
      try {
        for (;;) {
          await new Promise((r) => setImmediate(r));
          yield 1;
        }
      } finally {
        closed = true;
      }
    }
    async function* failing(): AsyncGenerator<number> {
      await new Promise((r) => setTimeout(r, 5));
      throw new Error('listing failed');
    }
    await expect(
      (async () => {
        for await (const _ of merge([endless(), failing()]));
      })(),
    ).rejects.toThrow('listing failed');
    expect(closed).toBe(true);
  });
});
