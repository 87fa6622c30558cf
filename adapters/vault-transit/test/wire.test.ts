/** Transit's base64 wire fields: decoded into memory of their own, the decode wiped. */
import { describe, expect, it } from 'vitest';
import { b64, unb64 } from '../src/specs.js';

describe('base64 fields', () => {
  it("round-trip, and leave no decoded copy in Node's shared Buffer pool", () => {
    const secret = Uint8Array.from({ length: 32 }, (_, i) => 200 - i);
    const decoded = unb64(b64(secret));
    expect(Array.from(decoded)).toEqual(Array.from(secret));
    expect(decoded.byteOffset).toBe(0);
    // Small decodes come from the slab the next small allocUnsafe uses.
    const slab = Buffer.from(Buffer.allocUnsafe(1).buffer);
    expect(slab.indexOf(Buffer.from(secret.buffer))).toBe(-1);
    expect(Array.from(unb64(''))).toEqual([]);
  });
});
