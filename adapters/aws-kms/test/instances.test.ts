/**
 * Two AWS accounts in one client: moto (account 123456789012) as instance `prod` and local-kms
 * (account 111122223333) as instance `dr`, both `aws-kms` drivers in one Keyport. Keys are
 * addressed as `aws-kms+<instance>://<arn>`; plain URIs go to the configured default.
 */
import { createKeyport, type Keyport } from '@keyport/core';
import { openEnvelope, rewrapEnvelope, sealEnvelope } from '@keyport/envelope';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { providerFor, target, uniqueName } from './support/targets.js';

const spec = { spec: 'AES_256', usage: 'encrypt_decrypt' } as const;
const plaintext = new TextEncoder().encode('moved between accounts, never decrypted on the way');

describe('aws-kms: two accounts (moto and local-kms) as named instances of one client', () => {
  let keys: Keyport;
  let prodKey: string;
  let drKey: string;

  beforeAll(async () => {
    keys = createKeyport({
      providers: { prod: providerFor(target('moto')), dr: providerFor(target('local-kms')) },
    });
    prodKey = (await keys.createKey('prod', { ...spec, name: uniqueName('prod') })).uri;
    drKey = (await keys.createKey('dr', { ...spec, name: uniqueName('dr') })).uri;
  });
  afterAll(() => keys.close());

  it('answers with URIs that name the instance and the account', () => {
    expect(prodKey).toMatch(/^aws-kms\+prod:\/\/arn:aws:kms:us-east-1:123456789012:key\//);
    expect(drKey).toMatch(/^aws-kms\+dr:\/\/arn:aws:kms:us-east-1:111122223333:key\//);
  });

  it('routes each call to the account its URI names', async () => {
    const a = await keys.encrypt(prodKey, plaintext, { context: { tenant: 'a' } });
    const b = await keys.encrypt(drKey, plaintext, { context: { tenant: 'a' } });
    expect((await keys.decrypt(prodKey, a.ciphertext, { context: { tenant: 'a' } })).plaintext).toEqual(
      plaintext,
    );
    expect((await keys.decrypt(drKey, b.ciphertext, { context: { tenant: 'a' } })).plaintext).toEqual(
      plaintext,
    );
    // The same key ARN asked of the other account's instance does not exist there.
    const prodArn = prodKey.slice('aws-kms+prod://'.length);
    await expect(keys.describeKey(`aws-kms+dr://${prodArn}`)).rejects.toMatchObject({ code: 'NotFound' });
    expect((await keys.describeKey(prodKey)).uri).toBe(prodKey);
  });

  it('a plain aws-kms:// URI is refused as ambiguous, and resolves once a default is set', async () => {
    const plain = prodKey.replace('aws-kms+prod://', 'aws-kms://');
    await expect(keys.describeKey(plain)).rejects.toMatchObject({
      code: 'InvalidArgument',
      message: expect.stringMatching(/several instances \(prod, dr\)/),
    });
    const withDefault = createKeyport({
      providers: { prod: providerFor(target('moto')), dr: providerFor(target('local-kms')) },
      defaults: { 'aws-kms': 'prod' },
    });
    try {
      // A URI written before instances existed (e.g. in an old envelope or journal) still opens.
      expect((await withDefault.describeKey(plain)).uri).toBe(prodKey);
    } finally {
      await withDefault.close();
    }
  });

  it('moves an envelope from one account to the other without touching the body', async () => {
    const sealed = await sealEnvelope(plaintext, { recipients: [prodKey], keys, context: { app: 'x' } });
    const moved = await rewrapEnvelope(sealed, {
      trust: [prodKey],
      keys,
      add: [drKey],
      remove: [prodKey],
    });
    const opened = await openEnvelope(moved, { trust: [drKey], keys });
    expect(Buffer.from(opened.plaintext)).toEqual(Buffer.from(plaintext));
    await expect(openEnvelope(moved, { trust: [prodKey], keys })).rejects.toMatchObject({
      code: expect.any(String),
    });
  });
});
