/**
 * The error table (README) row by row: real answers from keyport's Key Vault server where it can
 * produce them, and every row of AZURE_ERROR_TABLE from the error shape the SDK throws for it.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { startUntrustedTlsServer } from '@keyport/conformance/harness';
import { type AuditEvent, Keyport } from '@keyport/core';
import type { AzureKeyVaultServer } from '@keyport/test-servers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { retryAfterMsOf } from '../src/errors.js';
import { AZURE_ERROR_TABLE, AzureKeyVaultProvider, mapAzureError } from '../src/index.js';
import {
  hostOf,
  providerFor,
  sdkClient,
  startServer,
  staticToken,
  TOKENS,
  uniqueName,
} from './support/server.js';

let server: AzureKeyVaultServer;
let admin: Keyport;
beforeAll(async () => {
  server = await startServer('vault');
  admin = new Keyport({ providers: [providerFor(server)], retry: { maxAttempts: 1 } });
});
afterAll(async () => {
  await admin.close();
  await server.stop();
});

const rsaKey = () => admin.createKey('azurekeyvault', { name: uniqueName('err'), spec: 'RSA_2048' });

describe('error mapping against the server', () => {
  it('404 KeyNotFound -> NotFound (with the request id, not retryable)', async () => {
    const uri = `azurekeyvault://${hostOf(server)}/keys/${uniqueName('missing')}`;
    const error = await admin.encrypt(uri, randomBytes(8)).catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'NotFound',
      retryable: false,
      keyUri: uri,
      provider: 'azurekeyvault',
    });
    expect((error as { requestId?: string }).requestId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('403 ForbiddenByPolicy -> AccessDenied; 403 KeyDisabled -> KeyStateConflict', async () => {
    const key = await rsaKey();
    const nobody = new Keyport({
      providers: [providerFor(server, TOKENS.nobody)],
      retry: { maxAttempts: 1 },
    });
    await expect(nobody.describeKey(key.uri)).rejects.toMatchObject({
      code: 'AccessDenied',
      retryable: false,
    });
    await nobody.close();
    await admin.disableKey(key.uri);
    await expect(admin.encrypt(key.uri, randomBytes(8))).rejects.toMatchObject({ code: 'KeyStateConflict' });
  });

  it('a principal allowed only to encrypt cannot decrypt (least privilege: wrapKey without unwrapKey)', async () => {
    const key = await rsaKey();
    const encryptOnly = new Keyport({
      providers: [providerFor(server, TOKENS.encryptOnly)],
      retry: { maxAttempts: 1 },
    });
    const { ciphertext } = await encryptOnly.encrypt(key.uri, randomBytes(8));
    await expect(encryptOnly.decrypt(key.uri, ciphertext)).rejects.toMatchObject({ code: 'AccessDenied' });
    await expect(admin.decrypt(key.uri, ciphertext)).resolves.toBeDefined();
    await encryptOnly.close();
  });

  it('409 Conflict (name held by a soft-deleted key) -> AlreadyExists', async () => {
    const key = await rsaKey();
    await admin.scheduleKeyDeletion(key.uri);
    const name = key.uri.split('/keys/')[1] ?? '';
    await expect(admin.createKey('azurekeyvault', { name, spec: 'RSA_2048' })).rejects.toMatchObject({
      code: 'AlreadyExists',
    });
  });

  it('400 BadParameter -> InvalidArgument (more tags than the 15 Key Vault keeps)', async () => {
    const labels = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`l${i}`, 'x']));
    const error = await admin
      .createKey('azurekeyvault', { name: uniqueName('tags'), spec: 'RSA_2048', labels })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'InvalidArgument', message: expect.stringContaining('400') });
  });

  it('an expired key refuses encrypt (KeyStateConflict) and still decrypts, on the server clock', async () => {
    const provider = providerFor(server);
    const key = await rsaKey();
    const { ciphertext } = await admin.encrypt(key.uri, randomBytes(8));
    await provider.setValidity({ uri: key.uri }, { expiresOn: new Date(Date.now() + 3_600_000) });
    server.clock.advance(7200);
    await expect(admin.encrypt(key.uri, randomBytes(8))).rejects.toMatchObject({ code: 'KeyStateConflict' });
    await expect(admin.decrypt(key.uri, ciphertext)).resolves.toBeDefined();
    await provider.close();
  });

  it('429 Throttled with Retry-After: retryable, and core waits at least Retry-After before the next attempt', async () => {
    const key = await rsaKey();
    const events: AuditEvent[] = [];
    const retrying = new Keyport({
      providers: [providerFor(server)],
      retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 5 },
      random: () => 0,
      audit: [{ write: (e) => void events.push(e) }],
    });
    server.faults.set({ throttle: { requests: 1, retryAfterSeconds: 1 } });
    const started = Date.now();
    const described = await retrying.describeKey(key.uri);
    expect(described.uri).toBe(key.uri);
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(events.at(-1)).toMatchObject({ op: 'describeKey', outcome: 'success', attempts: 2 });

    // Without retries the caller sees Throttled with the server's delay; the SDK did not retry it.
    server.faults.set({ throttle: { requests: 1, retryAfterSeconds: 2 } });
    const error = await admin.describeKey(key.uri).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'Throttled', retryable: true, retryAfterMs: 2000 });
    server.faults.clear();
    await retrying.close();
  });

  it('a dropped connection -> Unavailable (retryable)', async () => {
    const key = await rsaKey();
    server.faults.set({ dropConnections: 1 });
    await expect(admin.describeKey(key.uri)).rejects.toMatchObject({ code: 'Unavailable', retryable: true });
    server.faults.clear();
  });

  it('an SDK call aborted by its signal -> Aborted', async () => {
    const sdk = sdkClient(server);
    const error = await sdk.getKey('x', { abortSignal: AbortSignal.abort() }).catch((e: unknown) => e);
    expect(mapAzureError(error)).toMatchObject({ code: 'Aborted', retryable: false });
  });
});

describe('a vault whose TLS certificate is refused', () => {
  it('fails at once: Unavailable, not retried, naming the certificate error', async () => {
    const untrusted = await startUntrustedTlsServer();
    const keys = new Keyport({
      providers: [
        new AzureKeyVaultProvider({
          vaultUrl: untrusted.url,
          credential: staticToken(TOKENS.admin),
          clientOptions: { disableChallengeResourceVerification: true },
        }),
      ],
      retry: { maxAttempts: 4, baseDelayMs: 1 },
    });
    try {
      const host = new URL(untrusted.url).host;
      const error = await keys.describeKey(`azurekeyvault://${host}/keys/k`).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'Unavailable', retryable: false });
      expect((error as Error).message).toMatch(/TLS certificate was refused \(DEPTH_ZERO_SELF_SIGNED_CERT\)/);
      expect(untrusted.connections()).toBe(1);
    } finally {
      await keys.close();
      await untrusted.close();
    }
  });
});

/** The error the SDK (or Node, or @azure/identity) throws for a table row. */
function thrownFor(row: string): unknown {
  if (row === 'network') return Object.assign(new Error('connect'), { code: 'ECONNREFUSED' });
  if (row === 'tls')
    return Object.assign(new Error('send'), {
      name: 'RestError',
      code: 'REQUEST_SEND_ERROR',
      cause: Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }),
    });
  if (row === 'challenge')
    return new Error(
      "The challenge resource 'vault.example.net' does not match the requested domain. Set disableChallengeResourceVerification to true in your client options to disable. See https://aka.ms/azsdk/blog/vault-uri for more information.",
    );
  if (/Error$/.test(row)) return { name: row, message: 'x' };
  const [status = '', inner] = row.split('/');
  const statusCode = status === '5xx' ? 502 : status === 'other' ? 418 : Number(status);
  return {
    name: 'RestError',
    statusCode,
    code: 'Forbidden',
    details: inner === undefined ? {} : { error: { code: 'Forbidden', innerError: { code: inner } } },
  };
}

describe('error table (AZURE_ERROR_TABLE)', () => {
  it.each(Object.entries(AZURE_ERROR_TABLE))('%s -> %o', (row, mapping) => {
    const error = mapAzureError(thrownFor(row));
    expect(error).toMatchObject({ code: mapping.code, provider: 'azurekeyvault' });
    if (mapping.retryable !== undefined) expect(error?.retryable).toBe(mapping.retryable);
  });

  it.each([
    [403, 'ForbiddenByPolicy', 'AccessDenied'],
    [403, 'ForbiddenByRbac', 'AccessDenied'],
    [403, '__proto__', 'AccessDenied'],
    [403, 'constructor', 'AccessDenied'],
    [503, undefined, 'Unavailable'],
  ] as const)(
    '%i with inner code %s -> %s (unknown inner codes fall back to the status row)',
    (statusCode, inner, code) => {
      const error = { name: 'RestError', statusCode, details: { error: { innerError: { code: inner } } } };
      expect(mapAzureError(error)).toMatchObject({ code });
    },
  );

  it('the README prints every row of the table with its code', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    for (const [row, mapping] of Object.entries(AZURE_ERROR_TABLE)) {
      expect(readme).toMatch(new RegExp(`^\\| \`${row}\` \\|[^\\n]*\\| \`${mapping.code}\``, 'm'));
    }
  });

  it('a 403 naming a disabled key only in its documented message -> KeyStateConflict', () => {
    const error = {
      name: 'RestError',
      statusCode: 403,
      message: 'Operation encrypt is not allowed on a disabled key.',
    };
    expect(mapAzureError(error)).toMatchObject({ code: 'KeyStateConflict' });
  });

  it('a 503 with Retry-After as an HTTP date gives the delay until then', () => {
    const headers = new Map([['retry-after', new Date(10_000 + 3_000).toUTCString()]]);
    const error = {
      name: 'RestError',
      statusCode: 503,
      response: { headers: { get: (n: string) => headers.get(n) } },
    };
    expect(retryAfterMsOf(error, () => 10_000)).toBe(3_000);
    expect(mapAzureError(error)).toMatchObject({ code: 'Unavailable', retryable: true });
  });

  it('credential failures from @azure/identity -> AccessDenied; foreign values are left to core', () => {
    expect(mapAzureError({ name: 'CredentialUnavailableError', message: 'x' })).toMatchObject({
      code: 'AccessDenied',
    });
    expect(mapAzureError(new TypeError('boom'))).toBeUndefined();
  });
});
