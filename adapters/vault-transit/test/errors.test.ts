import { startUntrustedTlsServer } from '@keyport/conformance/harness';
import { Keyport, KeyportError } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { vaultErrorKey } from '../src/errors.js';
import { mapVaultError, VAULT_ERROR_TABLE, VaultTransitProvider } from '../src/index.js';
import { bytes, call, keyName, openbao, provider, rejection } from './helpers.js';

/** The shape node-vault rejects with for a non-2xx answer. */
function apiError(statusCode: number, message: string, requestId?: string): Error {
  return Object.assign(new Error(message), {
    response: { statusCode, body: { errors: [message], ...(requestId ? { request_id: requestId } : {}) } },
  });
}

describe('Vault error mapping table', () => {
  // Messages as OpenBao 2.7 / Vault answer them.
  const cases: Array<[number, string, string]> = [
    [400, 'encryption key not found', 'NotFound'],
    [400, 'cipher: message authentication failed', 'InvalidCiphertext'],
    [400, 'invalid ciphertext: no prefix', 'InvalidCiphertext'],
    [400, 'invalid ciphertext length', 'InvalidCiphertext'],
    [400, 'refusing to use soft-deleted key', 'KeyStateConflict'],
    [400, 'ciphertext or signature version is disallowed by policy (too old)', 'KeyStateConflict'],
    [400, 'error deleting policy k: deletion is not allowed for this key', 'KeyStateConflict'],
    [400, "'[0].associated_data' provided for non-AEAD cipher suite rsa-2048", 'InvalidArgument'],
    [400, 'key type aes256-gcm96 does not support signing', 'InvalidArgument'],
    [400, 'something else entirely', 'InvalidArgument'],
    [400, 'key "k" already exists', 'AlreadyExists'],
    [400, 'child policies must be subset of parent', 'AccessDenied'],
    [400, 'invalid role or secret ID', 'AccessDenied'],
    [403, 'permission denied', 'AccessDenied'],
    [401, 'unauthorized', 'AccessDenied'],
    [404, '', 'NotFound'],
    [405, 'unsupported operation', 'Unsupported'],
    [412, 'required index state not present', 'Unavailable'],
    [413, 'http: request body too large', 'InvalidArgument'],
    [429, 'request path "transit/encrypt/k": rate limit quota exceeded', 'Throttled'],
    [500, '1 error occurred:\n\t* crypto/rsa: decryption error\n\n', 'InvalidCiphertext'],
    [500, '1 error occurred:\n\t* kwp: unwrap failed integrity check\n\n', 'InvalidCiphertext'],
    [
      500,
      '1 error occurred:\n\t* the import path cannot be used with an existing key; use import-version',
      'AlreadyExists',
    ],
    [
      500,
      '1 error occurred:\n\t* the import_version endpoint can only be used with an imported key',
      'InvalidArgument',
    ],
    [500, 'internal error', 'Unavailable'],
    [503, 'Vault is sealed', 'Unavailable'],
    [503, 'local node not active but active cluster node not found', 'Unavailable'],
    [502, '', 'Unavailable'],
    [504, '', 'Unavailable'],
  ];
  it.each(cases)('HTTP %i "%s" -> %s', (status, message, code) => {
    const mapped = mapVaultError(apiError(status, message, 'req-1'), 'hcvault://h:1/transit/keys/k');
    expect(mapped?.code).toBe(code);
    expect(mapped?.requestId).toBe('req-1');
    expect(mapped?.provider).toBe('hcvault');
    expect(mapped?.retryable).toBe(['Throttled', 'Unavailable', 'Timeout'].includes(code));
  });

  it('every row of the README table is reachable', () => {
    const reached = new Set(cases.map(([status, message]) => vaultErrorKey(status, message)));
    expect([...reached].sort()).toEqual(Object.keys(VAULT_ERROR_TABLE).sort());
  });

  it('an answer the table has no row for is Internal, whatever its message', () => {
    for (const message of ['__proto__', 'constructor', 'encryption key not found']) {
      expect(mapVaultError(apiError(418, message))?.code).toBe('Internal');
    }
    expect(vaultErrorKey(418, 'x')).toBeUndefined();
  });

  it('maps network failures, aborts and passes KeyportErrors through; unknown errors stay unmapped', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    expect(mapVaultError(refused)?.code).toBe('Unavailable');
    expect(mapVaultError(Object.assign(new Error('t'), { code: 'ETIMEDOUT' }))?.code).toBe('Timeout');
    const abort = Object.assign(new Error('aborted'), { name: 'AbortError' });
    expect(mapVaultError(abort)?.code).toBe('Aborted');
    const own = new KeyportError('Integrity', 'x');
    expect(mapVaultError(own)).toBe(own);
    expect(mapVaultError(new Error('???'))).toBeUndefined();
  });

  it('matches only the head of a hostile megabyte message (whose full scan would take minutes)', () => {
    // Unbounded, /ciphertext.*too short/ would rescan the rest of the message from every one
    // of the 100k starts; the text past the head (here, "key not found") is never read.
    const hostile = `${'ciphertext'.repeat(100_000)} key not found`;
    expect(mapVaultError(apiError(400, hostile))?.code).toBe('InvalidArgument');
  });

  it('never copies the server message (which could echo input) into the KeyportError message', () => {
    const mapped = mapVaultError(apiError(400, 'bad input: secret-value-123'));
    expect(mapped?.message).not.toContain('secret-value-123');
  });
});

describe('Vault error mapping against OpenBao', () => {
  it('answers a bad token with AccessDenied and an unreachable server with Unavailable', async () => {
    const p = provider();
    const uri = (await p.createKey({ name: keyName('err'), spec: 'AES_256' }, call())).uri;
    const bad = provider({ auth: { method: 'token', token: 'not-a-token', renew: false } });
    expect((await rejection(bad, bad.encrypt({ uri }, bytes('x'), {}, call()))).code).toBe('AccessDenied');
    const down = new VaultTransitProvider({ endpoint: 'http://127.0.0.1:9', auth: openbao().token });
    const err = await rejection(
      down,
      down.describeKey({ uri: 'hcvault://127.0.0.1:9/transit/keys/k' }, call()),
    );
    expect(err.code).toBe('Unavailable');
    expect(err.retryable).toBe(true);
    expect(
      (await rejection(p, p.describeKey({ uri: 'hcvault://other:1/transit/keys/k' }, call()))).code,
    ).toBe('InvalidArgument');
    await Promise.all([p.close(), bad.close(), down.close()]);
  });

  it('a server whose TLS certificate is refused fails at once: Unavailable, not retried, naming why', async () => {
    const server = await startUntrustedTlsServer();
    const address = server.url.slice('https://'.length);
    const keys = new Keyport({
      providers: [new VaultTransitProvider({ endpoint: server.url, auth: openbao().token })],
      retry: { maxAttempts: 4, baseDelayMs: 1 },
    });
    try {
      const error = await keys.describeKey(`hcvault://${address}/transit/keys/k`).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'Unavailable', retryable: false });
      expect((error as Error).message).toMatch(/TLS certificate was refused \(DEPTH_ZERO_SELF_SIGNED_CERT\)/);
      expect(server.connections()).toBe(1);
    } finally {
      await keys.close();
      await server.close();
    }
  });
});
