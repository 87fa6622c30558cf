/**
 * Envelope interop with the Material Providers Library's AWS KMS RSA keyring, run by the Python
 * and Go ESDKs (the envelope package's children, installed by the harness as targets esdk-python
 * and esdk-go) against an RSA_2048 key on local-kms, both ways: a message sealed by keyport's `awsKmsRsaRecipient`
 * (through this adapter, which calls Decrypt with RSAES_OAEP_SHA_256) opens in the keyring, and
 * the keyring's messages open in keyport. moto is not used: its RSA Decrypt does not undo a
 * ciphertext made with the key's public half outside moto, which this keyring always makes.
 */
import { randomBytes } from 'node:crypto';
import { Keyport } from '@keyport/core';
import {
  awsKmsRsaRecipient,
  type EncryptedDataKey,
  openEnvelope,
  rawAesRecipient,
  rewrapEnvelope,
  sealEnvelope,
} from '@keyport/envelope';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseHeader } from '../../../packages/envelope/src/header.js';
import { resolveLimits } from '../../../packages/envelope/src/limits.js';
import { type EsdkChild, esdkGo, esdkPythonKeyrings } from '../../../packages/envelope/test/helpers/esdk.js';
import type { AwsKmsProvider } from '../src/index.js';
import { call, providerFor, target, uniqueName } from './support/targets.js';

let provider: AwsKmsProvider;
let keyport: Keyport;
let uri: string;
let arn: string;
let publicKeyPem: string;
let saved: string | undefined;

beforeAll(async () => {
  const t = target('local-kms');
  // Read by the Python child when it starts: its botocore client goes to local-kms.
  saved = process.env.AWS_ENDPOINT_URL_KMS;
  process.env.AWS_ENDPOINT_URL_KMS = t.endpoint;
  provider = providerFor(t);
  keyport = new Keyport({ providers: [provider], retry: { maxAttempts: 1 } });
  const key = await provider.createKey({ name: uniqueName('rsa'), spec: 'RSA_2048' }, call());
  uri = key.uri;
  arn = uri.slice('aws-kms://'.length);
  const spki = Buffer.from(await keyport.getPublicKey(uri));
  publicKeyPem = `-----BEGIN PUBLIC KEY-----\n${spki.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END PUBLIC KEY-----\n`;
});

afterAll(async () => {
  await Promise.all([esdkPythonKeyrings.stop(), esdkGo.stop()]);
  if (saved === undefined) delete process.env.AWS_ENDPOINT_URL_KMS;
  else process.env.AWS_ENDPOINT_URL_KMS = saved;
  await provider?.close();
});

const keyring = () => [{ type: 'kms-rsa' as const, arn, publicKey: publicKeyPem }];
const context = { purpose: 'interop', tenant: 'ü-42', Tenant: 'T', '😀': 'emoji' };

const sdks: ReadonlyArray<{ name: string; esdk: EsdkChild }> = [
  { name: 'Python', esdk: esdkPythonKeyrings },
  { name: 'Go', esdk: esdkGo },
];

describe.each(sdks)(
  'the MPL AWS KMS RSA keyring ($name ESDK) and awsKmsRsaRecipient, one RSA key on local-kms',
  ({ esdk }) => {
    for (const [what, ctx] of [
      ['a context', context],
      ['no context', {}],
    ] as const) {
      it(`keyport seals, the keyring opens (${what})`, async () => {
        const plaintext = randomBytes(5000);
        const message = await sealEnvelope(plaintext, {
          recipients: [awsKmsRsaRecipient({ key: uri, publicKey: publicKeyPem })],
          context: ctx,
          frameLength: 1024,
        });
        const opened = await esdk.decrypt(keyring(), message);
        expect(opened.plaintext.equals(plaintext)).toBe(true);
        expect(opened.context).toEqual(ctx);
      });

      it(`the keyring seals, keyport opens (${what})`, async () => {
        const plaintext = randomBytes(5000);
        const message = await esdk.encrypt(keyring(), plaintext, {
          context: ctx,
          suiteId: 0x0478,
        });
        const opened = await openEnvelope(message, {
          trust: [awsKmsRsaRecipient({ key: uri })],
          keys: keyport,
          requiredContext: ctx,
        });
        expect(Buffer.from(opened.plaintext).equals(plaintext)).toBe(true);
        expect(opened.providerIds).toEqual(['aws-kms-rsa']);
      });
    }

    it('without a public key, the first seal asks KMS for it; the message opens in keyport and in the keyring', async () => {
      const recipient = awsKmsRsaRecipient({ key: uri });
      const message = await sealEnvelope(randomBytes(100), {
        recipients: [recipient],
        context,
        keys: keyport,
      });
      await expect(esdk.decrypt(keyring(), message)).resolves.toMatchObject({ context });
      await expect(openEnvelope(message, { trust: [recipient], keys: keyport })).resolves.toMatchObject({
        context,
      });
    });

    it("the keyring's EDK unwraps only with the message's own context (after KMS's Decrypt)", async () => {
      const message = await esdk.encrypt(keyring(), randomBytes(10), {
        context,
        suiteId: 0x0478,
      });
      const edk = parseHeader(message, resolveLimits())?.encryptedDataKeys[0];
      expect(edk?.providerId).toBe('aws-kms-rsa');
      const recipient = awsKmsRsaRecipient({ key: uri });
      const env = { keys: keyport };
      const dataKey = await recipient.unwrap(edk as EncryptedDataKey, context, env);
      expect(dataKey.length).toBe(32);
      for (const moved of [{ ...context, purpose: 'other' }, {}, { ...context, extra: 'x' }]) {
        await expect(recipient.unwrap(edk as EncryptedDataKey, moved, env)).rejects.toMatchObject({
          code: 'InvalidCiphertext',
          message: expect.stringContaining('another encryption context'),
        });
      }
    });

    it('a message the keyring sealed with RSAES_OAEP_SHA_1 is refused, typed (keyport unwraps with SHA-256 only)', async () => {
      const sha1 = [
        { type: 'kms-rsa' as const, arn, publicKey: publicKeyPem, algorithm: 'RSAES_OAEP_SHA_1' as const },
      ];
      const message = await esdk.encrypt(sha1, randomBytes(10), { context, suiteId: 0x0478 });
      await expect(esdk.decrypt(sha1, message)).resolves.toMatchObject({ context });
      await expect(
        openEnvelope(message, { trust: [awsKmsRsaRecipient({ key: uri })], keys: keyport }),
      ).rejects.toMatchObject({ name: 'DataKeyUnavailableError', attempts: [{ providerId: 'aws-kms-rsa' }] });
    });

    it('rewrap of a keyring message to a raw key keeps it readable by both', async () => {
      const plaintext = randomBytes(3000);
      const message = await esdk.encrypt(keyring(), plaintext, { context, suiteId: 0x0478 });
      const aes = rawAesRecipient({ namespace: 'ns', name: 'k', key: randomBytes(32) });
      const rewrapped = await rewrapEnvelope(message, {
        trust: [awsKmsRsaRecipient({ key: uri })],
        add: [aes],
        keys: keyport,
      });
      const viaAes = await openEnvelope(rewrapped, { trust: [aes] });
      expect(Buffer.from(viaAes.plaintext).equals(plaintext)).toBe(true);
      const viaKeyring = await esdk.decrypt(keyring(), rewrapped);
      expect(viaKeyring.plaintext.equals(plaintext)).toBe(true);
    });
  },
);
