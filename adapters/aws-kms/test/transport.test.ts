/**
 * Request translation that neither emulator can show, checked with a stubbed transport (the SDK's
 * `requestHandler`): the SDK still serialises and parses, only the network is replaced.
 * - one attempt per call (core retries, the SDK must not multiply attempts)
 * - the AbortSignal reaches the transport
 * - grant tokens ride on every call that accepts them
 * - import expiry is whole seconds with an explicit expiration model
 * - an RSA_4096 wrapping key spec is passed through (local-kms offers only RSA_2048)
 */
import { inspect } from 'node:util';
import { createKeyport } from '@keyport/core';
import { describe, expect, it, vi } from 'vitest';
import { AwsKmsProvider } from '../src/index.js';
import { DATA_KEY_32, keyMetadata, stubTransport } from './support/stub-transport.js';
import { call, TEST_CREDENTIALS, utf8 } from './support/targets.js';

const KEY = 'aws-kms://arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const ARN = 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';

function stubbed(answer: Parameters<typeof stubTransport>[0], grantTokens?: string[]) {
  const stub = stubTransport(answer);
  const provider = new AwsKmsProvider({
    region: 'us-east-1',
    credentials: TEST_CREDENTIALS,
    clientConfig: stub.clientConfig,
    ...(grantTokens !== undefined ? { grantTokens } : {}),
  });
  return { provider, requests: stub.requests };
}

describe('stubbed transport: request translation', () => {
  it('makes exactly one attempt when AWS throttles (core owns retries)', async () => {
    const { provider, requests } = stubbed(() => ({
      status: 400,
      json: { __type: 'ThrottlingException', message: 'Rate exceeded' },
    }));
    const error = await provider.mac({ uri: KEY }, utf8('m'), call()).catch((e: unknown) => e);
    expect(requests.map((r) => r.operation)).toEqual(['GenerateMac']);
    const mapped = provider.mapError(error);
    expect(mapped?.code).toBe('Throttled');
    expect(mapped?.retryable).toBe(true);
    expect(mapped?.requestId).toBe('stub-1');
  });

  it('passes the AbortSignal to the transport', async () => {
    const { provider, requests } = stubbed(() => 'hang');
    const controller = new AbortController();
    const pending = provider.mac({ uri: KEY }, utf8('m'), { signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    const error = await pending.catch((e: unknown) => e);
    expect(requests).toHaveLength(1);
    expect(requests[0]?.aborted).toBe(true);
    expect(provider.mapError(error)?.code).toBe('Aborted');
  });

  it('sends grant tokens on data-plane calls, and withGrantTokens replaces them', async () => {
    const { provider, requests } = stubbed(
      (op) => {
        if (op === 'DescribeKey') return { json: keyMetadata('SYMMETRIC_DEFAULT') };
        if (op === 'Encrypt') return { json: { CiphertextBlob: 'AAEC', KeyId: ARN } };
        if (op === 'GenerateDataKey')
          return { json: { CiphertextBlob: 'AAEC', Plaintext: DATA_KEY_32, KeyId: ARN } };
        return { json: {} };
      },
      ['token-a'],
    );
    await provider.encrypt({ uri: KEY }, utf8('x'), {}, call());
    await provider.withGrantTokens(['token-b', 'token-c']).generateDataKey({ uri: KEY }, {}, call());
    expect(requests.map((r) => [r.operation, r.body.GrantTokens])).toEqual([
      ['DescribeKey', ['token-a']],
      ['Encrypt', ['token-a']],
      ['GenerateDataKey', ['token-b', 'token-c']],
    ]);
  });

  it('looks a key spec up once, then encrypts and decrypts with one call each', async () => {
    const { provider, requests } = stubbed((op) => {
      if (op === 'DescribeKey') return { json: keyMetadata('RSA_3072') };
      if (op === 'Encrypt') return { json: { CiphertextBlob: 'AAEC', KeyId: ARN } };
      return { json: { Plaintext: 'AAEC', KeyId: ARN } };
    });
    await provider.encrypt({ uri: KEY }, utf8('x'), {}, call());
    await provider.encrypt({ uri: KEY }, utf8('y'), {}, call());
    await provider.decrypt({ uri: KEY }, utf8('z'), {}, call());
    expect(requests.map((r) => r.operation)).toEqual(['DescribeKey', 'Encrypt', 'Encrypt', 'Decrypt']);
    expect(requests.slice(1).map((r) => r.body.EncryptionAlgorithm)).toEqual([
      'RSAES_OAEP_SHA_256',
      'RSAES_OAEP_SHA_256',
      'RSAES_OAEP_SHA_256',
    ]);
    expect(requests[3]?.body.KeyId).toBe(ARN);
  });

  it('imports with whole-second expiry and an explicit expiration model', async () => {
    const { provider, requests } = stubbed((op) =>
      op === 'DescribeKey' ? { json: keyMetadata('SYMMETRIC_DEFAULT') } : { json: {} },
    );
    const expiresAt = new Date(Date.now() + 3_600_500);
    await provider.importKeyMaterial(
      { uri: KEY },
      { wrappedMaterial: utf8('w'), algorithm: 'RSAES_OAEP_SHA_256', importToken: utf8('t'), expiresAt },
      call(),
    );
    await provider.importKeyMaterial(
      { uri: KEY },
      { wrappedMaterial: utf8('w'), algorithm: 'RSAES_OAEP_SHA_256', importToken: utf8('t') },
      call(),
    );
    const imports = requests.filter((r) => r.operation === 'ImportKeyMaterial').map((r) => r.body);
    expect(imports[0]?.ExpirationModel).toBe('KEY_MATERIAL_EXPIRES');
    expect(imports[0]?.ValidTo).toBe(Math.floor(expiresAt.getTime() / 1000));
    expect(imports[1]?.ExpirationModel).toBe('KEY_MATERIAL_DOES_NOT_EXPIRE');
    expect(imports[1]?.ValidTo).toBeUndefined();
  });

  it('passes the wrapping algorithm and an RSA_4096 wrapping key spec through', async () => {
    const { provider, requests } = stubbed(() => ({
      json: { KeyId: ARN, ImportToken: 'AAEC', PublicKey: 'AAEC', ParametersValidTo: 1_900_000_000 },
    }));
    const params = await provider.getImportParameters(
      { uri: KEY },
      { algorithm: 'RSAES_OAEP_SHA_1', wrappingKeySpec: 'RSA_4096' },
      call(),
    );
    expect(requests[0]?.body).toMatchObject({
      WrappingAlgorithm: 'RSAES_OAEP_SHA_1',
      WrappingKeySpec: 'RSA_4096',
    });
    expect(params.algorithm).toBe('RSAES_OAEP_SHA_1');
    expect(params.keyUri).toBe(KEY);
    expect(params.expiresAt?.getTime()).toBe(1_900_000_000_000);
  });

  it('resolves an alias to the key ARN for grant and import calls (AWS takes no alias there)', async () => {
    const { provider, requests } = stubbed((op) => {
      if (op === 'DescribeKey') return { json: keyMetadata('SYMMETRIC_DEFAULT') };
      if (op === 'CreateGrant') return { json: { GrantId: 'g-1', GrantToken: 't-1' } };
      if (op === 'GetParametersForImport')
        return {
          json: { KeyId: ARN, ImportToken: 'AAEC', PublicKey: 'AAEC', ParametersValidTo: 1_900_000_000 },
        };
      return { json: {} };
    });
    const alias = { uri: 'aws-kms://alias/shared' };
    await provider.createGrant(
      alias,
      { grantee: 'arn:aws:iam::111122223333:role/r', operations: ['decrypt'] },
      call(),
    );
    await provider.revokeGrant(alias, 'g-1', call());
    await provider.getImportParameters(alias, {}, call());
    expect(requests.map((r) => [r.operation, r.body.KeyId])).toEqual([
      ['DescribeKey', 'alias/shared'],
      ['CreateGrant', ARN],
      ['DescribeKey', 'alias/shared'],
      ['RevokeGrant', ARN],
      ['DescribeKey', 'alias/shared'],
      ['GetParametersForImport', ARN],
    ]);
  });

  it('enables rotation before naming the key: a failed EnableKeyRotation leaves no alias behind', async () => {
    const { provider, requests } = stubbed((op) => {
      if (op === 'CreateKey') return { json: keyMetadata('SYMMETRIC_DEFAULT') };
      if (op === 'EnableKeyRotation')
        return { status: 400, json: { __type: 'ThrottlingException', message: 'Rate exceeded' } };
      return { json: {} };
    });
    const error = await provider
      .createKey({ name: 'rotating', spec: 'AES_256', rotation: { periodDays: 90 } }, call())
      .catch((e: unknown) => e);
    expect(provider.mapError(error)?.code).toBe('Throttled');
    // a retry can create the key again: the name was never taken
    expect(requests.map((r) => r.operation)).toEqual([
      'CreateKey',
      'EnableKeyRotation',
      'ScheduleKeyDeletion',
    ]);
    expect(requests[2]?.body).toMatchObject({ KeyId: '1234abcd-12ab-34cd-56ef-1234567890ab' });
  });

  it('answers an aborted createKey at once, still scheduling the unnamed key away', async () => {
    const seen: string[] = [];
    const { provider } = stubbed((op) => {
      seen.push(op);
      // the endpoint stops answering after CreateKey: the alias and the clean-up both hang
      return op === 'CreateKey' ? { json: keyMetadata('SYMMETRIC_DEFAULT') } : 'hang';
    });
    const controller = new AbortController();
    const pending = provider.createKey({ name: 'hanging', spec: 'AES_256' }, { signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    const hung = new Promise((resolve) => setTimeout(() => resolve('still pending after 5 s'), 5_000));
    const outcome = await Promise.race([
      pending.then(
        () => 'resolved',
        (e: unknown) => e,
      ),
      hung,
    ]);
    expect(provider.mapError(outcome)?.code).toBe('Aborted');
    await vi.waitFor(() => expect(seen).toEqual(['CreateKey', 'CreateAlias', 'ScheduleKeyDeletion']), {
      timeout: 5_000,
    });
  });

  it('keeps a shared spec lookup going for the callers still waiting when the one that started it aborts', async () => {
    let release = (): void => undefined;
    const released = new Promise<void>((r) => {
      release = r;
    });
    const { provider, requests } = stubbed(async (op) => {
      if (op === 'DescribeKey') {
        await released;
        return { json: keyMetadata('SYMMETRIC_DEFAULT') };
      }
      return { json: { CiphertextBlob: 'AAEC', KeyId: ARN } };
    });
    const first = new AbortController();
    const aborted = provider.encrypt({ uri: KEY }, utf8('a'), {}, { signal: first.signal });
    const second = provider.encrypt({ uri: KEY }, utf8('b'), {}, call());
    first.abort();
    expect(provider.mapError(await aborted.catch((e: unknown) => e))?.code).toBe('Aborted');
    release();
    expect((await second).keyArn).toBe(ARN);
    // one DescribeKey, not cut off by the first caller's abort, then the second caller's Encrypt
    expect(requests.map((r) => [r.operation, r.aborted])).toEqual([
      ['DescribeKey', false],
      ['Encrypt', false],
    ]);
  });

  it('aborts a shared spec lookup once every caller waiting for it has aborted; the next caller looks again', async () => {
    let describes = 0;
    const { provider, requests } = stubbed((op) => {
      if (op === 'DescribeKey') return ++describes <= 1 ? 'hang' : { json: keyMetadata('SYMMETRIC_DEFAULT') };
      return { json: { CiphertextBlob: 'AAEC', KeyId: ARN } };
    });
    const a = new AbortController();
    const b = new AbortController();
    const calls = [a, b].map((c) => provider.encrypt({ uri: KEY }, utf8('x'), {}, { signal: c.signal }));
    await new Promise((r) => setTimeout(r, 20));
    expect(describes).toBe(1);
    a.abort();
    b.abort(new DOMException('late', 'TimeoutError'));
    const errors = await Promise.all(calls.map((c) => c.catch((e: unknown) => provider.mapError(e)?.code)));
    expect(errors).toEqual(['Aborted', 'Timeout']);
    await new Promise((r) => setTimeout(r, 10));
    expect(requests.map((r) => [r.operation, r.aborted])).toEqual([['DescribeKey', true]]);
    expect((await provider.encrypt({ uri: KEY }, utf8('c'), {}, call())).keyArn).toBe(ARN);
    expect(describes).toBe(2);
  });

  it('maps a non-KMS answer with another 5xx (a proxy or load balancer page) to Unavailable', async () => {
    for (const status of [500, 502, 503, 504]) {
      const { provider } = stubbed(() => ({ status, raw: '<html><body>Bad Gateway</body></html>' }));
      const error = await provider.mac({ uri: KEY }, utf8('m'), call()).catch((e: unknown) => e);
      expect(provider.mapError(error)).toMatchObject({ code: 'Unavailable', retryable: true });
    }
  });

  it('maps an HTML answer with HTTP 501 (an operation the endpoint lacks) to Unsupported', async () => {
    const { provider } = stubbed(() => ({ status: 501, raw: 'Passed X-Amz-Target is not implemented' }));
    const error = await provider.rotateKey({ uri: KEY }, call()).catch((e: unknown) => e);
    expect(provider.mapError(error)?.code).toBe('Unsupported');
  });

  it('reads a tag named __proto__ as a label, never as the prototype of the labels', async () => {
    const { provider } = stubbed((op) => {
      if (op === 'DescribeKey') return { json: keyMetadata('SYMMETRIC_DEFAULT') };
      if (op === 'ListResourceTags')
        return {
          json: {
            Tags: [
              { TagKey: '__proto__', TagValue: 'x' },
              { TagKey: 'team', TagValue: 'a' },
            ],
          },
        };
      return { json: { KeyRotationEnabled: false } };
    });
    const info = await provider.describeKey({ uri: KEY }, call());
    expect(Object.getPrototypeOf(info.labels)).toBe(Object.prototype);
    expect(Object.keys(info.labels).sort()).toEqual(['__proto__', 'team']);
    expect(info.labels.team).toBe('a');
  });

  it('maps an exception named __proto__ or constructor as an unknown answer, not a table row', async () => {
    for (const name of ['__proto__', 'constructor', 'toString']) {
      const { provider } = stubbed(() => ({ status: 400, json: { __type: name } }));
      const error = await provider.mac({ uri: KEY }, utf8('m'), call()).catch((e: unknown) => e);
      expect(provider.mapError(error)).toMatchObject({ code: 'Internal', requestId: 'stub-1' });
    }
    const { provider } = stubbed(() => ({
      status: 400,
      json: { __type: `Evil\u001b[31m${'x'.repeat(500)}` },
    }));
    const error = await provider.mac({ uri: KEY }, utf8('m'), call()).catch((e: unknown) => e);
    const message = provider.mapError(error)?.message ?? '';
    expect(message).not.toContain('\u001b');
    expect(message.length).toBeLessThan(400);
  });

  it('never shows an exception name that echoes a request header (session token, access key, signature)', async () => {
    const credentials = {
      accessKeyId: 'AKIAKEYPORTTESTKEY01',
      secretAccessKey: 'keyport/test/secret/access/key/0123456789',
      sessionToken: 'IQoJb3JpZ2luX2VjEKeyportSessionToken/+0123456789abcdefghijklmnopqrstuvwxyz==',
    };
    const echoes: ((headers: Record<string, string>) => string)[] = [
      (h) => h['x-amz-security-token'] ?? '',
      (h) => h.authorization ?? '',
      (h) => /Credential=([A-Z0-9]+)/.exec(h.authorization ?? '')?.[1] ?? '',
      (h) => /Signature=([0-9a-f]+)/.exec(h.authorization ?? '')?.[1] ?? '',
    ];
    for (const [i, echo] of echoes.entries()) {
      let signature = '';
      const stub = stubTransport((_op, _body, signed) => {
        signature = /Signature=([0-9a-f]+)/.exec(signed.headers.authorization ?? '')?.[1] ?? '';
        return { status: 400, json: { __type: echo(signed.headers), message: 'refused' } };
      });
      const provider = new AwsKmsProvider({
        region: 'us-east-1',
        credentials,
        clientConfig: stub.clientConfig,
      });
      const keys = createKeyport({ providers: [provider], retry: { maxAttempts: 1 } });
      const error = await keys.mac(KEY, utf8('m')).catch((e: unknown) => e);
      expect(error, `echo ${i}`).toMatchObject({ code: 'Internal', requestId: 'stub-1' });
      const shown = `${String(error)} ${inspect(error, { depth: 10 })} ${JSON.stringify(error)}`;
      expect(signature).not.toBe('');
      for (const secret of ['KeyportSessionToken', 'AKIAKEYPORTTESTKEY01', signature])
        expect(shown, `echo ${i}`).not.toContain(secret);
    }
    // a name that reads as an exception's is still named
    const stub = stubTransport(() => ({ status: 400, json: { __type: 'BrandNewException' } }));
    const provider = new AwsKmsProvider({
      region: 'us-east-1',
      credentials,
      clientConfig: stub.clientConfig,
    });
    const error = await provider.mac({ uri: KEY }, utf8('m'), call()).catch((e: unknown) => e);
    expect(provider.mapError(error)?.message).toBe('unexpected AWS KMS answer "BrandNewException"');
  });
});

describe('options', () => {
  it('keeps one attempt per call even when clientConfig asks the SDK to retry (it cannot: it is refused)', async () => {
    const stub = stubTransport(() => ({ status: 400, json: { __type: 'ThrottlingException' } }));
    // an SDK retry strategy allowing 3 attempts without delay
    const token = (count: number) => ({ getRetryCount: () => count, getRetryDelay: () => 0 });
    const retryStrategy = {
      mode: 'standard',
      acquireInitialRetryToken: async () => token(0),
      refreshRetryTokenForRetry: async (t: ReturnType<typeof token>) => {
        if (t.getRetryCount() >= 2) throw new Error('no more attempts');
        return token(t.getRetryCount() + 1);
      },
      recordSuccess: () => undefined,
    };
    const make = () =>
      new AwsKmsProvider({
        region: 'us-east-1',
        credentials: TEST_CREDENTIALS,
        clientConfig: { ...stub.clientConfig, retryStrategy } as never,
      });
    let provider: AwsKmsProvider | undefined;
    try {
      provider = make();
    } catch (e) {
      expect(e).toMatchObject({ code: 'InvalidArgument', message: expect.stringContaining('retryStrategy') });
    }
    // had it been accepted, the SDK would multiply core's attempts
    await provider?.mac({ uri: KEY }, utf8('m'), call()).catch(() => undefined);
    expect(stub.requests.length).toBeLessThanOrEqual(1);
    expect(provider).toBeUndefined();
  });

  it('refuses unknown or mistyped options and grant tokens with InvalidArgument', () => {
    const bad: unknown[] = [
      { regoin: 'us-east-1' },
      { region: 42 },
      { region: '' },
      // not a region the SDK can use: every call would fail Internal (a plain SDK Error)
      { region: 'us-east-1 ' },
      { region: 'eu-west-1\n' },
      { region: 'us east 1' },
      { region: 'kms.evil.example' },
      { region: 'eu-west-1/' },
      { region: '-eu-west-1' },
      { endpoint: ['http://x'] },
      { grantTokens: 'token' },
      { grantTokens: Array.from({ length: 11 }, () => 't') },
      { grantTokens: [''] },
      { grantTokens: [7] },
      { endpoint: '' },
      JSON.parse('{"__proto__": {"region": "us-east-1"}}'),
      { clientConfig: { retryStrategy: { acquireInitialRetryToken() {} } } },
      { clientConfig: 'maxAttempts=3' },
      'us-east-1',
      null,
    ];
    for (const options of bad) {
      expect(() => new AwsKmsProvider(options as never)).toThrow(
        expect.objectContaining({ code: 'InvalidArgument' }),
      );
    }
    for (const region of ['us-gov-west-1', 'eu-central-2', 'local']) {
      expect(() => new AwsKmsProvider({ region, credentials: TEST_CREDENTIALS }), region).not.toThrow();
    }
    const ok = new AwsKmsProvider({ region: 'us-east-1', credentials: TEST_CREDENTIALS });
    expect(() => ok.withGrantTokens(['a', 7] as never)).toThrow(
      expect.objectContaining({ code: 'InvalidArgument' }),
    );
  });
});
