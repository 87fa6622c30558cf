import { FRAME_MECHANISMS, readFrame } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { hsmToTransitCiphertext, transitCiphertextVersion, transitToHsmCiphertext } from '../src/index.js';

describe('transit <-> HSM ciphertext framing', () => {
  const body = Buffer.from(Array.from({ length: 40 }, (_, i) => i));
  const vault = `vault:v3:${body.toString('base64')}`;

  it('moves nonce | ct | tag unchanged behind the HSM frame (AES_256_GCM, the HSM version)', () => {
    const hsm = transitToHsmCiphertext(vault, 7);
    const frame = readFrame(hsm);
    expect([frame.mechanism, frame.keyVersion]).toEqual([FRAME_MECHANISMS.AES_256_GCM, '7']);
    expect(Buffer.from(frame.body).equals(body)).toBe(true);
    expect(hsmToTransitCiphertext(hsm, 3)).toBe(vault);
    // A ciphertext of the HSM's first format still converts.
    expect(hsmToTransitCiphertext(Buffer.concat([Buffer.from('0100000007', 'hex'), body]), 3)).toBe(vault);
    expect(transitCiphertextVersion(vault)).toBe(3);
  });

  it('refuses what is not a transit AES-GCM ciphertext or an HSM AES-GCM ciphertext', () => {
    expect(() => transitToHsmCiphertext('vault:v1:AAAA', 1)).toThrow(/too short/);
    expect(() => transitToHsmCiphertext('vault:v0:AAAA', 1)).toThrow(/not a transit/);
    expect(() => transitToHsmCiphertext('hello', 1)).toThrow(/not a transit/);
    const rsa = Buffer.concat([Buffer.from('0200000001', 'hex'), body]);
    expect(() => hsmToTransitCiphertext(rsa, 1)).toThrow(/not an AES-GCM/);
    // Impossible transit versions are refused, never written as `vault:vNaN:`.
    const hsm = transitToHsmCiphertext(vault, 7);
    for (const version of [Number.NaN, 0, -1, 1.5, 2 ** 32, Number.POSITIVE_INFINITY])
      expect(() => hsmToTransitCiphertext(hsm, version), String(version)).toThrow(
        expect.objectContaining({ code: 'InvalidArgument' }),
      );
    expect(() => transitCiphertextVersion(`vault:v${'9'.repeat(20)}:AAAA`)).toThrow(
      expect.objectContaining({ code: 'InvalidCiphertext' }),
    );
  });
});
