/**
 * Stream frames on worker threads. A stream's frames arrive one by one on the calling thread,
 * so the whole-buffer frame pool (one blocking job over shared memory) does not fit; here each
 * frame is one message to a worker and one reply.
 *
 * Why this shape (measured on the 2-core machine, 1 GiB of 64 KiB chunks in 1 MiB frames, see
 * bench/envelope.bench.mjs): a stream's data is hot in cache and one core seals it at ~3 GB/s,
 * so every byte moved between threads costs a visible share of the AES it moves.
 * - WebCrypto (the previous design) copied each frame twice on the calling thread and returned
 *   fresh pages: 0.43-0.47x of one thread.
 * - Copying frames into a shared ring and results back out of it: 0.6-0.7x (both copies on the
 *   calling thread, between cores).
 * - Here the calling thread copies a frame once into a reused buffer that is transferred (not
 *   copied) to a worker and back; the worker runs the frame in one `update` and its output comes
 *   back transferred too (one buffer: 64 KiB pieces cost the calling thread more to receive and
 *   collect). Still, copy, message and reply cost the calling thread ~0.15 ms per 1 MiB frame
 *   against ~0.3 ms to run the frame itself: 0.8-1.3x of one thread on 2 cores.
 * - The calling thread also seals or opens frames itself whenever every worker already has
 *   `QUEUED_PER_WORKER` frames, rather than wait (more frames queued per worker measured worse).
 * - Per thread, measured with process.threadCpuUsage (2026-12-05, Node 24, sealStream 1 GiB at
 *   concurrency 2): a worker spends 0.33 ms per frame (its `update` 0.26, the rest the message
 *   and its own collections of the 1 MiB outputs), the calling thread 0.10-0.14 per frame it
 *   hands off, and V8's helper threads ~15% of the CPU; the calling thread waits on the oldest
 *   frame ~30% of the time. The copy alone is 0.04 ms per frame against 0.26 to seal it on one
 *   thread (0.07 measured alone into a buffer a worker just used, the lines on the other core),
 *   so no design that copies the caller's chunks once could pass ~1.7x on 2 cores.
 *
 * Workers start on first use, are kept, and never keep the process alive; a reply port holds it
 * only while frames are out. A worker that dies fails the frames it held (typed `Unavailable`)
 * and is replaced on next use.
 */
import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from 'node:worker_threads';
import { KeyportError } from '@keyport/core';
import { type AeadKey, openPieces, sealPieces } from './aead.js';
import { CORES } from './frame-pool.js';
import { STREAM_WORKER_SOURCE } from './stream-worker-source.js';

/** Frames waiting at one worker before the calling thread runs the next one itself. */
const QUEUED_PER_WORKER = 2;

interface Reply {
  readonly id: number;
  readonly ok: boolean;
  readonly pieces: ArrayBuffer[];
  readonly input: ArrayBuffer;
}

interface Job {
  settle(reply: Reply): void;
  fail(error: KeyportError): void;
}

interface Lane {
  readonly worker: Worker;
  readonly port: MessagePort;
  readonly jobs: Map<number, Job>;
  broken: boolean;
}

const lanes: Lane[] = [];
let nextId = 0;
/** Frames the workers have sealed or opened (for tests). */
let workerFrames = 0;
/** Set when a worker thread cannot be started at all (then every frame runs here). */
let noWorkers = false;

function startLane(): Lane | undefined {
  const { port1, port2 } = new MessageChannel();
  let worker: Worker;
  try {
    worker = new Worker(STREAM_WORKER_SOURCE, {
      eval: true,
      workerData: { port: port2 },
      transferList: [port2],
    });
  } catch {
    // E.g. a permission model without worker threads: the calling thread alone, from now on.
    port1.close();
    noWorkers = true;
    return undefined;
  }
  const lane: Lane = { worker, port: port1, jobs: new Map(), broken: false };
  worker.unref();
  port1.unref();
  port1.on('message', (reply: Reply) => settle(lane, reply));
  const retire = () => {
    if (lane.broken) return;
    lane.broken = true;
    lanes.splice(lanes.indexOf(lane), 1);
    port1.close();
    const failure = new KeyportError(
      'Unavailable',
      'a frame worker thread stopped; the stream was not completed',
    );
    for (const job of lane.jobs.values()) job.fail(failure);
    lane.jobs.clear();
  };
  worker.on('error', retire);
  worker.on('exit', retire);
  lanes.push(lane);
  return lane;
}

function settle(lane: Lane, reply: Reply): void {
  const job = lane.jobs.get(reply.id);
  if (job === undefined) return;
  lane.jobs.delete(reply.id);
  if (lane.jobs.size === 0) lane.port.unref();
  workerFrames++;
  job.settle(reply);
}

/** Takes the replies already waiting, without waiting for the event loop. */
function drainReplies(): void {
  for (const lane of lanes) {
    for (let m = receiveMessageOnPort(lane.port); m !== undefined; m = receiveMessageOnPort(lane.port)) {
      settle(lane, m.message as Reply);
    }
  }
}

/** The least busy worker with room, starting workers up to `workers`; undefined: run it here. */
function laneWithRoom(workers: number): Lane | undefined {
  drainReplies();
  let best: Lane | undefined;
  for (let i = 0; i < workers && !noWorkers; i++) {
    const lane = lanes[i] ?? startLane();
    if (lane === undefined) break;
    if (lane.jobs.size < QUEUED_PER_WORKER && (best === undefined || lane.jobs.size < best.jobs.size))
      best = lane;
  }
  return best;
}

/** Copies `from` into `to` at `at` with memmove (`TypedArray#set` measured slower here). */
function copyBytes(from: Uint8Array, to: Buffer, at: number): number {
  return Buffer.from(from.buffer, from.byteOffset, from.byteLength).copy(to, at);
}

/**
 * One frame's message to a worker. The key is a copy the worker zeroes; `input` is transferred
 * (moves, no copy). IV and AAD go as their own bytes: cloning a view clones its whole buffer,
 * which for these is Node's shared Buffer pool (64 KiB, other allocations' bytes included).
 */
export function frameMessage(
  id: number,
  seal: boolean,
  key: Uint8Array,
  iv: Uint8Array,
  aad: Uint8Array,
  input: ArrayBuffer,
  length: number,
): {
  id: number;
  seal: boolean;
  key: Uint8Array;
  iv: Uint8Array;
  aad: Uint8Array;
  input: ArrayBuffer;
  length: number;
} {
  return { id, seal, key, iv: Uint8Array.from(iv), aad: Uint8Array.from(aad), input, length };
}

/** One stream's frames; `close` zeroes what it kept (the key copy, reused plaintext buffers). */
export interface StreamFrameRunner {
  /** AES-256-GCM of the concatenated `parts` (`length` bytes): ciphertext pieces, then the tag. */
  seal(iv: Uint8Array, aad: Uint8Array, parts: readonly Uint8Array[], length: number): Promise<Uint8Array[]>;
  /**
   * Decrypts the concatenated `parts`: `length` bytes of content, then the tag. The plaintext
   * pieces, or Integrity.
   */
  open(
    iv: Uint8Array,
    aad: Uint8Array,
    parts: readonly Uint8Array[],
    length: number,
    what: string,
  ): Promise<Uint8Array[]>;
  close(): void;
}

/** Frames of one stream on the calling thread and up to `concurrency - 1` workers. */
export function streamFrameRunner(key: AeadKey, concurrency: number, frameLength: number): StreamFrameRunner {
  const workers = Math.min(concurrency, CORES) - 1;
  // The key's own 32 bytes (cloned per message; never a view of a larger buffer).
  const raw = key instanceof Uint8Array ? Uint8Array.from(key) : key.export();
  // Frame buffers come back with each reply and are reused; they held plaintext when sealing.
  const spare: ArrayBuffer[] = [];
  let closed = false;
  const frameBuffer = () => spare.pop() ?? new ArrayBuffer(frameLength + 16);
  const giveBack = (buffer: ArrayBuffer) => {
    if (closed) new Uint8Array(buffer).fill(0);
    else spare.push(buffer);
  };
  /** A frame buffer holding the concatenated `parts`: the one copy a worker's frame costs here. */
  const copied = (parts: readonly Uint8Array[]): ArrayBuffer => {
    const input = frameBuffer();
    const target = Buffer.from(input);
    let at = 0;
    for (const p of parts) at += copyBytes(p, target, at);
    return input;
  };

  const post = (
    lane: Lane,
    seal: boolean,
    iv: Uint8Array,
    aad: Uint8Array,
    input: ArrayBuffer,
    length: number,
    failure: () => KeyportError,
  ): Promise<Uint8Array[]> => {
    const id = nextId++;
    const output = new Promise<Uint8Array[]>((resolve, reject) => {
      if (lane.jobs.size === 0) lane.port.ref();
      lane.jobs.set(id, {
        settle(reply) {
          giveBack(reply.input);
          if (reply.ok) resolve(reply.pieces.map((b) => Buffer.from(b)));
          else reject(failure());
        },
        fail: reject,
      });
    });
    try {
      lane.port.postMessage(frameMessage(id, seal, raw, iv, aad, input, length), [input]);
    } catch (error) {
      lane.jobs.delete(id);
      if (lane.jobs.size === 0) lane.port.unref();
      throw error;
    }
    return output;
  };

  return {
    seal(iv, aad, parts, length) {
      const lane = laneWithRoom(workers);
      if (lane === undefined) return Promise.resolve(sealPieces(key, iv, aad, parts));
      return post(
        lane,
        true,
        iv,
        aad,
        copied(parts),
        length,
        () => new KeyportError('Internal', 'a frame worker failed to seal a frame'),
      );
    },
    open(iv, aad, parts, length, what) {
      const lane = laneWithRoom(workers);
      const failure = () => new KeyportError('Integrity', `${what} failed authentication`);
      if (lane !== undefined) return post(lane, false, iv, aad, copied(parts), length, failure);
      // Here the frame is opened where it lies in the caller's chunks: no copy.
      const pieces = openPieces(key, iv, aad, parts, length);
      return pieces === undefined ? Promise.reject(failure()) : Promise.resolve(pieces);
    },
    close() {
      closed = true;
      raw.fill(0);
      for (const b of spare) new Uint8Array(b).fill(0);
      spare.length = 0;
    },
  };
}

/** For tests: the workers now, frames they have run, and whether any reply port holds the process. */
export function streamWorkersForTests(): { workers: Worker[]; workerFrames: number; holding: boolean } {
  return {
    workers: lanes.map((l) => l.worker),
    workerFrames,
    holding: lanes.some((l) => l.jobs.size > 0 || l.port.hasRef()),
  };
}
