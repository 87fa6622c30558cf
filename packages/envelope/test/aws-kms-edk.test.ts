/**
 * aws-kms EDKs are encoded exactly as the ESDK AWS KMS keyring encodes them: provider id
 * `aws-kms`, provider info = key ARN, ciphertext = the KMS blob, KMS encryption context =
 * the message context (with the public key for signed suites). Both sides call the same
 * stand-in KMS (helpers/fake-aws-kms.cjs); the ESDK side runs its real KmsKeyringNode.
 */
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { type KeyOperations, KeyportError } from '@keyport/core';
import { afterAll, describe, expect, it } from 'vitest';
import { parseHeader } from '../src/header.js';
import { anyKeyOf, openEnvelope, type Recipient, rewrapEnvelope, sealEnvelope } from '../src/index.js';
import { resolveLimits } from '../src/limits.js';
import { esdkDecrypt, esdkEncrypt, stopEsdk } from './helpers/esdk.js';

afterAll(stopEsdk);

interface FakeKms {
  seal(keyId: string, plaintext: Uint8Array, context: Record<string, string>): Uint8Array;
  open(blob: Uint8Array, context: Record<string, string>): { keyId: string; plaintext: Uint8Array };
}
const { makeFakeKms } = createRequire(import.meta.url)('./helpers/fake-aws-kms.cjs') as {
  makeFakeKms: (secret: string) => FakeKms;
};

const ARN = 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const URI = `aws-kms://${ARN}`;
const secret = randomBytes(32).toString('base64');
const fake = makeFakeKms(secret);
/** The key id of an aws-kms URI, with or without an instance (`aws-kms+dr://`). */
const keyIdOf = (uri: string) => uri.replace(/^aws-kms(\+[a-z][a-z0-9-]*)?:\/\//, '');

/** The three KeyOperations calls a KMS recipient makes, served by the stand-in KMS. */
const keys = {
  async generateDataKey(key: string, o: { context?: Record<string, string>; bytes?: number }) {
    const plaintext = randomBytes(o.bytes ?? 32);
    return { plaintext, wrapped: fake.seal(keyIdOf(key), plaintext, o.context ?? {}), keyVersion: undefined };
  },
  async encrypt(key: string, plaintext: Uint8Array, o: { context?: Record<string, string> }) {
    return { ciphertext: fake.seal(keyIdOf(key), plaintext, o.context ?? {}), keyVersion: undefined };
  },
  async decrypt(key: string, ciphertext: Uint8Array, o: { context?: Record<string, string> }) {
    try {
      const r = fake.open(ciphertext, o.context ?? {});
      if (r.keyId !== keyIdOf(key)) throw new Error('wrong key');
      return { plaintext: r.plaintext, keyVersion: undefined };
    } catch (cause) {
      throw new KeyportError('InvalidCiphertext', 'stand-in KMS refused the blob', { cause });
    }
  },
} as unknown as KeyOperations;

/** `keys`, recording the key of every decrypt it is asked for. */
function recordingDecrypts(): { called: string[]; recording: KeyOperations } {
  const called: string[] = [];
  const recording = {
    ...keys,
    decrypt(key: string, ciphertext: Uint8Array, o: { context?: Record<string, string> }) {
      called.push(key);
      return keys.decrypt(key, ciphertext, o);
    },
  } as unknown as KeyOperations;
  return { called, recording };
}

describe('aws-kms EDKs match the ESDK KMS keyring', () => {
  for (const suite of [0x0478, 0x0578] as const) {
    it(`both directions, suite 0x0${suite.toString(16)}`, async () => {
      const pt = randomBytes(700);
      const context = { dept: 'finance' };
      const ours = await sealEnvelope(pt, { recipients: [URI], keys, suite, context, frameLength: 256 });
      const edk = parseHeader(ours, resolveLimits())?.encryptedDataKeys[0];
      expect(edk?.providerId).toBe('aws-kms');
      expect(Buffer.from(edk?.providerInfo ?? []).toString()).toBe(ARN);
      expect((await esdkDecrypt([{ type: 'kms', arn: ARN, secret }], ours)).plaintext.equals(pt)).toBe(true);

      const theirs = await esdkEncrypt([{ type: 'kms', arn: ARN, secret }], pt, { suiteId: suite, context });
      const out = await openEnvelope(theirs, { trust: [URI], keys, requiredContext: context });
      expect(Buffer.from(out.plaintext).equals(pt)).toBe(true);
    });
  }

  it('aws-kms recipients need a key ARN', async () => {
    await expect(
      sealEnvelope(randomBytes(1), { recipients: ['aws-kms://alias/app?region=us-east-1'], keys }),
    ).rejects.toMatchObject({
      code: 'InvalidArgument',
    });
  });

  it('discovery (anyKeyOf) takes a bare ARN only: a message cannot name the endpoint or region to call', async () => {
    const { called, recording } = recordingDecrypts();
    // A recipient that writes what a hostile sender would: the ARN with URI parameters after it.
    const naming = (info: string): Recipient => ({
      id: `hostile:${info}`,
      wrap: async (dataKey, context) => ({
        providerId: 'aws-kms',
        providerInfo: Buffer.from(info),
        ciphertext: fake.seal(ARN, dataKey, context),
      }),
      matches: () => false,
      unwrap: async () => {
        throw new Error('not used');
      },
    });
    const pt = randomBytes(100);
    for (const info of [
      `${ARN}?endpoint=http://127.0.0.1:9`,
      `${ARN}?region=eu-west-1`,
      `${ARN}?endpoint=https://169.254.169.254/&region=us-east-1`,
      `${ARN}/../x`,
      ` ${ARN}`,
    ]) {
      const msg = await sealEnvelope(pt, { recipients: [naming(info)] });
      await expect(
        openEnvelope(msg, { trust: [{ anyKeyOf: 'aws-kms' }], keys: recording }),
      ).rejects.toThrow();
    }
    expect(called).toEqual([]);
    // The bare ARN, as the ESDK writes it, is still discovered.
    const fine = await sealEnvelope(pt, { recipients: [naming(ARN)] });
    const out = await openEnvelope(fine, { trust: [{ anyKeyOf: 'aws-kms' }], keys: recording });
    expect(Buffer.from(out.plaintext).equals(pt)).toBe(true);
    expect(called).toEqual([URI]);
  });

  it('multi-Region keys: a trusted replica opens an EDK its sibling wrapped, and is the one called', async () => {
    const west = 'arn:aws:kms:us-west-2:111122223333:key/mrk-4321abcd12ab34cd56ef1234567890ab';
    const east = west.replace('us-west-2', 'us-east-1');
    // The stand-in KMS: a replica opens its siblings' blobs (they share key material).
    const family = (id: string) => id.replace(/:kms:[a-z0-9-]+:/, ':kms:*:');
    const called: string[] = [];
    const replicas = {
      ...keys,
      async decrypt(key: string, ciphertext: Uint8Array, o: { context?: Record<string, string> }) {
        called.push(key);
        const r = fake.open(ciphertext, o.context ?? {});
        if (family(r.keyId) !== family(keyIdOf(key)))
          throw new KeyportError('InvalidCiphertext', 'wrong key');
        return { plaintext: r.plaintext, keyVersion: undefined };
      },
    } as unknown as KeyOperations;
    const pt = randomBytes(300);
    const msg = await sealEnvelope(pt, { recipients: [`aws-kms://${west}`], keys: replicas });
    const out = await openEnvelope(msg, { trust: [`aws-kms://${east}`], keys: replicas });
    expect(Buffer.from(out.plaintext).equals(pt)).toBe(true);
    expect(called).toEqual([`aws-kms://${east}`]);
    // Not a match: another account, another key id, a single-Region key in another region.
    called.length = 0;
    const single = ARN.replace('us-east-1', 'us-west-2');
    const singleMsg = await sealEnvelope(pt, { recipients: [`aws-kms://${single}`], keys: replicas });
    for (const [message, trusted] of [
      [msg, east.replace('111122223333', '444455556666')],
      [msg, east.replace('mrk-4321', 'mrk-9999')],
      [singleMsg, ARN],
    ] as const) {
      await expect(
        openEnvelope(message, { trust: [`aws-kms://${trusted}`], keys: replicas }),
      ).rejects.toMatchObject({
        name: 'DataKeyUnavailableError',
      });
    }
    expect(called).toEqual([]);
  });

  it('rewrap of a signed message sealed to two replicas of a multi-Region key, both trusted, keeps both regions', async () => {
    const west = 'arn:aws:kms:us-west-2:111122223333:key/mrk-4321abcd12ab34cd56ef1234567890ab';
    const east = west.replace('us-west-2', 'us-east-1');
    const encrypted: string[] = [];
    const recordingEncrypts = {
      ...keys,
      encrypt(key: string, plaintext: Uint8Array, o: { context?: Record<string, string> }) {
        encrypted.push(key);
        return keys.encrypt(key, plaintext, o);
      },
    } as unknown as KeyOperations;
    const pt = randomBytes(300);
    const msg = await sealEnvelope(pt, {
      recipients: [`aws-kms://${east}`, `aws-kms://${west}`],
      suite: 0x0578,
      keys,
    });
    const out = await rewrapEnvelope(msg, {
      trust: [`aws-kms://${east}`, `aws-kms://${west}`],
      keys: recordingEncrypts,
    });
    // Before: the east replica also matches the west EDK, so both were wrapped under east.
    expect(encrypted.sort()).toEqual([`aws-kms://${east}`, `aws-kms://${west}`]);
    const infos = parseHeader(out, resolveLimits())?.encryptedDataKeys.map((e) =>
      Buffer.from(e.providerInfo).toString(),
    );
    expect(infos).toEqual([east, west]);
    const opened = await openEnvelope(out, { trust: [`aws-kms://${west}`], keys });
    expect(Buffer.from(opened.plaintext).equals(pt)).toBe(true);
  });

  it('discovery with a filter (accounts, partition) calls only keys of those accounts, as the ESDK filter does', async () => {
    const { called, recording } = recordingDecrypts();
    const pt = randomBytes(64);
    const other = ARN.replace('111122223333', '444455556666');
    const gov = ARN.replace('arn:aws:', 'arn:aws-us-gov:').replace('us-east-1', 'us-gov-west-1');
    const sealedFor = (arn: string) => sealEnvelope(pt, { recipients: [`aws-kms://${arn}`], keys });
    const filter = { anyKeyOf: 'aws-kms', accounts: ['111122223333'], partition: 'aws' };
    const ok = await openEnvelope(await sealedFor(ARN), { trust: [filter], keys: recording });
    expect(Buffer.from(ok.plaintext).equals(pt)).toBe(true);
    expect(called).toEqual([URI]);
    called.length = 0;
    for (const arn of [other, gov]) {
      await expect(
        openEnvelope(await sealedFor(arn), { trust: [filter], keys: recording }),
      ).rejects.toMatchObject({
        name: 'DataKeyUnavailableError',
      });
    }
    expect(called).toEqual([]);
    // The function form takes the same filter.
    const fn = await openEnvelope(await sealedFor(ARN), {
      trust: [anyKeyOf('aws-kms', { accounts: ['111122223333'], partition: 'aws' })],
      keys,
    });
    expect(Buffer.from(fn.plaintext).equals(pt)).toBe(true);
  });

  it('discovery through a named instance (aws-kms+dr) calls the ARN through that instance, filter and all', async () => {
    const { called, recording } = recordingDecrypts();
    const pt = randomBytes(32);
    const msg = await sealEnvelope(pt, { recipients: [`aws-kms+dr://${ARN}`], keys });
    // The EDK records the bare ARN, as the ESDK does: the instance is the reader's choice.
    expect(
      Buffer.from(parseHeader(msg, resolveLimits())?.encryptedDataKeys[0]?.providerInfo ?? []).toString(),
    ).toBe(ARN);
    const dr = { anyKeyOf: 'aws-kms+dr', accounts: ['111122223333'], partition: 'aws' };
    const out = await openEnvelope(msg, { trust: [dr], keys: recording });
    expect(Buffer.from(out.plaintext).equals(pt)).toBe(true);
    expect(called).toEqual([`aws-kms+dr://${ARN}`]);
    called.length = 0;
    const elsewhere = await sealEnvelope(pt, {
      recipients: [URI.replace('111122223333', '444455556666')],
      keys,
    });
    await expect(openEnvelope(elsewhere, { trust: [dr], keys: recording })).rejects.toMatchObject({
      name: 'DataKeyUnavailableError',
    });
    expect(called).toEqual([]);
  });

  it('a discovery filter that is misspelt, partial, malformed or not for aws-kms is InvalidArgument', async () => {
    const msg = await sealEnvelope(randomBytes(8), { recipients: [URI], keys });
    for (const entry of [
      { anyKeyOf: 'aws-kms', account: ['111122223333'], partition: 'aws' },
      { anyKeyOf: 'aws-kms', accounts: ['111122223333'] },
      { anyKeyOf: 'aws-kms', partition: 'aws' },
      { anyKeyOf: 'aws-kms', accounts: [], partition: 'aws' },
      { anyKeyOf: 'aws-kms', accounts: ['1111'], partition: 'aws' },
      { anyKeyOf: 'aws-kms', accounts: '111122223333', partition: 'aws' },
      { anyKeyOf: 'aws-kms', accounts: ['111122223333'], partition: 'gcp' },
      { anyKeyOf: 'gcp-kms', accounts: ['111122223333'], partition: 'aws' },
    ]) {
      await expect(
        openEnvelope(msg, { trust: [entry as never], keys }),
        JSON.stringify(entry),
      ).rejects.toMatchObject({
        code: 'InvalidArgument',
      });
    }
  });
});

describe('gcp-kms discovery with a projects filter', () => {
  const gcpKey = (project: string) =>
    `gcp-kms://projects/${project}/locations/global/keyRings/ring/cryptoKeys/key`;

  it('calls only keys of the listed projects (by id or number); any other project is never called', async () => {
    const { called, recording } = recordingDecrypts();
    const pt = randomBytes(48);
    const sealedFor = (project: string) => sealEnvelope(pt, { recipients: [gcpKey(project)], keys });
    const trust = [{ anyKeyOf: 'gcp-kms', projects: ['my-project', '123456789012'] }];
    for (const project of ['my-project', '123456789012']) {
      const out = await openEnvelope(await sealedFor(project), { trust, keys: recording });
      expect(Buffer.from(out.plaintext).equals(pt)).toBe(true);
    }
    expect(called).toEqual([gcpKey('my-project'), gcpKey('123456789012')]);
    called.length = 0;
    await expect(
      openEnvelope(await sealedFor('senders-project'), { trust, keys: recording }),
    ).rejects.toMatchObject({ name: 'DataKeyUnavailableError' });
    expect(called).toEqual([]);
    // Unfiltered discovery calls whatever project the message names.
    await openEnvelope(await sealedFor('senders-project'), {
      trust: [{ anyKeyOf: 'gcp-kms' }],
      keys: recording,
    });
    expect(called).toEqual([gcpKey('senders-project')]);
    // The function form takes the same filter.
    const fn = await openEnvelope(await sealedFor('my-project'), {
      trust: [anyKeyOf('gcp-kms', { projects: ['my-project'] })],
      keys,
    });
    expect(Buffer.from(fn.plaintext).equals(pt)).toBe(true);
  });

  it('a projects filter that is misspelt, empty, malformed, mixed with an AWS filter or not for gcp-kms is InvalidArgument', async () => {
    const msg = await sealEnvelope(randomBytes(8), { recipients: [gcpKey('my-project')], keys });
    for (const entry of [
      { anyKeyOf: 'gcp-kms', project: ['my-project'] },
      { anyKeyOf: 'gcp-kms', projects: [] },
      { anyKeyOf: 'gcp-kms', projects: 'my-project' },
      { anyKeyOf: 'gcp-kms', projects: ['My_Project'] },
      { anyKeyOf: 'gcp-kms', projects: ['my-project'], accounts: ['111122223333'], partition: 'aws' },
      { anyKeyOf: 'aws-kms', projects: ['my-project'] },
      { anyKeyOf: 'hcvault', projects: ['my-project'] },
    ]) {
      await expect(
        openEnvelope(msg, { trust: [entry as never], keys }),
        JSON.stringify(entry),
      ).rejects.toMatchObject({ code: 'InvalidArgument' });
    }
  });
});
