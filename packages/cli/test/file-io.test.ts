/**
 * The CLI's file reading and writing overlap with the work between them: one read ahead of the
 * consumer (input-file.ts), one batch written while the source makes the next (output-file.ts).
 * These pin what that overlap must never cost: order, one write at a time, errors surfacing with
 * nothing left running, and an early stop that lets the read ahead settle.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openInputFile } from '../src/files/input-file.js';
import { writeChunks } from '../src/files/output-file.js';

const MiB = 1024 * 1024;
const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A FileHandle stand-in that records writes, how many run at once, and when each settles. */
function fakeHandle(opts: { delayMs: number; failAt?: number }) {
  const log: string[] = [];
  const written: number[] = [];
  let running = 0;
  let maxRunning = 0;
  let calls = 0;
  const take = async (pieces: readonly Uint8Array[]) => {
    const call = calls++;
    running++;
    maxRunning = Math.max(maxRunning, running);
    log.push(`write ${call} start`);
    await tick(opts.delayMs);
    running--;
    log.push(`write ${call} end`);
    if (call === opts.failAt) throw Object.assign(new Error('no space'), { code: 'ENOSPC' });
    let bytes = 0;
    for (const p of pieces) {
      for (const b of p) written.push(b);
      bytes += p.length;
    }
    return { bytesWritten: bytes };
  };
  const h = {
    write: (b: Uint8Array) => take([b]),
    writev: (pieces: Uint8Array[]) => take(pieces),
  } as unknown as FileHandle;
  return { h, log, written, maxRunning: () => maxRunning };
}

/** `count` chunks of 1 MiB (one batch each), chunk i filled with byte i; logs each pull. */
async function* chunks(count: number, log: string[], failAfter?: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < count; i++) {
    log.push(`pull ${i}`);
    await tick(1);
    if (i === failAfter) throw new Error('source broke');
    yield Buffer.alloc(MiB, i);
  }
}

describe('writeChunks: write-behind', () => {
  it('pulls the next batch while one is written, never two writes at once, bytes in order', async () => {
    const f = fakeHandle({ delayMs: 20 });
    const total = await writeChunks(f.h, chunks(4, f.log));
    expect(total).toBe(4 * MiB);
    expect(f.maxRunning()).toBe(1);
    // The source was asked for chunk 1 before write 0 finished: the two overlapped.
    expect(f.log.indexOf('pull 1')).toBeLessThan(f.log.indexOf('write 0 end'));
    expect(f.written.length).toBe(4 * MiB);
    for (let i = 0; i < 4; i++) expect(f.written[i * MiB]).toBe(i);
  });

  it('a failed write rejects with the mapped error, and the source stops at its next batch', async () => {
    const f = fakeHandle({ delayMs: 5, failAt: 1 });
    const mapped = new Error('mapped');
    await expect(writeChunks(f.h, chunks(10, f.log), () => mapped)).rejects.toBe(mapped);
    expect(f.log.filter((l) => l.startsWith('pull')).length).toBeLessThanOrEqual(4);
    expect(f.log.filter((l) => l.endsWith('start')).length).toBe(2);
  });

  it('a source error waits for the write in flight to settle before it leaves', async () => {
    const f = fakeHandle({ delayMs: 40 });
    let rejectedAt = -1;
    await writeChunks(f.h, chunks(3, f.log, 1)).catch((e: Error) => {
      rejectedAt = f.log.length;
      expect(e.message).toBe('source broke');
    });
    expect(rejectedAt).toBeGreaterThan(f.log.indexOf('write 0 end'));
    expect(f.log.at(-1)).toBe('write 0 end');
  });
});

describe('openInputFile: read-ahead', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'keyport-file-io-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads every byte in order, full chunks as they are, the tail as a copy of its own size', async () => {
    const bytes = randomBytes(3 * MiB + 5);
    const path = join(dir, 'in.bin');
    await writeFile(path, bytes);
    const input = await openInputFile(path);
    const got: Uint8Array[] = [];
    for await (const c of input.data) got.push(c);
    await input.close();
    expect(got.map((c) => c.length)).toEqual([MiB, MiB, MiB, 5]);
    // Chunks kept by the consumer are distinct memory: a later read never overwrote them.
    expect(new Set(got.map((c) => c.buffer)).size).toBe(4);
    expect(got.at(-1)?.buffer.byteLength).toBe(5);
    expect(Buffer.concat(got).equals(bytes)).toBe(true);
  });

  it('a consumer that stops early lets the read ahead settle; closing then succeeds', async () => {
    const path = join(dir, 'big.bin');
    await writeFile(path, Buffer.alloc(4 * MiB, 1));
    const input = await openInputFile(path);
    for await (const c of input.data) {
      expect(c.length).toBe(MiB);
      break;
    }
    await expect(input.close()).resolves.toBeUndefined();
  });

  it('reads no further ahead on a FIFO: a consumer that stops closes it while the writer stalls', async () => {
    const path = join(dir, 'fifo');
    execFileSync('mkfifo', [path]);
    const [input, writer] = await Promise.all([openInputFile(path), open(path, 'w')]);
    try {
      await writer.write(Buffer.alloc(1000, 7));
      for await (const c of input.data) {
        expect(c.length).toBe(1000);
        break;
      }
      // A read ahead would wait for bytes that never come, and the close would wait for it.
      const closed = await Promise.race([input.close().then(() => 'closed'), tick(2000).then(() => 'hung')]);
      expect(closed).toBe('closed');
    } finally {
      await writer.close();
    }
  });
});
