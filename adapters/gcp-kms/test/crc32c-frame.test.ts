/** CRC32C against published vectors, and the version prefix keyport puts on ciphertexts. */
import { describe, expect, it } from 'vitest';
import { frame, unframe } from '../src/crypto.js';
import { checked, crc32c, int64Value, own, toBytes } from '../src/rpc.js';

const ascii = (s: string) => new TextEncoder().encode(s);

describe('crc32c', () => {
  it('matches the CRC-32C check value and RFC 3720 vectors', () => {
    expect(crc32c(ascii('123456789'))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa); // 32 bytes of zeros
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43); // 32 bytes of ones
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i))).toBe(0x46dd794e); // incrementing
    expect(crc32c(new Uint8Array(0))).toBe(0);
  });

  it('reads Int64Value fields as numbers, strings or Long-like objects', () => {
    expect(int64Value({ value: 42 })).toBe(42);
    expect(int64Value({ value: '3808858755' })).toBe(3808858755);
    expect(int64Value({ value: { toString: () => '7' } })).toBe(7);
    expect(int64Value(null)).toBeUndefined();
  });

  it('takes a response checksum only as the exact value: not its 2^32 aliases, text that is no number, or none', () => {
    const data = ascii('123456789');
    const crc = crc32c(data);
    for (const ok of [{ value: crc }, { value: String(crc) }, { value: { toString: () => String(crc) } }])
      expect(Array.from(checked(Uint8Array.from(data), ok, 'data'))).toEqual(Array.from(data));
    for (const bad of [
      { value: crc - 2 ** 32 }, // negative: the same 32 bits read as signed
      { value: crc + 2 ** 32 },
      { value: String(crc + 2 ** 32) },
      { value: -1 },
      { value: `${crc}x` },
      { value: 'NaN' },
      { value: null },
      {},
      null,
      undefined,
    ])
      expect(() => checked(Uint8Array.from(data), bad, 'data'), JSON.stringify(bad)).toThrow(
        expect.objectContaining({ code: 'Integrity', retryable: true }),
      );
  });

  it('decodes base64 bytes fields and copies views before they are sent', () => {
    expect(Array.from(toBytes('AQID'))).toEqual([1, 2, 3]);
    const big = Uint8Array.from([9, 8, 7, 6]);
    const view = big.subarray(1, 3);
    const owned = own(view);
    expect(owned.byteOffset).toBe(0);
    expect(owned.buffer.byteLength).toBe(2);
    expect(own(big)).toBe(big);
  });

  it("leaves no decoded copy of a base64 field in Node's shared Buffer pool", () => {
    const secret = Uint8Array.from({ length: 32 }, (_, i) => 200 - i);
    const decoded = toBytes(Buffer.from(secret.buffer).toString('base64'));
    expect(Array.from(decoded)).toEqual(Array.from(secret));
    // Small decodes come from the slab the next small allocUnsafe uses.
    const slab = Buffer.from(Buffer.allocUnsafe(1).buffer);
    expect(slab.indexOf(Buffer.from(secret.buffer))).toBe(-1);
    // A field the client decoded (a view of its response): copied out, then wiped there.
    const response = Buffer.from([0xaa, ...secret, 0xbb]);
    const field = response.subarray(1, 33);
    const taken = toBytes(field);
    expect(Array.from(taken)).toEqual(Array.from(secret));
    expect(taken.buffer.byteLength).toBe(32);
    expect(Array.from(response)).toEqual([0xaa, ...new Array(32).fill(0), 0xbb]);
  });
});

describe('ciphertext version prefix', () => {
  it('round-trips kind, version and body', () => {
    const body = Uint8Array.from([1, 2, 3, 4]);
    const framed = frame(1, '17', body);
    expect(unframe(framed)).toEqual({ kind: 1, version: '17', body });
    expect(unframe(frame(2, undefined, body))?.version).toBeUndefined();
  });

  it('records versions up to 2^32−1 exactly and refuses the rest (Unsupported), never wrapping them', () => {
    const body = Uint8Array.from([1, 2]);
    expect(unframe(frame(2, '4294967295', body))?.version).toBe('4294967295');
    for (const version of ['4294967296', '4294967297', '8589934593', '1e3', '0', '007', '', 'NaN', '-1']) {
      expect(() => frame(2, version, body), version).toThrow(
        expect.objectContaining({ code: 'Unsupported' }),
      );
    }
    // the read side: the u32 reads back as its canonical decimal, 0 as "unknown"
    const max = Uint8Array.from([0x6b, 0x70, 0x67, 1, 0xff, 0xff, 0xff, 0xff, 9]);
    expect(unframe(max)).toEqual({ kind: 1, version: '4294967295', body: Uint8Array.of(9) });
    expect(unframe(Uint8Array.from([0x6b, 0x70, 0x67, 1, 0, 0, 0, 0, 9]))?.version).toBeUndefined();
  });

  it('treats anything without the prefix as a bare Cloud KMS ciphertext', () => {
    const framed = frame(1, '1', Uint8Array.from([5, 6]));
    framed[0] = (framed[0] as number) ^ 1;
    expect(unframe(framed)).toBeUndefined();
    expect(unframe(Uint8Array.from([0x6b, 0x70, 0x67, 3, 0, 0, 0, 1, 9]))).toBeUndefined();
    expect(unframe(Uint8Array.from([0x6b, 0x70, 0x67]))).toBeUndefined();
  });
});
