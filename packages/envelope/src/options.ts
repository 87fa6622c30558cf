/**
 * The options of every public call, read once and checked before any work. A careless or
 * hostile caller's options must give a typed `InvalidArgument`, never a `TypeError` from deep
 * inside (null options, `recipients` given as a string, an array with holes) nor a silently
 * ignored value (`requireCommitment: 'yes'` enforcing nothing, `signal: {}` aborting nothing).
 * Each option is read exactly once into a snapshot, so a getter cannot answer differently to
 * the check and to the use, and a getter that throws becomes an `InvalidArgument`.
 */
import { KeyportError, settleOrAbort } from '@keyport/core';
import { DataKeyCache } from './cache.js';
import { checkUnknown } from './known-options.js';
import { DEFAULT_LIMITS } from './limits.js';

function bad(message: string): KeyportError {
  return new KeyportError('InvalidArgument', message, { retryable: false });
}

/**
 * A snapshot of `names` read from `value` (own or inherited, as JavaScript reads options):
 * later reads see exactly what was checked, and nothing else of `value`.
 */
export function readOptions<T extends object>(value: unknown, what: string, names: readonly string[]): T {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw bad(`${what} must be an options object`);
  }
  // A literal, not Object.create(null): none of the names is an Object.prototype member, and
  // a literal keeps fast properties for the reads that follow on every seal and open.
  const out: Record<string, unknown> = {};
  for (const name of names) {
    let v: unknown;
    try {
      v = (value as Record<string, unknown>)[name];
    } catch {
      // The caller's own error is left out: it is not ours to pass on, and may say anything.
      throw bad(`${what}: reading ${name} threw`);
    }
    if (v !== undefined) out[name] = v;
  }
  checkUnknown(value as object, what, names);
  checkCommon(out, what);
  return out as T;
}

/** Options every call shares, whose wrong type would otherwise be ignored or fail late. */
function checkCommon(o: Record<string, unknown>, what: string): void {
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) {
    throw bad(`${what}: signal must be an AbortSignal`);
  }
  if (o.cache !== undefined && !(o.cache instanceof DataKeyCache)) {
    throw bad(`${what}: cache must be a DataKeyCache`);
  }
  if (o.keys !== undefined && (typeof o.keys !== 'object' || o.keys === null)) {
    throw bad(`${what}: keys must be a KeyOperations (e.g. a Keyport client)`);
  }
  if (o.requireCommitment !== undefined && typeof o.requireCommitment !== 'boolean') {
    throw bad(`${what}: requireCommitment must be a boolean`);
  }
  if (o.requireUnsigned !== undefined && typeof o.requireUnsigned !== 'boolean') {
    throw bad(`${what}: requireUnsigned must be a boolean`);
  }
  if (o.onHeader !== undefined && typeof o.onHeader !== 'function') {
    throw bad(`${what}: onHeader must be a function`);
  }
}

/**
 * The entries of a list option, holes refused: `Array.prototype.map` skips holes and keeps
 * them, so `[a, , b]` reached the recipients as `undefined` and failed as a TypeError.
 */
export function listOption<T, R>(value: unknown, name: string, each: (entry: T) => R): R[] {
  if (!Array.isArray(value)) throw bad(`${name} must be an array`);
  const out: R[] = [];
  for (let i = 0; i < value.length; i++) {
    if (!(i in value)) throw bad(`${name} has a hole at index ${i}`);
    out.push(each(value[i] as T));
  }
  return out;
}

/** A source of chunks: an iterable or async iterable (a Node Readable is one). */
export function checkSource(source: unknown): void {
  const ok =
    typeof source === 'object' &&
    source !== null &&
    (typeof (source as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function' ||
      typeof (source as Iterable<unknown>)[Symbol.iterator] === 'function');
  if (!ok) throw bad('the source must be an iterable or async iterable of Uint8Array chunks');
}

/**
 * Typed abort: `AbortSignal.throwIfAborted` throws the signal's reason, which is whatever the
 * caller passed to `abort()` (a string, undefined, a DOMException), not a `KeyportError`.
 */
export function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) {
    throw new KeyportError('Aborted', 'the operation was aborted', { retryable: false });
  }
}

export const SEAL_OPTION_NAMES = [
  'recipients',
  'context',
  'contextNotStored',
  'suite',
  'frameLength',
  'keys',
  'cache',
  'signal',
  'timeoutMs',
  'dataKeySource',
  'plaintextLength',
  'concurrency',
] as const;

export const OPEN_OPTION_NAMES = [
  'trust',
  'requiredContext',
  'reproducedContext',
  'keys',
  'cache',
  'signal',
  'timeoutMs',
  'requireCommitment',
  'requireUnsigned',
  'concurrency',
  // The limits, from the one place that names them.
  ...(Object.keys(DEFAULT_LIMITS) as (keyof typeof DEFAULT_LIMITS)[]),
] as const;

/** A stream reports its header as it comes: `onHeader` is not an option of the buffer call. */
export const STREAM_OPEN_OPTION_NAMES = [...OPEN_OPTION_NAMES, 'onHeader'] as const;

/** Rewrap copies the body's frames without decrypting them: no `concurrency` to give it. */
export const REWRAP_OPTION_NAMES = [
  ...OPEN_OPTION_NAMES.filter((name) => name !== 'concurrency'),
  'add',
  'remove',
] as const;

/** The buffer calls also take `output` (a stream's chunks are its consumer's, never reused). */
export const SEAL_ENVELOPE_OPTION_NAMES = [...SEAL_OPTION_NAMES, 'output'] as const;
export const OPEN_ENVELOPE_OPTION_NAMES = [...OPEN_OPTION_NAMES, 'output'] as const;

/**
 * The caller's `output` for a buffer call, checked: a Uint8Array (a Buffer is one) that shares no
 * byte with `input` (the plaintext being sealed, or the message being opened): the call writes
 * `output` while it still reads `input`.
 */
export function outputOption(output: unknown, input: Uint8Array, inputName: string): Uint8Array | undefined {
  if (output === undefined) return undefined;
  if (!(output instanceof Uint8Array)) throw bad('output must be a Uint8Array (a Buffer is one)');
  const shared =
    output.length > 0 &&
    input.length > 0 &&
    output.byteOffset < input.byteOffset + input.length &&
    input.byteOffset < output.byteOffset + output.length &&
    (output.buffer === input.buffer ||
      sameSharedMemory(output.buffer, input.buffer, output.byteOffset, input.byteOffset));
  if (shared) throw bad(`output must not overlap the ${inputName}`);
  return output;
}

/**
 * Whether two SharedArrayBuffer objects are one memory: each `postMessage` of a
 * SharedArrayBuffer makes a new object over the same memory, so `.buffer` identity misses an
 * `output` received apart from the input, and a seal then wrote its header over plaintext it had
 * not read yet (the message opened, to other bytes). Such objects share their whole memory from
 * offset 0, so views whose offsets intersect overlap exactly when a byte written through one is
 * read through the other: the byte at the intersection's start is written (it is `output`'s, to
 * be written anyway), read back through `input`, and restored.
 */
function sameSharedMemory(
  out: ArrayBufferLike,
  input: ArrayBufferLike,
  outAt: number,
  inAt: number,
): boolean {
  if (!(out instanceof SharedArrayBuffer) || !(input instanceof SharedArrayBuffer)) return false;
  const at = Math.max(outAt, inAt);
  const o = new Uint8Array(out, at, 1);
  const i = new Uint8Array(input, at, 1);
  const saved = Atomics.load(o, 0);
  let same = true;
  // Two values: another thread writing `input` cannot match both by chance.
  for (const probe of [saved ^ 0x5a, saved ^ 0xa5]) {
    Atomics.store(o, 0, probe);
    if (Atomics.load(i, 0) !== probe) {
      same = false;
      break;
    }
  }
  Atomics.store(o, 0, saved);
  return same;
}

/**
 * The source's next result, or Aborted as soon as `signal` fires while waiting: a stalled
 * source (a body that never ends, a peer that stopped sending) must not outlive the caller's
 * abort. The pending `next()` is left to settle on its own; its result is dropped.
 */
export function nextOrAbort<T>(
  it: AsyncIterator<T> | Iterator<T>,
  signal: AbortSignal,
): Promise<IteratorResult<T>> {
  checkAborted(signal);
  let next: Promise<IteratorResult<T>>;
  try {
    next = Promise.resolve(it.next());
  } catch (e) {
    return Promise.reject(e);
  }
  return settleOrAbort(next, signal, streamAborted);
}

/**
 * `promise`, or Aborted as soon as `signal` fires while waiting (the promise is left to settle):
 * for a source's `return()`, which a stalled or buggy source may never settle.
 */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  return signal === undefined ? promise : settleOrAbort(promise, signal, streamAborted);
}

const streamAborted = (): KeyportError =>
  new KeyportError('Aborted', 'the operation was aborted', { retryable: false });
