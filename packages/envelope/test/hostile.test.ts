/** Hostile input: truncation, reordering, replay, too many EDKs, huge lengths, context rules. */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ByteWriter } from '../src/bytes.js';
import { parseHeader } from '../src/header.js';
import { openEnvelope, openStream, rawRsaRecipient, sealEnvelope } from '../src/index.js';
import { resolveLimits } from '../src/limits.js';
import { aes, chunked, collect, flip, rsaPair } from './helpers/keys.js';

const F = 32;
async function sealed(size: number, suite: 0x0478 | 0x0578 = 0x0478) {
  const pt = randomBytes(size);
  const msg = Buffer.from(
    await sealEnvelope(pt, { recipients: [aes], frameLength: F, suite, context: { a: '1' } }),
  );
  const header = parseHeader(msg, resolveLimits());
  if (header === undefined) throw new Error('no header');
  return { pt, msg, headerLength: header.length };
}
const frameSize = 4 + 12 + F + 16;
const code = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e: { code?: string }) => e.code,
  );

describe('hostile input', () => {
  it('every truncation is rejected', async () => {
    for (const suite of [0x0478, 0x0578] as const) {
      const { msg } = await sealed(3 * F + 5, suite);
      for (let n = 0; n < msg.length; n++) {
        expect(await code(openEnvelope(msg.subarray(0, n), { trust: [aes] })), `cut at ${n}`).toMatch(
          /InvalidCiphertext|Integrity/,
        );
      }
    }
  });

  it('trailing bytes are rejected', async () => {
    const { msg } = await sealed(10);
    expect(await code(openEnvelope(Buffer.concat([msg, Buffer.of(0)]), { trust: [aes] }))).toBe(
      'InvalidCiphertext',
    );
  });

  it('reordered, replayed and dropped frames are rejected', async () => {
    const { msg, headerLength } = await sealed(3 * F + 5);
    const h = msg.subarray(0, headerLength);
    const f1 = msg.subarray(headerLength, headerLength + frameSize);
    const f2 = msg.subarray(headerLength + frameSize, headerLength + 2 * frameSize);
    const f3 = msg.subarray(headerLength + 2 * frameSize, headerLength + 3 * frameSize);
    const fin = msg.subarray(headerLength + 3 * frameSize);
    expect(Buffer.concat([h, f1, f2, f3, fin]).equals(msg)).toBe(true);
    for (const bad of [
      [h, f2, f1, f3, fin],
      [h, f1, f1, f2, f3, fin],
      [h, f1, f3, fin],
      [h, f1, f2, f3],
      [h, f1, f2, f3, fin, fin],
    ]) {
      expect(await code(openEnvelope(Buffer.concat(bad), { trust: [aes] }))).toMatch(
        /InvalidCiphertext|Integrity/,
      );
    }
  });

  it('frames of one message do not open under another header', async () => {
    const a = await sealed(2 * F);
    const b = await sealed(2 * F);
    const spliced = Buffer.concat([a.msg.subarray(0, a.headerLength), b.msg.subarray(b.headerLength)]);
    expect(await code(openEnvelope(spliced, { trust: [aes] }))).toBe('Integrity');
  });

  it('the streaming open releases nothing of a frame whose tag fails', async () => {
    const { msg, headerLength, pt } = await sealed(3 * F);
    const bad = Buffer.from(msg);
    flip(bad, headerLength + frameSize + 20); // inside frame 2's ciphertext
    const got: Uint8Array[] = [];
    const err = await (async () => {
      for await (const p of openStream(chunked(bad, 7), { trust: [aes] })) got.push(p);
    })().catch((e) => e);
    expect(err.code).toBe('Integrity');
    expect(Buffer.concat(got).equals(pt.subarray(0, F))).toBe(true);
  });

  it('enforces maxEncryptedDataKeys, maxHeaderBytes, maxFrameLength and maxFrames', async () => {
    const many = Array.from({ length: 5 }, () => aes);
    const { pt } = await sealed(0);
    const msg = await sealEnvelope(pt, { recipients: many, frameLength: F });
    expect(await code(openEnvelope(msg, { trust: [aes], maxEncryptedDataKeys: 4 }))).toBe(
      'InvalidCiphertext',
    );
    expect((await openEnvelope(msg, { trust: [aes], maxEncryptedDataKeys: 5 })).plaintext.length).toBe(0);
    expect(await code(openEnvelope(msg, { trust: [aes], maxHeaderBytes: 100 }))).toBe('InvalidCiphertext');
    expect(await code(openEnvelope(msg, { trust: [aes], maxFrameLength: F - 1 }))).toBe('InvalidCiphertext');
    // 5 * F bytes are exactly 5 frames: the final frame is full (the spec's SHOULD).
    const big = await sealed(5 * F);
    expect(await code(openEnvelope(big.msg, { trust: [aes], maxFrames: 4 }))).toBe('InvalidCiphertext');
    expect((await openEnvelope(big.msg, { trust: [aes], maxFrames: 5 })).plaintext.length).toBe(5 * F);
  });

  it('a header claiming huge lengths fails fast without allocating', async () => {
    // version 2, suite 0x0478, message id, AAD length 0xFFFF but nothing after it.
    const w = new ByteWriter().u8(2).u16(0x0478).bytes(randomBytes(32)).u16(0xffff);
    const stub = w.finish();
    expect(await code(openEnvelope(stub, { trust: [aes] }))).toBe('InvalidCiphertext');
    // A streaming source that never ends: the header limit stops reading.
    async function* endless() {
      yield stub;
      for (;;) yield new Uint8Array(64 * 1024);
    }
    expect(await code(collect(openStream(endless(), { trust: [aes], maxHeaderBytes: 256 * 1024 })))).toBe(
      'InvalidCiphertext',
    );
  });

  it('a final frame longer than the frame length is rejected', async () => {
    const { msg, headerLength } = await sealed(5);
    const bad = Buffer.from(msg);
    bad.writeUInt32BE(F + 1, headerLength + 20);
    expect(await code(openEnvelope(bad, { trust: [aes] }))).toBe('InvalidCiphertext');
  });

  it('unknown versions and suites are rejected', async () => {
    const { msg } = await sealed(5);
    for (const [at, value] of [
      [0, 3],
      [2, 0x79],
    ] as const) {
      const bad = Buffer.from(msg);
      bad[at] = value;
      expect(await code(openEnvelope(bad, { trust: [aes] }))).toBe('InvalidCiphertext');
    }
  });
});

describe('context rules', () => {
  it('requiredContext must be present and equal', async () => {
    const msg = await sealEnvelope(randomBytes(9), {
      recipients: [aes],
      context: { tenant: 't1', app: 'a' },
    });
    await expect(
      openEnvelope(msg, { trust: [aes], requiredContext: { tenant: 't1' } }),
    ).resolves.toBeDefined();
    for (const required of [{ tenant: 't2' }, { missing: 'x' }, { tenant: 't1', app: 'b' }]) {
      const err = await openEnvelope(msg, { trust: [aes], requiredContext: required }).catch((e) => e);
      expect(err.code).toBe('InvalidCiphertext');
      expect(err.message).not.toContain('t2');
    }
  });

  it('reserved aws-crypto- keys are refused on seal', async () => {
    await expect(
      sealEnvelope(randomBytes(1), { recipients: [aes], context: { 'aws-crypto-public-key': 'x' } }),
    ).rejects.toMatchObject({ code: 'InvalidArgument' });
  });

  it('signed messages carry the public key in the context', async () => {
    const out = await openEnvelope(await sealEnvelope(randomBytes(3), { recipients: [aes], suite: 0x0578 }), {
      trust: [aes],
    });
    expect(Buffer.from(out.context['aws-crypto-public-key'] as string, 'base64').length).toBe(49);
  });

  it('open needs an explicit trust list', async () => {
    const msg = await sealEnvelope(randomBytes(1), { recipients: [aes] });
    expect(await code(openEnvelope(msg, { trust: [] }))).toBe('InvalidArgument');
  });
});

describe('recipient options named after Object.prototype members', () => {
  it('a raw RSA padding of constructor, toString or __proto__ is an unknown padding', () => {
    for (const padding of ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'oaep-sha3']) {
      expect(() =>
        rawRsaRecipient({
          namespace: 'keyport-test',
          name: 'rsa',
          privateKey: rsaPair.privateKey,
          padding: padding as 'oaep-sha256',
        }),
      ).toThrow(expect.objectContaining({ code: 'InvalidArgument', message: 'unsupported RSA padding' }));
    }
  });
});
