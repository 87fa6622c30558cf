/**
 * Where the fields of a well-formed sealed message sit, so a fuzzer can aim at them: every
 * length field, the EDK count, the frame length, each frame's sequence number and content
 * length, the header tag and the footer. Written independently of src/header.ts (it walks the
 * bytes itself) so a parser bug cannot hide in both.
 */

export interface LengthField {
  readonly name: string;
  readonly at: number;
  readonly width: 1 | 2 | 4;
}

export interface FrameSpan {
  readonly start: number;
  readonly end: number;
  readonly final: boolean;
  /** Plaintext bytes this frame carries. */
  readonly contentLength: number;
}

export interface Layout {
  readonly headerLength: number;
  /** Offset of the header auth tag (v2: 16 bytes, right before the body). */
  readonly tagAt: number;
  readonly fields: readonly LengthField[];
  readonly frames: readonly FrameSpan[];
  /** Start of the footer (signature), or the message length when unsigned. */
  readonly footerAt: number;
}

/** Walks a v2 framed message sealed by keyport (tests only: assumes it is well formed). */
export function layoutOf(msg: Uint8Array): Layout {
  const b = Buffer.from(msg.buffer, msg.byteOffset, msg.byteLength);
  const fields: LengthField[] = [
    { name: 'version', at: 0, width: 1 },
    { name: 'suite', at: 1, width: 2 },
  ];
  const suite = b.readUInt16BE(1);
  let at = 1 + 2 + 32;
  fields.push({ name: 'context length', at, width: 2 });
  const ctxLen = b.readUInt16BE(at);
  at += 2;
  if (ctxLen > 0) fields.push({ name: 'context pair count', at, width: 2 });
  if (ctxLen > 0) fields.push({ name: 'first context key length', at: at + 2, width: 2 });
  at += ctxLen;
  fields.push({ name: 'EDK count', at, width: 2 });
  const count = b.readUInt16BE(at);
  at += 2;
  for (let i = 0; i < count; i++) {
    for (const part of ['provider id', 'provider info', 'ciphertext']) {
      fields.push({ name: `EDK ${i} ${part} length`, at, width: 2 });
      at += 2 + b.readUInt16BE(at);
    }
  }
  fields.push({ name: 'content type', at, width: 1 });
  at += 1;
  fields.push({ name: 'frame length', at, width: 4 });
  const frameLength = b.readUInt32BE(at);
  at += 4 + 32;
  const tagAt = at;
  const headerLength = at + 16;
  const frames: FrameSpan[] = [];
  at = headerLength;
  for (;;) {
    const final = b.readUInt32BE(at) === 0xffff_ffff;
    if (final) {
      fields.push({ name: 'final marker', at, width: 4 });
      fields.push({ name: `frame ${frames.length + 1} seq`, at: at + 4, width: 4 });
      fields.push({ name: 'final content length', at: at + 20, width: 4 });
      const len = b.readUInt32BE(at + 20);
      frames.push({ start: at, end: at + 24 + len + 16, final, contentLength: len });
      at += 24 + len + 16;
      break;
    }
    fields.push({ name: `frame ${frames.length + 1} seq`, at, width: 4 });
    frames.push({ start: at, end: at + 16 + frameLength + 16, final, contentLength: frameLength });
    at += 16 + frameLength + 16;
  }
  const footerAt = at;
  if (suite === 0x0578) fields.push({ name: 'signature length', at, width: 2 });
  return { headerLength, tagAt, fields, frames, footerAt };
}

/** Writes `value` (truncated to the field width) into a copy of `msg`. */
export function withField(msg: Uint8Array, field: LengthField, value: number): Buffer {
  const out = Buffer.from(msg);
  if (field.width === 1) out.writeUInt8(value & 0xff, field.at);
  else if (field.width === 2) out.writeUInt16BE(value & 0xffff, field.at);
  else out.writeUInt32BE(value >>> 0, field.at);
  return out;
}

/** Plaintext bytes carried by the frames that end at or before `offset`. */
export function plaintextBefore(layout: Layout, offset: number): number {
  let n = 0;
  for (const f of layout.frames) {
    if (f.end > offset) break;
    n += f.contentLength;
  }
  return n;
}

/** A context pair as a message header stores it: u16 length, key, u16 length, value. */
export function storedPair(key: string, value: string): Buffer {
  const k = Buffer.from(key);
  const v = Buffer.from(value);
  const out = Buffer.alloc(4 + k.length + v.length);
  out.writeUInt16BE(k.length, 0);
  k.copy(out, 2);
  out.writeUInt16BE(v.length, 2 + k.length);
  v.copy(out, 4 + k.length);
  return out;
}
