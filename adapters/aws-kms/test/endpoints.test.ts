/**
 * Which hosts a key URI can send this provider's requests to. Key URIs may come from users, and a
 * request carries SigV4 credentials (and, for Encrypt, plaintext): a URI's `?endpoint=` must be
 * the configured `endpoint` or one of `allowedEndpoints`, compared normalised, else the call is
 * refused with InvalidArgument before any connection.
 * - refusals: a local TCP server counts connections (none may arrive), for every path from a URI
 *   to a client
 * - accepted endpoints: against local-kms (listed and configured), and with a stubbed transport
 *   for the normalisation cases (which host the request went to)
 * - `allowedEndpoints` checked at construction
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { createKeyport } from '@keyport/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AwsKmsProvider } from '../src/index.js';
import { keyMetadata, signedRegion, stubTransport } from './support/stub-transport.js';
import { call, providerFor, TEST_CREDENTIALS, target, uniqueName, utf8 } from './support/targets.js';

const ARN = `arn:aws:kms:us-east-1:111122223333:key/${randomUUID()}`;

/** A TCP server that counts connections and cuts each at once (a call that reached it fails fast). */
async function countingServer(): Promise<{
  endpoint: string;
  connections: () => number;
  close(): Promise<void>;
}> {
  let connections = 0;
  const server: Server = createServer((socket) => {
    connections++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    endpoint: `http://127.0.0.1:${port}`,
    connections: () => connections,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Every driver path that turns a URI into a client, each called with `uri`. */
function everyPath(
  p: AwsKmsProvider,
  uri: string,
  elsewhere: string,
): Array<[string, () => Promise<unknown>]> {
  const ref = { uri };
  const drain = async (it: AsyncIterable<unknown>) => {
    for await (const _ of it) {
      /* drained */
    }
  };
  return [
    ['encrypt', () => p.encrypt(ref, utf8('secret plaintext'), { context: { a: '1' } }, call())],
    ['decrypt', () => p.decrypt(ref, utf8('ciphertext'), {}, call())],
    ['generateDataKey', () => p.generateDataKey(ref, {}, call())],
    ['generateDataKeyWithoutPlaintext', () => p.generateDataKeyWithoutPlaintext(ref, {})],
    ['sign', () => p.sign(ref, utf8('m'), {}, call())],
    ['verify', () => p.verify(ref, utf8('m'), utf8('s'), { algorithm: 'ECDSA_SHA_256' }, call())],
    ['mac', () => p.mac(ref, utf8('m'), call())],
    ['verifyMac', () => p.verifyMac(ref, utf8('m'), utf8('t'), call())],
    ['getPublicKey', () => p.getPublicKey(ref, call())],
    ['describeKey', () => p.describeKey(ref, call())],
    ['enableKey', () => p.enableKey(ref, call())],
    ['disableKey', () => p.disableKey(ref, call())],
    ['rotateKey', () => p.rotateKey(ref, call())],
    ['setRotationPolicy', () => p.setRotationPolicy(ref, { periodDays: 365 }, call())],
    ['scheduleKeyDeletion', () => p.scheduleKeyDeletion(ref, { days: 7 }, call())],
    ['cancelKeyDeletion', () => p.cancelKeyDeletion(ref, call())],
    [
      'createKey',
      () =>
        p.createKey(
          { name: uri.replace(/^aws-kms:\/\/[^?]+/, 'aws-kms://alias/new'), spec: 'AES_256' },
          call(),
        ),
    ],
    [
      'createGrant',
      () =>
        p.createGrant(ref, { grantee: 'arn:aws:iam::111122223333:role/r', operations: ['decrypt'] }, call()),
    ],
    ['listGrants', () => drain(p.listGrants(ref, call()))],
    ['revokeGrant', () => p.revokeGrant(ref, 'grant-id', call())],
    ['retireGrant by id', () => p.retireGrant({ key: ref, grantId: 'grant-id' })],
    ['retireGrant by token', () => p.retireGrant({ token: 'token', key: ref })],
    ['getImportParameters', () => p.getImportParameters(ref, {}, call())],
    [
      'importKeyMaterial',
      () =>
        p.importKeyMaterial(
          ref,
          { wrappedMaterial: utf8('w'), importToken: utf8('t'), algorithm: 'RSAES_OAEP_SHA_256' },
          call(),
        ),
    ],
    ['deleteImportedKeyMaterial', () => p.deleteImportedKeyMaterial(ref)],
    ['reEncrypt (source)', () => p.reEncrypt(ref, utf8('c'), { destination: { uri: elsewhere } })],
    ['reEncrypt (destination)', () => p.reEncrypt({ uri: elsewhere }, utf8('c'), { destination: ref })],
  ];
}

describe('a key URI naming an endpoint the provider is not configured for', () => {
  let server: Awaited<ReturnType<typeof countingServer>>;
  beforeAll(async () => {
    server = await countingServer();
  });
  afterAll(() => server.close());

  it('is refused on every path (InvalidArgument), with zero connections to that endpoint', async () => {
    // configured for local-kms; the URI names another host (here a counting server)
    const provider = providerFor(target('local-kms'));
    const uri = `aws-kms://${ARN}?endpoint=${server.endpoint}`;
    try {
      for (const [name, run] of everyPath(provider, uri, `aws-kms://${ARN}`)) {
        const outcome = await run().then(
          () => 'resolved',
          (e: unknown) => e,
        );
        expect(outcome, name).toMatchObject({
          code: 'InvalidArgument',
          message: expect.stringContaining('not configured for'),
        });
      }
      // the same provider with other grant tokens shares the rule
      await expect(
        provider.withGrantTokens(['t']).encrypt({ uri }, utf8('x'), {}, call()),
      ).rejects.toMatchObject({ code: 'InvalidArgument' });
      // and so does a Keyport in front of it
      const keyport = createKeyport({ providers: [provider] });
      await expect(keyport.encrypt(uri, utf8('x'))).rejects.toMatchObject({ code: 'InvalidArgument' });
      await expect(
        keyport.decrypt(`aws-kms://alias/x?endpoint=${server.endpoint}`, utf8('c')),
      ).rejects.toMatchObject({ code: 'InvalidArgument' });
      expect(server.connections()).toBe(0);
    } finally {
      await provider.close();
    }
  });

  it('is refused without an endpoint option too (only URIs naming no endpoint reach AWS)', async () => {
    const provider = new AwsKmsProvider({ region: 'us-east-1', credentials: TEST_CREDENTIALS });
    try {
      for (const endpoint of [
        server.endpoint,
        'https://kms.us-east-1.amazonaws.com',
        'http://169.254.169.254',
      ]) {
        await expect(
          provider.encrypt({ uri: `aws-kms://${ARN}?endpoint=${endpoint}` }, utf8('x'), {}, call()),
          endpoint,
        ).rejects.toMatchObject({ code: 'InvalidArgument' });
      }
      expect(server.connections()).toBe(0);
    } finally {
      await provider.close();
    }
  });

  it('names the endpoint it refused but never a user name or password the URI carried', async () => {
    const provider = new AwsKmsProvider({
      region: 'us-east-1',
      endpoint: target('local-kms').endpoint,
      allowedEndpoints: [server.endpoint],
      credentials: TEST_CREDENTIALS,
    });
    try {
      const { port } = new URL(server.endpoint);
      // `%40` is how a key URI's query spells `@`: the endpoint is http://alice:hunter2@127.0.0.1:<port>
      const uri = `aws-kms://${ARN}?endpoint=http://alice:hunter2%40127.0.0.1:${port}`;
      const e = await provider.encrypt({ uri }, utf8('x'), {}, call()).catch((x: unknown) => x);
      expect(e).toMatchObject({
        code: 'InvalidArgument',
        message: expect.stringContaining('user name or password'),
      });
      const shown = JSON.stringify({ ...(e as object), message: (e as Error).message, stack: undefined });
      expect(shown).not.toContain('hunter2');
      expect(shown).not.toContain('alice');

      const unlisted = await provider
        .encrypt({ uri: `aws-kms://${ARN}?endpoint=http://127.0.0.1:1` }, utf8('x'), {}, call())
        .catch((x: unknown) => x);
      expect((unlisted as Error).message).toContain('"http://127.0.0.1:1"');
      expect(server.connections()).toBe(0);
    } finally {
      await provider.close();
    }
  });
});

describe('a key URI naming an endpoint the provider may reach (local-kms)', () => {
  it('works for a listed endpoint, and the URIs it returns work again', async () => {
    const localKms = providerFor(target('local-kms'));
    // configured for moto; local-kms reachable through key URIs only because it is listed
    const moto = new AwsKmsProvider({
      region: 'us-east-1',
      endpoint: target('moto').endpoint,
      allowedEndpoints: [target('local-kms').endpoint],
      credentials: TEST_CREDENTIALS,
    });
    try {
      const onLocal = await localKms.createKey({ name: uniqueName('listed'), spec: 'AES_256' }, call());
      const routed = `${onLocal.uri}?endpoint=${target('local-kms').endpoint}/`;
      const info = await moto.describeKey({ uri: routed }, call());
      expect(info.uri).toBe(routed); // keyUriFor keeps the endpoint as the caller wrote it
      const sealed = await moto.encrypt({ uri: info.uri }, utf8('listed'), { context: { a: '1' } }, call());
      const opened = await localKms.decrypt(
        { uri: onLocal.uri },
        sealed.ciphertext,
        { context: { a: '1' } },
        call(),
      );
      expect(opened.plaintext).toEqual(utf8('listed'));
      // a key created through the listed endpoint comes back with a URI the same provider accepts
      const alias = uniqueName('listed-new');
      const created = await moto.createKey(
        { name: `aws-kms://alias/${alias}?endpoint=${target('local-kms').endpoint}`, spec: 'HMAC_256' },
        call(),
      );
      expect(created.uri).toMatch(/^aws-kms:\/\/arn:aws:kms:us-east-1:111122223333:key\/.+\?endpoint=/);
      expect((await moto.mac({ uri: created.uri }, utf8('m'), call())).mac.length).toBe(32);
      expect((await localKms.describeKey({ uri: `aws-kms://alias/${alias}` }, call())).uri).toBe(
        created.uri.replace(/\?.*$/, ''),
      );
    } finally {
      await moto.close();
      await localKms.close();
    }
  });

  it('works for the configured endpoint, however the URI spells it', async () => {
    const provider = providerFor(target('local-kms'));
    try {
      const key = await provider.createKey({ name: uniqueName('configured'), spec: 'AES_256' }, call());
      const { port } = new URL(target('local-kms').endpoint);
      for (const endpoint of [
        target('local-kms').endpoint,
        `${target('local-kms').endpoint}/`,
        `http://127.0.0.1:${port}/`,
      ]) {
        const uri = `${key.uri}?endpoint=${endpoint}`;
        const sealed = await provider.encrypt({ uri }, utf8(endpoint), {}, call());
        expect(`aws-kms://${sealed.keyArn}`).toBe(key.uri);
        expect((await provider.describeKey({ uri }, call())).uri).toBe(uri);
      }
    } finally {
      await provider.close();
    }
  });
});

describe('endpoint normalisation (stubbed transport: where the request went)', () => {
  function stubbed(options: { endpoint?: string; allowedEndpoints?: readonly string[] }) {
    // the key asked for, in the region the request was signed for (an answer for another is refused)
    const stub = stubTransport((op, body, signed) => {
      if (op !== 'DescribeKey') return { json: {} };
      const id = /:key\/(.+)$/.exec(String(body.KeyId))?.[1];
      return { json: keyMetadata('SYMMETRIC_DEFAULT', undefined, id, signedRegion(signed)) };
    });
    const provider = new AwsKmsProvider({
      region: 'us-east-1',
      credentials: TEST_CREDENTIALS,
      clientConfig: stub.clientConfig,
      ...options,
    });
    /** The host describeKey's requests went to, or the error code it ended with (no request made). */
    const hostOf = async (uri: string) => {
      const before = stub.requests.length;
      const outcome = await provider.describeKey({ uri }, call()).then(
        () => undefined,
        (e: unknown) => (e as { code?: string }).code ?? String(e),
      );
      const sent = stub.requests.slice(before);
      if (outcome !== undefined) {
        expect(sent, uri).toHaveLength(0);
        return outcome;
      }
      const hosts = new Set(sent.map((r) => r.signed.headers.host));
      expect(hosts.size, uri).toBe(1);
      return [...hosts][0];
    };
    return { provider, hostOf, requests: stub.requests };
  }

  it('matches scheme and host in any case, the default port, and a trailing slash', async () => {
    const { provider, hostOf } = stubbed({
      endpoint: 'http://KMS.Internal.Example:80',
      allowedEndpoints: ['https://VPCE-1.kms.example:443/', 'http://127.0.0.1:4566'],
    });
    try {
      const key = (endpoint: string) => `aws-kms://alias/k?endpoint=${endpoint}`;
      expect(await hostOf(key('http://kms.internal.example'))).toBe('kms.internal.example');
      expect(await hostOf(key('http://kms.internal.example:80/'))).toBe('kms.internal.example');
      expect(await hostOf(key('https://vpce-1.kms.example'))).toBe('vpce-1.kms.example');
      expect(await hostOf(key('https://vpce-1.KMS.example:443/'))).toBe('vpce-1.kms.example');
      expect(await hostOf(key('http://127.0.0.1:4566/'))).toBe('127.0.0.1:4566');
      // no endpoint: the configured one
      expect(await hostOf('aws-kms://alias/k')).toBe('kms.internal.example');
      // anything else: refused before any request
      for (const other of [
        'http://127.0.0.1:4567', // another port
        'https://127.0.0.1:4566', // another scheme
        'http://kms.internal.example:8080',
        'https://kms.internal.example', // https://…:443 is not http://…:80
        'http://vpce-1.kms.example', // the listed one is https
        'http://kms.internal.example.evil.test',
        'http://evil.test%5C%40kms.internal.example', // http://evil.test\@kms… : a path to WHATWG URL
        'http://kms.internal.example%40evil.test', // user name "kms.internal.example" at evil.test
        'http://127.0.0.2:4566',
      ]) {
        expect(await hostOf(key(other)), other).toBe('InvalidArgument');
      }
    } finally {
      await provider.close();
    }
  });

  it('keeps the configured endpoint for a URI naming another region (the region only signs)', async () => {
    const { provider, requests } = stubbed({ endpoint: 'http://kms.internal.example' });
    try {
      await provider.describeKey({ uri: 'aws-kms://alias/k?region=eu-west-1' }, call());
      await provider.describeKey(
        {
          uri: 'aws-kms://arn:aws:kms:ap-southeast-2:111122223333:key/abc?endpoint=http://kms.internal.example',
        },
        call(),
      );
      await provider.describeKey({ uri: 'aws-kms://alias/k?region=eu-west-1' }, call());
      const first = requests.filter((r) =>
        r.signed.headers.authorization?.includes('/eu-west-1/kms/aws4_request'),
      );
      const second = requests.filter((r) =>
        r.signed.headers.authorization?.includes('/ap-southeast-2/kms/aws4_request'),
      );
      expect(first.length).toBeGreaterThan(0);
      expect(second.length).toBeGreaterThan(0);
      expect(first.length + second.length).toBe(requests.length);
      expect(new Set(requests.map((r) => r.signed.headers.host))).toEqual(new Set(['kms.internal.example']));
    } finally {
      await provider.close();
    }
  });

  it('refuses a region that is not a plain AWS region name (it would steer the host name)', async () => {
    const { provider, hostOf } = stubbed({});
    try {
      for (const region of [
        'evil.test',
        'us-east-1.evil.test',
        'us-east-1%23',
        'US-EAST-1',
        'localhost',
        'us-east-1%2F',
      ]) {
        expect(await hostOf(`aws-kms://alias/k?region=${region}`), region).toBe('InvalidArgument');
      }
      expect(await hostOf('aws-kms://alias/k?region=eu-central-2')).toBe('kms.eu-central-2.amazonaws.com');
      expect(await hostOf('aws-kms://alias/k?region=us-gov-west-1')).toBe('kms.us-gov-west-1.amazonaws.com');
    } finally {
      await provider.close();
    }
  });
});

describe('allowedEndpoints', () => {
  it('refuses anything but a list of http(s)://host[:port] at construction, never echoing a password', () => {
    const bad: unknown[] = [
      'http://127.0.0.1:4566',
      [''],
      [7],
      ['127.0.0.1:4566'],
      ['/relative'],
      ['ftp://host'],
      ['javascript:alert(1)'],
      ['http://user:hunter2@host'],
      ['http://host/kms'],
      ['http://host?x=1'],
      ['http://host?'],
      ['http://host#frag'],
      ['http://ho st'],
      ['http://host\n'],
      ['http://host:99999'],
      // a hole is refused, not skipped
      // biome-ignore lint/suspicious/noSparseArray: the point of the case
      [, 'http://host'],
      { 0: 'http://host', length: 1 },
    ];
    for (const allowedEndpoints of bad) {
      let thrown: unknown;
      try {
        new AwsKmsProvider({ region: 'us-east-1', allowedEndpoints } as never);
      } catch (e) {
        thrown = e;
      }
      expect(thrown, JSON.stringify(allowedEndpoints)).toMatchObject({
        code: 'InvalidArgument',
        message: expect.stringContaining('allowedEndpoints'),
      });
      expect((thrown as Error).message).not.toContain('hunter2');
    }
    for (const good of [
      [],
      ['http://127.0.0.1:4566', 'https://vpce-0abc.kms.us-east-1.vpce.amazonaws.com/'],
      ['HTTP://[::1]:4566'],
    ]) {
      expect(() => new AwsKmsProvider({ region: 'us-east-1', allowedEndpoints: good })).not.toThrow();
    }
  });
});

describe('endpoint (the configured one)', () => {
  it('refuses what is not an http(s) URL at construction, never echoing a password; a path is allowed', () => {
    for (const endpoint of [
      7,
      '',
      '127.0.0.1:4566',
      '/relative',
      'ftp://host',
      'javascript:alert(1)',
      'http://user:hunter2@host',
      'http://host?x=1',
      'http://host#frag',
      'http://ho st',
      'http://host\n',
      'http://host:99999',
    ]) {
      let thrown: unknown;
      try {
        new AwsKmsProvider({ region: 'us-east-1', endpoint } as never);
      } catch (e) {
        thrown = e;
      }
      expect(thrown, JSON.stringify(endpoint)).toMatchObject({
        code: 'InvalidArgument',
        message: expect.stringContaining('endpoint'),
      });
      expect((thrown as Error).message).not.toContain('hunter2');
    }
    for (const endpoint of ['http://127.0.0.1:4566', 'https://proxy.internal/kms/', 'HTTPS://[::1]:4566/']) {
      expect(() => new AwsKmsProvider({ region: 'us-east-1', endpoint })).not.toThrow();
    }
  });
});
