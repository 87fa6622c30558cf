/**
 * README promises that no other test held the code to. On the emulators where they can show it
 * (the clean-up's deletion window, the client bound); with the stubbed transport for what they
 * cannot (AWS's exception for an invalid signature, which both emulators answer with a false
 * flag instead; the requests sent; the SDK's hash).
 */
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { DescribeKeyCommand } from '@aws-sdk/client-kms';
import { describe, expect, it, vi } from 'vitest';
import { AwsKmsProvider } from '../src/index.js';
import { KeyObjectSha256 } from '../src/sha256.js';
import { keyMetadata, type StubAnswer, stubTransport } from './support/stub-transport.js';
import {
  call,
  providerFor,
  sdkClientFor,
  TARGET_NAMES,
  TEST_CREDENTIALS,
  target,
  uniqueName,
  utf8,
} from './support/targets.js';

const ID = '1234abcd-12ab-34cd-56ef-1234567890ab';
const ARN = `arn:aws:kms:us-east-1:111122223333:key/${ID}`;
const KEY = `aws-kms://${ARN}`;

function stubbed(answer: Parameters<typeof stubTransport>[0], extra: Record<string, unknown> = {}) {
  const stub = stubTransport(answer);
  const provider = new AwsKmsProvider({
    region: 'us-east-1',
    credentials: TEST_CREDENTIALS,
    clientConfig: stub.clientConfig,
    ...extra,
  });
  return { provider, requests: stub.requests };
}

const exception = (name: string): StubAnswer => ({ status: 400, json: { __type: name, message: 'm' } });

describe('README promises (stubbed transport)', () => {
  it('verify and verifyMac answer false for KMSInvalidSignatureException / KMSInvalidMacException; other exceptions still fail', async () => {
    let answer: StubAnswer = exception('KMSInvalidSignatureException');
    const { provider } = stubbed(() => answer);
    const alg = { algorithm: 'ECDSA_SHA_256' } as const;
    expect(await provider.verify({ uri: KEY }, utf8('m'), utf8('sig'), alg, call())).toBe(false);
    answer = exception('KMSInvalidMacException');
    expect(await provider.verifyMac({ uri: KEY }, utf8('m'), utf8('tag'), call())).toBe(false);
    // Only its own exception is an answer of "invalid": another is the error it is.
    answer = exception('NotFoundException');
    const missing = await provider.verify({ uri: KEY }, utf8('m'), utf8('sig'), alg, call()).catch((e) => e);
    expect(provider.mapError(missing)?.code).toBe('NotFound');
    answer = exception('KMSInvalidSignatureException');
    const crossed = await provider.verifyMac({ uri: KEY }, utf8('m'), utf8('t'), call()).catch((e) => e);
    expect(provider.mapError(crossed)?.code).toBe('Integrity');
  });

  it('sign sends kms:DescribeKey only when no algorithm is given', async () => {
    const { provider, requests } = stubbed((op) =>
      op === 'DescribeKey'
        ? { json: keyMetadata('ECC_NIST_P256', 'SIGN_VERIFY') }
        : { json: { KeyId: ARN, Signature: 'AAEC', SigningAlgorithm: 'ECDSA_SHA_256' } },
    );
    const given = await provider.sign({ uri: KEY }, utf8('m'), { algorithm: 'ECDSA_SHA_256' }, call());
    expect(given.algorithm).toBe('ECDSA_SHA_256');
    expect(requests.map((r) => r.operation)).toEqual(['Sign']);
    const chosen = await provider.sign({ uri: KEY }, utf8('m'), {}, call());
    expect(chosen.algorithm).toBe('ECDSA_SHA_256');
    expect(requests.map((r) => r.operation)).toEqual(['Sign', 'DescribeKey', 'Sign']);
  });

  it('grant tokens ride on every call that accepts them', async () => {
    const answers: Record<string, Record<string, unknown>> = {
      DescribeKey: keyMetadata('SYMMETRIC_DEFAULT'),
      Decrypt: { KeyId: ARN, Plaintext: 'AAEC' },
      GenerateDataKeyWithoutPlaintext: { KeyId: ARN, CiphertextBlob: 'AAEC' },
      ReEncrypt: { KeyId: ARN, SourceKeyId: ARN, CiphertextBlob: 'AAEC' },
      Sign: { KeyId: ARN, Signature: 'AAEC', SigningAlgorithm: 'ECDSA_SHA_256' },
      Verify: { KeyId: ARN, SignatureValid: true },
      GenerateMac: { KeyId: ARN, Mac: 'AAEC' },
      VerifyMac: { KeyId: ARN, MacValid: true },
      GetPublicKey: { KeyId: ARN, PublicKey: 'AAEC' },
      CreateGrant: { GrantId: 'g-1', GrantToken: 'new-grant-token' },
      ListResourceTags: { Tags: [] },
      GetKeyRotationStatus: { KeyRotationEnabled: false },
      ListKeyRotations: { Rotations: [] },
    };
    const { provider, requests } = stubbed((op) => ({ json: answers[op] ?? {} }), {
      grantTokens: ['token-a'],
    });
    const ref = { uri: KEY };
    await provider.describeKey(ref, call());
    await provider.decrypt(ref, utf8('ct'), {}, call());
    await provider.generateDataKeyWithoutPlaintext(ref, { bytes: 32 }, call());
    await provider.reEncrypt(ref, utf8('ct'), { destination: ref }, call());
    await provider.sign(ref, utf8('m'), { algorithm: 'ECDSA_SHA_256' }, call());
    await provider.verify(ref, utf8('m'), utf8('s'), { algorithm: 'ECDSA_SHA_256' }, call());
    await provider.mac(ref, utf8('m'), call());
    await provider.verifyMac(ref, utf8('m'), utf8('t'), call());
    await provider.getPublicKey(ref, call());
    await provider.createGrant(
      ref,
      { grantee: 'arn:aws:iam::111122223333:role/app', operations: ['encrypt'] },
      call(),
    );
    // AWS's operations with a GrantTokens parameter, as its API reference lists them
    const accepting = [
      'DescribeKey',
      'Decrypt',
      'GenerateDataKeyWithoutPlaintext',
      'ReEncrypt',
      'Sign',
      'Verify',
      'GenerateMac',
      'VerifyMac',
      'GetPublicKey',
      'CreateGrant',
    ];
    const seen = requests.filter((r) => accepting.includes(r.operation));
    expect(new Set(seen.map((r) => r.operation))).toEqual(new Set(accepting));
    for (const r of seen) expect(r.body.GrantTokens, r.operation).toEqual(['token-a']);
  });

  it('a sha256 in clientConfig wins over the one the provider gives its clients', async () => {
    // The provider gives its clients its own hash on Node 24 and 25; the caller's choice comes first.
    let made = 0;
    class Counted extends KeyObjectSha256 {
      constructor(secret?: ConstructorParameters<typeof KeyObjectSha256>[0]) {
        super(secret);
        made++;
      }
    }
    const stub = stubTransport(() => ({ json: { KeyId: ARN, Mac: 'AAEC' } }));
    const own = new AwsKmsProvider({
      region: 'us-east-1',
      credentials: TEST_CREDENTIALS,
      clientConfig: { ...stub.clientConfig, sha256: Counted },
    });
    await own.mac({ uri: KEY }, utf8('m'), call());
    expect(stub.requests).toHaveLength(1);
    expect(made).toBeGreaterThan(0); // SigV4 hashed and keyed with the caller's sha256
  });
});

describe.each(TARGET_NAMES)('createKey clean-up on %s', (name) => {
  it('schedules the unnamed key for deletion in 7 days, the shortest AWS allows', async () => {
    const alias = uniqueName('cleanup-window');
    const provider = providerFor(target(name));
    const client = sdkClientFor(target(name));
    try {
      await provider.createKey({ name: alias, spec: 'AES_256' }, call());
      const error = await provider.createKey({ name: alias, spec: 'AES_256' }, call()).catch((e) => e);
      expect(provider.mapError(error)?.code).toBe('AlreadyExists');
      const made = /AWS had created key ([0-9a-f-]{36})/.exec((error as Error).message)?.[1];
      expect(made, (error as Error).message).toBeDefined();
      const orphan = (await client.send(new DescribeKeyCommand({ KeyId: made }))).KeyMetadata;
      expect(orphan?.KeyState).toBe('PendingDeletion');
      const days = ((orphan?.DeletionDate?.getTime() ?? 0) - Date.now()) / 86_400_000;
      expect(days).toBeGreaterThan(6.9);
      expect(days).toBeLessThanOrEqual(7.01);
    } finally {
      await provider.close();
      client.destroy();
    }
  });
});

/** A TCP pass-through to local-kms recording the connections clients open to it. */
async function passThrough(): Promise<{ endpoint: string; sockets: Socket[]; server: Server }> {
  const upstream = new URL(target('local-kms').endpoint);
  const sockets: Socket[] = [];
  const server = createServer((client) => {
    sockets.push(client);
    const up = tcpConnect(Number(upstream.port), upstream.hostname);
    client.pipe(up);
    up.pipe(client);
    client.on('error', () => undefined);
    up.on('error', () => client.destroy());
    client.on('close', () => up.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { endpoint: `http://127.0.0.1:${port}`, sockets, server };
}

describe('clients for other endpoints (local-kms behind 33 pass-throughs)', () => {
  it('keeps at most 32, dropping (and closing) the least recently used one', async () => {
    const proxies = await Promise.all(Array.from({ length: 33 }, () => passThrough()));
    const provider = new AwsKmsProvider({
      region: 'us-east-1',
      endpoint: target('local-kms').endpoint,
      allowedEndpoints: proxies.map((p) => p.endpoint),
      credentials: TEST_CREDENTIALS,
    });
    const open = (i: number) => proxies[i]?.sockets.some((s) => !s.destroyed) === true;
    try {
      const key = await provider.createKey({ name: uniqueName('lru'), spec: 'AES_256' }, call());
      const via = (i: number) =>
        provider.generateDataKey({ uri: `${key.uri}?endpoint=${proxies[i]?.endpoint}` }, {}, call());
      for (let i = 0; i < 32; i++) await via(i);
      await via(0); // now the most recently used; endpoint 1 is the least
      await new Promise((r) => setTimeout(r, 100));
      // 32 clients are kept: each still holds its kept-alive connection
      expect(proxies.slice(0, 32).map((_, i) => open(i))).toEqual(Array(32).fill(true));
      await via(32);
      await vi.waitFor(() => expect(open(1)).toBe(false), { timeout: 5_000 });
      expect(proxies.map((_, i) => open(i)).filter((o) => !o)).toHaveLength(1);
      // a dropped location gets a new client on its next call
      expect(`aws-kms://${(await via(1)).keyArn}`).toBe(key.uri);
    } finally {
      await provider.close();
      for (const p of proxies) {
        for (const s of p.sockets) s.destroy();
        p.server.close();
      }
    }
  });
});
