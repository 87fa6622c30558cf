import { FRAME_MECHANISMS, readFrame, writeFrame } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { hsmToLocalCiphertext, localToHsmCiphertext } from '../src/index.js';

describe('local <-> HSM ciphertext framing', () => {
  const body = Buffer.from(Array.from({ length: 40 }, (_, i) => i));
  const local = new Uint8Array(Buffer.concat([Buffer.from('0100000001', 'hex'), body]));

  it('re-frames under the other key version, body untouched; first-format input comes out framed', () => {
    const hsm = localToHsmCiphertext(local, 0x01020304);
    const frame = readFrame(hsm);
    expect([frame.mechanism, frame.keyVersion]).toEqual([FRAME_MECHANISMS.AES_256_GCM, String(0x01020304)]);
    expect(Buffer.from(frame.body).equals(body)).toBe(true);
    expect(Buffer.from(local.subarray(0, 5)).toString('hex')).toBe('0100000001');
    const back = hsmToLocalCiphertext(hsm, 1);
    expect(Buffer.from(back).equals(Buffer.from(writeFrame(FRAME_MECHANISMS.AES_256_GCM, '1', body)))).toBe(
      true,
    );
    expect(
      Buffer.from(localToHsmCiphertext(back, 2)).equals(
        Buffer.from(writeFrame(FRAME_MECHANISMS.AES_256_GCM, '2', body)),
      ),
    ).toBe(true);
  });

  it('refuses what is not an AES-GCM ciphertext, and impossible versions', () => {
    const rsa = new Uint8Array(Buffer.concat([Buffer.from('0200000001', 'hex'), body]));
    expect(() => localToHsmCiphertext(rsa, 1)).toThrow(
      expect.objectContaining({ code: 'InvalidCiphertext' }),
    );
    expect(() => hsmToLocalCiphertext(local.subarray(0, 20), 1)).toThrow(/not an AES-GCM/);
    for (const version of [0, -1, 1.5, 2 ** 32]) {
      expect(() => localToHsmCiphertext(local, version)).toThrow(
        expect.objectContaining({ code: 'InvalidArgument' }),
      );
    }
  });
});
