/**
 * Cloud KMS's Decrypt answer does not say which version decrypted, and AsymmetricDecrypt needs
 * the version up front, so keyport prefixes what it returns from encrypt with the version:
 *
 *   "kpg" | kind (1 = Cloud KMS Encrypt ciphertext, 2 = RSA-OAEP under a version's public key)
 *   | version id (u32 BE, 0 = unknown) | the ciphertext itself
 *
 * Like Vault's `vault:vN:` prefix the version is a routing hint, not authenticated: Cloud KMS
 * chooses the key material from its own ciphertext, and a wrong version for RSA fails to decrypt.
 * Bytes without the prefix are passed to Cloud KMS as they are (ciphertexts made by other tools).
 */
export type FrameKind = 1 | 2;
const MAGIC = [0x6b, 0x70, 0x67] as const;
const HEADER = 8;

export interface Framed {
  readonly kind: FrameKind;
  readonly version: string | undefined;
  readonly body: Uint8Array;
}

export function frame(kind: FrameKind, version: string | undefined, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER + body.length);
  out.set(MAGIC, 0);
  out[3] = kind;
  new DataView(out.buffer).setUint32(4, version === undefined ? 0 : Number(version));
  out.set(body, HEADER);
  return out;
}

export function unframe(bytes: Uint8Array): Framed | undefined {
  if (bytes.length <= HEADER || bytes[0] !== MAGIC[0] || bytes[1] !== MAGIC[1] || bytes[2] !== MAGIC[2]) {
    return undefined;
  }
  const kind = bytes[3];
  if (kind !== 1 && kind !== 2) return undefined;
  const id = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(4);
  // A copy, not a view: the REST transport serialises a view's whole underlying buffer.
  return { kind, version: id === 0 ? undefined : String(id), body: bytes.slice(HEADER) };
}
