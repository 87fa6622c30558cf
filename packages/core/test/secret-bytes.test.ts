import { describe, expect, it } from 'vitest';
import { takeSecretBytes } from '../src/index.js';

describe('takeSecretBytes', () => {
  it('moves the bytes into an ArrayBuffer of their own and zeroes the source', () => {
    const source = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
    const expected = Array.from(source);
    const taken = takeSecretBytes(source);
    expect(Array.from(taken)).toEqual(expected);
    expect(taken.byteOffset).toBe(0);
    expect(taken.buffer.byteLength).toBe(32);
    expect(Array.from(source)).toEqual(new Array(32).fill(0));
    source.fill(7);
    expect(Array.from(taken)).toEqual(expected);
    expect(takeSecretBytes(new Uint8Array(0)).length).toBe(0);
  });

  it("wipes a decode from Node's shared Buffer pool, leaving the slab's other bytes alone", () => {
    const neighbour = Buffer.from('neighbour'); // from the same slab
    const decoded = Buffer.from(
      Buffer.from(new Uint8Array(32).fill(0xa5).buffer).toString('base64'),
      'base64',
    );
    expect(decoded.buffer).toBe(neighbour.buffer); // both pooled
    const taken = takeSecretBytes(decoded);
    expect(taken.every((b) => b === 0xa5)).toBe(true);
    expect(Buffer.from(decoded.buffer).indexOf(Buffer.alloc(32, 0xa5))).toBe(-1);
    expect(neighbour.toString()).toBe('neighbour');
  });
});
