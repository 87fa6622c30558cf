/**
 * A failed encrypt, wrapKey or importJwk keeps no key material in its error. The SDK's RestError
 * keeps the request it sent (its body: the plaintext, the content key being wrapped, the private
 * JWK) on a property inspect does not show, and its response, which holds the request again: a
 * KeyportError with that RestError as `cause` carried the secret to anything that walks or
 * serializes errors. Each failure is real (keyport's Key Vault server refusing the principal,
 * throttling, dropping the connection), and the whole object graph of the error is walked.
 */
import { generateKeyPairSync } from 'node:crypto';
import type { KeyClientOptions } from '@azure/keyvault-keys';
import { findSecret } from '@keyport/conformance';
import { Keyport, KeyportError } from '@keyport/core';
import {
  type AzureKeyVaultServer,
  DEFAULT_AZURE_TOKEN,
  startAzureKeyVaultServer,
} from '@keyport/test-servers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AzureKeyVaultProvider, importJwk } from '../src/index.js';
import { clientOptions, providerFor, staticToken, uniqueName, utf8 } from './support/server.js';
import { headersOf } from './support/stand-in.js';

type Policy = NonNullable<KeyClientOptions['additionalPolicies']>[number]['policy'];

const PLAINTEXT = utf8('keyport-secret-plaintext-0123456789-must-not-leak');

/** The `value` of every wrapKey/encrypt request body sent: the content keys, to look for. */
let sentValues: Uint8Array[] = [];
let fault: (() => void) | undefined;
/** When set, answers the request carrying the secret in place of the vault (given its body): a server quoting what it refuses. */
let quoting:
  | ((body: Record<string, unknown>) => { status: number; text: string; requestId?: string })
  | undefined;
/** Import requests (`PUT /keys/<name>`) sent. */
let imports = 0;
const watcher: Policy = {
  name: 'keyport-test-watch-bodies',
  async sendRequest(request, next) {
    const path = new URL(request.url).pathname;
    // Key Vault's challenge makes the SDK send each request first without its body.
    const carrying =
      typeof request.body === 'string' && (request.method === 'PUT' || /\/(wrapkey|encrypt)$/i.test(path));
    if (typeof request.body === 'string' && /\/(wrapkey|encrypt)$/i.test(path)) {
      const value = (JSON.parse(request.body) as { value?: string }).value;
      if (value !== undefined) sentValues.push(Buffer.from(value, 'base64url'));
    }
    if (request.method === 'PUT' && /^\/keys\/[^/]+$/.test(path)) imports++;
    // The fault meets the request that carries the secret, not a look-up before it.
    if (carrying) {
      fault?.();
      fault = undefined;
      if (quoting !== undefined) {
        const { status, text, requestId } = quoting(
          JSON.parse(request.body as string) as Record<string, unknown>,
        );
        const headers = headersOf({
          'content-type': 'application/json',
          'x-ms-request-id': requestId ?? 'req-echo',
        });
        return { request, status, headers, bodyAsText: text } as Awaited<ReturnType<typeof next>>;
      }
    }
    return next(request);
  },
};

function keyportOn(server: AzureKeyVaultServer, token: string): Keyport {
  const driver = new AzureKeyVaultProvider({
    vaultUrl: server.url,
    credential: staticToken(token),
    clientOptions: {
      ...clientOptions(server.caFile),
      additionalPolicies: [{ policy: watcher, position: 'perRetry' }],
    },
    vaultKind: server.mode === 'hsm' ? 'managedHsm' : 'vault',
    pollIntervalMs: 5,
  });
  return new Keyport({ providers: [driver], retry: { maxAttempts: 1 } });
}

async function failureOf(run: Promise<unknown>): Promise<KeyportError> {
  const error = await run.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(KeyportError);
  return error as KeyportError;
}

/** A principal that may read keys and nothing else: its encrypt and import are refused after the key is read. */
const GET_ONLY = 'token-get-only';
const startServer = (mode: 'vault' | 'hsm') =>
  startAzureKeyVaultServer({ mode, principals: { [DEFAULT_AZURE_TOKEN]: 'all', [GET_ONLY]: ['get'] } });

/** Every secret's every place in the error's graph (none expected). */
const leaks = (error: unknown, secrets: readonly Uint8Array[]) =>
  secrets.flatMap((s) => findSecret(error, s));

const failures = (server: () => AzureKeyVaultServer) => ({
  refused: { token: GET_ONLY, arm: () => undefined, code: 'AccessDenied' },
  throttled: {
    token: DEFAULT_AZURE_TOKEN,
    arm: () => server().faults.set({ throttle: { requests: 1, retryAfterSeconds: 0 } }),
    code: 'Throttled',
  },
  dropped: {
    token: DEFAULT_AZURE_TOKEN,
    arm: () => server().faults.set({ dropConnections: 1 }),
    code: 'Unavailable',
  },
});

describe.each(['vault', 'hsm'] as const)('a failed encrypt on a %s', (mode) => {
  let server: AzureKeyVaultServer;
  let admin: Keyport;
  beforeAll(async () => {
    server = await startServer(mode);
    admin = new Keyport({ providers: [providerFor(server)] });
  });
  afterAll(async () => {
    await admin.close();
    await server.stop();
  });

  it.each(Object.entries(failures(() => server)))(
    '%s: neither the plaintext nor the content key is reachable from the error',
    async (_, f) => {
      const key = await admin.createKey('azurekeyvault', {
        name: uniqueName(`leak-${mode}`),
        spec: mode === 'hsm' ? 'AES_256' : 'RSA_2048',
      });
      const keyport = keyportOn(server, f.token);
      try {
        await keyport.describeKey(key.uri).catch(() => undefined); // the spec is known before the fault
        sentValues = [];
        fault = f.arm;
        const error = await failureOf(keyport.encrypt(key.uri, PLAINTEXT));
        expect(error.code).toBe(f.code);
        expect(sentValues.length, 'the request that failed was seen').toBeGreaterThan(0);
        expect(leaks(error, [PLAINTEXT, ...sentValues])).toEqual([]);
      } finally {
        await keyport.close();
      }
    },
  );
});

describe('a failed importJwk', () => {
  let server: AzureKeyVaultServer;
  let admin: Keyport;
  beforeAll(async () => {
    server = await startServer('vault');
  });
  afterAll(async () => {
    await server.stop();
  });

  it.each(Object.entries(failures(() => server)))(
    '%s: no private field of the JWK is reachable from the error',
    async (_, f) => {
      const jwk = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
      const secrets = (['d', 'p', 'q', 'dp', 'dq', 'qi'] as const).map((k) =>
        Buffer.from(jwk[k] as string, 'base64url'),
      );
      admin = keyportOn(server, f.token);
      try {
        imports = 0;
        fault = f.arm;
        const error = await failureOf(
          importJwk(admin, 'azurekeyvault', uniqueName('leak-import'), jwk as { kty: string }),
        );
        expect(error.code).toBe(f.code);
        expect(imports, 'the import request that failed was sent').toBeGreaterThan(0);
        expect(leaks(error, secrets)).toEqual([]);
      } finally {
        fault = undefined;
        await admin.close();
      }
    },
  );
});

/** Answers quoting the request's key material: in the service's error message, and as a body that is not JSON. */
const QUOTING = {
  'a 400 whose message quotes it': (field: string) => (body: Record<string, unknown>) => ({
    status: 400,
    text: JSON.stringify({
      error: { code: 'BadParameter', message: `Invalid ${field}: ${JSON.stringify(body)}` },
    }),
  }),
  'a 502 page quoting a run of it': (field: string) => (body: Record<string, unknown>) => ({
    status: 502,
    text: `<html>bad gateway for ...${String(body[field]).slice(8, 32)}...</html>`,
  }),
};

describe.each(Object.entries(QUOTING))('%s', (what, answer) => {
  let server: AzureKeyVaultServer;
  beforeAll(async () => {
    server = await startServer('hsm');
  });
  afterAll(async () => {
    quoting = undefined;
    await server.stop();
  });

  it.each(['AES_256', 'RSA_2048'] as const)(
    'encrypt with an %s key keeps the plaintext and content key out of the error',
    async (spec) => {
      const admin = new Keyport({ providers: [providerFor(server)] });
      const key = await admin.createKey('azurekeyvault', { name: uniqueName('echo'), spec });
      await admin.close();
      const keyport = keyportOn(server, DEFAULT_AZURE_TOKEN);
      try {
        await keyport.describeKey(key.uri);
        sentValues = [];
        quoting = answer('value');
        const error = await failureOf(keyport.encrypt(key.uri, PLAINTEXT));
        expect(sentValues.length).toBeGreaterThan(0);
        // Bytes 6 to 24 of each secret are what a run quoted (characters 8 to 32 of the base64url).
        const secrets = [PLAINTEXT, ...sentValues].flatMap((s) => [s, s.subarray(6, 24)]);
        expect(leaks(error, secrets)).toEqual([]);
        expect(error).toMatchObject({
          code: what.startsWith('a 400') ? 'InvalidArgument' : 'Unavailable',
          requestId: 'req-echo',
        });
      } finally {
        quoting = undefined;
        await keyport.close();
      }
    },
  );

  it('importJwk keeps the private fields out of the error', async () => {
    const jwk = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
    const secrets = (['d', 'p', 'q', 'dp', 'dq', 'qi'] as const)
      .map((k) => Buffer.from(jwk[k] as string, 'base64url'))
      .flatMap((s) => [s, s.subarray(6, 24)]);
    const keyport = keyportOn(server, DEFAULT_AZURE_TOKEN);
    try {
      imports = 0;
      quoting = (body) => answer('d')((body.key ?? {}) as Record<string, unknown>);
      const error = await failureOf(
        importJwk(keyport, 'azurekeyvault', uniqueName('echo'), jwk as { kty: string }),
      );
      expect(imports).toBeGreaterThan(0);
      expect(leaks(error, secrets)).toEqual([]);
    } finally {
      quoting = undefined;
      await keyport.close();
    }
  });
});

describe('an answer whose request id quotes the key material sent', () => {
  let server: AzureKeyVaultServer;
  beforeAll(async () => {
    server = await startServer('hsm');
  });
  afterAll(async () => {
    quoting = undefined;
    await server.stop();
  });
  /** A 400 whose message quotes nothing, its x-ms-request-id the `field` sent (whole, or a run of it). */
  const echoingId = (field: string, run: boolean) => (body: Record<string, unknown>) => ({
    status: 400,
    text: JSON.stringify({ error: { code: 'BadParameter', message: 'Invalid request' } }),
    requestId: run ? String(body[field]).slice(8, 32) : String(body[field]),
  });

  it.each([
    ['AES_256', false],
    ['RSA_2048', false],
    ['AES_256', true],
    ['RSA_2048', true],
  ] as const)(
    'encrypt with an %s key (a run: %s): the request id is dropped, the mapping kept',
    async (spec, run) => {
      const admin = new Keyport({ providers: [providerFor(server)] });
      const key = await admin.createKey('azurekeyvault', { name: uniqueName('echo-id'), spec });
      await admin.close();
      const keyport = keyportOn(server, DEFAULT_AZURE_TOKEN);
      try {
        await keyport.describeKey(key.uri);
        sentValues = [];
        quoting = echoingId('value', run);
        const error = await failureOf(keyport.encrypt(key.uri, PLAINTEXT));
        expect(sentValues.length).toBeGreaterThan(0);
        const secrets = [PLAINTEXT, ...sentValues].flatMap((s) => [s, s.subarray(6, 24)]);
        expect(leaks(error, secrets)).toEqual([]);
        expect(error.code).toBe('InvalidArgument');
        expect(error.requestId).toBeUndefined();
      } finally {
        quoting = undefined;
        await keyport.close();
      }
    },
  );

  it('importJwk: the request id quoting a private field is dropped', async () => {
    const jwk = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
    const secrets = (['d', 'p', 'q', 'dp', 'dq', 'qi'] as const)
      .map((k) => Buffer.from(jwk[k] as string, 'base64url'))
      .flatMap((s) => [s, s.subarray(6, 24)]);
    const keyport = keyportOn(server, DEFAULT_AZURE_TOKEN);
    try {
      quoting = (body) => echoingId('d', false)((body.key ?? {}) as Record<string, unknown>);
      const error = await failureOf(
        importJwk(keyport, 'azurekeyvault', uniqueName('echo-id'), jwk as { kty: string }),
      );
      expect(leaks(error, secrets)).toEqual([]);
      expect(error.requestId).toBeUndefined();
    } finally {
      quoting = undefined;
      await keyport.close();
    }
  });
});
