/**
 * Input bytes waiting to be parsed, kept as the chunks they arrived in. A contiguous view is
 * made only when a field spans chunks, and then only of that field's bytes, so a whole-buffer
 * open copies nothing here and a streaming open copies only small fields (frame bodies are
 * read chunk by chunk with `take`).
 */
import { invalidCiphertext } from './bytes.js';
import { nextOrAbort, untilAborted } from './options.js';

/**
 * Chunks shorter than this are copied into a shared block instead of being kept as they are: a
 * sender that cuts the message into 1-byte chunks would otherwise cost a view object (~100
 * bytes of heap) per byte for whatever is buffered (a header, a frame in flight, a frame rewrap
 * holds): 170 MB for a 1 MiB frame, gigabytes at the 64 MiB frame limit.
 */
export const SMALL_CHUNK = 512;
const BLOCK = 64 * 1024;

/**
 * Chunks taken from a source between two turns of the event loop. A source whose chunks are
 * all at hand (an endless run of empty chunks, a buggy or hostile iterable, a buffered Readable)
 * is read on the microtask queue alone: no timer fired while it ran, so neither the caller's
 * `AbortSignal.timeout` nor any other deadline could stop it, and the process spun at 100% CPU.
 * One `setImmediate` (5 to 10 us) per 4096 chunks costs nothing measurable, even for 16-byte
 * chunks, and a run of empty chunks lets timers run about every millisecond.
 */
export const CHUNKS_PER_TURN = 4096;

/**
 * Input bytes taken between two turns, whatever the chunk count: 4096 chunks of 64 KiB are 256
 * MiB of AES with no timer let through (an `AbortSignal.timeout(10)` over endless 64 KiB chunks
 * fired ~110 ms late, over 1 MiB chunks ~2 s). 4 MiB is ~1.5 ms of AES-GCM on one core, and a
 * turn ~4 us: ~1 ms per GiB, below the bench's noise (16 MiB let that timeout fire ~11 ms late).
 */
export const BYTES_PER_TURN = 4 * 1024 * 1024;

/**
 * Counts what a loop took from its source; `count` says when timers are due a turn (the caller
 * then awaits `nextTurn()`). One per loop, so every loop that reads a source yields alike.
 */
export class TurnCounter {
  private chunks = 0;
  private bytes = 0;

  /** Counts one chunk of `length` bytes; true when a turn is due (the counts then restart). */
  count(length: number): boolean {
    this.bytes += length;
    if (++this.chunks < CHUNKS_PER_TURN && this.bytes < BYTES_PER_TURN) return false;
    this.chunks = 0;
    this.bytes = 0;
    return true;
  }
}

/** Resolves on the macrotask queue, once timers and I/O have had their turn. */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Appends chunks to a list of chunks, copying those shorter than `SMALL_CHUNK` into a shared
 * block whose view, the list's last entry, they extend. Blocks are append-only: views of their
 * filled part stay valid.
 */
export class SmallChunkGatherer {
  private block: Uint8Array | undefined;
  private used = 0;
  /** The view of the block that small chunks extend while it is the list's last entry. */
  private view: Uint8Array | undefined;

  append(list: Uint8Array[], chunk: Uint8Array): void {
    if (chunk.length >= SMALL_CHUNK) {
      list.push(chunk);
      return;
    }
    let block = this.block;
    if (block === undefined || this.used + chunk.length > block.length) {
      block = this.block = new Uint8Array(BLOCK);
      this.used = 0;
      this.view = undefined;
    }
    block.set(chunk, this.used);
    const last = list.length - 1;
    const extend = this.view !== undefined && list[last] === this.view;
    const start = extend ? this.used - (this.view as Uint8Array).length : this.used;
    this.used += chunk.length;
    const view = block.subarray(start, this.used);
    if (extend) list[last] = view;
    else list.push(view);
    this.view = view;
  }
}

export class ChunkQueue {
  private chunks: Uint8Array[] = [];
  private total = 0;
  private done = false;
  private readonly it: AsyncIterator<Uint8Array>;
  /** Set when an abort left a `next()` of the source unanswered (see `close`). */
  private abandoned = false;
  private readonly small = new SmallChunkGatherer();
  private readonly turns = new TurnCounter();
  /** Set when the chunk just taken made a turn of the event loop due (see `TurnCounter`). */
  private turnDue = false;

  /** With `signal`, a wait for the source's next chunk ends (Aborted) as soon as it fires. */
  constructor(
    source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    private readonly signal?: AbortSignal,
  ) {
    this.it =
      Symbol.asyncIterator in source
        ? (source as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]()
        : toAsync((source as Iterable<Uint8Array>)[Symbol.iterator]());
  }

  get length(): number {
    return this.total;
  }

  /** Reads one more chunk; false when the source has ended. */
  async pull(): Promise<boolean> {
    if (this.done) return false;
    for (;;) {
      // Before `next`: an abort the turn let through is seen by `nextOrAbort` at once.
      if (this.turnDue) {
        this.turnDue = false;
        await nextTurn();
      }
      let r: IteratorResult<Uint8Array>;
      if (this.signal === undefined) r = await this.it.next();
      else {
        try {
          r = await nextOrAbort(this.it, this.signal);
        } catch (e) {
          this.abandoned = true;
          throw e;
        }
      }
      if (r.done) {
        this.done = true;
        return false;
      }
      const chunk = r.value;
      if (!(chunk instanceof Uint8Array)) throw invalidCiphertext('message chunks must be bytes');
      this.turnDue = this.turns.count(chunk.length);
      if (chunk.length === 0) continue;
      this.small.append(this.chunks, chunk);
      this.total += chunk.length;
      return true;
    }
  }

  /** Waits until `n` bytes are buffered; throws InvalidCiphertext if the message ends first. */
  async need(n: number): Promise<void> {
    while (this.total < n) {
      if (!(await this.pull())) throw invalidCiphertext('the message is truncated');
    }
  }

  /** The first `n` buffered bytes as one view (`n` <= length); copies only those `n` bytes. */
  view(n: number): Uint8Array {
    const first = this.chunks[0];
    if (first !== undefined && first.length >= n) return first.subarray(0, n);
    const joined = new Uint8Array(n);
    let at = 0;
    let count = 0;
    let tail: Uint8Array | undefined;
    while (at < n) {
      const c = this.chunks[count++] as Uint8Array;
      const take = Math.min(c.length, n - at);
      joined.set(take === c.length ? c : c.subarray(0, take), at);
      at += take;
      if (take < c.length) tail = c.subarray(take);
    }
    // The joined chunks are replaced by the joined bytes plus what is left of the last one.
    if (tail === undefined) this.chunks.splice(0, count, joined);
    else this.chunks.splice(0, count, joined, tail);
    return joined;
  }

  /** The first `n` buffered bytes (`n` <= length) as views of their chunks (never joined). */
  views(n: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (let i = 0, at = 0; at < n; i++) {
      const c = this.chunks[i] as Uint8Array;
      const v = c.length <= n - at ? c : c.subarray(0, n - at);
      out.push(v);
      at += v.length;
    }
    return out;
  }

  /**
   * Up to `max` bytes from the front of the buffer (`length > 0`) as a view into one chunk (never
   * a copy). The bytes stay buffered until `consume`.
   */
  peekBuffered(max: number): Uint8Array {
    const first = this.chunks[0] as Uint8Array;
    return first.length <= max ? first : first.subarray(0, max);
  }

  /** Everything buffered, as one view. */
  all(): Uint8Array {
    return this.view(this.total);
  }

  consume(n: number): void {
    this.total -= n;
    while (n > 0) {
      const first = this.chunks[0] as Uint8Array;
      if (first.length <= n) {
        n -= first.length;
        this.chunks.shift();
      } else {
        this.chunks[0] = first.subarray(n);
        n = 0;
      }
    }
  }

  /** True when the source has no more bytes at all. */
  async atEnd(): Promise<boolean> {
    return this.total === 0 && !(await this.pull());
  }

  /**
   * Asks the source to end. `failed`: the stream is failing with its own error, which the
   * source's `return()` must not replace, as a `for await` loop keeps its body's error over its
   * iterator's (a tampered message read from a source whose return() threw failed as that
   * TypeError, not Integrity). With a signal, a return() that never settles is waited for only
   * until the abort (it held the stream, and its error, forever).
   */
  async close(failed = false): Promise<void> {
    if (this.done) return;
    this.done = true;
    let ended: Promise<unknown>;
    try {
      ended = Promise.resolve(this.it.return?.());
    } catch (e) {
      if (failed) return;
      throw e;
    }
    if (this.abandoned) {
      // An async generator answers return() only after its pending next(): a source that
      // stalled (the reason the caller aborted) would hang the close forever. Ask, don't wait.
      ended.catch(() => undefined);
      return;
    }
    const waited = untilAborted(ended, this.signal);
    if (failed) await waited.catch(() => undefined);
    else await waited;
  }
}

async function* toAsyncGen(it: Iterator<Uint8Array>): AsyncGenerator<Uint8Array> {
  for (let r = it.next(); !r.done; r = it.next()) yield r.value;
}

function toAsync(it: Iterator<Uint8Array>): AsyncIterator<Uint8Array> {
  return toAsyncGen(it);
}
