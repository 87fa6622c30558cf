/**
 * Opening: verify the header, then decrypt the body frame by frame. Each frame's plaintext is
 * released only after its tag verifies; sequence numbers must run 1, 2, ... and end with
 * exactly one final frame, so reordered, replayed, dropped or truncated frames fail. For
 * signed suites the footer signature is checked at the end: the streaming API has already
 * released the verified frames by then (as the ESDK's streaming decrypt does); the buffer
 * API returns nothing unless the signature verifies.
 */
import type { KeyObject, Verify } from 'node:crypto';
import type { EncryptionContext } from '@keyport/core';
import { bodyAad, FINAL_FRAME_STRING, FRAME_STRING, gcmOpen, SINGLE_BLOCK_STRING } from './aead.js';
import { invalidCiphertext } from './bytes.js';
import { ChunkQueue } from './chunk-queue.js';
import { SEQUENCE_END } from './frames.js';
import { CONTENT_FRAMED, type ParsedHeader } from './header.js';
import type { ResolvedLimits } from './limits.js';
import { type OpenOptions, readVerifiedHeader } from './open-header.js';
import { newVerifier, verificationKeyFromContext } from './signing.js';
import { PUBLIC_KEY_CONTEXT_KEY, type SuiteId } from './suites.js';

export type { OpenOptions } from './open-header.js';

/** What open tells about a message once its header has been verified. */
export interface MessageInfo {
  readonly suiteId: SuiteId;
  readonly messageFormat: 1 | 2;
  /** The whole context, including `aws-crypto-public-key` for signed suites. */
  readonly context: EncryptionContext;
  readonly frameLength: number;
  readonly framed: boolean;
  /** Provider ids of the message's encrypted data keys, in header order. */
  readonly providerIds: readonly string[];
}

export interface StreamOpenOptions extends OpenOptions {
  /** Called once the header is verified, before any plaintext is released. */
  readonly onHeader?: (info: MessageInfo) => void;
}

export function messageInfo(h: ParsedHeader): MessageInfo {
  return {
    suiteId: h.suite.id,
    messageFormat: h.suite.messageFormat,
    context: h.context,
    frameLength: h.frameLength,
    framed: h.contentType === CONTENT_FRAMED,
    providerIds: h.encryptedDataKeys.map((e) => e.providerId),
  };
}

interface BodyState {
  readonly queue: ChunkQueue;
  readonly header: ParsedHeader;
  readonly key: KeyObject;
  readonly limits: ResolvedLimits;
  readonly verifier: Verify | undefined;
  readonly signal: AbortSignal | undefined;
}

async function* framedBody(s: BodyState): AsyncGenerator<Uint8Array> {
  const { queue, header, key, verifier } = s;
  const f = header.frameLength;
  for (let expected = 1; ; expected++) {
    s.signal?.throwIfAborted();
    if (expected > s.limits.maxFrames)
      throw invalidCiphertext(`the message has more than ${s.limits.maxFrames} frames`);
    await queue.need(4);
    const first = new DataView(queue.view(4).buffer, queue.view(4).byteOffset, 4).getUint32(0);
    const final = first === SEQUENCE_END;
    const prefix = final ? 24 : 16;
    await queue.need(prefix);
    const head = queue.view(prefix);
    const hv = new DataView(head.buffer, head.byteOffset, prefix);
    const seq = final ? hv.getUint32(4) : first;
    if (seq !== expected) throw invalidCiphertext('frame out of sequence');
    const length = final ? hv.getUint32(20) : f;
    if (length > f) throw invalidCiphertext('final frame is longer than the frame length');
    const size = prefix + length + 16;
    await queue.need(size);
    const frame = queue.view(size);
    const iv = frame.subarray(prefix - (final ? 16 : 12), prefix - (final ? 4 : 0));
    const aad = bodyAad(header.messageId, final ? FINAL_FRAME_STRING : FRAME_STRING, seq, length);
    const plaintext = gcmOpen(
      key,
      iv,
      aad,
      frame.subarray(prefix, prefix + length),
      frame.subarray(prefix + length),
      `frame ${seq}`,
    );
    verifier?.update(frame);
    queue.consume(size);
    if (plaintext.length > 0) yield plaintext;
    if (final) return;
  }
}

async function* nonFramedBody(s: BodyState): AsyncGenerator<Uint8Array> {
  const { queue, header, key, verifier } = s;
  await queue.need(20);
  const head = queue.view(20);
  const hv = new DataView(head.buffer, head.byteOffset, 20);
  const hi = hv.getUint32(12);
  const length = hi * 0x1_0000_0000 + hv.getUint32(16);
  if (length > s.limits.maxNonFramedBytes) {
    throw invalidCiphertext(`non-framed body is larger than ${s.limits.maxNonFramedBytes} bytes`);
  }
  const size = 20 + length + 16;
  await queue.need(size);
  const body = queue.view(size);
  const aad = bodyAad(header.messageId, SINGLE_BLOCK_STRING, 1, length);
  const plaintext = gcmOpen(
    key,
    body.subarray(0, 12),
    aad,
    body.subarray(20, 20 + length),
    body.subarray(20 + length),
    'the body',
  );
  verifier?.update(body);
  queue.consume(size);
  if (plaintext.length > 0) yield plaintext;
}

async function verifyFooter(queue: ChunkQueue, header: ParsedHeader, verifier: Verify): Promise<void> {
  await queue.need(2);
  const lenBytes = queue.view(2);
  const sigLength = (lenBytes[0] as number) * 256 + (lenBytes[1] as number);
  await queue.need(2 + sigLength);
  const sig = queue.view(2 + sigLength).subarray(2);
  const key = verificationKeyFromContext(header.context[PUBLIC_KEY_CONTEXT_KEY]);
  let ok = false;
  try {
    ok = verifier.verify({ key, dsaEncoding: 'der' }, sig);
  } catch {
    ok = false;
  }
  queue.consume(2 + sigLength);
  if (!ok) throw invalidCiphertext('the message signature does not verify');
}

/** Opens a message arriving as chunks; yields verified plaintext frame by frame. */
export async function* openStream(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  options: StreamOpenOptions,
): AsyncGenerator<Uint8Array, void, undefined> {
  const queue = new ChunkQueue(source);
  try {
    const v = await readVerifiedHeader(queue, options);
    const verifier = v.header.suite.signed ? newVerifier() : undefined;
    verifier?.update(v.bytes);
    queue.consume(v.header.length);
    options.onHeader?.(messageInfo(v.header));
    const state: BodyState = {
      queue,
      header: v.header,
      key: v.key,
      limits: v.limits,
      verifier,
      signal: options.signal,
    };
    yield* v.header.contentType === CONTENT_FRAMED ? framedBody(state) : nonFramedBody(state);
    if (verifier !== undefined) await verifyFooter(queue, v.header, verifier);
    if (!(await queue.atEnd())) throw invalidCiphertext('trailing bytes after the end of the message');
  } finally {
    await queue.close();
  }
}

export interface OpenResult extends MessageInfo {
  readonly plaintext: Uint8Array;
}

/** Opens a whole message; returns nothing unless every tag (and the signature) verifies. */
export async function openEnvelope(message: Uint8Array, options: OpenOptions): Promise<OpenResult> {
  if (!(message instanceof Uint8Array)) throw invalidCiphertext('the message must be a Uint8Array');
  let info: MessageInfo | undefined;
  // The plaintext is never longer than the message: one allocation, each frame copied in as it
  // verifies, so frame buffers are released at once instead of piling up until a final concat.
  const out = Buffer.allocUnsafe(message.length);
  let total = 0;
  try {
    for await (const p of openStream([message], { ...options, onHeader: (i) => (info = i) })) {
      out.set(p, total);
      total += p.length;
    }
  } catch (e) {
    out.fill(0, 0, total);
    throw e;
  }
  return { ...(info as MessageInfo), plaintext: out.subarray(0, total) };
}
