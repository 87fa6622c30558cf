/**
 * Frames in parallel, in one process: the main thread and a pool of worker threads share one
 * whole-buffer job. Frames are independent (IV from the sequence number, AAD from the message
 * id, sequence number and length), so any thread may run any frame.
 *
 * Why this shape (measured on 2 and more cores, see bench/envelope.bench.mjs):
 * - The caller's buffer cannot be shared with another thread, so frames for a worker are copied
 *   into a small ring of shared slots; the main thread copies a few frames ahead and, between
 *   copies, runs frames itself straight from the caller's buffer (no copy for its share).
 * - The ring is reused across jobs, so its pages stay mapped; only the result is fresh memory,
 *   and each thread takes the page faults of the part it writes.
 * - Workers write into the result directly (a SharedArrayBuffer): no per-frame message, no
 *   copy back on the main thread. The result of a parallel call is therefore backed by a
 *   SharedArrayBuffer (a normal `Buffer` otherwise).
 * - WebCrypto on libuv's pool was measured slower than one thread here: each call copies its
 *   input and allocates fresh output, both on the main thread.
 *
 * One job at a time uses the pool; a call that finds it busy (or broken) returns `false` and the
 * caller runs the sequential path, which gives the same bytes.
 */

import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { FRAME_WORKER_SOURCE } from './frame-worker-source.js';

/** Control words in the job's shared Int32Array (the worker source uses the same numbers). */
export const CTL = { NEXT: 0, COPIED: 1, DONE: 2, STOP: 3, FIRST_BAD: 4 } as const;
const CTL_WORDS = 5;
/** Frames the main thread keeps copied ahead per worker. */
const AHEAD_PER_WORKER = 4;
/** The ring never grows past this; fewer frames ahead (or the sequential path) for huge frames. */
const MAX_RING_BYTES = 64 * 1024 * 1024;
/** An idle pool lets go of its ring after this long. */
const RING_IDLE_MS = 5_000;
/** Waiting this long with no frame finished means a worker is gone. */
const STALL_MS = 10_000;

/** One frame as the main thread runs it: from the caller's memory into the shared output. */
export type RunFrame = (index: number) => boolean;
/**
 * Copies frame `index`'s worker input into `slot`: seal: the content at `inputShift`; open: the
 * IV at 0 and content || tag at 16 + `inputShift` (see `FrameJob.inputShift`).
 */
export type CopyFrame = (index: number, slot: Buffer) => void;

export interface FrameJob {
  readonly seal: boolean;
  readonly key: Uint8Array;
  readonly messageId: Uint8Array;
  readonly count: number;
  readonly frameLength: number;
  readonly lastLength: number;
  readonly lastFinal: boolean;
  /** Output offset of frame i's content: outBase + i × outStride (+ lastShift for the last). */
  readonly outBase: number;
  readonly outStride: number;
  readonly lastShift: number;
  readonly out: Buffer;
  /**
   * Where in its slot (0..7) a frame's content starts (after the IV's 16 bytes when opening):
   * the caller's content address modulo 8, so that copies into the ring keep their alignment.
   * V8 copies into shared memory with relaxed atomics, byte by byte when source and target
   * differ in alignment: measured 0.23 ms per MiB against 0.03 aligned.
   */
  readonly inputShift: number;
  /**
   * The caller's input when it is itself shared memory (a message or plaintext backed by a
   * SharedArrayBuffer, as every parallel result is): workers then read each frame where it is
   * and nothing is copied into the ring. Frame i's content starts at base + i × stride (+
   * lastShift for the last); when opening, its IV ends where its content starts (4 bytes
   * earlier for a final frame, whose content length sits between them).
   */
  readonly sharedInput?: SharedInput | undefined;
  readonly runFrame: RunFrame;
  readonly copyFrame: CopyFrame;
}

export interface SharedInput {
  readonly buffer: SharedArrayBuffer;
  readonly base: number;
  readonly stride: number;
  readonly lastShift: number;
}

export interface FrameJobResult {
  /** The first frame (0-based) whose tag failed, or -1. */
  readonly firstBad: number;
  /** Frames the worker threads ran (the rest ran on the calling thread). */
  readonly workerFrames: number;
}

interface Pool {
  readonly workers: Worker[];
  ring?: { buffer: SharedArrayBuffer; slotSize: number; slots: number } | undefined;
  busy: boolean;
  broken: boolean;
  idle?: NodeJS.Timeout;
}

/** The cores Node may use, read once (`availableParallelism` is a system call). */
export const CORES = availableParallelism();

let pool: Pool | undefined;
/** The pool with at least `workers` threads, or undefined if it is busy or threads cannot start. */
function takePool(workers: number): Pool | undefined {
  if (pool?.broken) {
    for (const w of pool.workers) void w.terminate();
    pool = undefined;
  }
  pool ??= { workers: [], busy: false, broken: false };
  if (pool.busy) return undefined;
  const p = pool;
  while (p.workers.length < workers) {
    let w: Worker;
    try {
      w = new Worker(FRAME_WORKER_SOURCE, { eval: true });
    } catch {
      // E.g. a permission model without worker threads: the calling thread alone.
      break;
    }
    // Idle workers never keep the process alive; a failed one retires the whole pool.
    w.unref();
    w.on('error', () => {
      p.broken = true;
    });
    w.on('exit', () => {
      p.broken = true;
    });
    p.workers.push(w);
  }
  return p.workers.length === 0 || workers < 1 ? undefined : p;
}

function ringFor(p: Pool, slotSize: number, slots: number): Pool['ring'] & object {
  const r = p.ring;
  if (r !== undefined && r.slotSize >= slotSize && r.slots >= slots) return r;
  p.ring = { buffer: new SharedArrayBuffer(slotSize * slots), slotSize, slots };
  return p.ring;
}

/**
 * Runs a job on the main thread and `workers` pool threads; `undefined` when the pool cannot
 * take it (the caller then runs sequentially). Blocks the main thread for the job, as the
 * sequential path does.
 */
export function runFrameJob(job: FrameJob, workers: number): FrameJobResult | undefined {
  if (!(job.out.buffer instanceof SharedArrayBuffer)) return undefined;
  // More threads than cores only adds switching (and ~10 MB of memory per thread).
  const threads = Math.min(workers, CORES - 1);
  const p = takePool(threads);
  if (p === undefined) return undefined;
  const used = p.workers.slice(0, threads);
  const shared = job.sharedInput;
  // IV (12, padded to 16), up to 7 bytes of shift, content, tag; a multiple of 8.
  const slotSize = (job.frameLength + 16 + 7 + 16 + 7) & ~7;
  const perWorker = Math.min(AHEAD_PER_WORKER, Math.floor((MAX_RING_BYTES / slotSize - 1) / used.length));
  if (perWorker < 1 && shared === undefined) return undefined;
  // A small job copies ahead about the workers' share only (the rest this thread runs uncopied).
  const ahead =
    shared === undefined
      ? Math.min(used.length * perWorker, Math.ceil((job.count * used.length) / (used.length + 1)))
      : 0;
  const slotCount = ahead + 1;
  // Shared input: every frame is readable where it is, as if all were copied already.
  const ring = shared === undefined ? ringFor(p, slotSize, slotCount) : undefined;
  const slots = ring === undefined ? undefined : Buffer.from(ring.buffer);
  // A reused ring may have larger slots than this job asks for: its own size addresses them.
  const slotStride = ring?.slotSize ?? 0;
  const ctlBuffer = new SharedArrayBuffer(CTL_WORDS * 4);
  const ctl = new Int32Array(ctlBuffer);
  ctl[CTL.FIRST_BAD] = job.count;
  const busyBuffer = new SharedArrayBuffer(slotCount * 4);
  const busy = new Int32Array(busyBuffer);
  p.busy = true;
  let copied = shared === undefined ? 0 : job.count;
  ctl[CTL.COPIED] = copied;
  try {
    const message = {
      ctl: ctlBuffer,
      busy: busyBuffer,
      ring: ring?.buffer,
      input: shared?.buffer,
      inBase: shared?.base,
      inStride: shared?.stride,
      lastInShift: shared?.lastShift,
      out: job.out.buffer,
      // Own copies: cloning a view clones its whole underlying buffer (the message, for open).
      messageId: Uint8Array.from(job.messageId),
      count: job.count,
      frameLength: job.frameLength,
      lastLength: job.lastLength,
      lastFinal: job.lastFinal,
      outBase: job.out.byteOffset + job.outBase,
      outStride: job.outStride,
      lastShift: job.lastShift,
      slotSize: slotStride,
      inputShift: job.inputShift,
      slots: slotCount,
      seal: job.seal,
    };
    // Each worker gets its own clone of the key and zeroes it when done.
    const key = Uint8Array.from(job.key);
    for (const w of used) w.postMessage({ ...message, key });
    key.fill(0);
    // Workers take copied frames from the front; this thread takes uncopied ones from the back
    // (no copy for its share) and, once front meets back, copied ones from the front too.
    let back = job.count;
    let frontByMain = 0;
    while (Atomics.load(ctl, CTL.STOP) === 0) {
      const next = Atomics.load(ctl, CTL.NEXT);
      while (
        slots !== undefined &&
        copied < back &&
        copied < next + ahead &&
        Atomics.load(busy, copied % slotCount) === 0
      ) {
        busy[copied % slotCount] = 1;
        job.copyFrame(copied, slots.subarray((copied % slotCount) * slotStride));
        copied++;
        Atomics.store(ctl, CTL.COPIED, copied);
        Atomics.notify(ctl, CTL.COPIED);
      }
      let i: number;
      if (back > copied) {
        i = --back;
      } else {
        i = Atomics.load(ctl, CTL.NEXT);
        if (i >= copied) break;
        if (Atomics.compareExchange(ctl, CTL.NEXT, i, i + 1) !== i) continue;
        frontByMain++;
      }
      const ok = job.runFrame(i);
      if (i < copied && slots !== undefined) Atomics.store(busy, i % slotCount, 0);
      if (!ok) {
        lowerFirstBad(ctl, i);
        Atomics.store(ctl, CTL.STOP, 1);
      }
    }
    // No more claims; wake waiting workers, then wait for the frames they hold.
    const workerFrames = Atomics.exchange(ctl, CTL.NEXT, job.count + 1) - frontByMain;
    Atomics.store(ctl, CTL.COPIED, job.count + 1);
    Atomics.notify(ctl, CTL.COPIED);
    // Workers finish their last frames within a frame's time: poll briefly before sleeping (a
    // sleeping virtual CPU was measured to wake up to a millisecond late at p90).
    for (
      const until = performance.now() + 1;
      Atomics.load(ctl, CTL.DONE) < workerFrames && performance.now() < until;
    );
    let waited = 0;
    for (let done = Atomics.load(ctl, CTL.DONE); done < workerFrames; done = Atomics.load(ctl, CTL.DONE)) {
      if (Atomics.load(ctl, CTL.STOP) === 2 || p.broken || waited >= STALL_MS) {
        p.broken = true;
        return undefined;
      }
      if (Atomics.wait(ctl, CTL.DONE, done, 100) === 'timed-out') waited += 100;
    }
    const firstBad = Atomics.load(ctl, CTL.FIRST_BAD);
    return { firstBad: firstBad < job.count ? firstBad : -1, workerFrames };
  } catch (error) {
    // This thread failed mid-job: release the workers (they may be waiting for a copy).
    Atomics.store(ctl, CTL.STOP, 1);
    Atomics.store(ctl, CTL.NEXT, job.count + 1);
    Atomics.notify(ctl, CTL.COPIED);
    throw error;
  } finally {
    // The ring held copies of the caller's data (plaintext when sealing): the slots used.
    if (slots !== undefined) zeroShared(slots, 0, Math.min(copied, slotCount) * slotStride);
    p.busy = false;
    clearTimeout(p.idle);
    p.idle = setTimeout(() => {
      if (!p.busy) p.ring = undefined;
    }, RING_IDLE_MS);
    p.idle.unref();
  }
}

function lowerFirstBad(ctl: Int32Array, i: number): void {
  for (let b = Atomics.load(ctl, CTL.FIRST_BAD); i < b; b = Atomics.load(ctl, CTL.FIRST_BAD)) {
    if (Atomics.compareExchange(ctl, CTL.FIRST_BAD, b, i) === b) return;
  }
}

/** Bytes per native copy into the ring: a slice stays in cache while the worker reads it. */
const COPY_SLICE = 64 * 1024;

/**
 * Copies `source` into the shared `slot` at `at`. `TypedArray.set` into a SharedArrayBuffer
 * takes V8's relaxed (atomic-safe) copy, measured about half the speed of `Buffer#copy`'s
 * memmove; copying 64 KiB at a time halved the main thread's copy time again on 2 cores (the
 * worker reads each slice from cache).
 */
export function copyToSlot(source: Uint8Array, slot: Buffer, at: number): void {
  const from = Buffer.from(source.buffer, source.byteOffset, source.byteLength);
  for (let p = 0; p < from.length; p += COPY_SLICE) {
    from.copy(slot, at + p, p, Math.min(from.length, p + COPY_SLICE));
  }
}

const ZEROS = Buffer.alloc(COPY_SLICE);

/**
 * Zeroes `buffer[from, to)` in shared memory. `fill` on a SharedArrayBuffer takes V8's relaxed
 * path (0.9 ms for 5 MiB, against 0.18 in normal memory); copying zeros runs at memmove's speed.
 */
function zeroShared(buffer: Buffer, from: number, to: number): void {
  for (let p = from; p < to; p += COPY_SLICE) ZEROS.copy(buffer, p, 0, Math.min(COPY_SLICE, to - p));
}

/**
 * A zero-filled buffer of `size` bytes that worker threads can write into, placed so that
 * offset `aligned` in it is 8-byte aligned (frame contents written at aligned offsets keep
 * V8's fast copy into shared memory; see `FrameJob.inputShift`).
 */
export function sharedBuffer(size: number, aligned = 0): Buffer {
  const lead = (8 - (aligned % 8)) % 8;
  return Buffer.from(new SharedArrayBuffer(size + lead), lead, size);
}

/** For tests: the pool's threads and ring as they are now. */
export function framePoolForTests(): { workers: readonly Worker[]; ring: Uint8Array | undefined } {
  const r = pool?.ring;
  return { workers: pool?.workers ?? [], ring: r === undefined ? undefined : new Uint8Array(r.buffer) };
}
