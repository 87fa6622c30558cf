// The factory and its options: one driver under every name it has had, and options that cannot
// work refused at construction (typed, before any request), not on the first call.
import { KeyportError } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import {
  TransitKmsProvider,
  type VaultTransitOptions,
  VaultTransitProvider,
  vaultTransit,
} from '../src/index.js';

describe('vaultTransit(options)', () => {
  it('makes the one transit driver; the old class names are that driver', () => {
    const driver = vaultTransit({ endpoint: 'http://127.0.0.1:8200', flavor: 'openbao' });
    expect(driver).toBeInstanceOf(VaultTransitProvider);
    expect(TransitKmsProvider).toBe(VaultTransitProvider);
    expect(driver.scheme).toBe('hcvault');
    expect(driver.capabilities.enableDisable).toBe(true);
    expect(vaultTransit({ endpoint: 'https://vault.internal:8200' }).capabilities.enableDisable).toBe(false);
    expect(driver.parseUri('hcvault://127.0.0.1:8200/transit/keys/k')).toEqual({
      uri: 'hcvault://127.0.0.1:8200/transit/keys/k',
    });
  });

  const bad: Array<[string, unknown]> = [
    ['no options', undefined],
    ['an endpoint that is not a URL', { endpoint: 'vault:8200 ' }],
    ['a non-HTTP endpoint', { endpoint: 'file:///etc/passwd' }],
    ['a renewal fraction of NaN', { endpoint: 'http://h:1', renewAfterFraction: Number.NaN }],
    ['a renewal fraction above 1', { endpoint: 'http://h:1', renewAfterFraction: 2 }],
    ['an unknown flavor', { endpoint: 'http://h:1', flavor: 'consul' }],
  ];
  it.each(bad)('refuses %s with InvalidArgument', (_, options) => {
    const make = () => vaultTransit(options as VaultTransitOptions);
    expect(make).toThrow(KeyportError);
    expect(make).toThrow(expect.objectContaining({ code: 'InvalidArgument' }));
  });

  it.each([
    ['a trailing newline (read from a file)', 's.secret-token\n'],
    ['a leading space', ' s.secret-token'],
    ['a space inside', 's.secret token'],
    ['a non-ASCII character', 's.secret-tökén'],
    ['an empty string', ''],
  ])('refuses a token with %s, as a bare string or in auth, without echoing it', (_, token) => {
    for (const auth of [token, { method: 'token' as const, token }]) {
      let error: unknown;
      try {
        vaultTransit({ endpoint: 'http://127.0.0.1:8200', auth });
      } catch (e) {
        error = e;
      }
      expect(error).toMatchObject({ code: 'InvalidArgument', message: expect.stringMatching(/token/) });
      if (token.trim() !== '') expect(JSON.stringify(error) + String(error)).not.toContain('secret');
    }
  });

  it('answers a key of another server with a rejected promise from every call, never a synchronous throw', async () => {
    const driver = vaultTransit({ endpoint: 'http://127.0.0.1:8200' });
    const ref = { uri: 'hcvault://other:1/transit/keys/k' };
    const o = { signal: AbortSignal.timeout(5_000) };
    const bytes = new Uint8Array(1);
    const calls: Array<() => Promise<unknown>> = [
      () => driver.describeKey(ref, o),
      () => driver.rotateKey(ref, o),
      () => driver.encrypt(ref, bytes, {}, o),
      () => driver.decrypt(ref, bytes, {}, o),
      () => driver.sign(ref, bytes, {}, o),
      () => driver.mac(ref, bytes, o),
      () => driver.createGrant(ref, { grantee: 'g', operations: ['encrypt'] }, o),
      () => driver.listGrants(ref, o)[Symbol.asyncIterator]().next(),
      () => driver.getImportParameters(ref, {}, o),
      () => driver.encryptBatch(ref, [{ data: bytes }]),
      () => driver.deleteKey(ref),
      () => driver.rewrap(ref, bytes),
    ];
    for (const call of calls) {
      let pending: Promise<unknown> | undefined;
      expect(() => {
        pending = call();
      }).not.toThrow();
      await expect(pending).rejects.toMatchObject({ code: 'InvalidArgument' });
    }
    await driver.close();
  });
});
