/**
 * `abortable`, which every encrypt, decrypt and rewrap reads and writes through: it must stop on
 * abort, and must hold nothing it has passed on (a stream's memory bound is the CLI's too).
 */
import { getEventListeners } from 'node:events';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { abortable } from '../src/files/abortable.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

describe('abortable', () => {
  it('keeps no chunk it has handed on, and one abort listener at most', async () => {
    const controller = new AbortController();
    const refs: WeakRef<Uint8Array>[] = [];
    async function* source(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 64; i++) {
        const chunk = new Uint8Array(256 * 1024).fill(i);
        refs.push(new WeakRef(chunk));
        yield chunk;
      }
    }
    let bytes = 0;
    for await (const chunk of abortable(source(), controller.signal)) {
      bytes += chunk.length;
      expect(getEventListeners(controller.signal, 'abort').length).toBeLessThanOrEqual(1);
    }
    expect(bytes).toBe(64 * 256 * 1024);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    await new Promise((r) => setImmediate(r));
    gc();
    const alive = refs.filter((r) => r.deref() !== undefined).length;
    // Each race against one stream-long abort promise kept its chunk: all 64 stayed alive.
    expect(alive).toBeLessThanOrEqual(1);
  });

  it('rejects a pending read at once on abort, with the reason, and closes the source', async () => {
    const controller = new AbortController();
    let closed = false;
    const never: AsyncIterable<Uint8Array> = {
      [Symbol.asyncIterator]: () => ({
        next: () => new Promise<IteratorResult<Uint8Array>>(() => undefined),
        return: async () => {
          closed = true;
          return { done: true, value: undefined };
        },
      }),
    };
    const reading = abortable(never, controller.signal).next();
    const reason = new Error('stop');
    setTimeout(() => controller.abort(reason), 20);
    await expect(reading).rejects.toBe(reason);
    expect(closed).toBe(true);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('passes a source error on and lets go of its listener', async () => {
    const controller = new AbortController();
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield new Uint8Array(1);
      throw new Error('read failed');
    }
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const c of abortable(failing(), controller.signal)) seen.push(c.length);
      })(),
    ).rejects.toThrow('read failed');
    expect(seen).toEqual([1]);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('does not start a read once aborted', async () => {
    const controller = new AbortController();
    controller.abort(new Error('already'));
    let reads = 0;
    const counting: AsyncIterable<number> = {
      [Symbol.asyncIterator]: () => ({
        next: async () => {
          reads++;
          return { done: false, value: 1 };
        },
      }),
    };
    await expect(abortable(counting, controller.signal).next()).rejects.toThrow('already');
    expect(reads).toBe(0);
  });
});
