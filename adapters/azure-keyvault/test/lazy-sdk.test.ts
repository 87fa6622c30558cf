/**
 * The Azure SDK is loaded on first use, not at import (issue #24): importing and constructing the
 * provider loads neither package, a call loads `@azure/keyvault-keys`, `@azure/identity` only
 * when no credential was given, and a package that is not installed is a typed KeyportError.
 */
import { randomBytes } from 'node:crypto';
import { KeyportError, lazyPeer } from '@keyport/core';
import type { AzureKeyVaultServer } from '@keyport/test-servers';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { PROVIDER_NAME } from '../src/index.js';
import { clientOptions, startServer, staticToken, TOKENS } from './support/server.js';

let server: AzureKeyVaultServer;
beforeAll(async () => {
  server = await startServer('vault');
});
afterAll(async () => {
  await server.stop();
});
afterEach(() => {
  vi.doUnmock('@azure/keyvault-keys');
  vi.doUnmock('@azure/identity');
  vi.resetModules();
});

/** A fresh copy of the adapter whose SDK imports are recorded in `loaded`. */
async function freshAdapter(loaded: string[]) {
  vi.resetModules();
  vi.doMock('@azure/keyvault-keys', async (original) => {
    loaded.push('@azure/keyvault-keys');
    return original();
  });
  vi.doMock('@azure/identity', async (original) => {
    loaded.push('@azure/identity');
    return original();
  });
  return import('../src/index.js');
}

describe('lazy SDK loading', () => {
  it('importing and constructing the provider loads no Azure package', async () => {
    const loaded: string[] = [];
    const { AzureKeyVaultProvider } = await freshAdapter(loaded);
    new AzureKeyVaultProvider({ vaultUrl: 'https://example.vault.azure.net' });
    new AzureKeyVaultProvider({ vaultUrl: server.url, credential: staticToken(TOKENS.admin) });
    expect(loaded).toEqual([]);
  });

  it('a call with a given credential loads @azure/keyvault-keys once and never @azure/identity', async () => {
    const loaded: string[] = [];
    const { AzureKeyVaultProvider } = await freshAdapter(loaded);
    const provider = new AzureKeyVaultProvider({
      vaultUrl: server.url,
      credential: staticToken(TOKENS.admin),
      clientOptions: clientOptions(server.caFile),
      vaultKind: 'vault',
    });
    const o = { signal: new AbortController().signal };
    const key = await provider.createKey(
      { name: `lazy-${randomBytes(4).toString('hex')}`, spec: 'RSA_2048', usage: 'encrypt_decrypt' },
      o,
    );
    const sealed = await provider.encrypt({ uri: key.uri }, new Uint8Array([1, 2, 3]), {}, o);
    const opened = await provider.decrypt({ uri: key.uri }, sealed.ciphertext, {}, o);
    expect([...opened.plaintext]).toEqual([1, 2, 3]);
    expect(loaded).toEqual(['@azure/keyvault-keys']);
  });

  it('a package that is not installed is a typed KeyportError naming it; a later call tries again', async () => {
    const pkg = '@azure/keyport-not-installed';
    let attempts = 0;
    const peer = lazyPeer(pkg, PROVIDER_NAME, () => {
      attempts++;
      return import(pkg);
    });
    for (let i = 0; i < 2; i++) {
      const error = await peer.load().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(KeyportError);
      expect(error).toMatchObject({ code: 'Unsupported', provider: 'azurekeyvault', retryable: false });
      expect((error as Error).message).toContain(pkg);
    }
    expect(attempts).toBe(2);
  });

  it('other load failures are not disguised as a missing package', async () => {
    const peer = lazyPeer('@azure/keyvault-keys', PROVIDER_NAME, () => Promise.reject(new TypeError('boom')));
    await expect(peer.load()).rejects.toThrow(TypeError);
  });
});
