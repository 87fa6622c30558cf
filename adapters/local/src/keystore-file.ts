/**
 * Reads and writes one keystore file. Reads take no lock (writes are atomic renames, so a
 * reader sees a whole file); every mutation is: lock, re-read, apply, seal, write, unlock.
 * Mutations from one process are also queued in memory, so they do not poll the file lock
 * against each other.
 */

import { createHash } from 'node:crypto';
import { type BigIntStats, statSync } from 'node:fs';
import { KeyportError } from '@keyport/core';
import {
  NotRegularFile,
  nameTooLong,
  openRegular,
  racyStamp,
  readSized,
  removeOrphanedTemps,
  stampOf,
  stampSync,
  wallClockNs,
  writeFileAtomic,
  writeTarget,
} from './atomic-write.js';
import { abortError, fsReason, localError } from './errors.js';
import { acquireLock, type HeldLock } from './file-lock.js';
import { emptyBody, type KeystoreBody, validateBody } from './model.js';
import {
  type DerivedKeys,
  deriveKeys,
  newSalt,
  readHeader,
  type ScryptParams,
  type SealedHeader,
  seal,
  unseal,
  wipeKeys,
} from './sealed-file.js';

/**
 * The largest keystore file opened. The body is JSON of every key's versions; at ~3 KiB per
 * RSA-4096 version this holds some 20,000 of them. Anything larger is not a keystore, and
 * reading it whole would only cost memory.
 */
export const MAX_KEYSTORE_BYTES = 64 * 1024 * 1024;

/** Opens the keystore path for reading: a regular file, or a typed error (never a hang). */
async function openKeystore(path: string): Promise<Awaited<ReturnType<typeof openRegular>>> {
  try {
    return await openRegular(path);
  } catch (error) {
    if (isErrno(error, 'ENOENT')) throw localError('NotFound', 'keystore file does not exist');
    if (error instanceof NotRegularFile) {
      throw localError(
        'InvalidArgument',
        `options.path: the keystore path is a ${error.kind}; it must be a regular file or absent`,
      );
    }
    throw localError('Unavailable', `keystore file cannot be read: ${fsReason(error)}`, undefined, error);
  }
}

/** Whether the keystore path names a file: a regular file is true, a missing one false; anything else throws. */
async function exists(path: string): Promise<boolean> {
  try {
    await (await openKeystore(path)).close();
    return true;
  } catch (error) {
    if (error instanceof KeyportError && error.code === 'NotFound') return false;
    throw error;
  }
}

export interface KeystoreFileOptions {
  readonly path: string;
  readonly passphrase: Uint8Array;
  readonly lockTimeoutMs?: number | undefined;
}

function isErrno(error: unknown, code: string): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === code;
}

function sameKdf(keys: DerivedKeys, header: SealedHeader): boolean {
  const a = keys.params;
  const b = header.params;
  return keys.salt.equals(header.salt) && a.log2N === b.log2N && a.r === b.r && a.p === b.p;
}

export class KeystoreFile {
  readonly path: string;
  readonly #passphrase: Buffer;
  readonly #lockTimeoutMs: number | undefined;
  #keys: DerivedKeys | undefined;
  /**
   * The body last read or written, with the file's stamp then (see stampOf: the lock-free
   * reads' hint) and the SHA-256 of its bytes (what a write under the lock compares).
   */
  #cache: { stamp: string; racy: boolean; digest: Buffer; body: KeystoreBody } | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #opens = 0;
  #closed = false;
  #permissionsChecked = false;

  constructor(options: KeystoreFileOptions) {
    this.path = options.path;
    // A private copy, wiped by close(): the caller may reuse or wipe its own.
    this.#passphrase = Buffer.from(options.passphrase);
    this.#lockTimeoutMs = options.lockTimeoutMs;
  }

  /**
   * Writes a new, empty keystore unless the file exists. Returns false when it existed (the
   * caller then opens it as usual).
   */
  async createIfMissing(
    owner: string,
    params: ScryptParams,
    now: Date,
    signal?: AbortSignal,
  ): Promise<boolean> {
    // An existing file is opened as usual, so the write lock is only taken for a missing one:
    // `create: true` on a keystore in a read-only directory or mount failed to open it at all
    // (the lock file cannot be made there), and one whose lock a live writer held waited for
    // it and then failed with Timeout. Checked again under the lock: another process may
    // create it meanwhile.
    if (await exists(this.path)) return false;
    const { target, lock } = await this.#lock(signal);
    let released = false;
    try {
      if (await exists(this.path)) return false;
      this.#keys = await deriveKeys(this.#passphrase, params, newSalt(), signal);
      await this.#write(target, emptyBody(owner, now), signal, () => {
        lock.releaseSync();
        released = true;
      });
      return true;
    } finally {
      if (!released) await lock.release();
    }
  }

  /**
   * The current body, for a lock-free read. Callers must not modify it.
   *
   * When a body is cached, one `stat` of the path decides: the same regular file with the same
   * stamp (device, inode, size, mtime, ctime) is the cached body. Anything else (another
   * process's write, a new file; a file deleted, replaced by a directory, FIFO or link to one;
   * a stat error) takes the full path below, which opens, checks and reads the file and
   * refuses it exactly as on a first read.
   *
   * The stamp is a hint, not proof: two writes by others reuse the inode number (ext4 hands a
   * freed one to the next file), and where timestamps are coarse (1 s on ext4 with 128-byte
   * inodes, ext3, HFS+) they can keep size, mtime and ctime too. So a stamp on such a file
   * system taken within its tick is racy (racyStamp): reads then open the file and compare its
   * bytes until the tick is past. A write never relies on the stamp (see #mutateLocked).
   *
   * The stat is synchronous: measured on a 2-core VM, `fs.promises.stat` cost 34-43 us of CPU
   * per call (a thread-pool hand-off and wake-up each way), 9 us with 64 in flight, against
   * 1 us for `statSync` of a local file; every local encrypt and decrypt takes this path.
   */
  async read(signal?: AbortSignal): Promise<KeystoreBody> {
    this.#assertOpen();
    const cached = this.#cache;
    if (cached !== undefined) {
      let st: BigIntStats | undefined;
      try {
        st = statSync(this.path, { bigint: true });
      } catch {
        st = undefined;
      }
      if (st?.isFile() === true && !cached.racy && stampOf(st) === cached.stamp) return cached.body;
    }
    return this.#readFile(signal);
  }

  /** How many times this object opened the file to read it (a cached read opens nothing). */
  get opens(): number {
    return this.#opens;
  }

  /**
   * Opens and reads the file. Bytes equal to the cached ones (by SHA-256; every write seals
   * with a fresh random IV, so two writes never share bytes) are the cached body: not
   * decrypted or parsed again.
   */
  async #readFile(signal: AbortSignal | undefined): Promise<KeystoreBody> {
    this.#opens++;
    const handle = await openKeystore(this.path);
    try {
      const st = await handle.stat({ bigint: true });
      const stamp = stampOf(st);
      const racy = racyStamp(st, wallClockNs());
      if (st.size > BigInt(MAX_KEYSTORE_BYTES)) {
        throw localError(
          'Integrity',
          `keystore file is larger than ${MAX_KEYSTORE_BYTES} bytes: not a keystore`,
        );
      }
      // A path that is a directory opens but cannot be read (EISDIR): keep that a KeyportError.
      const bytes = await readSized(handle, Number(st.size)).catch((error: unknown) => {
        throw localError('Unavailable', `keystore file cannot be read: ${fsReason(error)}`, undefined, error);
      });
      if (!this.#permissionsChecked) {
        this.#permissionsChecked = true;
        warnIfExposed(this.path, st);
      }
      const digest = createHash('sha256').update(bytes).digest();
      const cached = this.#cache;
      if (cached?.digest.equals(digest) === true) {
        bytes.fill(0);
        // Same bytes under a new stamp (a touch, a copy back): later reads skip the file again.
        this.#cache = { ...cached, stamp, racy };
        return cached.body;
      }
      const body = await this.#open(bytes, signal);
      this.#cache = { stamp, racy, digest, body };
      return body;
    } finally {
      await handle.close();
    }
  }

  /** Runs `apply` on a private copy of the freshest body under the lock, then persists it. */
  mutate<T>(signal: AbortSignal | undefined, apply: (body: KeystoreBody) => T): Promise<T> {
    const previous = this.#queue;
    const run = untilSettled(previous, signal).then(() => this.#mutateLocked(signal, apply));
    // The next writer waits for both: a call that left the queue on abort frees no place in it.
    this.#queue = Promise.allSettled([previous, run]);
    return run;
  }

  async #mutateLocked<T>(signal: AbortSignal | undefined, apply: (body: KeystoreBody) => T): Promise<T> {
    this.#assertOpen();
    if (signal?.aborted) throw abortError(signal);
    const { target, lock } = await this.#lock(signal);
    let released = false;
    try {
      // The bytes on disk now, whatever the stamp says. This was read(): a stamp equal to the
      // cached one skipped the file, so a same-size change another writer made in the same
      // timestamp tick was overwritten (its new key lost, its revoked grant or destroyed
      // version written back). One read and hash of the file; parsed only if it changed.
      const body = structuredClone(await this.#readFile(signal));
      const result = apply(body);
      // Under the lock no live writer of this host has a temp file open: sweep what killed
      // writers left (best effort, before our write so nothing awaits after the commit).
      await removeOrphanedTemps(target).catch(() => undefined);
      await this.#write(target, body, signal, () => {
        lock.releaseSync();
        released = true;
      });
      return result;
    } finally {
      if (!released) await lock.release();
    }
  }

  /**
   * Takes the write lock of the file the path names now: the keystore path itself, or the
   * file a symbolic link there points to (see writeTarget), so that writers through the link
   * and through its target share one lock and one file.
   */
  async #lock(signal: AbortSignal | undefined): Promise<{ target: string; lock: HeldLock }> {
    for (let attempt = 1; ; attempt++) {
      const target = await writeTarget(this.path);
      // The path's own name was checked when opening; a symbolic link's target was not.
      const tooLong = target === this.path ? undefined : nameTooLong(target);
      if (tooLong !== undefined) {
        throw localError('InvalidArgument', `options.path: the symbolic link's target: ${tooLong}`);
      }
      const lock = await acquireLock(target, { signal, timeoutMs: this.#lockTimeoutMs });
      // A link repointed while we waited: this lock no longer guards the file we would write.
      if ((await writeTarget(this.path)) === target) return { target, lock };
      await lock.release();
      if (attempt >= 3) {
        throw localError('Unavailable', 'the keystore path keeps changing (a symbolic link repointed)');
      }
    }
  }

  /**
   * Seals and writes `body` to `target` (the keystore path or its link's target). Nothing lands
   * once `signal` has fired: it is checked in the same synchronous step as the rename (see
   * writeFileAtomic), and `afterCommit` runs in that step too.
   */
  async #write(
    target: string,
    body: KeystoreBody,
    signal: AbortSignal | undefined,
    afterCommit: () => void,
  ): Promise<void> {
    const keys = this.#keys;
    if (keys === undefined) throw localError('Internal', 'keystore written before it was opened');
    const json = serialise(body);
    let stamp: { stamp: string; racy: boolean } | undefined;
    let digest: Buffer | undefined;
    try {
      const sealed = seal(json, keys);
      // Every reader refuses a file this large (Integrity): writing it would lock everyone out.
      if (sealed.length > MAX_KEYSTORE_BYTES) throw tooLarge();
      digest = createHash('sha256').update(sealed).digest();
      await writeFileAtomic(target, sealed, {
        beforeCommit: () => {
          if (signal?.aborted) throw abortError(signal);
        },
        afterCommit: () => {
          // Only this writer holds the lock, so the file now on disk is the one just written.
          try {
            stamp = stampSync(this.path);
          } catch {
            stamp = undefined;
          }
          afterCommit();
        },
      });
    } catch (error) {
      if (error instanceof KeyportError) throw error;
      throw localError(
        'Unavailable',
        `keystore file cannot be written: ${fsReason(error)}`,
        undefined,
        error,
      );
    } finally {
      json.fill(0);
    }
    this.#cache = stamp === undefined || digest === undefined ? undefined : { ...stamp, digest, body };
  }

  async #open(bytes: Buffer, signal: AbortSignal | undefined): Promise<KeystoreBody> {
    try {
      const header = readHeader(bytes);
      const cached = this.#keys;
      if (cached !== undefined && sameKdf(cached, header)) return parseSealedBody(bytes, cached);
      if (signal?.aborted) throw abortError(signal);
      const keys = await deriveKeys(this.#passphrase, header.params, header.salt, signal);
      const plain = unseal(bytes, keys); // throws before the keys are kept if they are wrong
      if (cached !== undefined) wipeKeys(cached);
      this.#keys = keys;
      return parseBody(plain);
    } finally {
      bytes.fill(0);
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw localError('InvalidArgument', 'the keystore has been closed');
  }

  /** Wipes the passphrase and derived keys; the object cannot be used afterwards. */
  close(): void {
    this.#closed = true;
    this.#passphrase.fill(0);
    if (this.#keys !== undefined) wipeKeys(this.#keys);
    this.#keys = undefined;
    this.#cache = undefined;
  }
}

/** The code of the process warning for a keystore file others can read or replace. */
export const EXPOSED_KEYSTORE_WARNING = 'KEYPORT_LOCAL_KEYSTORE_EXPOSED';

/**
 * Warns (a process warning, once per provider) when the keystore file's mode lets other users
 * in, or another user owns it. Reading it lets them guess the passphrase offline; writing or
 * owning it lets them put back an older copy (revoked grants and destroyed versions return).
 * Every write leaves the file 0600, but a keystore copied or checked out with a looser mode
 * stayed that way, unnoticed, for as long as it was only read. Not refused: a keystore shared
 * by a group on purpose keeps working. POSIX only (Windows has no such mode bits).
 */
function warnIfExposed(path: string, st: BigIntStats): void {
  if (process.platform === 'win32') return;
  const mode = Number(st.mode & 0o777n);
  const uid = Number(st.uid);
  const me = process.getuid?.();
  const why: string[] = [];
  if ((mode & 0o077) !== 0) why.push(`its mode is ${mode.toString(8).padStart(4, '0')}`);
  if (me !== undefined && uid !== me && uid !== 0) why.push(`it is owned by another user (uid ${uid})`);
  if (why.length === 0) return;
  process.emitWarning(
    `keystore file ${path}: ${why.join(' and ')}; other users may read or replace it (chmod 600, owned by the user running keyport)`,
    { code: EXPOSED_KEYSTORE_WARNING },
  );
}

/**
 * Waits for the writers queued before this one, or until `signal` fires (Aborted / Timeout). A
 * queued write used to notice its signal only at its turn: behind a write waiting out another
 * process's lock, a call aborted after 50 ms failed after the whole `lockTimeoutMs`.
 */
function untilSettled(previous: Promise<unknown>, signal: AbortSignal | undefined): Promise<void> {
  if (signal === undefined) return previous.then(() => undefined);
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(abortError(signal, undefined, 'waiting for the keystore lock'));
      return;
    }
    const onAbort = (): void => reject(abortError(signal, undefined, 'waiting for the keystore lock'));
    signal.addEventListener('abort', onAbort, { once: true });
    void previous.then(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    });
  });
}

function tooLarge(cause?: unknown): KeyportError {
  return localError(
    'InvalidArgument',
    `this change would make the keystore file larger than ${MAX_KEYSTORE_BYTES} bytes; nothing was written`,
    undefined,
    cause,
  );
}

/** The body as UTF-8 JSON; one too large for a JavaScript string (RangeError) is refused too. */
function serialise(body: KeystoreBody): Buffer {
  let text: string;
  try {
    text = JSON.stringify(body);
  } catch (error) {
    throw tooLarge(error);
  }
  return Buffer.from(text, 'utf8');
}

/**
 * The body of a sealed keystore file, given the keys derived for its header: passphrase
 * check, authenticated decryption, JSON, then the body's structure (see validateBody). Every
 * failure is a KeyportError (AccessDenied, Integrity). Synchronous: the fuzz tests drive it.
 */
export function parseSealedBody(file: Uint8Array, keys: DerivedKeys): KeystoreBody {
  return parseBody(unseal(file, keys));
}

/**
 * The deepest nesting of arrays and objects a body may have; what the keystore writes nests 6
 * deep (body, keys, key, grants, grant, contextEquals).
 */
const MAX_BODY_DEPTH = 32;

/**
 * Whether the JSON text `plain` nests arrays and objects deeper than `max`, by one pass over the
 * bytes (brackets inside strings do not count). JSON.parse itself is not recursive, so a sealed
 * body holding `[[[…]]]` in a field the validation does not look at opened; then every write
 * (structuredClone, JSON.stringify: recursive) threw a raw RangeError, so the keystore could
 * never be changed again, and 20 million levels cost 16 s and 1.4 GB to parse on every open.
 */
function nestsDeeperThan(plain: Buffer, max: number): boolean {
  let depth = 0;
  for (let i = 0; i < plain.length; i++) {
    const c = plain[i];
    if (c === 0x22) {
      // A string: jump to its closing quote, one not preceded by an odd number of backslashes.
      // A native search: key material is most of the body, and byte by byte the scan cost
      // more than JSON.parse.
      let end = i;
      for (;;) {
        end = plain.indexOf(0x22, end + 1);
        if (end < 0) return false; // unterminated: JSON.parse reports it
        let slashes = 0;
        for (let j = end - 1; plain[j] === 0x5c; j--) slashes++;
        if (slashes % 2 === 0) break;
      }
      i = end;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return false;
}

/** Parses and validates decrypted body bytes, then wipes them. */
export function parseBody(plain: Buffer): KeystoreBody {
  try {
    if (nestsDeeperThan(plain, MAX_BODY_DEPTH)) {
      throw localError('Integrity', `keystore body is nested more than ${MAX_BODY_DEPTH} levels deep`);
    }
    let value: unknown;
    try {
      value = JSON.parse(plain.toString('utf8'));
    } catch {
      throw localError('Integrity', 'keystore body is not valid JSON');
    }
    return validateBody(value);
  } finally {
    plain.fill(0);
  }
}
