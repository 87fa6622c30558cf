import { describe, expect, it } from 'vitest';
import { ByteWriter, u32be } from '../src/bytes.js';

describe('big-endian fields', () => {
  const u32s = [0, 1, 0xff, 0x100, 0xffff, 0x1_0000, 0x7fff_ffff, 0x8000_0000, 0xdead_beef, 0xffff_ffff];

  it('u32be reads what a DataView writes, at any offset, top bit included', () => {
    for (const v of u32s) {
      for (const at of [0, 3]) {
        const b = new Uint8Array(at + 4);
        new DataView(b.buffer).setUint32(at, v);
        expect(u32be(b, at)).toBe(v);
      }
    }
  });

  it('ByteWriter writes u16 and u32 as a DataView does', () => {
    for (const v of u32s) {
      const w = new ByteWriter()
        .u16(v & 0xffff)
        .u32(v)
        .finish();
      const dv = new DataView(w.buffer, w.byteOffset, w.byteLength);
      expect(w.length).toBe(6);
      expect(dv.getUint16(0)).toBe(v & 0xffff);
      expect(dv.getUint32(2)).toBe(v);
    }
  });
});
