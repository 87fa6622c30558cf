/**
 * Non-framed bodies (content type 1; written by old ESDKs, never by keyport): built from the spec
 * with keyport's own primitives (helpers/non-framed.ts), since ESDK-JS cannot write them either (the Python and
 * Java ESDKs can: interop-esdk-languages.test.ts opens theirs).
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { openEnvelope, openStream, sealStream } from '../src/index.js';
import { aes, chunked, collect } from './helpers/keys.js';
import { nonFramed } from './helpers/non-framed.js';

describe('non-framed bodies', () => {
  it('open, whole and streamed', async () => {
    for (const size of [0, 1, 5000]) {
      const pt = randomBytes(size);
      const msg = await nonFramed(pt);
      const out = await openEnvelope(msg, { trust: [aes], requiredContext: { legacy: 'yes' } });
      expect(Buffer.from(out.plaintext).equals(pt)).toBe(true);
      expect(out.framed).toBe(false);
      expect((await collect(openStream(chunked(msg, 333), { trust: [aes] }))).equals(pt)).toBe(true);
    }
  });

  it('a tampered or oversized non-framed body is rejected', async () => {
    const msg = await nonFramed(randomBytes(100));
    const bad = Buffer.from(msg);
    bad[bad.length - 20] = (bad[bad.length - 20] as number) ^ 1;
    await expect(openEnvelope(bad, { trust: [aes] })).rejects.toMatchObject({ code: 'Integrity' });
    await expect(openEnvelope(msg, { trust: [aes], maxNonFramedBytes: 99 })).rejects.toMatchObject({
      code: 'InvalidCiphertext',
    });
  });
});

describe('sealStream plaintextLength', () => {
  it('must match the plaintext', async () => {
    await expect(
      collect(sealStream([randomBytes(10)], { recipients: [aes], plaintextLength: 9 })),
    ).rejects.toMatchObject({
      code: 'InvalidArgument',
    });
    await expect(
      collect(sealStream([randomBytes(10)], { recipients: [aes], plaintextLength: 11 })),
    ).rejects.toMatchObject({
      code: 'InvalidArgument',
    });
    const ok = await collect(sealStream([randomBytes(10)], { recipients: [aes], plaintextLength: 10 }));
    expect((await openEnvelope(ok, { trust: [aes] })).plaintext.length).toBe(10);
  });
});
