/**
 * The six v1 suites beyond AES-256 (AES-128 and AES-192, HKDF-SHA256/384, ECDSA P-256 and
 * P-384), written by ESDK-JS (a child process), opened on every path: the calling thread, the
 * frame pool (workers over the whole buffer) and the stream workers, each with the key length
 * its suite uses; their signatures and tags checked.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { framePoolForTests } from '../src/frame-pool.js';
import { openEnvelope, openStream, sealEnvelope } from '../src/index.js';
import { streamWorkersForTests } from '../src/stream-workers.js';
import { esdkEncrypt, stopEsdk } from './helpers/esdk.js';
import { aes, chunked, collect, esdkAesKeyring } from './helpers/keys.js';

afterAll(stopEsdk);

const esdkAes = esdkAesKeyring();
const FRAME = 256 * 1024;
const pt = randomBytes(5 * 1024 * 1024 + 17); // 21 frames: large enough for the frame pool
const context = { purpose: 'v1-suites' };

describe.each([
  [0x0014, '0x0014: AES-128, no KDF'],
  [0x0046, '0x0046: AES-192, no KDF'],
  [0x0114, '0x0114: AES-128, HKDF-SHA256'],
  [0x0146, '0x0146: AES-192, HKDF-SHA256'],
  [0x0214, '0x0214: AES-128, HKDF-SHA256, ECDSA P-256'],
  [0x0346, '0x0346: AES-192, HKDF-SHA384, ECDSA P-384'],
])('suite %i (%s) from ESDK-JS', (suite) => {
  let msg: Buffer;
  const message = async () => {
    msg ??= await esdkEncrypt([esdkAes], pt, {
      context,
      suiteId: suite,
      frameLength: FRAME,
      policy: 'legacy',
    });
    return msg;
  };

  it('opens on the calling thread, on the frame pool and on the stream workers', async () => {
    const m = await message();
    for (const concurrency of [1, 4]) {
      const out = await openEnvelope(m, { trust: [aes], concurrency, requiredContext: context });
      expect(Buffer.from(out.plaintext).equals(pt), `concurrency ${concurrency}`).toBe(true);
      expect(out.suiteId).toBe(suite);
      expect(out.messageFormat).toBe(1);
    }
    expect(framePoolForTests().workers.length).toBeGreaterThan(0);
    const before = streamWorkersForTests().workerFrames;
    const streamed = await collect(openStream(chunked(m, 100_000), { trust: [aes], concurrency: 2 }));
    expect(streamed.equals(pt)).toBe(true);
    expect(streamWorkersForTests().workerFrames).toBeGreaterThan(before);
  });

  it('a flipped bit in a middle frame fails its tag on every path, and nothing is released', async () => {
    const m = Buffer.from(await message());
    // Halfway through: inside frame 11's content (a frame is 256 KiB of content, 32 bytes else).
    const at = Math.floor(m.length / 2);
    m[at] = (m[at] as number) ^ 1;
    for (const concurrency of [1, 4]) {
      await expect(openEnvelope(m, { trust: [aes], concurrency })).rejects.toMatchObject({
        code: 'Integrity',
      });
    }
    const released: number[] = [];
    await expect(
      (async () => {
        for await (const p of openStream(chunked(m, 100_000), { trust: [aes], concurrency: 2 }))
          released.push(p.length);
      })(),
    ).rejects.toMatchObject({ code: 'Integrity' });
    expect(released.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(10 * FRAME);
  });

  if (suite === 0x0214 || suite === 0x0346) {
    it('a changed signature is refused, and so is the final frame before it', async () => {
      const m = Buffer.from(await message());
      m[m.length - 3] = (m[m.length - 3] as number) ^ 1;
      await expect(openEnvelope(m, { trust: [aes], concurrency: 1 })).rejects.toMatchObject({
        code: 'InvalidCiphertext',
      });
      const released: number[] = [];
      await expect(
        (async () => {
          for await (const p of openStream(chunked(m, 100_000), { trust: [aes] })) released.push(p.length);
        })(),
      ).rejects.toMatchObject({ code: 'InvalidCiphertext' });
      // Every frame but the held final one may have been released; the final one was not.
      expect(released.reduce((a, b) => a + b, 0)).toBe(pt.length - (pt.length % FRAME));
    });
  }
});

describe('an unsigned message with a verification key in its context', () => {
  it('is refused before any key is unwrapped (the default CMM MUST)', async () => {
    // Seal a context key one letter off, then turn it into the reserved one: the check comes
    // before the header's tag, which would fail too.
    const m = Buffer.from(
      await sealEnvelope(randomBytes(10), { recipients: [aes], context: { 'xws-crypto-public-key': 'A' } }),
    );
    const at = m.indexOf(Buffer.from('xws-crypto-public-key'));
    m[at] = 'a'.charCodeAt(0);
    let unwraps = 0;
    const counting = {
      ...aes,
      unwrap: (...a: Parameters<typeof aes.unwrap>) => {
        unwraps++;
        return aes.unwrap(...a);
      },
    };
    await expect(openEnvelope(m, { trust: [counting] })).rejects.toMatchObject({
      code: 'InvalidCiphertext',
      message: expect.stringContaining('aws-crypto-public-key'),
    });
    expect(unwraps).toBe(0);
  });
});
