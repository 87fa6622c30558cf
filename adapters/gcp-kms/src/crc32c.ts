/**
 * CRC32C (Castagnoli), the checksum Cloud KMS uses for its request and response integrity fields
 * (https://cloud.google.com/kms/docs/data-integrity-guidelines). Table-driven, reflected
 * polynomial 0x82F63B78; no dependency, since none of the installed packages ships one.
 */
const TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32c(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (let i = 0; i < data.length; i++) {
    crc = (TABLE[(crc ^ (data[i] as number)) & 0xff] as number) ^ (crc >>> 8);
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** Reads a protobuf Int64Value as the client hands it back (number, string or Long-like). */
export function int64Value(field: { value?: unknown } | null | undefined): number | undefined {
  const raw = field?.value;
  if (raw === undefined || raw === null) return undefined;
  const n = Number(typeof raw === 'object' ? String(raw) : raw);
  return Number.isFinite(n) ? n : undefined;
}

/** A bytes field as the client returns it (Buffer/Uint8Array, or base64 text over REST JSON). */
export function toBytes(value: Uint8Array | string | null | undefined): Uint8Array {
  if (value === null || value === undefined) return new Uint8Array(0);
  return typeof value === 'string' ? new Uint8Array(Buffer.from(value, 'base64')) : new Uint8Array(value);
}

/**
 * The bytes as a standalone array: the REST transport serialises a view's whole underlying
 * buffer (seen with @google-cloud/kms 6.3.0 fallback), so views are copied before they are sent.
 */
export function own(bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
}
