/**
 * Error mapping: the exceptions the issue names, answered by a stubbed transport so the SDK parses
 * real wire errors; real errors from both emulators (with moto's request ids); the README's table
 * matches the code's table row for row.
 */
import { readFileSync } from 'node:fs';
import { startUntrustedTlsServer } from '@keyport/conformance/harness';
import { Keyport, KeyportError } from '@keyport/core';
import { afterAll, describe, expect, it } from 'vitest';
import {
  AWS_ERROR_TABLE,
  type AwsKmsProvider,
  mapAwsError,
  AwsKmsProvider as Provider,
} from '../src/index.js';
import { stubTransport } from './support/stub-transport.js';
import { call, providerFor, TEST_CREDENTIALS, target, uniqueName, utf8 } from './support/targets.js';

const KEY = 'aws-kms://arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';

/** What the issue asks for, written out independently of the table in src/errors.ts. */
const EXPECTED: ReadonlyArray<[string, string, boolean]> = [
  ['NotFoundException', 'NotFound', false],
  ['AlreadyExistsException', 'AlreadyExists', false],
  ['DisabledException', 'KeyStateConflict', false],
  ['KMSInvalidStateException', 'KeyStateConflict', false],
  ['InvalidCiphertextException', 'InvalidCiphertext', false],
  ['IncorrectKeyException', 'InvalidCiphertext', false],
  ['AccessDeniedException', 'AccessDenied', false],
  ['ThrottlingException', 'Throttled', true],
  ['LimitExceededException', 'Throttled', true],
  ['KMSInternalException', 'Unavailable', true],
  ['DependencyTimeoutException', 'Unavailable', true],
  ['KeyUnavailableException', 'Unavailable', true],
  ['ValidationException', 'InvalidArgument', false],
  ['InvalidKeyUsageException', 'InvalidArgument', false],
  ['InvalidGrantTokenException', 'InvalidArgument', false],
  ['UnsupportedOperationException', 'InvalidArgument', false],
  ['UnrecognizedClientException', 'AccessDenied', false],
];

describe('AWS exceptions on the wire -> KeyportError', () => {
  it.each(EXPECTED)('%s -> %s (retryable %s), keeping the request id', async (awsName, code, retryable) => {
    const stub = stubTransport(() => ({
      status: 400,
      json: { __type: `com.amazonaws.kms#${awsName}`, message: 'secret-ish detail' },
    }));
    const provider = new Provider({
      region: 'us-east-1',
      credentials: TEST_CREDENTIALS,
      clientConfig: stub.clientConfig,
    });
    const raw = await provider.mac({ uri: KEY }, utf8('m'), call()).catch((e: unknown) => e);
    const mapped = provider.mapError(raw);
    expect(mapped).toBeInstanceOf(KeyportError);
    expect(mapped).toMatchObject({ code, retryable, requestId: 'stub-1', provider: 'aws-kms' });
    expect(mapped?.message).not.toContain('secret-ish');
    // core keeps a reduced copy of the SDK error (class, code, message, request id), not the original
    expect(mapped?.cause).toMatchObject({ name: (raw as Error).name, message: (raw as Error).message });
    expect(mapped?.cause).not.toHaveProperty('$response');
  });

  it('maps an unreachable endpoint to Unavailable', async () => {
    const provider = new Provider({
      region: 'us-east-1',
      endpoint: 'http://127.0.0.1:9',
      credentials: TEST_CREDENTIALS,
    });
    const raw = await provider.mac({ uri: KEY }, utf8('m'), call()).catch((e: unknown) => e);
    expect(provider.mapError(raw)).toMatchObject({ code: 'Unavailable', retryable: true });
    await provider.close();
  });

  it('an endpoint whose TLS certificate is refused fails at once: Unavailable, not retried, naming why', async () => {
    const server = await startUntrustedTlsServer();
    const keys = new Keyport({
      providers: [new Provider({ region: 'us-east-1', endpoint: server.url, credentials: TEST_CREDENTIALS })],
      retry: { maxAttempts: 4, baseDelayMs: 1 },
    });
    try {
      const error = await keys.encrypt(KEY, utf8('m')).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'Unavailable', retryable: false });
      expect((error as Error).message).toMatch(/TLS certificate was refused \(DEPTH_ZERO_SELF_SIGNED_CERT\)/);
      expect(server.connections()).toBe(1);
    } finally {
      await keys.close();
      await server.close();
    }
  });

  it('maps a dropped connection (the SDK calls it TimeoutError, code ECONNRESET) to Unavailable', () => {
    const dropped = Object.assign(new Error('socket hang up'), { name: 'TimeoutError', code: 'ECONNRESET' });
    expect(mapAwsError(dropped)).toMatchObject({ code: 'Unavailable', retryable: true });
    const timedOut = Object.assign(new Error('timed out'), { name: 'TimeoutError' });
    expect(mapAwsError(timedOut)).toMatchObject({ code: 'Timeout', retryable: true });
  });

  it('passes KeyportErrors through and leaves non-errors to core', () => {
    const own = new KeyportError('InvalidArgument', 'x');
    expect(mapAwsError(own)).toBe(own);
    expect(mapAwsError('boom')).toBeUndefined();
  });
});

describe('real emulator errors', () => {
  let moto: AwsKmsProvider | undefined;
  let localKms: AwsKmsProvider | undefined;
  afterAll(async () => {
    await moto?.close();
    await localKms?.close();
  });

  it('moto: NotFound and InvalidCiphertext carry moto request ids', async () => {
    moto = providerFor(target('moto'));
    const missing = await moto.describeKey({ uri: 'aws-kms://alias/kp-missing-key' }, call()).then(
      () => undefined,
      (e: unknown) => moto?.mapError(e),
    );
    expect(missing).toMatchObject({ code: 'NotFound' });
    expect(missing?.requestId).toMatch(/^[A-Za-z0-9]{20,}$/);
    const { uri } = await moto.createKey({ name: uniqueName('err'), spec: 'AES_256' }, call());
    const sealed = await moto.encrypt({ uri }, utf8('x'), { context: { a: '1' } }, call());
    const wrong = await moto.decrypt({ uri }, sealed.ciphertext, { context: { a: '2' } }, call()).then(
      () => undefined,
      (e: unknown) => moto?.mapError(e),
    );
    expect(wrong).toMatchObject({ code: 'InvalidCiphertext', retryable: false });
  });

  it('local-kms: DisabledException and pending deletion map to KeyStateConflict, bad input to InvalidArgument', async () => {
    localKms = providerFor(target('local-kms'));
    const p = localKms;
    const { uri } = await p.createKey({ name: uniqueName('err'), spec: 'AES_256' }, call());
    await p.disableKey({ uri }, call());
    const disabled = await p.encrypt({ uri }, utf8('x'), {}, call()).catch((e: unknown) => e);
    expect(p.mapError(disabled)).toMatchObject({ code: 'KeyStateConflict' });
    expect((disabled as { name?: string }).name).toBe('DisabledException');
    await p.enableKey({ uri }, call());
    await p.scheduleKeyDeletion({ uri }, { days: 7 }, call());
    const pending = await p.encrypt({ uri }, utf8('x'), {}, call()).catch((e: unknown) => e);
    expect((pending as { name?: string }).name).toBe('KMSInvalidStateException');
    expect(p.mapError(pending)).toMatchObject({ code: 'KeyStateConflict' });
    const aes = await p.createKey({ name: uniqueName('err-misuse'), spec: 'AES_256' }, call());
    const misuse = await p.mac({ uri: aes.uri }, utf8('m'), call()).catch((e: unknown) => e);
    expect((misuse as { name?: string }).name).toBe('ValidationException');
    expect(p.mapError(misuse)?.code).toBe('InvalidArgument');
  });
});

describe('README error table', () => {
  it('lists exactly the rows of AWS_ERROR_TABLE', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const section = readme.slice(readme.indexOf('## Error mapping'));
    const rows = [...section.matchAll(/^\|\s*`([A-Za-z]+)`\s*\|\s*`([A-Za-z]+)`\s*\|/gm)].map((m) => [
      m[1],
      m[2],
    ]);
    expect(rows).toEqual(Object.entries(AWS_ERROR_TABLE).map(([name, m]) => [name, m.code]));
  });
});
