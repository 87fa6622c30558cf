/**
 * An encryption context with an empty key. The format allows any UTF-8 text as a key
 * (structures.md), and ESDK-JS, the Python ESDK (both APIs) and the Go ESDK seal and open
 * `{ "": value }`. keyport refuses an empty key in a context it is given (core's rule), but
 * opening refused such messages too: the raw AES and raw ECDH unwraps serialized the message's
 * context under that rule (every attempt InvalidArgument), and `requiredContext` was checked
 * against the message's context the same way, blaming the caller for the sender's key.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { openEnvelope, openStream, rawEcdhRecipient, rawRsaRecipient, sealEnvelope } from '../src/index.js';
import {
  type EsdkChild,
  esdkDecrypt,
  esdkEncrypt,
  esdkGo,
  esdkPython,
  esdkPythonKeyrings,
  stopEsdk,
} from './helpers/esdk.js';
import {
  aes,
  chunked,
  collect,
  esdkAesKeyring,
  rsaPair,
  rsaPrivatePem,
  rsaPublicPem,
} from './helpers/keys.js';

const esdkJs: EsdkChild = { encrypt: esdkEncrypt, decrypt: esdkDecrypt, stop: stopEsdk };
const children = [
  { name: 'ESDK-JS', esdk: esdkJs },
  { name: 'the Python ESDK (raw master key providers)', esdk: esdkPython },
  { name: 'the Python ESDK (Material Providers keyrings)', esdk: esdkPythonKeyrings },
  { name: 'the Go ESDK (Material Providers keyrings)', esdk: esdkGo },
] as const;
afterAll(() => Promise.all(children.map((c) => c.esdk.stop())));

const FRAME = 256;
// 'Tenant' and 'app' sort differently by localeCompare (ESDK-JS's default raw AES order) than by
// UTF-8 bytes, so the legacy order is tried with the empty key too.
const context = { '': 'empty-key value', Tenant: 't-42', app: 'orders' };
const required = { Tenant: 't-42', app: 'orders' };

describe.each(children)('a context with an empty key, sealed by $name', ({ esdk }) => {
  for (const suiteId of [0x0478, 0x0578] as const) {
    it(`opens in keyport with raw AES, whole and streamed (0x0${suiteId.toString(16)})`, async () => {
      const pt = randomBytes(2 * FRAME + 7);
      const msg = await esdk.encrypt([esdkAesKeyring()], pt, { context, suiteId, frameLength: FRAME });
      // The SDK opens its own message: it is one the format allows.
      expect((await esdk.decrypt([esdkAesKeyring()], msg)).plaintext.equals(pt)).toBe(true);
      const out = await openEnvelope(msg, { trust: [aes], requiredContext: required });
      expect(Buffer.from(out.plaintext).equals(pt)).toBe(true);
      expect(out.context).toMatchObject(context);
      const streamed = await collect(
        openStream(chunked(msg, 97), { trust: [aes], requiredContext: required }),
      );
      expect(streamed.equals(pt)).toBe(true);
      // requiredContext still compares what it names.
      await expect(
        openEnvelope(msg, { trust: [aes], requiredContext: { ...required, app: 'other' } }),
      ).rejects.toMatchObject({ code: 'InvalidCiphertext' });
    });
  }
});

describe('a context with an empty key, other recipients', () => {
  it('raw RSA (the context is not the unwrap AAD): requiredContext no longer fails as InvalidArgument', async () => {
    const pt = randomBytes(300);
    const theirs = {
      type: 'rsa' as const,
      namespace: 'keyport-test',
      name: 'rsa-1',
      privateKey: rsaPrivatePem,
      publicKey: rsaPublicPem,
    };
    const msg = await esdkPython.encrypt([theirs], pt, { context, suiteId: 0x0478, frameLength: FRAME });
    const ours = rawRsaRecipient({
      namespace: 'keyport-test',
      name: 'rsa-1',
      privateKey: rsaPair.privateKey,
    });
    const out = await openEnvelope(msg, { trust: [ours], requiredContext: required });
    expect(Buffer.from(out.plaintext).equals(pt)).toBe(true);
  });

  it('raw ECDH (the context is in the KDF input): the Go ESDK seals, keyport opens', async () => {
    const party = () => {
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
      return {
        pem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
        der: publicKey.export({ type: 'spki', format: 'der' }).toString('base64'),
      };
    };
    const alice = party();
    const bob = party();
    const pt = randomBytes(300);
    const msg = await esdkGo.encrypt(
      [
        {
          type: 'ecdh',
          scheme: 'static',
          curve: 'ECC_NIST_P256',
          senderPrivateKey: alice.pem,
          recipientPublicKey: bob.der,
        },
      ],
      pt,
      { context, suiteId: 0x0478, frameLength: FRAME },
    );
    const ours = rawEcdhRecipient({ scheme: 'discovery', recipientPrivateKey: bob.pem });
    const out = await openEnvelope(msg, { trust: [ours], requiredContext: required });
    expect(Buffer.from(out.plaintext).equals(pt)).toBe(true);
  });

  it('keyport itself still refuses to seal an empty key (InvalidArgument)', async () => {
    await expect(sealEnvelope(randomBytes(10), { recipients: [aes], context })).rejects.toMatchObject({
      code: 'InvalidArgument',
    });
  });
});
