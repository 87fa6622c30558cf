/**
 * The self-describing ciphertext: which mechanism, which key version, then the mechanism's bytes.
 *
 *   AES-GCM:  0x01 | version u32be | IV (12) | ciphertext | tag (16)     AAD = encodeContext(context)
 *   RSA-OAEP: 0x02 (SHA-1) or 0x03 (SHA-256) | version u32be | OAEP block
 *
 * The AES-GCM layout is byte for byte the one @keyport/local writes, so tools that open one open
 * the other given the key material. The header is not in the AAD: a changed version selects
 * another key and fails the tag check; a changed tag byte is refused before any PKCS#11 call.
 */
export const FORMAT = { AES_GCM: 0x01, RSA_OAEP_SHA1: 0x02, RSA_OAEP_SHA256: 0x03 } as const;
export type Format = (typeof FORMAT)[keyof typeof FORMAT];

export const HEADER_BYTES = 5;
export const GCM_IV_BYTES = 12;
export const GCM_TAG_BYTES = 16;

export interface ParsedCiphertext {
  readonly format: Format;
  readonly version: number;
  readonly body: Buffer;
}

export function writeCiphertext(format: Format, version: number, ...parts: Uint8Array[]): Uint8Array {
  const header = Buffer.alloc(HEADER_BYTES);
  header[0] = format;
  header.writeUInt32BE(version, 1);
  return Buffer.concat([header, ...parts]);
}

/** Undefined when the bytes are not a keyport PKCS#11 ciphertext. */
export function readCiphertext(bytes: Uint8Array): ParsedCiphertext | undefined {
  if (bytes.length < HEADER_BYTES + 1) return undefined;
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const format = buf[0];
  if (format !== FORMAT.AES_GCM && format !== FORMAT.RSA_OAEP_SHA1 && format !== FORMAT.RSA_OAEP_SHA256) {
    return undefined;
  }
  const version = buf.readUInt32BE(1);
  if (version === 0) return undefined;
  const body = buf.subarray(HEADER_BYTES);
  if (format === FORMAT.AES_GCM && body.length < GCM_IV_BYTES + GCM_TAG_BYTES) return undefined;
  return { format, version, body };
}
