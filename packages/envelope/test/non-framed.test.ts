/**
 * Non-framed bodies (content type 1; written by old ESDKs, never by keyport): built here from
 * the spec with keyport's own primitives, since ESDK-JS cannot write them either (the Python and
 * Java ESDKs can: interop-esdk-languages.test.ts opens theirs).
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { bodyAad, SINGLE_BLOCK_STRING, sequenceIv } from '../src/aead.js';
import { serializeContext } from '../src/context-codec.js';
import { CONTENT_NON_FRAMED, serializeHeaderBody } from '../src/header.js';
import { openEnvelope, openStream, sealStream } from '../src/index.js';
import { deriveKeys } from '../src/kdf.js';
import { SUITES } from '../src/suites.js';
import { gcmSeal } from './helpers/gcm.js';
import { aes, chunked, collect } from './helpers/keys.js';

async function nonFramed(pt: Uint8Array): Promise<Buffer> {
  const suite = SUITES.get(0x0478);
  if (suite === undefined) throw new Error('suite');
  const dataKey = randomBytes(32);
  const messageId = randomBytes(32);
  const context = { legacy: 'yes' };
  const d = deriveKeys(suite, dataKey, messageId);
  const body = serializeHeaderBody({
    suite,
    messageId,
    contextBytes: serializeContext(context),
    encryptedDataKeys: [await aes.wrap(dataKey, context, {})],
    contentType: CONTENT_NON_FRAMED,
    frameLength: 0,
    suiteData: d.commitKey,
  });
  const header = Buffer.concat([body, gcmSeal(d.key, new Uint8Array(12), body, new Uint8Array(0)).tag]);
  const iv = sequenceIv(1);
  const sealed = gcmSeal(d.key, iv, bodyAad(messageId, SINGLE_BLOCK_STRING, 1, pt.length), pt);
  const len = Buffer.alloc(8);
  len.writeBigUInt64BE(BigInt(pt.length));
  return Buffer.concat([header, iv, len, sealed.ciphertext, sealed.tag]);
}

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
