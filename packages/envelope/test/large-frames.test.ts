/**
 * Messages with frames over the default 64 MiB limit (the format allows up to 2^32 − 1, and
 * ESDK-JS writes them when asked): refused at the default, opened once `maxFrameLength` is
 * raised, by the buffer and the streaming API. Sizes stay modest: the ESDK messages carry a
 * small plaintext under a large declared frame length; one keyport-built message has two real
 * frames of 64 MiB + 1 bytes.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { serializeContext } from '../src/context-codec.js';
import { FrameSealer } from '../src/frames.js';
import { CONTENT_FRAMED, serializeHeaderBody } from '../src/header.js';
import { openEnvelope, openStream } from '../src/index.js';
import { deriveKeys } from '../src/kdf.js';
import { SUITES } from '../src/suites.js';
import { esdkEncrypt, stopEsdk } from './helpers/esdk.js';
import { gcmSeal } from './helpers/gcm.js';
import { aes, chunked, esdkAesKeyring } from './helpers/keys.js';

afterAll(stopEsdk);

const MiB = 1024 * 1024;
const esdkAes = esdkAesKeyring(true);

const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e: { code?: string }) => e.code,
  );

describe('frames over 64 MiB', () => {
  for (const frameLength of [64 * MiB + 1, 2 ** 32 - 1]) {
    for (const suiteId of [0x0478, 0x0578]) {
      it(`an ESDK-JS message with frame length ${frameLength}, suite ${suiteId.toString(16)}`, async () => {
        const pt = randomBytes(5000);
        const msg = await esdkEncrypt([esdkAes], pt, { frameLength, suiteId, context: { a: 'b' } });
        expect(await codeOf(openEnvelope(msg, { trust: [aes] }))).toBe('InvalidCiphertext');
        const opened = await openEnvelope(msg, { trust: [aes], maxFrameLength: frameLength });
        expect(opened.frameLength).toBe(frameLength);
        expect(Buffer.from(opened.plaintext).equals(pt)).toBe(true);
        const parts: Uint8Array[] = [];
        for await (const p of openStream(chunked(msg, 4096), { trust: [aes], maxFrameLength: 2 ** 32 - 1 })) {
          parts.push(p);
        }
        expect(Buffer.concat(parts).equals(pt)).toBe(true);
      });
    }
  }

  it('two full frames of 64 MiB + 1 bytes, streamed in 64 KiB chunks', async () => {
    const suite = SUITES.get(0x0478);
    if (suite === undefined) throw new Error('no suite');
    const F = 64 * MiB + 1;
    const pt = randomBytes(F + 3);
    const dataKey = randomBytes(32);
    const messageId = randomBytes(32);
    const context = { big: 'frames' };
    const edk = await aes.wrap(dataKey, context, {});
    const derived = deriveKeys(suite, dataKey, messageId);
    const body = serializeHeaderBody({
      suite,
      messageId,
      contextBytes: serializeContext(context),
      encryptedDataKeys: [edk],
      contentType: CONTENT_FRAMED,
      frameLength: F,
      suiteData: derived.commitKey,
    });
    const { tag } = gcmSeal(derived.key, new Uint8Array(12), body, new Uint8Array(0));
    const sealer = new FrameSealer(derived.key, messageId, F);
    const msg = Buffer.concat([
      body,
      tag,
      sealer.frame(pt.subarray(0, F), false),
      sealer.frame(pt.subarray(F), true),
    ]);
    expect(await codeOf(openEnvelope(msg, { trust: [aes] }))).toBe('InvalidCiphertext');
    let at = 0;
    let same = true;
    for await (const p of openStream(chunked(msg, 64 * 1024), { trust: [aes], maxFrameLength: F })) {
      same &&= Buffer.from(p.buffer, p.byteOffset, p.length).equals(pt.subarray(at, at + p.length));
      at += p.length;
    }
    expect(at).toBe(pt.length);
    expect(same).toBe(true);
  }, 120_000);
});
