/**
 * Sealing: one `SealSession` (materials, message id, derived key, header) feeds either the
 * buffer path (one output allocation, frames written in place) or the streaming path (one
 * frame of plaintext held at a time). Both write identical bytes for the same session.
 */

import type { Sign } from 'node:crypto';
import {
  type EncryptionContext,
  type KeyOperations,
  KeyportError,
  keyportTracingActive,
  withKeyportSpan,
} from '@keyport/core';
import { gcmTag } from './aead.js';
import type { DataKeyCache } from './cache.js';
import { serializeContext } from './context-codec.js';
import { sha512Base64 } from './digest.js';
import { sharedBuffer } from './frame-pool.js';
import { bodySize, FrameSealer } from './frames.js';
import { CONTENT_FRAMED, serializeContextAndEdks, writeHeaderBody } from './header.js';
import { deriveKeys, zeroDataKey } from './kdf.js';
import { DEFAULT_LIMITS } from './limits.js';
import {
  checkCallerContext,
  type DataKeySource,
  type EncryptionMaterials,
  getEncryptionMaterials,
  type RecipientLike,
  toRecipient,
} from './materials.js';
import { newMessageId } from './message-id.js';
import {
  checkAborted,
  listOption,
  outputOption,
  readOptions,
  SEAL_ENVELOPE_OPTION_NAMES,
} from './options.js';
import { resolveConcurrency, sealFramesParallel, worthParallel } from './parallel.js';
import { recipientEnv } from './recipients/recipient.js';
import { type SplitContext, splitContext } from './reproduced-context.js';
import { newSigner, type SigningKey } from './signing.js';
import { type AlgorithmSuite, PUBLIC_KEY_CONTEXT_KEY, type SealSuiteId, suiteForSeal } from './suites.js';

/**
 * Default frame length: 1 MiB. Per-frame cost (a GCM context, 50 bytes of AAD, 36 to 44
 * bytes of framing) is paid 64 times for 64 MiB instead of 16,384 times at the ESDK's 4 KiB
 * default, which keeps buffer seal/open at raw AES-GCM speed; streaming memory stays bounded
 * by about two frames.
 */
export const DEFAULT_FRAME_LENGTH = 1024 * 1024;
const MAX_FOOTER = 2 + 104;

export interface SealOptions {
  /** Key URIs (KMS) or recipient objects (raw AES / raw RSA). The first one makes the data key. */
  readonly recipients: readonly RecipientLike[];
  readonly context?: EncryptionContext;
  /**
   * Keys of `context` whose pairs are authenticated but not stored in the message (the ESDK's
   * required encryption context keys): every recipient's wrap and the header's tag still bind
   * them, and opening needs them back as `reproducedContext`. For values the message must not
   * carry (a user id, a row key) that the reader knows anyway.
   */
  readonly contextNotStored?: readonly string[];
  /** 0x0478 (default) or 0x0578 (ECDSA P-384 signed). */
  readonly suite?: SealSuiteId;
  readonly frameLength?: number;
  /** Serves KMS recipients: core's `Keyport` client or any `KeyOperations`. */
  readonly keys?: KeyOperations;
  readonly cache?: DataKeyCache;
  readonly signal?: AbortSignal;
  /** Deadline of each KMS call the seal makes, in milliseconds (passed to `keys` as `timeoutMs`). */
  readonly timeoutMs?: number;
  /**
   * `auto` (default): a single KMS recipient generates the data key (one call); with several
   * recipients keyport draws it (CSPRNG) and every recipient wraps it at once, so the seal
   * waits for one round trip, the slowest wrap. `first-recipient`: the first generates, then the
   * others wrap (two round trips). `local`: keyport always draws the data key.
   */
  readonly dataKeySource?: DataKeySource;
  /** Streaming with a cache: the plaintext length, so the cache's byte limit can be charged. */
  readonly plaintextLength?: number;
  /**
   * Frames sealed at once. `sealEnvelope` (default: the available cores, at most 8): buffers of
   * 4 MiB and at least 4 frames are sealed on the calling thread and worker threads at once,
   * and the message is then a `Buffer` over a `SharedArrayBuffer` (WebCrypto refuses views of
   * shared memory: copy it, or pass 1, where that matters); smaller ones stay on the calling
   * thread. Plaintext over a SharedArrayBuffer is read by the workers in place (no copy for
   * them); other plaintext is copied to them frame by frame. Streams (default 1, one frame at a
   * time): when given, 2 × min(concurrency, cores) frames in flight for frame lengths of 64 KiB
   * to 1 MiB, on up to concurrency − 1 worker threads (at most one per other core) and the
   * calling thread. The message format is the same either way.
   */
  readonly concurrency?: number;
}

/** `sealEnvelope`'s options: the stream's, and where to write the message. */
export interface SealEnvelopeOptions extends SealOptions {
  /**
   * Memory to write the message into, reused across calls: when the message fits (room for the
   * largest signature included, for the signed suite), the result is a view of `output`'s first
   * bytes; otherwise it is a new buffer, as without `output` (check `result.buffer ===
   * output.buffer`). A large result in fresh memory costs a page fault per 4 KiB on first touch
   * (on the 2-core VM of the README's tables, as long as the AES-GCM itself); reused memory does
   * not. Over a SharedArrayBuffer, buffers large enough for the frame pool are sealed by the
   * worker threads in place; any other `output` is written on the calling thread. It must not
   * overlap the plaintext. The result is valid until the caller writes `output` again.
   */
  readonly output?: Uint8Array;
}

export interface SealSession {
  readonly suite: AlgorithmSuite;
  /** The complete serialized header, authentication tag included. */
  readonly header: Buffer;
  readonly sealer: FrameSealer;
  readonly signer: Sign | undefined;
  readonly signingKey: SigningKey | undefined;
  readonly context: EncryptionContext;
}

const ZERO_IV = new Uint8Array(12);

/**
 * The header's context-and-EDKs bytes, made once per materials (a cached data key reuses them)
 * when the whole context is stored; with `contextNotStored`, per message from what is stored.
 */
const middles = new WeakMap<EncryptionMaterials, Uint8Array>();
function middleOf(m: EncryptionMaterials, split: SplitContext | undefined): Uint8Array {
  if (split !== undefined) {
    const stored =
      m.signingKey === undefined
        ? split.stored
        : { ...split.stored, [PUBLIC_KEY_CONTEXT_KEY]: m.signingKey.publicKeyBase64 };
    return serializeContextAndEdks(serializeContext(stored), m.encryptedDataKeys);
  }
  let middle = middles.get(m);
  if (middle === undefined) {
    middle = serializeContextAndEdks(serializeContext(m.context), m.encryptedDataKeys);
    middles.set(m, middle);
  }
  return middle;
}

function checkFrameLength(frameLength: number | undefined): number {
  const f = frameLength ?? DEFAULT_FRAME_LENGTH;
  if (!Number.isSafeInteger(f) || f < 1 || f > DEFAULT_LIMITS.maxFrameLength) {
    throw new KeyportError(
      'InvalidArgument',
      `frameLength must be between 1 and ${DEFAULT_LIMITS.maxFrameLength}`,
    );
  }
  return f;
}

/**
 * The cache key of a seal: suite, data-key source, recipient ids and context, each field
 * length-prefixed (so no two inputs give one key). Short keys are used as they are; longer ones
 * (large contexts) are hashed so the cache holds at most 88 characters per key. A raw key
 * starts with `seal:` and contains ':', which base64 never does, so the two kinds never meet.
 */
const MAX_RAW_CACHE_KEY = 256;
function sealCacheKey(
  suite: AlgorithmSuite,
  ids: readonly string[],
  context: EncryptionContext,
  source: string,
): string {
  let key = `seal:${suite.id}:${source}:${ids.length}:`;
  for (const id of ids) key += `${id.length}:${id}`;
  const proto = Object.getPrototypeOf(context);
  if (proto !== Object.prototype && proto !== null) {
    // A Map (or anything else the serializer accepts or refuses): its canonical bytes.
    return sha512Base64(Buffer.concat([Buffer.from(`${key}ctx:`, 'utf8'), serializeContext(context)]));
  }
  const names = Object.keys(context);
  if (names.length > 1) names.sort();
  key += `${names.length}:`;
  for (const name of names) {
    const value = context[name];
    if (typeof value !== 'string') serializeContext(context); // throws the serializer's error
    key += `${name.length}:${name}${(value as string).length}:${value}`;
  }
  return key.length <= MAX_RAW_CACHE_KEY ? key : sha512Base64(Buffer.from(key, 'utf8'));
}

/**
 * Builds the materials, message id, derived key and header of one message: synchronously on a
 * cache hit (no promise to wait for), else once the materials arrive.
 */
export function prepareSeal(
  options: SealOptions,
  plaintextLength: number | undefined,
): SealSession | Promise<SealSession> {
  const suite = suiteForSeal(options.suite);
  const frameLength = checkFrameLength(options.frameLength);
  const callerContext = checkCallerContext(options.context);
  const split = splitContext(callerContext, options.contextNotStored);
  const recipients = listOption(options.recipients ?? [], 'recipients', toRecipient);
  const source = options.dataKeySource ?? 'auto';
  if (source !== 'auto' && source !== 'first-recipient' && source !== 'local') {
    throw new KeyportError('InvalidArgument', "dataKeySource must be 'auto', 'first-recipient' or 'local'");
  }
  const env = recipientEnv(options);
  checkAborted(options.signal);
  const fill = () => getEncryptionMaterials(suite, recipients, callerContext, env, source);
  const messageId = newMessageId(suite.messageIdLength);

  const build = (m: EncryptionMaterials): SealSession => {
    // Runs synchronously on acquisition, so a cache eviction cannot zero the key midway.
    const derived = deriveKeys(suite, m.dataKey, messageId);
    const header = writeHeaderBody(
      suite,
      messageId,
      middleOf(m, split),
      CONTENT_FRAMED,
      frameLength,
      derived.commitKey,
      suite.tagLength,
    );
    const bodyLength = header.length - suite.tagLength;
    const body = header.subarray(0, bodyLength);
    const tagged = split === undefined ? body : Buffer.concat([body, split.authenticatedOnly]);
    header.set(gcmTag(derived.key, ZERO_IV, tagged), bodyLength);
    let signer: Sign | undefined;
    if (m.signingKey !== undefined) {
      signer = newSigner();
      signer.update(header);
    }
    return {
      suite,
      header,
      sealer: new FrameSealer(derived.key, messageId, frameLength),
      signer,
      signingKey: m.signingKey,
      context: m.context,
    };
  };

  const cache = options.cache;
  if (cache === undefined || plaintextLength === undefined) {
    return fill().then((m) => {
      try {
        return build(m);
      } finally {
        zeroDataKey(m.dataKey);
      }
    });
  }
  const key = sealCacheKey(
    suite,
    recipients.map((r) => r.id),
    callerContext,
    source,
  );
  return cache.tryAcquire(key, plaintextLength, build) ?? cache.acquire(key, plaintextLength, fill, build);
}

/** The footer (u16 length || DER signature) over everything fed to the session's signer. */
export function footer(session: SealSession): Buffer {
  const key = session.signingKey;
  if (session.signer === undefined || key === undefined) return Buffer.alloc(0);
  const sig = session.signer.sign({ key: key.privateKey, dsaEncoding: 'der' });
  const out = Buffer.allocUnsafe(2 + sig.length);
  out.writeUInt16BE(sig.length, 0);
  out.set(sig, 2);
  return out;
}

/** The message's size, with room for the largest footer (so a signature needs no second copy). */
function sealedSize(session: SealSession, plaintextLength: number): number {
  const { header, sealer, signer } = session;
  return (
    header.length + bodySize(plaintextLength, sealer.frameLength) + (signer === undefined ? 0 : MAX_FOOTER)
  );
}

/** Writes the whole message for `plaintext` (the buffer path), into `into` or a new buffer. */
export function sealAll(session: SealSession, plaintext: Uint8Array, into?: Buffer): Uint8Array {
  const f = session.sealer.frameLength;
  const out = into ?? Buffer.allocUnsafe(sealedSize(session, plaintext.length));
  out.set(session.header, 0);
  let at = session.header.length;
  let offset = 0;
  while (plaintext.length - offset > f) {
    at = session.sealer.writeFrame(out, at, plaintext.subarray(offset, offset + f), false);
    offset += f;
  }
  at = session.sealer.writeFrame(out, at, plaintext.subarray(offset), true);
  if (session.signer === undefined) return out;
  session.signer.update(out.subarray(session.header.length, at));
  const foot = footer(session);
  out.set(foot, at);
  return out.subarray(0, at + foot.length);
}

/**
 * `sealAll` with frames sealed in parallel (see frame-pool.ts); the same bytes, in a buffer
 * backed by a SharedArrayBuffer. Falls back to `sealAll` when the pool cannot take the job.
 */
function sealAllParallel(
  session: SealSession,
  plaintext: Uint8Array,
  concurrency: number,
  into: Buffer | undefined,
): Uint8Array {
  const { sealer, header, signer } = session;
  // The first frame's content 8-byte aligned: writes into shared memory keep V8's fast copy.
  const out = into ?? sharedBuffer(sealedSize(session, plaintext.length), header.length + 16);
  out.set(header, 0);
  const at = sealFramesParallel(
    sealer.key,
    sealer.messageId,
    sealer.frameLength,
    plaintext,
    out,
    header.length,
    concurrency,
  );
  if (at === undefined) return sealAll(session, plaintext, into);
  if (signer === undefined) return out;
  signer.update(out.subarray(header.length, at));
  const foot = footer(session);
  out.set(foot, at);
  return out.subarray(0, at + foot.length);
}

/** Seals a whole buffer (inside a `keyport envelope.seal` span when tracing is on). */
export function sealEnvelope(plaintext: Uint8Array, options: SealEnvelopeOptions): Promise<Uint8Array> {
  if (!(plaintext instanceof Uint8Array))
    return Promise.reject(new KeyportError('InvalidArgument', 'plaintext must be a Uint8Array'));
  // Not an async function: returning sealWhole's promise from one would add two ticks per seal.
  if (!keyportTracingActive()) return sealWhole(plaintext, options);
  return withKeyportSpan('keyport envelope.seal', { 'keyport.envelope.bytes': plaintext.length }, () =>
    sealWhole(plaintext, options),
  );
}

/**
 * Seals with a prepared session, into the caller's `output` when the message fits, on the frame
 * pool when the buffer is worth it and the memory written is shared.
 */
function sealPrepared(
  session: SealSession,
  plaintext: Uint8Array,
  concurrency: number,
  output: Uint8Array | undefined,
): Uint8Array {
  const size = output === undefined ? 0 : sealedSize(session, plaintext.length);
  const into =
    output !== undefined && output.length >= size
      ? Buffer.from(output.buffer, output.byteOffset, size)
      : undefined;
  if (
    worthParallel(concurrency, plaintext.length, session.sealer.frameLength) &&
    (into === undefined || into.buffer instanceof SharedArrayBuffer)
  ) {
    return sealAllParallel(session, plaintext, concurrency, into);
  }
  return sealAll(session, plaintext, into);
}

/**
 * Not an async function: on a cache hit the session is ready synchronously, and one settled
 * promise is all a small seal pays (an async function's machinery measured ~1 us of a 1 KiB
 * cached seal's ~23). Errors still arrive as a rejected promise, never as a throw.
 */
function sealWhole(plaintext: Uint8Array, given: SealEnvelopeOptions): Promise<Uint8Array> {
  try {
    const options = readOptions<SealEnvelopeOptions>(given, 'seal options', SEAL_ENVELOPE_OPTION_NAMES);
    const concurrency = resolveConcurrency(options.concurrency);
    const output = outputOption(options.output, plaintext, 'plaintext');
    const prepared = prepareSeal(options, plaintext.length);
    if (prepared instanceof Promise) {
      return prepared.then((s) => {
        // Raw recipients never see the signal: an abort while the materials came stops here.
        checkAborted(options.signal);
        return sealPrepared(s, plaintext, concurrency, output);
      });
    }
    return Promise.resolve(sealPrepared(prepared, plaintext, concurrency, output));
  } catch (error) {
    return Promise.reject(error);
  }
}
