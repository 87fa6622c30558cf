/**
 * Interop with the AWS Encryption SDK for JavaScript (@aws-crypto/client-node 5.0.2), both
 * directions, raw AES and raw RSA keyrings, both v2 suites, at frame boundaries; and v1
 * messages (0x0078, 0x0178, 0x0378) sealed by ESDK-JS opened by keyport.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { openEnvelope, rawAesRecipient, rawRsaRecipient, sealEnvelope } from '../src/index.js';
import { type EsdkKeyring, esdkDecrypt, esdkEncrypt, stopEsdk } from './helpers/esdk.js';
import { aesKey, rsaPrivatePem, rsaPublicPem } from './helpers/keys.js';

afterAll(stopEsdk);

const FRAME = 256;
const SIZES = [0, 1, FRAME - 1, FRAME, FRAME + 1, 3 * FRAME + 17];
const context = { purpose: 'interop', tenant: 'ü-42' };

const esdkAes: EsdkKeyring = {
  type: 'aes',
  namespace: 'keyport-interop',
  name: 'aes-interop',
  key: aesKey.toString('base64'),
};
const esdkRsa: EsdkKeyring = {
  type: 'rsa',
  namespace: 'keyport-interop',
  name: 'rsa-interop',
  privateKey: rsaPrivatePem,
  publicKey: rsaPublicPem,
};
const ourAes = rawAesRecipient({ namespace: 'keyport-interop', name: 'aes-interop', key: aesKey });
const ourRsa = rawRsaRecipient({
  namespace: 'keyport-interop',
  name: 'rsa-interop',
  privateKey: rsaPrivatePem,
});

const keyrings = [
  { name: 'raw AES', esdk: esdkAes, ours: ourAes },
  { name: 'raw RSA', esdk: esdkRsa, ours: ourRsa },
] as const;
const suites = [0x0478, 0x0578] as const;

describe('interop with ESDK-JS', () => {
  for (const k of keyrings) {
    for (const suite of suites) {
      const label = `${k.name}, suite 0x0${suite.toString(16)}`;
      it(`keyport seals, ESDK opens (${label})`, async () => {
        for (const size of SIZES) {
          const pt = randomBytes(size);
          const msg = await sealEnvelope(pt, { recipients: [k.ours], context, suite, frameLength: FRAME });
          const out = await esdkDecrypt([k.esdk], msg);
          expect(out.plaintext.equals(pt), `size ${size}`).toBe(true);
          expect(out.suiteId).toBe(suite);
          expect(out.context).toMatchObject(context);
        }
      });
      it(`ESDK seals, keyport opens (${label})`, async () => {
        for (const size of SIZES) {
          const pt = randomBytes(size);
          const msg = await esdkEncrypt([k.esdk], pt, { context, suiteId: suite, frameLength: FRAME });
          const out = await openEnvelope(msg, { trust: [k.ours], requiredContext: context });
          expect(Buffer.from(out.plaintext).equals(pt), `size ${size}`).toBe(true);
          expect(out.suiteId).toBe(suite);
          expect(out.frameLength).toBe(FRAME);
        }
      });
    }
  }

  it('a message sealed to both keyrings opens in ESDK with either one', async () => {
    const pt = randomBytes(1000);
    const msg = await sealEnvelope(pt, { recipients: [ourAes, ourRsa], suite: 0x0578, frameLength: FRAME });
    for (const kr of [esdkAes, esdkRsa]) {
      expect((await esdkDecrypt([kr], msg)).plaintext.equals(pt)).toBe(true);
    }
  });

  it('an ESDK multi-keyring message opens with either keyport recipient', async () => {
    const pt = randomBytes(5000);
    const msg = await esdkEncrypt([esdkAes, esdkRsa], pt);
    for (const r of [ourAes, ourRsa]) {
      const out = await openEnvelope(msg, { trust: [r] });
      expect(Buffer.from(out.plaintext).equals(pt)).toBe(true);
      expect(out.frameLength).toBe(4096);
    }
  });

  it('keyport default settings (1 MiB frames) open in ESDK', async () => {
    const pt = randomBytes(2 * 1024 * 1024 + 3);
    const msg = await sealEnvelope(pt, { recipients: [ourAes] });
    expect((await esdkDecrypt([esdkAes], msg)).plaintext.equals(pt)).toBe(true);
  });
});

describe('v1 messages sealed by ESDK-JS open in keyport', () => {
  for (const suite of [0x0078, 0x0178, 0x0378]) {
    it(`suite 0x0${suite.toString(16)}`, async () => {
      for (const size of SIZES) {
        const pt = randomBytes(size);
        const msg = await esdkEncrypt([esdkRsa], pt, {
          context,
          suiteId: suite,
          frameLength: FRAME,
          policy: 'legacy',
        });
        const out = await openEnvelope(msg, { trust: [ourRsa] });
        expect(Buffer.from(out.plaintext).equals(pt), `size ${size}`).toBe(true);
        expect(out.messageFormat).toBe(1);
        expect(out.suiteId).toBe(suite);
        await expect(openEnvelope(msg, { trust: [ourRsa], requireCommitment: true })).rejects.toMatchObject({
          code: 'InvalidCiphertext',
        });
      }
    });
  }
});
