/**
 * Message header serialization and parsing (data-format/message-header.md), versions 1.0
 * (read only) and 2.0. The parsed header keeps the exact bytes it was read from, because
 * the header authentication tag and the signature cover those bytes, not a re-encoding.
 */
import { KeyportError } from '@keyport/core';
import { ByteReader, ByteWriter, invalidCiphertext, NeedMoreBytes, utf8Decode, utf8Encode } from './bytes.js';
import { parseContext } from './context-codec.js';
import type { ResolvedLimits } from './limits.js';
import { type AlgorithmSuite, SUITES } from './suites.js';

export interface EncryptedDataKey {
  /** Key provider id: a raw keyring namespace, `aws-kms`, or `keyport:<scheme>`. */
  readonly providerId: string;
  /** Key provider info: a key name, raw AES info, an ARN or a key URI (bytes, may be binary). */
  readonly providerInfo: Uint8Array;
  readonly ciphertext: Uint8Array;
}

export const CONTENT_NON_FRAMED = 1;
export const CONTENT_FRAMED = 2;

export interface HeaderFields {
  readonly suite: AlgorithmSuite;
  readonly messageId: Uint8Array;
  /** The serialized encryption context exactly as in the header (AAD field). */
  readonly contextBytes: Uint8Array;
  readonly encryptedDataKeys: readonly EncryptedDataKey[];
  readonly contentType: 1 | 2;
  readonly frameLength: number;
  /** v2: the commit key; v1: empty. */
  readonly suiteData: Uint8Array;
}

export interface ParsedHeader extends HeaderFields {
  readonly context: Readonly<Record<string, string>>;
  /** v1 only: the IV used for the header tag. */
  readonly headerIv: Uint8Array;
  readonly headerTag: Uint8Array;
  /** Bytes of the header body (what the header tag authenticates). */
  readonly bodyBytes: Uint8Array;
  /** The exact header bytes, authentication included (what a signature covers). */
  readonly bytes: Uint8Array;
  /** Total header length including the authentication section. */
  readonly length: number;
}

function writeEdks(w: ByteWriter, edks: readonly EncryptedDataKey[]): void {
  if (edks.length === 0 || edks.length > 0xffff) {
    throw new KeyportError('InvalidArgument', 'a message needs between 1 and 65535 encrypted data keys');
  }
  w.u16(edks.length);
  for (const edk of edks) w.short(utf8Encode(edk.providerId)).short(edk.providerInfo).short(edk.ciphertext);
}

/** The part of a v2 header body that depends only on the materials: context and EDKs. */
export function serializeContextAndEdks(
  contextBytes: Uint8Array,
  edks: readonly EncryptedDataKey[],
): Uint8Array {
  const w = new ByteWriter().short(contextBytes);
  writeEdks(w, edks);
  return w.finish();
}

/**
 * The v2 header body (everything the header authentication tag covers) written into one buffer
 * with `room` spare bytes at the end (for the tag), from the materials' serialized middle part,
 * which a cached data key reuses from message to message.
 */
export function writeHeaderBody(
  suite: HeaderFields['suite'],
  messageId: Uint8Array,
  middle: Uint8Array,
  contentType: 1 | 2,
  frameLength: number,
  suiteData: Uint8Array,
  room: number,
): Buffer {
  if (suite.messageFormat !== 2) throw new KeyportError('InvalidArgument', 'only format 2.0 is written');
  const size = 3 + messageId.length + middle.length + 5 + suiteData.length;
  const out = Buffer.allocUnsafe(size + room);
  out[0] = 2;
  out.writeUInt16BE(suite.id, 1);
  out.set(messageId, 3);
  let at = 3 + messageId.length;
  out.set(middle, at);
  at += middle.length;
  out[at] = contentType;
  out.writeUInt32BE(frameLength, at + 1);
  out.set(suiteData, at + 5);
  return out;
}

/** The v2 header body (everything the header authentication tag covers). */
export function serializeHeaderBody(h: HeaderFields): Uint8Array {
  const middle = serializeContextAndEdks(h.contextBytes, h.encryptedDataKeys);
  return writeHeaderBody(h.suite, h.messageId, middle, h.contentType, h.frameLength, h.suiteData, 0);
}

function readEdks(r: ByteReader, limits: ResolvedLimits): EncryptedDataKey[] {
  const count = r.u16();
  if (count === 0) throw invalidCiphertext('the header carries no encrypted data key');
  if (count > limits.maxEncryptedDataKeys) {
    throw invalidCiphertext(
      `the header carries ${count} encrypted data keys (limit ${limits.maxEncryptedDataKeys})`,
    );
  }
  const out: EncryptedDataKey[] = [];
  for (let i = 0; i < count; i++) {
    const providerId = utf8Decode(r.take(r.u16()));
    const providerInfo = r.take(r.u16());
    const ciphertext = r.take(r.u16());
    out.push({ providerId, providerInfo, ciphertext });
  }
  return out;
}

/**
 * Parses a header from the start of `bytes`. Returns undefined when more bytes are needed
 * (streaming); throws InvalidCiphertext on anything malformed or over the limits.
 */
export function parseHeader(bytes: Uint8Array, limits: ResolvedLimits): ParsedHeader | undefined {
  const r = new ByteReader(bytes);
  try {
    const header = readHeader(r, limits, bytes);
    if (r.offset > limits.maxHeaderBytes) throw tooLarge(limits);
    return header;
  } catch (e) {
    if (e instanceof NeedMoreBytes) {
      if (bytes.length > limits.maxHeaderBytes) throw tooLarge(limits);
      return undefined;
    }
    throw e;
  }
}

function tooLarge(limits: ResolvedLimits): KeyportError {
  return invalidCiphertext(`the header is larger than ${limits.maxHeaderBytes} bytes`);
}

/**
 * The first two characters of a message's base64 text: "AY" (0x01 0x80, format 1) or "Ag" (0x02,
 * format 2). Feeding that text instead of the bytes is a common mistake (decrypt.md says to
 * recognise it); the ESDK CLI's `--encode` writes it.
 */
function looksLikeBase64(bytes: Uint8Array): boolean {
  // A stream may have delivered only the 'A' so far: no message starts with it either.
  return bytes[0] === 0x41 && (bytes.length < 2 || bytes[1] === 0x59 || bytes[1] === 0x67);
}

function readHeader(r: ByteReader, limits: ResolvedLimits, bytes: Uint8Array): ParsedHeader {
  const version = r.u8();
  if (version !== 1 && version !== 2) {
    throw invalidCiphertext(
      looksLikeBase64(bytes)
        ? 'unknown message format version: the input looks like the base64 text of a message; decode it first'
        : 'unknown message format version',
    );
  }
  if (version === 1 && r.u8() !== 0x80) throw invalidCiphertext('unknown message type');
  const suite = SUITES.get(r.u16());
  if (suite === undefined) throw invalidCiphertext('unsupported algorithm suite');
  if (suite.messageFormat !== version)
    throw invalidCiphertext('algorithm suite does not match the format version');
  const messageId = r.take(suite.messageIdLength);
  const contextBytes = r.take(r.u16());
  const context = parseContext(contextBytes);
  const encryptedDataKeys = readEdks(r, limits);
  const contentType = r.u8();
  if (contentType !== CONTENT_NON_FRAMED && contentType !== CONTENT_FRAMED) {
    throw invalidCiphertext('unknown content type');
  }
  if (version === 1) {
    if (r.u32() !== 0) throw invalidCiphertext('reserved header field is not zero');
    if (r.u8() !== suite.ivLength) throw invalidCiphertext('header IV length does not match the suite');
  }
  const frameLength = r.u32();
  if (contentType === CONTENT_NON_FRAMED && frameLength !== 0) {
    throw invalidCiphertext('a non-framed message must have frame length 0');
  }
  if (contentType === CONTENT_FRAMED && frameLength === 0) throw invalidCiphertext('frame length 0');
  if (frameLength > limits.maxFrameLength) {
    throw invalidCiphertext(`frame length ${frameLength} is over the limit ${limits.maxFrameLength}`);
  }
  const suiteData = r.take(suite.suiteDataLength);
  const bodyEnd = r.offset;
  const headerIv = version === 1 ? r.take(suite.ivLength) : new Uint8Array(suite.ivLength);
  const headerTag = r.take(suite.tagLength);
  return {
    suite,
    messageId,
    contextBytes,
    context,
    encryptedDataKeys,
    contentType,
    frameLength,
    suiteData,
    headerIv,
    headerTag,
    bodyBytes: r.span(0, bodyEnd),
    bytes: r.span(0, r.offset),
    length: r.offset,
  };
}
