/**
 * The error table (README) row by row: real answers from keyport's Key Vault server where it can
 * produce them, and `classify` for the rows it cannot (5xx).
 */
import { randomBytes } from 'node:crypto';
import { type AuditEvent, Keyport } from '@keyport/core';
import type { AzureKeyVaultServer } from '@keyport/test-servers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { retryAfterMsOf } from '../src/errors.js';
import { classifyAzureError, mapAzureError } from '../src/index.js';
import { hostOf, providerFor, sdkClient, startServer, TOKENS, uniqueName } from './support/server.js';

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

  it('400 BadParameter -> InvalidArgument (a rotation period under Key Vault minimum of 7 days)', async () => {
    const key = await rsaKey();
    await expect(admin.setRotationPolicy(key.uri, { periodDays: 3 })).rejects.toMatchObject({
      code: 'InvalidArgument',
    });
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

describe('error table (classify)', () => {
  it.each([
    [400, 'BadParameter', undefined, 'InvalidArgument'],
    [401, 'Unauthorized', undefined, 'AccessDenied'],
    [403, 'Forbidden', 'ForbiddenByPolicy', 'AccessDenied'],
    [403, 'Forbidden', 'ForbiddenByRbac', 'AccessDenied'],
    [403, 'Forbidden', 'KeyDisabled', 'KeyStateConflict'],
    [403, 'Forbidden', 'KeyExpired', 'KeyStateConflict'],
    [403, 'Forbidden', 'KeyNotYetValid', 'KeyStateConflict'],
    [403, 'Forbidden', 'KeyOperationForbidden', 'InvalidArgument'],
    [404, 'KeyNotFound', undefined, 'NotFound'],
    [409, 'Conflict', undefined, 'AlreadyExists'],
    [429, 'Throttled', undefined, 'Throttled'],
    [500, 'InternalServerError', undefined, 'Unavailable'],
    [503, 'ServiceUnavailable', undefined, 'Unavailable'],
    [418, undefined, undefined, 'Internal'],
  ] as const)('%i %s (%s) -> %s', (status, code, inner, expected) => {
    expect(classifyAzureError(status, code, inner).code).toBe(expected);
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
