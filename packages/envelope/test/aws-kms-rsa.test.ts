/**
 * awsKmsRsaRecipient over a stand-in KMS holding one RSA key pair (Decrypt with OAEP-SHA256, as
 * AWS KMS's RSAES_OAEP_SHA_256, and GetPublicKey): the EDK layout of the MPL's AWS KMS RSA
 * keyring, the context digest, and the refusals. Interop with the keyring itself runs in
 * adapters/aws-kms (esdk-kms-rsa-interop.test.ts, the Python ESDK against local-kms).
 */
import {
  constants,
  createHash,
  generateKeyPairSync,
  type KeyObject,
  privateDecrypt,
  randomBytes,
} from 'node:crypto';
import { type KeyOperations, KeyportError } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { serializeContext } from '../src/context-codec.js';
import { parseHeader } from '../src/header.js';
import {
  AWS_KMS_RSA_PROVIDER_ID,
  awsKmsRsaRecipient,
  DataKeyCache,
  openEnvelope,
  rawAesRecipient,
  rewrapEnvelope,
  sealEnvelope,
} from '../src/index.js';
import { resolveLimits } from '../src/limits.js';

const ARN = 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const URI = `aws-kms://${ARN}`;
const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
const publicPem = pair.publicKey.export({ type: 'spki', format: 'pem' }) as string;
const context = { purpose: 'test', tenant: 'ü' };

interface StandIn {
  readonly keys: KeyOperations;
  readonly calls: string[];
  /** Every plaintext Decrypt returned (to see they are wiped after use). */
  readonly answered: Uint8Array[];
}

/** KMS Decrypt and GetPublicKey for one key pair; `failPublicKey` rejects that many GetPublicKey calls first. */
function standIn(privateKey: KeyObject = pair.privateKey, failPublicKey = 0, answer?: Uint8Array): StandIn {
  const calls: string[] = [];
  const answered: Uint8Array[] = [];
  const keys = {
    async decrypt(key: string, ciphertext: Uint8Array, o: { context?: object }) {
      calls.push(`decrypt ${key} context=${JSON.stringify(o.context ?? null)}`);
      const plaintext =
        answer ??
        privateDecrypt(
          { key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
          ciphertext,
        );
      answered.push(plaintext);
      return { plaintext, keyVersion: undefined };
    },
    async getPublicKey(key: string) {
      calls.push(`getPublicKey ${key}`);
      if (failPublicKey-- > 0) throw new KeyportError('Unavailable', 'KMS is down', { retryable: true });
      return new Uint8Array(pair.publicKey.export({ type: 'spki', format: 'der' }));
    },
  } as unknown as KeyOperations;
  return { keys, calls, answered };
}

describe('awsKmsRsaRecipient', () => {
  it("writes the keyring's EDK: provider id aws-kms-rsa, the ARN, OAEP-SHA256(SHA-384(context) || data key)", async () => {
    const message = await sealEnvelope(randomBytes(100), {
      recipients: [awsKmsRsaRecipient({ key: URI, publicKey: publicPem })],
      context,
    });
    const edk = parseHeader(message, resolveLimits())?.encryptedDataKeys[0];
    expect(edk?.providerId).toBe(AWS_KMS_RSA_PROVIDER_ID);
    expect(Buffer.from(edk?.providerInfo ?? []).toString()).toBe(ARN);
    const inner = privateDecrypt(
      { key: pair.privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
      edk?.ciphertext ?? new Uint8Array(0),
    );
    expect(inner.length).toBe(48 + 32);
    expect(inner.subarray(0, 48)).toEqual(createHash('sha384').update(serializeContext(context)).digest());
  });

  it('opens through KMS Decrypt without a KMS encryption context, and wipes what Decrypt returned', async () => {
    const plaintext = randomBytes(2000);
    const message = await sealEnvelope(plaintext, {
      recipients: [awsKmsRsaRecipient({ key: URI, publicKey: pair.publicKey })],
      context,
    });
    const kms = standIn();
    const opened = await openEnvelope(message, { trust: [awsKmsRsaRecipient({ key: URI })], keys: kms.keys });
    expect(Buffer.from(opened.plaintext).equals(plaintext)).toBe(true);
    expect(kms.calls).toEqual([`decrypt ${URI} context=null`]);
    expect(kms.answered.every((p) => p.every((b) => b === 0))).toBe(true);
  });

  it('refuses a data key wrapped for another context, and a Decrypt answer of the wrong length', async () => {
    const recipient = awsKmsRsaRecipient({ key: URI, publicKey: publicPem });
    const dataKey = randomBytes(32);
    const edk = await recipient.wrap(dataKey, context, {});
    const env = { keys: standIn().keys };
    await expect(recipient.unwrap(edk, context, env)).resolves.toEqual(new Uint8Array(dataKey));
    for (const other of [{}, { ...context, purpose: 'other' }, { purpose: 'test' }]) {
      await expect(recipient.unwrap(edk, other, env)).rejects.toMatchObject({
        code: 'InvalidCiphertext',
        message: expect.stringContaining('another encryption context'),
      });
    }
    const short = standIn(pair.privateKey, 0, randomBytes(48 + 31));
    await expect(recipient.unwrap(edk, context, { keys: short.keys })).rejects.toMatchObject({
      code: 'InvalidCiphertext',
      message: expect.stringContaining('wrong length'),
    });
    expect(short.answered[0]?.every((b) => b === 0)).toBe(true);
  });

  it('binds an empty context as SHA-384 of no bytes', async () => {
    const edk = await awsKmsRsaRecipient({ key: URI, publicKey: publicPem }).wrap(randomBytes(32), {}, {});
    const inner = privateDecrypt(
      { key: pair.privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
      edk.ciphertext,
    );
    expect(inner.subarray(0, 48)).toEqual(createHash('sha384').digest());
  });

  it('refuses a signed suite, as the keyring does, before any key is wrapped', async () => {
    await expect(
      sealEnvelope(randomBytes(10), {
        recipients: [awsKmsRsaRecipient({ key: URI, publicKey: publicPem })],
        suite: 0x0578,
      }),
    ).rejects.toMatchObject({ code: 'InvalidArgument', message: expect.stringContaining('signed suite') });
  });

  it('asks KMS for the public key when none is given, once, and asks again after a failure', async () => {
    const kms = standIn(pair.privateKey, 1);
    const recipient = awsKmsRsaRecipient({ key: URI });
    await expect(
      sealEnvelope(randomBytes(10), { recipients: [recipient], keys: kms.keys }),
    ).rejects.toMatchObject({
      code: 'Unavailable',
    });
    for (let i = 0; i < 3; i++) {
      const message = await sealEnvelope(randomBytes(10), {
        recipients: [recipient],
        context,
        keys: kms.keys,
      });
      await openEnvelope(message, { trust: [recipient], keys: kms.keys });
    }
    expect(kms.calls.filter((c) => c.startsWith('getPublicKey'))).toHaveLength(2);
  });

  it('matches EDKs of its ARN and of a replica of its multi-Region key, nothing else', async () => {
    const mrk = 'arn:aws:kms:us-east-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab';
    const replica = mrk.replace('us-east-1', 'eu-west-1');
    const recipient = awsKmsRsaRecipient({ key: `aws-kms://${mrk}` });
    const edk = (info: string, providerId = AWS_KMS_RSA_PROVIDER_ID) => ({
      providerId,
      providerInfo: Buffer.from(info),
      ciphertext: new Uint8Array(256),
    });
    expect(recipient.matches(edk(mrk))).toBe(true);
    expect(recipient.matches(edk(replica))).toBe(true);
    expect(recipient.matches(edk(mrk, 'aws-kms'))).toBe(false);
    expect(recipient.matches(edk(ARN))).toBe(false);
    expect(recipient.matches(edk(`${mrk} `))).toBe(false);
    expect(recipient.matches({ ...edk(mrk), providerInfo: new Uint8Array([0xff]) })).toBe(false);
  });

  it('refuses what is not an RSA key ARN of 2048 bits or more, and options it does not know', () => {
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey;
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    const cases: Array<[unknown, string]> = [
      [{ key: 'aws-kms://alias/mine', publicKey: publicPem }, 'InvalidArgument'],
      [{ key: 'gcp-kms://projects/p/locations/l/keyRings/r/cryptoKeys/k' }, 'InvalidArgument'],
      [{ key: URI, publicKey: small }, 'InvalidArgument'],
      [{ key: URI, publicKey: ec }, 'InvalidArgument'],
      [{ key: URI, publicKey: 'not a pem' }, 'InvalidArgument'],
      [{ key: URI, publicKey: new Uint8Array(10) }, 'InvalidArgument'],
      [{ key: URI, encryptionAlgorithm: 'RSAES_OAEP_SHA_1' }, 'Unsupported'],
      [{ key: URI, encryptionAlgorithm: 'SYMMETRIC_DEFAULT' }, 'InvalidArgument'],
      [{ key: URI, publickey: publicPem }, 'InvalidArgument'],
      [null, 'InvalidArgument'],
    ];
    for (const [options, code] of cases) {
      expect(() => awsKmsRsaRecipient(options as never), JSON.stringify(options)).toThrow(
        expect.objectContaining({ code }),
      );
    }
    // A private key is taken for its public half.
    expect(() => awsKmsRsaRecipient({ key: URI, publicKey: pair.privateKey })).not.toThrow();
  });

  it('gives recipients of one ARN with different public keys different ids (a seal cache keeps them apart)', async () => {
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const a = awsKmsRsaRecipient({ key: URI, publicKey: publicPem });
    const b = awsKmsRsaRecipient({ key: URI, publicKey: other.publicKey });
    expect(a.id).not.toBe(b.id);
    const cache = new DataKeyCache({ maxAgeMs: 60_000 });
    const m1 = await sealEnvelope(randomBytes(10), { recipients: [a], cache });
    const m2 = await sealEnvelope(randomBytes(10), { recipients: [b], cache });
    const edkOf = (m: Uint8Array) => parseHeader(m, resolveLimits())?.encryptedDataKeys[0]?.ciphertext;
    expect(() =>
      privateDecrypt(
        { key: other.privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
        edkOf(m2) ?? new Uint8Array(0),
      ),
    ).not.toThrow();
    expect(edkOf(m1)).not.toEqual(edkOf(m2));
  });

  it('rewrap adds it to a message; a context read from a message may carry an empty key', async () => {
    const recipient = awsKmsRsaRecipient({ key: URI, publicKey: publicPem });
    const kms = standIn();
    const plaintext = randomBytes(500);
    const aes = rawAesRecipient({ namespace: 'ns', name: 'k', key: randomBytes(32) });
    const message = await sealEnvelope(plaintext, { recipients: [aes], context });
    const rewrapped = await rewrapEnvelope(message, { trust: [aes], add: [recipient], keys: kms.keys });
    const opened = await openEnvelope(rewrapped, { trust: [recipient], keys: kms.keys });
    expect(Buffer.from(opened.plaintext).equals(plaintext)).toBe(true);
    // Other ESDKs write `{ "": value }`; a rewrap binds such a context as the message has it.
    const withEmptyKey = { '': 'v', a: 'b' };
    const dataKey = randomBytes(32);
    await expect(recipient.wrap(dataKey, withEmptyKey, {})).rejects.toMatchObject({
      code: 'InvalidArgument',
    });
    const edk = await recipient.wrap(dataKey, withEmptyKey, { contextFromMessage: true });
    await expect(recipient.unwrap(edk, withEmptyKey, { keys: kms.keys })).resolves.toEqual(
      new Uint8Array(dataKey),
    );
  });
});
