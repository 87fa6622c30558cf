import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  FRAME_MECHANISMS,
  isKeyportFrame,
  readAnyFrame,
  readFrame,
  readLegacyFrame,
  reframe,
  splitGcmBody,
  writeFrame,
} from '../src/index.js';

const gcmBody = Buffer.alloc(12 + 5 + 16, 7);
const RUNS = Number(process.env.KEYPORT_FUZZ_RUNS ?? 200);

describe('the keyport ciphertext frame', () => {
  it('round-trips mechanism, key version and body', () => {
    const framed = writeFrame(FRAME_MECHANISMS.AES_256_GCM, '42', gcmBody);
    expect(Buffer.from(framed.subarray(0, 5))).toEqual(Buffer.from([0x4b, 0x50, 0x01, 0x01, 2]));
    expect(isKeyportFrame(framed)).toBe(true);
    const frame = readFrame(framed);
    expect(frame).toMatchObject({ mechanism: FRAME_MECHANISMS.AES_256_GCM, keyVersion: '42' });
    expect(Buffer.from(frame.body)).toEqual(gcmBody);
    expect(splitGcmBody(frame.body).ciphertext).toHaveLength(5);
    expect(readFrame(reframe(framed, 'abcDEF0123')).keyVersion).toBe('abcDEF0123');
  });

  it('writes the exact layout: magic, frame version, mechanism, version length and bytes, body parts in order', () => {
    const framed = writeFrame(
      FRAME_MECHANISMS.WRAPPED_KEY_AES_256_GCM,
      'v1.2_-',
      Uint8Array.of(1, 2),
      new Uint8Array(0),
      Uint8Array.of(3),
    );
    expect(framed).toEqual(
      Uint8Array.of(0x4b, 0x50, 0x01, 0x04, 6, 0x76, 0x31, 0x2e, 0x32, 0x5f, 0x2d, 1, 2, 3),
    );
    expect(Buffer.isBuffer(framed)).toBe(false);
    expect(framed.byteOffset).toBe(0);
    expect(framed.buffer.byteLength).toBe(framed.length);
  });

  it('reads the first formats in the dialect of the driver that wrote them: 0x02 differs', () => {
    const legacy = Buffer.concat([Buffer.from('0200000003', 'hex'), Buffer.alloc(256, 1)]);
    expect(readLegacyFrame(legacy, 'local')).toMatchObject({
      mechanism: FRAME_MECHANISMS.RSA_OAEP_SHA_256,
      keyVersion: '3',
    });
    expect(readLegacyFrame(legacy, 'pkcs11')).toMatchObject({
      mechanism: FRAME_MECHANISMS.RSA_OAEP_SHA_1,
      keyVersion: '3',
    });
    const pkcs11Sha256 = Buffer.concat([Buffer.from('0300000001', 'hex'), Buffer.alloc(256, 1)]);
    expect(readLegacyFrame(pkcs11Sha256, 'pkcs11').mechanism).toBe(FRAME_MECHANISMS.RSA_OAEP_SHA_256);
    expect(() => readLegacyFrame(pkcs11Sha256, 'local')).toThrow(
      expect.objectContaining({ code: 'InvalidCiphertext' }),
    );
    const aes = Buffer.concat([Buffer.from('0100000001', 'hex'), gcmBody]);
    expect(readAnyFrame(aes, 'local').keyVersion).toBe('1');
    expect(readFrame(reframe(aes, '9', 'pkcs11')).keyVersion).toBe('9');
  });

  it('refuses malformed frames and versions with typed errors', () => {
    const good = writeFrame(FRAME_MECHANISMS.AES_256_GCM, '1', gcmBody);
    const bad: Uint8Array[] = [
      new Uint8Array(0),
      good.subarray(0, 4),
      good.subarray(0, 6 + 12 + 15),
      Uint8Array.from([0x4b, 0x50, 0x02, ...good.subarray(3)]),
      Uint8Array.from([0x4b, 0x50, 0x01, 0x09, ...good.subarray(4)]),
      Uint8Array.from([0x4b, 0x50, 0x01, 0x01, 60, 0x31]),
      Uint8Array.from([0x4b, 0x50, 0x01, 0x01, 1, 0x20, ...gcmBody]),
      Buffer.concat([Buffer.from('0100000000', 'hex'), gcmBody]),
    ];
    for (const b of bad)
      expect(() => readAnyFrame(b, 'local')).toThrow(expect.objectContaining({ code: 'InvalidCiphertext' }));
    for (const v of ['', 'x'.repeat(65), 'a b', 'é']) {
      expect(() => writeFrame(FRAME_MECHANISMS.AES_256_GCM, v, gcmBody)).toThrow(
        expect.objectContaining({ code: 'InvalidArgument' }),
      );
    }
  });

  it('fuzz: arbitrary bytes parse or fail with InvalidCiphertext, never anything else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.constantFrom('local', 'pkcs11'), (bytes, dialect) => {
        try {
          const f = readAnyFrame(bytes, dialect as 'local' | 'pkcs11');
          expect(f.body.length).toBeGreaterThan(0);
        } catch (e) {
          expect(e).toMatchObject({ code: 'InvalidCiphertext' });
        }
      }),
      { numRuns: RUNS },
    );
  });
});
