/** Keys against both emulators: specs and usages, aliases, labels as tags, describe, list. */
import {
  CreateKeyCommand,
  DescribeKeyCommand,
  KMSClient,
  ScheduleKeyDeletionCommand,
} from '@aws-sdk/client-kms';
import { createKeyport, type KeySpec } from '@keyport/core';
import { afterAll, describe, expect, it } from 'vitest';
import { AwsKmsProvider } from '../src/index.js';
import {
  call,
  providerFor,
  sdkClientFor,
  TARGET_NAMES,
  TEST_CREDENTIALS,
  target,
  uniqueName,
} from './support/targets.js';

const SPECS: ReadonlyArray<[KeySpec, string, string]> = [
  ['AES_256', 'SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT'],
  ['RSA_2048', 'RSA_2048', 'ENCRYPT_DECRYPT'],
  ['RSA_3072', 'RSA_3072', 'SIGN_VERIFY'],
  ['RSA_4096', 'RSA_4096', 'ENCRYPT_DECRYPT'],
  ['EC_P256', 'ECC_NIST_P256', 'SIGN_VERIFY'],
  ['EC_P384', 'ECC_NIST_P384', 'SIGN_VERIFY'],
  ['HMAC_256', 'HMAC_256', 'GENERATE_VERIFY_MAC'],
];

describe.each(TARGET_NAMES)('keys on %s', (name) => {
  let provider: AwsKmsProvider | undefined;
  const p = (): AwsKmsProvider => {
    provider ??= providerFor(target(name));
    return provider;
  };
  afterAll(async () => provider?.close());

  it.each(SPECS)('creates %s keys with the matching AWS spec and usage', async (spec, awsSpec, awsUsage) => {
    const usage =
      awsUsage === 'SIGN_VERIFY' ? 'sign_verify' : awsUsage === 'ENCRYPT_DECRYPT' ? 'encrypt_decrypt' : 'mac';
    const info = await p().createKey({ name: uniqueName(spec.toLowerCase()), spec, usage }, call());
    expect(info).toMatchObject({ spec, usage, state: 'enabled', origin: 'provider' });
    expect(info.uri).toMatch(
      new RegExp(`^aws-kms://arn:aws:kms:us-east-1:${target(name).account}:key/[0-9a-f-]{36}$`),
    );
    const sdk = sdkClientFor(target(name));
    const meta = (await sdk.send(new DescribeKeyCommand({ KeyId: info.uri.slice('aws-kms://'.length) })))
      .KeyMetadata;
    expect([meta?.KeySpec, meta?.KeyUsage]).toEqual([awsSpec, awsUsage]);
  });

  it('names a key by an alias that resolves to it, and labels it with tags', async () => {
    const alias = uniqueName('alias');
    const created = await p().createKey(
      { name: alias, spec: 'AES_256', labels: { team: 'payments', tier: '1' }, description: 'for tests' },
      call(),
    );
    const viaAlias = await p().describeKey({ uri: `aws-kms://alias/${alias}` }, call());
    expect(viaAlias.uri).toBe(created.uri);
    expect(viaAlias.labels).toEqual({ team: 'payments', tier: '1' });
    expect(viaAlias.description).toBe('for tests');
    // the alias exists in KMS itself, pointing at the new key
    const behind = await sdkClientFor(target(name)).send(new DescribeKeyCommand({ KeyId: `alias/${alias}` }));
    expect(`aws-kms://${behind.KeyMetadata?.Arn}`).toBe(created.uri);
  });

  it('accepts an aws-kms://alias/<name> URI as the new key name', async () => {
    const alias = uniqueName('uri-name');
    const created = await p().createKey(
      { name: `aws-kms://alias/${alias}?region=us-east-1`, spec: 'AES_256' },
      call(),
    );
    expect((await p().describeKey({ uri: `aws-kms://alias/${alias}?region=us-east-1` }, call())).uri).toBe(
      created.uri,
    );
  });

  it('refuses a second key under an existing alias with AlreadyExists, scheduling the unnamed key away', async () => {
    const alias = uniqueName('dup');
    await p().createKey({ name: alias, spec: 'AES_256' }, call());
    const client = sdkClientFor(target(name));
    const made: string[] = [];
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const out = await next(args);
        const id = (out.output as { KeyMetadata?: { KeyId?: string } }).KeyMetadata?.KeyId;
        if (context.commandName === 'CreateKeyCommand' && id !== undefined) made.push(id);
        return out;
      },
      { step: 'initialize' },
    );
    const given = new AwsKmsProvider({ client });
    const error = await given.createKey({ name: alias, spec: 'AES_256' }, call()).catch((e: unknown) => e);
    expect(given.mapError(error)?.code).toBe('AlreadyExists');
    // the key made before the alias failed is scheduled for deletion (7 days), not left behind
    expect(made).toHaveLength(1);
    const orphan = await client.send(new DescribeKeyCommand({ KeyId: made[0] }));
    expect(orphan.KeyMetadata?.KeyState).toBe('PendingDeletion');
    await given.close();
    client.destroy();
  });

  it('refuses impossible usages (core, before the driver) and bad names (the driver) before calling AWS', async () => {
    const keyport = createKeyport({ providers: [p()] });
    await expect(
      keyport.createKey('aws-kms', { name: uniqueName('bad'), spec: 'EC_P256', usage: 'encrypt_decrypt' }),
    ).rejects.toMatchObject({ code: 'InvalidArgument' });
    await expect(p().createKey({ name: 'bad name!', spec: 'AES_256' }, call())).rejects.toMatchObject({
      code: 'InvalidArgument',
    });
  });

  it('refuses an alias/aws/ name (reserved for AWS managed keys) before creating any key', async () => {
    // AWS refuses the alias only after CreateKey made the key (local-kms: NotAuthorizedException,
    // the key then scheduled away); moto even makes the alias
    const sdk = sdkClientFor(target(name));
    for (const given of [`aws/${uniqueName('managed')}`, `aws-kms://alias/aws/${uniqueName('managed')}`]) {
      const error = await p()
        .createKey({ name: given, spec: 'AES_256' }, call())
        .catch((e: unknown) => e);
      expect(p().mapError(error), given).toMatchObject({ code: 'InvalidArgument' });
      expect((error as Error).message).toContain('alias/aws/');
      const alias = `alias/${given.replace(/^aws-kms:\/\/alias\//, '')}`;
      const found = await sdk.send(new DescribeKeyCommand({ KeyId: alias })).catch((e: unknown) => e);
      expect((found as { name?: string }).name, alias).toBe('NotFoundException');
    }
  });

  it('refuses rotation for keys AWS cannot rotate before creating anything, so the name stays free', async () => {
    // asymmetric, HMAC and imported keys: AWS (and local-kms) answer UnsupportedOperationException
    for (const req of [
      { spec: 'RSA_2048', usage: 'sign_verify' },
      { spec: 'HMAC_256' },
      { spec: 'AES_256', external: true },
    ] as const) {
      const alias = uniqueName('no-rotation');
      await expect(
        p().createKey({ name: alias, ...req, rotation: { periodDays: 90 } }, call()),
      ).rejects.toMatchObject({ code: 'InvalidArgument', message: expect.stringMatching(/rotates only/) });
      // nothing was made: the same name is free for the key without rotation
      expect((await p().createKey({ name: alias, ...req }, call())).spec).toBe(req.spec);
    }
  });

  it('creates a key with a rotation period (AES_256) and a label named __proto__', async () => {
    const alias = uniqueName('rot-proto');
    const labels = JSON.parse('{"__proto__": "p", "team": "t"}') as Record<string, string>;
    const info = await p().createKey(
      { name: alias, spec: 'AES_256', labels, rotation: { periodDays: 90 } },
      call(),
    );
    expect(Object.keys(info.labels).sort()).toEqual(['__proto__', 'team']);
    const described = await p().describeKey({ uri: `aws-kms://alias/${alias}` }, call());
    expect(Object.getPrototypeOf(described.labels)).toBe(Object.prototype);
    expect(Object.entries(described.labels).sort()).toEqual([
      ['__proto__', 'p'],
      ['team', 't'],
    ]);
    expect(described.rotation?.periodDays).toBeGreaterThan(0);
  });

  it('lists keys page by page as an async iterable, described', async () => {
    const a = await p().createKey(
      { name: uniqueName('list-a'), spec: 'AES_256', labels: { l: 'a' } },
      call(),
    );
    const b = await p().createKey({ name: uniqueName('list-b'), spec: 'HMAC_256' }, call());
    const seen = new Map<string, { spec: string; labels: Record<string, string> }>();
    for await (const info of p().listKeys({ ...call(), pageSize: 2 })) seen.set(info.uri, info as never);
    expect(seen.get(a.uri)).toMatchObject({ spec: 'AES_256', labels: { l: 'a' } });
    expect(seen.get(b.uri)).toMatchObject({ spec: 'HMAC_256' });
    expect(seen.size).toBeGreaterThan(2);
  });

  it('lists a key keyport has no spec for as unmodeled, never leaves it out', async () => {
    const made = await sdkClientFor(target(name)).send(
      new CreateKeyCommand({ KeySpec: 'ECC_NIST_P521', KeyUsage: 'SIGN_VERIFY' }),
    );
    const uri = `aws-kms://${made.KeyMetadata?.Arn}`;
    const listed = [];
    for await (const entry of p().listKeys(call())) if (entry.uri === uri) listed.push(entry);
    expect(listed).toEqual([
      { uri, unmodeled: expect.stringMatching(/no key spec for AWS key spec ECC_NIST_P521/) },
    ]);
    // Through Keyport: not a key of the listing, but heard of.
    const heard: string[] = [];
    const keyport = createKeyport({ providers: [p()] });
    for await (const info of keyport.listKeys('aws-kms', { onUnmodeledKey: (k) => heard.push(k.uri) }))
      expect(info.uri).not.toBe(uri);
    expect(heard).toContain(uri);
  });

  it('a key these credentials may not read is listed as unmodeled; the listing of the others goes on', async () => {
    // Neither emulator enforces key policies: a middleware answers DescribeKey of one key with
    // AWS's AccessDeniedException, as a key whose policy refuses these credentials is answered.
    const sdk = sdkClientFor(target(name));
    const denied = (await sdk.send(new CreateKeyCommand({ KeyUsage: 'ENCRYPT_DECRYPT' }))).KeyMetadata;
    const readable = (await sdk.send(new CreateKeyCommand({ KeyUsage: 'ENCRYPT_DECRYPT' }))).KeyMetadata;
    const client = new KMSClient({
      region: 'us-east-1',
      endpoint: target(name).endpoint,
      credentials: TEST_CREDENTIALS,
      maxAttempts: 1,
    });
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { KeyId?: string };
        if (
          context.commandName === 'DescribeKeyCommand' &&
          (input.KeyId === denied?.Arn || input.KeyId === denied?.KeyId)
        ) {
          throw Object.assign(new Error('User is not authorized to perform: kms:DescribeKey'), {
            name: 'AccessDeniedException',
            $fault: 'client',
            $metadata: { httpStatusCode: 400, requestId: 'test' },
          });
        }
        return next(args);
      },
      { step: 'initialize', name: 'denyOneKey' },
    );
    const limited = new AwsKmsProvider({ client });
    try {
      const seen = new Map<string, unknown>();
      for await (const entry of limited.listKeys(call())) seen.set(entry.uri, entry);
      expect(seen.get(`aws-kms://${denied?.Arn}`)).toEqual({
        uri: `aws-kms://${denied?.Arn}`,
        unmodeled: expect.stringMatching(/may not read this key \(AccessDenied/),
      });
      expect(seen.get(`aws-kms://${readable?.Arn}`)).toMatchObject({ spec: 'AES_256' });
    } finally {
      await limited.close();
      client.destroy();
      await sdk.send(new ScheduleKeyDeletionCommand({ KeyId: denied?.KeyId, PendingWindowInDays: 7 }));
      await sdk.send(new ScheduleKeyDeletionCommand({ KeyId: readable?.KeyId, PendingWindowInDays: 7 }));
    }
  });

  it('answers NotFound for keys and aliases that do not exist', async () => {
    for (const uri of [
      'aws-kms://alias/kp-nope-nope',
      'aws-kms://arn:aws:kms:us-east-1:111122223333:key/00000000-0000-0000-0000-000000000000',
    ]) {
      const error = await p()
        .describeKey({ uri }, call())
        .catch((e: unknown) => e);
      expect(p().mapError(error)?.code).toBe('NotFound');
    }
  });
});
