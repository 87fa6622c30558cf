/**
 * An encryption context given as a Map (core's API takes one) reaches AWS, never silently
 * dropped: the driver's crypto calls and the AWS-only helpers bind it or refuse it.
 */
import { createKeyport, type Keyport } from '@keyport/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AwsKmsProvider, generateDataKeyWithoutPlaintext, reEncrypt } from '../src/index.js';
import { DATA_KEY_32, keyMetadata, stubTransport } from './support/stub-transport.js';
import { call, providerFor, TEST_CREDENTIALS, target, uniqueName, utf8 } from './support/targets.js';

const KEY = 'aws-kms://arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const ARN = 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';

function stubbed() {
  const stub = stubTransport((op) => {
    if (op === 'DescribeKey') return { json: keyMetadata('SYMMETRIC_DEFAULT') };
    if (op === 'Decrypt') return { json: { Plaintext: 'AAEC', KeyId: ARN } };
    if (op === 'ReEncrypt') return { json: { CiphertextBlob: 'AAEC', KeyId: ARN, SourceKeyId: ARN } };
    return { json: { CiphertextBlob: 'AAEC', Plaintext: DATA_KEY_32, KeyId: ARN } };
  });
  const provider = new AwsKmsProvider({
    region: 'us-east-1',
    credentials: TEST_CREDENTIALS,
    clientConfig: stub.clientConfig,
  });
  return { provider, requests: stub.requests };
}

/** A context as a Map, typed as the record the driver's signature names (JS callers pass one). */
const asMap = (pairs: Record<string, string> | [string, string][]) =>
  new Map(Array.isArray(pairs) ? pairs : Object.entries(pairs)) as never;

describe('an encryption context given as a Map (stubbed transport: what AWS is sent)', () => {
  it('is sent as EncryptionContext by encrypt, decrypt, data keys and ReEncrypt, never dropped', async () => {
    const { provider, requests } = stubbed();
    const ctx = asMap([
      ['tenant', 'a'],
      ['__proto__', 'p'],
    ]);
    await provider.encrypt({ uri: KEY }, utf8('x'), { context: ctx }, call());
    await provider.decrypt({ uri: KEY }, utf8('x'), { context: ctx }, call());
    await provider.generateDataKey({ uri: KEY }, { context: ctx }, call());
    await provider.generateDataKeyWithoutPlaintext({ uri: KEY }, { context: ctx }, call());
    await provider.reEncrypt(
      { uri: KEY },
      utf8('x'),
      { sourceContext: ctx, destination: { uri: KEY }, destinationContext: asMap({ to: 'b' }) },
      call(),
    );
    const sent = requests.filter((r) => r.operation !== 'DescribeKey');
    expect(sent.map((r) => r.operation)).toEqual([
      'Encrypt',
      'Decrypt',
      'GenerateDataKey',
      'GenerateDataKeyWithoutPlaintext',
      'ReEncrypt',
    ]);
    // the signed body as AWS reads it (a parsed body would hide a key named __proto__)
    const contexts = sent.slice(0, 4).map((r) => JSON.parse(r.signed.body).EncryptionContext);
    for (const c of contexts)
      expect(Object.entries(c ?? {})).toEqual([
        ['tenant', 'a'],
        ['__proto__', 'p'],
      ]);
    expect(sent[4]?.body.SourceEncryptionContext).toMatchObject({ tenant: 'a' });
    expect(sent[4]?.body.DestinationEncryptionContext).toEqual({ to: 'b' });
  });

  it('refuses what is no context (a string, an array, a number value) with InvalidArgument before any request', async () => {
    const { provider, requests } = stubbed();
    for (const context of ['abc', ['x'], { n: 1 }] as never[]) {
      await expect(provider.encrypt({ uri: KEY }, utf8('x'), { context }, call())).rejects.toMatchObject({
        code: 'InvalidArgument',
        provider: 'aws-kms',
      });
      await expect(provider.generateDataKey({ uri: KEY }, { context }, call())).rejects.toMatchObject({
        code: 'InvalidArgument',
      });
    }
    expect(requests).toHaveLength(0);
  });
});

describe('an encryption context given as a Map through the AWS-only Keyport helpers (moto)', () => {
  let keys: Keyport;
  let key: string;

  beforeAll(async () => {
    keys = createKeyport({ providers: { aws: providerFor(target('moto')) } });
    key = (await keys.createKey('aws', { name: uniqueName('rv-map'), spec: 'AES_256' })).uri;
  });
  afterAll(() => keys.close());

  it('generateDataKeyWithoutPlaintext binds it: the wrap opens with that context only', async () => {
    const { wrapped } = await generateDataKeyWithoutPlaintext(keys, key, {
      context: asMap({ tenant: 'a' }),
    });
    await expect(keys.decrypt(key, wrapped)).rejects.toMatchObject({ code: 'InvalidCiphertext' });
    await expect(keys.decrypt(key, wrapped, { context: { tenant: 'a' } })).resolves.toBeDefined();
  });

  it('reEncrypt binds the destination context it is given', async () => {
    const sealed = await keys.encrypt(key, utf8('moving'), { context: { from: 'a' } });
    const moved = await reEncrypt(keys, key, sealed.ciphertext, {
      sourceContext: asMap({ from: 'a' }),
      destination: key,
      destinationContext: asMap({ to: 'b' }),
    });
    await expect(keys.decrypt(key, moved.ciphertext)).rejects.toMatchObject({ code: 'InvalidCiphertext' });
    const opened = await keys.decrypt(key, moved.ciphertext, { context: { to: 'b' } });
    expect(new TextDecoder().decode(opened.plaintext)).toBe('moving');
  });
});
