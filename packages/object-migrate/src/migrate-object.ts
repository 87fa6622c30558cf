/**
 * One object, from the source key to the target key. The object's own header decides what it
 * needs: a header naming the target (and no longer the source) is done, whatever any journal
 * says. Otherwise the object is streamed through `rewrapStream` (header rewritten, body bytes
 * copied as they are, memory bounded by the part size) and written back on the condition
 * that it is still the version read. When a concurrent writer got there first, the write
 * fails, nothing of theirs is overwritten, and the fresh version is read and judged again.
 */
import { createHash } from 'node:crypto';
import { PassThrough } from 'node:stream';
import {
  checkBoolean,
  checkDeadlineMs,
  checkFunction,
  checkInteger,
  checkOptions,
  checkSignal,
  checkString,
  describeType,
  type EncryptionContext,
  invalidArgument,
  type KeyOperations,
  KeyportError,
  quote,
  toEncryptionContext,
  toKeyportError,
} from '@keyport/core';
import {
  kmsRecipient,
  openStream,
  RESERVED_CONTEXT_PREFIX,
  type Recipient,
  rewrapStream,
} from '@keyport/envelope';
import { peekHeader } from './header.js';
import { ObjectChangedError, type ObjectRead, type ObjectStore } from './store.js';
import { backoffMs, sleep } from './throttle.js';

export type ObjectOutcome =
  | {
      readonly key: string;
      readonly outcome: 'migrated';
      readonly conflicts: number;
      readonly verified: boolean;
    }
  | { readonly key: string; readonly outcome: 'already'; readonly conflicts: number }
  /**
   * Listed (or asked for), then not found when read: deleted by its owner since, or a name the
   * store lists but cannot be read by. Nothing is written; not `skipped`, which says what the
   * object is (its header was read), nor a success (nothing is known to be under the target key).
   */
  | { readonly key: string; readonly outcome: 'vanished'; readonly conflicts: number }
  | {
      readonly key: string;
      readonly outcome: 'skipped';
      readonly conflicts: number;
      readonly reason: string;
    };

export interface MigrateObjectOptions {
  readonly from: string;
  readonly to: string;
  readonly keys?: KeyOperations | undefined;
  /** Keep the source key's EDK next to the target's. Default false: the object opens with the target only. */
  readonly keepSource?: boolean;
  /**
   * Open the source, and the rewrapped message with the target key alone, before the upload
   * completes (nothing is written unless both open to the same plaintext), then the written
   * object with the target key alone, comparing plaintext digests.
   */
  readonly verify?: boolean;
  /**
   * Context pairs the object authenticates without storing them (sealed with
   * `contextNotStored`), as `openEnvelope`'s `reproducedContext`: given to the rewrap and to
   * every open of the verification. The rewritten object still leaves them out. An object bound
   * to other pairs (or to none) fails with the open's code (`InvalidCiphertext`) and is not
   * written. Never stored anywhere by this package.
   */
  readonly reproducedContext?: EncryptionContext;
  /** Attempts per object for conflicts and throttling together. Default 6. */
  readonly maxAttempts?: number;
  readonly signal?: AbortSignal | undefined;
  /** Deadline of each KMS call, in milliseconds (passed to `keys` as `timeoutMs`). */
  readonly timeoutMs?: number | undefined;
  /** Called when a conditional write lost to a concurrent writer (then the fresh version is read). */
  readonly onConflict?: (key: string, versionRead: string) => void;
  /** Called on throttling before the backoff sleep. */
  readonly onThrottle?: (key: string, error: KeyportError) => void;
  /** Test seam: runs after the read and before the conditional write. */
  readonly beforeWrite?: (key: string, read: ObjectRead) => Promise<void>;
}

/**
 * `reproducedContext` checked as the envelope checks it (a map of strings, pairs named by
 * position, never by value), and a reserved `aws-crypto-` key refused up front: the envelope
 * would refuse it only once an object is open, so a run would fail every object, one by one,
 * for what is a mistake in its options. An empty map is no pairs (undefined).
 */
export function checkReproducedContext(value: unknown, option: string): EncryptionContext | undefined {
  if (value === undefined) return undefined;
  const context = toEncryptionContext(value, option);
  const keys = Object.keys(context);
  const reserved = keys.find((k) => k.startsWith(RESERVED_CONTEXT_PREFIX));
  if (reserved !== undefined)
    throw invalidArgument(
      option,
      `keys starting with "${RESERVED_CONTEXT_PREFIX}" come from the message only (got ${quote(reserved)})`,
    );
  return keys.length > 0 ? context : undefined;
}

/** The digest verification compares: SHA-256 of the plaintext. */
async function plaintextDigest(
  message: AsyncIterable<Uint8Array>,
  trust: Recipient | string,
  env: {
    readonly keys?: KeyOperations;
    readonly signal?: AbortSignal;
    readonly timeoutMs?: number;
    readonly reproducedContext?: EncryptionContext;
  },
): Promise<string> {
  const h = createHash('sha256');
  for await (const p of openStream(message, { trust: [trust], ...env })) h.update(p);
  return h.digest('hex');
}

/**
 * Passes `source` through and feeds a copy to `copy`'s reader, waiting on its backpressure,
 * so both consumers see the same bytes with at most one high-water mark buffered between them.
 * A reader that stops early (a frame that does not verify) destroys `copy`: its failure then
 * ends the pass-through too, instead of leaving it waiting for a drain that never comes.
 */
function tee(
  source: AsyncIterable<Uint8Array>,
  copy: PassThrough,
  copyDone: Promise<unknown>,
): AsyncGenerator<Uint8Array> {
  const readerGone = async (): Promise<never> => {
    await copyDone;
    throw new KeyportError('Internal', 'the verifying reader stopped before the end of the message');
  };
  const drained = () =>
    new Promise<void>((resolve) => {
      const done = () => {
        copy.off('drain', done);
        copy.off('close', done);
        resolve();
      };
      copy.on('drain', done);
      copy.on('close', done);
    });
  return (async function* () {
    try {
      for await (const chunk of source) {
        if (copy.destroyed) await readerGone();
        if (!copy.write(chunk)) await drained();
        if (copy.destroyed) await readerGone();
        yield chunk;
      }
      copy.end();
      // The upload cannot complete before the source has opened in full under the source
      // key: a message whose frames do not verify is never written back.
      await copyDone;
    } catch (e) {
      copy.destroy(e as Error);
      throw e;
    }
  })();
}

/** How much larger a rewrapped object may be than its source, at most: its header's growth. */
const HEADER_GROWTH = 1024 * 1024;

const MIGRATE_OBJECT_OPTIONS = {
  from: true,
  to: true,
  keys: true,
  keepSource: true,
  verify: true,
  reproducedContext: true,
  maxAttempts: true,
  signal: true,
  timeoutMs: true,
  onConflict: true,
  onThrottle: true,
  beforeWrite: true,
} as const satisfies Record<keyof MigrateObjectOptions, true>;

/**
 * Every option checked before the object is read: a misspelt `keepSource` would drop the source
 * key's EDK, a `verify: 'yes'` would skip verification, a NaN deadline would fail each KMS call
 * only after the read. Unknown options are refused naming them. Returns a prototype-free copy.
 */
function checkMigrateObjectOptions(value: unknown): MigrateObjectOptions {
  const o = checkOptions(value, 'options', MIGRATE_OBJECT_OPTIONS);
  if (value === undefined) throw invalidArgument('options', 'expected { from, to, ... }');
  checkString(o.from, 'options.from', { min: 1 });
  checkString(o.to, 'options.to', { min: 1 });
  if (o.keys !== undefined && (typeof o.keys !== 'object' || o.keys === null))
    throw invalidArgument('options.keys', `expected a Keyport client, got ${describeType(o.keys)}`);
  if (o.keepSource !== undefined) checkBoolean(o.keepSource, 'options.keepSource');
  if (o.verify !== undefined) checkBoolean(o.verify, 'options.verify');
  const reproduced = checkReproducedContext(o.reproducedContext, 'options.reproducedContext');
  if (reproduced === undefined) delete o.reproducedContext;
  else o.reproducedContext = reproduced;
  // NaN or Infinity here retried a conflict without end.
  if (o.maxAttempts !== undefined) checkInteger(o.maxAttempts, 'options.maxAttempts', 1, 100);
  if (o.signal !== undefined) checkSignal(o.signal, 'options.signal');
  if (o.timeoutMs !== undefined) checkDeadlineMs(o.timeoutMs, 'options.timeoutMs');
  for (const f of ['onConflict', 'onThrottle', 'beforeWrite'] as const)
    if (o[f] !== undefined) checkFunction(o[f], `options.${f}`);
  return o as unknown as MigrateObjectOptions;
}

export async function migrateObject(
  store: ObjectStore,
  key: string,
  input: MigrateObjectOptions,
): Promise<ObjectOutcome> {
  const options = checkMigrateObjectOptions(input);
  if (typeof store !== 'object' || store === null)
    throw invalidArgument('store', `expected an object store, got ${describeType(store)}`);
  checkString(key, 'key', { min: 1 });
  const from = kmsRecipient(options.from);
  const to = kmsRecipient(options.to);
  if (from.id === to.id) throw new KeyportError('InvalidArgument', 'the source and target name the same key');
  const { keys, signal, timeoutMs, reproducedContext } = options;
  // Every open of the object (the rewrap, and verification's opens of the source, of the
  // rewrapped message and of the written object) gets the reproduced pairs: the header's tag and each EDK are bound to them.
  const env = {
    ...(keys !== undefined ? { keys } : {}),
    ...(signal !== undefined ? { signal } : {}),
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    ...(reproducedContext !== undefined ? { reproducedContext } : {}),
  };
  const maxAttempts = options.maxAttempts ?? 6;
  let conflicts = 0;
  for (let attempt = 0; ; attempt++) {
    signal?.throwIfAborted();
    let read: ObjectRead | undefined;
    try {
      try {
        read = await store.get(key, signal);
      } catch (e) {
        // Not found though the listing named it: deleted by its owner since (or since a write of
        // ours lost to the deletion), and nothing is written back. Reported as its own outcome,
        // never as `skipped`: a name the listing gives but the store cannot read by (an S3 key
        // with a CR, read back from XML as LF) looked exactly like this, its object left under
        // the source key while the run said every object was dealt with.
        if (e instanceof KeyportError && e.code === 'NotFound')
          return { key, outcome: 'vanished', conflicts };
        throw e;
      }
      const peeked = await peekHeader(read.body);
      const h = peeked.header;
      if (h.kind !== 'envelope') {
        read.cancel();
        return { key, outcome: 'skipped', conflicts, reason: 'not an envelope message' };
      }
      const hasFrom = h.edks.some((e) => from.matches(e));
      const hasTo = h.edks.some((e) => to.matches(e));
      if (hasTo && (!hasFrom || options.keepSource === true)) {
        read.cancel();
        return { key, outcome: 'already', conflicts };
      }
      if (!hasFrom) {
        read.cancel();
        return { key, outcome: 'skipped', conflicts, reason: 'not sealed for the source key' };
      }
      if (h.version !== 2) {
        read.cancel();
        return {
          key,
          outcome: 'skipped',
          conflicts,
          reason: 'format v1 message: rewrap writes v2 only; reseal it',
        };
      }
      let source = peeked.body;
      let before: Promise<string> | undefined;
      if (options.verify === true) {
        const copy = new PassThrough({ highWaterMark: 1024 * 1024 });
        before = plaintextDigest(copy, options.from, env);
        before.catch(() => undefined);
        source = tee(source, copy, before);
      }
      let rewrapped: AsyncIterable<Uint8Array> = rewrapStream(source, {
        trust: [options.from],
        add: hasTo ? [] : [options.to],
        remove: options.keepSource === true ? [] : [options.from],
        ...env,
      });
      if (before !== undefined) {
        // The rewrapped message, as it goes to the upload, is opened with the target key alone,
        // and the upload cannot complete until it has opened in full to the source's plaintext.
        // Checked only after the write, an object whose new EDK does not unwrap (a KMS or proxy
        // that wraps wrongly, a target key this worker may encrypt under but not decrypt) was
        // already stored without the source key's EDK: unreadable, or left for the next run to
        // take as done although it never verified.
        const beforeDigest = before;
        const message = rewrapped;
        const copy = new PassThrough({ highWaterMark: 1024 * 1024 });
        const staged = plaintextDigest(copy, options.to, env);
        staged.catch(() => undefined);
        rewrapped = (async function* () {
          yield* tee(message, copy, staged);
          if ((await staged) !== (await beforeDigest))
            throw new KeyportError(
              'Integrity',
              'the rewrapped object does not decrypt with the target key to the original plaintext',
            );
        })();
      }
      await options.beforeWrite?.(key, read);
      const written = await store.put(key, rewrapped, {
        condition: { ifVersion: read.version },
        attributes: read,
        signal,
        // The rewrap's size is the source's with its header changed: one EDK added at most
        // (three 16-bit-length fields), well under HEADER_GROWTH. The store picks a part size
        // that fits it, or refuses an object too large for one upload before anything is sent.
        ...(Number.isSafeInteger(read.size) && read.size >= 0 ? { maxSize: read.size + HEADER_GROWTH } : {}),
      });
      let verified = false;
      if (before !== undefined) {
        const digestBefore = await before;
        const now = await store.get(key, signal).catch((e: unknown) => {
          if (e instanceof KeyportError && e.code === 'NotFound') return undefined;
          throw e;
        });
        if (now === undefined || (written.version !== '' && now.version !== written.version)) {
          // Someone wrote (or deleted) after us: what is there now is theirs; there is nothing of
          // ours to check.
          now?.cancel();
        } else {
          const after = await plaintextDigest(now.body, options.to, env);
          if (after !== digestBefore)
            throw new KeyportError(
              'Integrity',
              'the migrated object does not decrypt to the original plaintext',
            );
          verified = true;
        }
      }
      return { key, outcome: 'migrated', conflicts, verified };
    } catch (e) {
      read?.cancel();
      if (e instanceof ObjectChangedError) {
        conflicts++;
        options.onConflict?.(key, read?.version ?? '');
        if (attempt + 1 >= maxAttempts) throw e;
        continue;
      }
      const err = toKeyportError(e);
      if ((err.code === 'Throttled' || err.code === 'Unavailable') && attempt + 1 < maxAttempts) {
        if (err.code === 'Throttled') options.onThrottle?.(key, err);
        await sleep(err.retryAfterMs ?? backoffMs(attempt), signal);
        continue;
      }
      throw err;
    }
  }
}
