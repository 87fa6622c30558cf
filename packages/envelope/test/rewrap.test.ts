/** rewrap: add/remove recipients, body bytes untouched, header tag and signature renewed. */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bodySize } from '../src/frames.js';
import { parseHeader } from '../src/header.js';
import { openEnvelope, rewrapEnvelope, rewrapStream, sealEnvelope } from '../src/index.js';
import { resolveLimits } from '../src/limits.js';
import { esdkDecrypt, stopEsdk } from './helpers/esdk.js';
import {
  aes,
  aesOther,
  chunked,
  collect,
  esdkAesKeyring,
  flip,
  rsa,
  rsaPrivatePem,
  rsaPublicPem,
} from './helpers/keys.js';
import { type LocalKms, localKms } from './helpers/local-kms.js';

let kms: LocalKms;
beforeAll(async () => {
  kms = await localKms(2);
});
afterAll(async () => {
  await kms?.close();
  await stopEsdk();
});

function split(msg: Uint8Array) {
  const h = parseHeader(msg, resolveLimits());
  if (h === undefined) throw new Error('no header');
  return { header: h, rest: Buffer.from(msg.subarray(h.length)) };
}

describe('rewrap', () => {
  it('adds a KMS recipient and removes the raw one; the body is byte-identical (0x0478)', async () => {
    const pt = randomBytes(5000);
    const msg = await sealEnvelope(pt, { recipients: [aes], frameLength: 1000, context: { c: '1' } });
    const out = await rewrapEnvelope(msg, {
      trust: [aes],
      add: [kms.uris[0] as string],
      remove: [aes],
      keys: kms.keys,
    });
    expect(split(out).rest.equals(split(msg).rest)).toBe(true);
    expect(split(out).header.encryptedDataKeys.map((e) => e.providerId)).toEqual(['keyport:local']);
    await expect(openEnvelope(out, { trust: [aes] })).rejects.toMatchObject({ code: 'InvalidCiphertext' });
    const opened = await openEnvelope(out, {
      trust: [kms.uris[0] as string],
      keys: kms.keys,
      requiredContext: { c: '1' },
    });
    expect(Buffer.from(opened.plaintext).equals(pt)).toBe(true);
  });

  it('re-signs 0x0578: new public key, every kept EDK wrapped again, frames unchanged, ESDK opens it', async () => {
    const pt = randomBytes(3000);
    const msg = await sealEnvelope(pt, {
      recipients: [aes, kms.uris[1] as string],
      suite: 0x0578,
      frameLength: 512,
      keys: kms.keys,
    });
    // Every kept key is wrapped again, so each must be trusted: a key the message merely names
    // is never called (the sealer would otherwise choose what this rewrap calls).
    await expect(rewrapEnvelope(msg, { trust: [aes], add: [rsa], keys: kms.keys })).rejects.toMatchObject({
      code: 'InvalidArgument',
    });
    const out = await rewrapEnvelope(msg, {
      trust: [aes, kms.uris[1] as string],
      add: [rsa],
      keys: kms.keys,
    });
    const before = split(msg);
    const after = split(out);
    expect(after.header.context['aws-crypto-public-key']).not.toEqual(
      before.header.context['aws-crypto-public-key'],
    );
    expect(after.header.encryptedDataKeys.map((e) => e.providerId)).toEqual([
      'keyport-test',
      'keyport:local',
      'keyport-test',
    ]);
    // Frames are copied; only the footer (signature) differs.
    const n = bodySize(pt.length, 512);
    expect(after.rest.subarray(0, n).equals(before.rest.subarray(0, n))).toBe(true);
    expect(after.rest.subarray(n).equals(before.rest.subarray(n))).toBe(false);
    for (const trust of [[aes], [rsa], [kms.uris[1] as string]]) {
      const o = await openEnvelope(out, { trust, keys: kms.keys });
      expect(Buffer.from(o.plaintext).equals(pt)).toBe(true);
    }
    expect((await esdkDecrypt([esdkAesKeyring()], out)).plaintext.equals(pt)).toBe(true);
    const esdkRsa = {
      type: 'rsa' as const,
      namespace: 'keyport-test',
      name: 'rsa-1',
      privateKey: rsaPrivatePem,
      publicKey: rsaPublicPem,
    };
    expect((await esdkDecrypt([esdkRsa], out)).plaintext.equals(pt)).toBe(true);
  });

  it('streams: chunked input gives the same bytes as the buffer rewrap of an unsigned message', async () => {
    const pt = randomBytes(20_000);
    const msg = await sealEnvelope(pt, { recipients: [aes], frameLength: 4096 });
    const streamed = await collect(rewrapStream(chunked(msg, 777), { trust: [aes], add: [aesOther] }));
    expect(split(streamed).rest.equals(split(msg).rest)).toBe(true);
    expect(Buffer.from((await openEnvelope(streamed, { trust: [aesOther] })).plaintext).equals(pt)).toBe(
      true,
    );
  });

  it('refuses to leave no recipient, and a tampered signed body fails', async () => {
    const msg = await sealEnvelope(randomBytes(10), { recipients: [aes] });
    await expect(rewrapEnvelope(msg, { trust: [aes], remove: [aes] })).rejects.toMatchObject({
      code: 'InvalidArgument',
    });
    const signed = Buffer.from(
      await sealEnvelope(randomBytes(100), { recipients: [aes], suite: 0x0578, frameLength: 64 }),
    );
    const h = split(signed).header;
    flip(signed, h.length + 30);
    await expect(rewrapEnvelope(signed, { trust: [aes], add: [aesOther] })).rejects.toMatchObject({
      code: 'InvalidCiphertext',
    });
  });
});
