/**
 * Reading and verifying a header: parse within limits, check the required context, get the
 * data key from a trusted recipient (through the cache when given), derive, check the key
 * commitment and the header authentication tag. Shared by open and rewrap.
 */
import { createHash, type KeyObject } from 'node:crypto';
import { type EncryptionContext, type KeyOperations, KeyportError, toEncryptionContext } from '@keyport/core';
import { type AeadKey, gcmOpen } from './aead.js';
import { invalidCiphertext } from './bytes.js';
import type { DataKeyCache } from './cache.js';
import type { ChunkQueue } from './chunk-queue.js';
import { type ParsedHeader, parseHeader } from './header.js';
import { type DerivedKeys, deriveKeys, verifyCommitment, zeroDataKey } from './kdf.js';
import { type OpenLimits, type ResolvedLimits, resolveLimits } from './limits.js';
import { decryptDataKey, type TrustEntry, toTrusted } from './materials.js';
import { checkAborted, listOption } from './options.js';
import { type Recipient, recipientEnv } from './recipients/recipient.js';
import { completeContext } from './reproduced-context.js';
import { verificationKeyFromContext } from './signing.js';
import { PUBLIC_KEY_CONTEXT_KEY } from './suites.js';

export interface OpenOptions extends OpenLimits {
  /** Recipients, key URIs or `{ anyKeyOf: scheme }` entries open may use, tried in this order. */
  readonly trust: readonly TrustEntry[];
  /** Pairs that must be present with equal values in the message's context. */
  readonly requiredContext?: EncryptionContext;
  /**
   * The ESDK decrypt's encryption context: pairs the sealer authenticated but did not store
   * (its Required Encryption Context CMM; `contextNotStored` here) are taken from it and
   * proved by the data key's unwrap and the header's tag; pairs the message does store must
   * have the same values here.
   */
  readonly reproducedContext?: EncryptionContext;
  readonly keys?: KeyOperations;
  readonly cache?: DataKeyCache;
  readonly signal?: AbortSignal;
  /** Deadline of each KMS call the open makes, in milliseconds (passed to `keys` as `timeoutMs`). */
  readonly timeoutMs?: number;
  /** Refuse v1 (non-committing) messages. Default false: v1 is read for migration. */
  readonly requireCommitment?: boolean;
  /**
   * Refuse messages of a signed suite (0x0578; v1 0x0214, 0x0346, 0x0378) right after the
   * header, before any key is unwrapped or byte of plaintext released: for a consumer that must
   * act on every frame as it arrives, since a signed message's final frame is held until its
   * signature verifies (the ESDK's "decrypt unsigned message only"). Default false.
   */
  readonly requireUnsigned?: boolean;
  /**
   * Frames decrypted at once. `openEnvelope` (default: the available cores, at most 8): framed
   * messages of 4 MiB and at least 4 frames are opened on the calling thread and worker threads
   * at once, and plaintext is still returned only when every tag (and the signature) verifies;
   * such a plaintext is a `Buffer` over a `SharedArrayBuffer` (WebCrypto refuses views of shared
   * memory: copy it, or pass 1, where that matters). A message over a SharedArrayBuffer (as a
   * parallel seal returns) is read by the workers in place; others are copied to them frame by
   * frame. Streams (default 1, one frame at a time): when given, 2 × min(concurrency, cores)
   * frames in flight for frame lengths of 64 KiB to 1 MiB, on up to concurrency − 1 worker
   * threads (at most one per other core) and the calling thread, each released in order and
   * only after its own tag verifies.
   */
  readonly concurrency?: number;
}

export interface VerifiedHeader {
  readonly header: ParsedHeader;
  /** The stored context with the reproduced pairs the message authenticates without storing. */
  readonly context: Readonly<Record<string, string>>;
  /** Those unstored pairs serialized (empty when none): the header tag's AAD after the body. */
  readonly authenticatedOnly: Uint8Array;
  /** The exact header bytes (authentication included). */
  readonly bytes: Uint8Array;
  readonly key: AeadKey;
  /** The plaintext data key, only when asked for (rewrap); the caller zeroes it. */
  readonly dataKey: Uint8Array | undefined;
  readonly limits: ResolvedLimits;
  readonly trusted: readonly Recipient[];
  /** Signed suites: the footer's verification key, from the context. */
  readonly verificationKey: KeyObject | undefined;
}

/** Bytes copied for a first parse: most headers fit, and a large message is not copied whole. */
const FIRST_HEADER_COPY = 64 * 1024;

/** The first `n` bytes of `view` in private memory (memmove, whatever the source's alignment). */
function ownBytes(view: Uint8Array, n: number): Uint8Array {
  const out = new Uint8Array(n);
  Buffer.from(view.buffer, view.byteOffset, n).copy(out);
  return out;
}

/**
 * Parses the header from a private copy of the message's first bytes, so that what is checked
 * (the context `requiredContext` compares and open returns, the EDKs, the message id) and what
 * the header tag is computed over after the unwrap are the same bytes. Parsed in place, a message
 * whose memory changed meanwhile (a SharedArrayBuffer written by another thread, a receive
 * buffer reused while a KMS call was awaited) was checked as one header and authenticated as
 * another: a raw RSA message with `tenant: evil` opened as `tenant: t-42`.
 */
function parseOwnCopy(view: Uint8Array, limits: ResolvedLimits): ParsedHeader | undefined {
  if (view.length > FIRST_HEADER_COPY) {
    // Errors found within the first bytes are the ones the whole view gives (the parser reads
    // in order), and the copy is shorter than any limit that could make it "too large".
    const first = parseHeader(ownBytes(view, FIRST_HEADER_COPY), limits);
    if (first !== undefined) return first;
  }
  return parseHeader(ownBytes(view, view.length), limits);
}

/**
 * Buffers and parses the header. The parser starts over on every attempt and the queue joins
 * the buffered chunks, so trying again after every chunk costs O(n²) for an n-byte
 * header: a 1 MiB header trickled in 16-byte chunks (an attacker controls how a network
 * stream is cut) kept one core busy for minutes. A new attempt is made only once the buffer
 * has doubled since the last one (or the limit is passed, or the source ended), so parsing
 * and joining cost O(n) in total; a header may wait for at most as many bytes again to arrive.
 */
export async function readHeader(queue: ChunkQueue, limits: ResolvedLimits): Promise<ParsedHeader> {
  let nextAttempt = 1;
  let ended = false;
  for (;;) {
    if (queue.length >= nextAttempt || queue.length > limits.maxHeaderBytes || (ended && queue.length > 0)) {
      // At most one byte past the limit is joined: a huge chunk after a small one is not copied.
      const parsed = parseOwnCopy(queue.view(Math.min(queue.length, limits.maxHeaderBytes + 1)), limits);
      if (parsed !== undefined) return parsed;
      nextAttempt = 2 * queue.length;
    }
    if (ended) throw invalidCiphertext('the message is truncated in its header');
    ended = !(await queue.pull());
  }
}

/**
 * Whether the message's context holds every pair of the caller's `required` (checked as a
 * caller's context). The message's own context is not put through a caller's checks: an empty
 * key, which other ESDKs write (see `serializeOpenedContext`), failed this check as the
 * caller's InvalidArgument even when `required` did not name it.
 */
function containsPairs(context: Readonly<Record<string, string>>, required: unknown): boolean {
  for (const [k, v] of Object.entries(toEncryptionContext(required, 'requiredContext'))) {
    if (!Object.hasOwn(context, k) || context[k] !== v) return false;
  }
  return true;
}

/**
 * The data-key cache's key for opening this header with these recipients: every variable field
 * length-prefixed, so no two headers share a key (unprefixed, an EDK's provider info and
 * ciphertext split one byte apart, or EDKs and context bytes shifted, gave one key, so a
 * second message could be handed the first one's data key, and a valid message then failed its
 * header tag as Integrity). Exported for tests.
 */
export function openCacheKey(
  header: Pick<ParsedHeader, 'suite' | 'encryptedDataKeys' | 'contextBytes'>,
  trusted: readonly Pick<Recipient, 'id'>[],
  authenticatedOnly: Uint8Array,
): string {
  const h = createHash('sha512');
  const field = (bytes: string | Uint8Array): void => {
    const b = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes;
    h.update(`${b.length}:`).update(b);
  };
  field(`open:${header.suite.id}`);
  field(String(trusted.length));
  for (const r of trusted) field(r.id);
  field(String(header.encryptedDataKeys.length));
  for (const e of header.encryptedDataKeys) {
    field(e.providerId);
    field(e.providerInfo);
    field(e.ciphertext);
  }
  // The unstored pairs too: each EDK was unwrapped under the whole context.
  field(header.contextBytes);
  field(authenticatedOnly);
  return h.digest('base64');
}

export async function readVerifiedHeader(
  queue: ChunkQueue,
  options: OpenOptions,
  keepDataKey = false,
): Promise<VerifiedHeader> {
  if (!Array.isArray(options.trust) || options.trust.length === 0) {
    throw new KeyportError('InvalidArgument', 'open needs `trust`: the recipients or key URIs it may use');
  }
  const trusted = listOption(options.trust, 'trust', toTrusted);
  const limits = resolveLimits(options);
  const env = recipientEnv(options);
  checkAborted(options.signal);
  const header = await readHeader(queue, limits);
  // Raw recipients never see the signal: an abort while the header arrived stops here, before
  // any key is unwrapped.
  checkAborted(options.signal);
  if (options.requireCommitment === true && !header.suite.commitment) {
    throw invalidCiphertext('the message uses a non-committing algorithm suite');
  }
  if (options.requireUnsigned === true && header.suite.signed) {
    throw invalidCiphertext('the message uses a signed algorithm suite and requireUnsigned is set');
  }
  const { context, authenticatedOnly } = completeContext(header.context, options.reproducedContext);
  if (options.requiredContext !== undefined && !containsPairs(context, options.requiredContext)) {
    throw invalidCiphertext('the message context does not contain the required pairs');
  }
  // An unsigned suite with a verification key in its context is malformed (the default CMM's
  // MUST): refused rather than opened as if the key meant nothing.
  if (header.suite.curve === undefined && Object.hasOwn(header.context, PUBLIC_KEY_CONTEXT_KEY)) {
    throw invalidCiphertext(`an unsigned message with ${PUBLIC_KEY_CONTEXT_KEY} in its context`);
  }
  // A signed message whose context has no valid verification key can never verify: refuse it
  // here, before any provider call and before any plaintext is released.
  const verificationKey =
    header.suite.curve !== undefined
      ? verificationKeyFromContext(header.context[PUBLIC_KEY_CONTEXT_KEY], header.suite.curve)
      : undefined;
  // What the header's tag covers: the body, then the pairs it authenticates without storing.
  const tagged =
    authenticatedOnly.length === 0 ? header.bodyBytes : Buffer.concat([header.bodyBytes, authenticatedOnly]);
  /** Whether a data key opens this header (key commitment, then the header's tag). */
  const verify = (d: DerivedKeys): void => {
    verifyCommitment(header.suite, d, header.suiteData);
    gcmOpen(d.key, header.headerIv, tagged, new Uint8Array(0), header.headerTag, 'the header');
  };
  // For recipients whose unwrap cannot tell a wrong key (PKCS#1 v1.5 with implicit rejection): a
  // key that does not fit is one more failed attempt, and the next EDK or recipient is tried.
  const fits = (dataKey: Uint8Array): boolean => {
    let d: DerivedKeys | undefined;
    try {
      d = deriveKeys(header.suite, dataKey, header.messageId);
      verify(d);
      return true;
    } catch {
      return false;
    } finally {
      if (d?.key instanceof Uint8Array) d.key.fill(0);
    }
  };
  const fill = async () => ({
    dataKey: await decryptDataKey(
      header.encryptedDataKeys,
      trusted,
      context,
      env,
      limits.maxUnwrapAttempts,
      fits,
    ),
  });
  const use = (m: { dataKey: Uint8Array }) => ({
    derived: deriveKeys(header.suite, m.dataKey, header.messageId),
    dataKey: keepDataKey ? Uint8Array.from(m.dataKey) : undefined,
  });
  let got: ReturnType<typeof use>;
  if (options.cache === undefined) {
    const m = await fill();
    try {
      got = use(m);
    } finally {
      zeroDataKey(m.dataKey);
    }
  } else {
    got = await options.cache.acquire(openCacheKey(header, trusted, authenticatedOnly), 0, fill, use);
  }
  const { derived, dataKey } = got;
  try {
    checkAborted(options.signal);
    verify(derived);
  } catch (e) {
    dataKey?.fill(0);
    throw e;
  }
  // The parsed copy, not the queue's bytes again: a signature is checked over what was parsed.
  const bytes = header.bytes;
  return {
    header,
    context,
    authenticatedOnly,
    bytes,
    key: derived.key,
    dataKey,
    limits,
    trusted,
    verificationKey,
  };
}
