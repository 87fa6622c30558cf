/**
 * ECDSA signatures: Key Vault signs and verifies raw `r || s` (JWS form), keyport's contract
 * (and node:crypto, OpenSSL, the ESDK) uses DER `SEQUENCE { INTEGER r, INTEGER s }`.
 */

/** Raw r||s (each `size` bytes) -> DER. */
export function rawToDer(raw: Uint8Array): Uint8Array {
  const half = raw.length / 2;
  const integer = (bytes: Uint8Array): Buffer => {
    let i = 0;
    while (i < bytes.length - 1 && bytes[i] === 0) i++;
    let v = Buffer.from(bytes.subarray(i));
    if ((v[0] as number) & 0x80) v = Buffer.concat([Buffer.from([0]), v]);
    return Buffer.concat([Buffer.from([0x02, v.length]), v]);
  };
  const body = Buffer.concat([integer(raw.subarray(0, half)), integer(raw.subarray(half))]);
  const len = body.length < 0x80 ? Buffer.from([body.length]) : Buffer.from([0x81, body.length]);
  return new Uint8Array(Buffer.concat([Buffer.from([0x30]), len, body]));
}

/** DER -> raw r||s with `size`-byte halves; undefined when the input is not a well-formed signature. */
export function derToRaw(der: Uint8Array, size: number): Uint8Array | undefined {
  const b = Buffer.from(der.buffer, der.byteOffset, der.byteLength);
  let at = 0;
  if (b[at++] !== 0x30) return undefined;
  let len = b[at++];
  if (len === 0x81) len = b[at++];
  if (len === undefined || len !== b.length - at) return undefined;
  const out = Buffer.alloc(size * 2);
  for (const half of [0, 1]) {
    if (b[at++] !== 0x02) return undefined;
    const n = b[at++];
    if (n === undefined || n === 0 || at + n > b.length) return undefined;
    let v = b.subarray(at, at + n);
    at += n;
    if (v.length > 1 && v[0] === 0 && !((v[1] as number) & 0x80)) return undefined; // non-minimal
    if ((v[0] as number) & 0x80) return undefined; // negative
    if (v[0] === 0) v = v.subarray(1);
    if (v.length > size) return undefined;
    v.copy(out, half * size + (size - v.length));
  }
  return at === b.length ? new Uint8Array(out) : undefined;
}
