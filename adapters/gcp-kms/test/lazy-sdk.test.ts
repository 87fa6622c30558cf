/**
 * `@google-cloud/kms` is loaded on first use, not at import (issue #24): importing and
 * constructing the provider loads nothing, the first call loads it once, a given client is used
 * as it is, and a package that is not installed is a typed KeyportError naming it.
 */
import { credentials } from '@grpc/grpc-js';
import { KeyportError, lazyPeer } from '@keyport/core';
import type { CloudKmsServer } from '@keyport/test-servers';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { signal, startServer, staticAuth } from './support/targets.js';

const KEY_RING = 'projects/lazy/locations/global/keyRings/lazy';

let server: CloudKmsServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server.stop();
});
afterEach(() => {
  vi.doUnmock('@google-cloud/kms');
  vi.resetModules();
});

/** A fresh copy of the adapter whose imports of `@google-cloud/kms` are counted in `loaded`. */
async function freshAdapter(loaded: string[]) {
  vi.resetModules();
  vi.doMock('@google-cloud/kms', async (original) => {
    loaded.push('@google-cloud/kms');
    return original();
  });
  return import('../src/index.js');
}

describe('lazy SDK loading', () => {
  it('importing and constructing the provider loads no SDK; the first call loads it once', async () => {
    const loaded: string[] = [];
    const { GcpKmsProvider } = await freshAdapter(loaded);
    const provider = new GcpKmsProvider({
      apiEndpoint: '127.0.0.1',
      port: server.port,
      sslCreds: credentials.createInsecure(),
      authClient: staticAuth(),
      keyRing: KEY_RING,
    });
    expect(loaded).toEqual([]);
    const key = await provider.createKey({ name: `lazy-${Date.now()}`, spec: 'AES_256' }, signal());
    const sealed = await provider.encrypt({ uri: key.uri }, new Uint8Array([7, 8]), {}, signal());
    const opened = await provider.decrypt({ uri: key.uri }, sealed.ciphertext, {}, signal());
    expect([...opened.plaintext]).toEqual([7, 8]);
    expect(await provider.client()).toBe(await provider.client());
    expect(loaded).toEqual(['@google-cloud/kms']);
    await provider.close();
  });

  it('a given client is used as it is and left open by close()', async () => {
    const { KeyManagementServiceClient } = await import('@google-cloud/kms');
    const { GcpKmsProvider } = await import('../src/index.js');
    const given = new KeyManagementServiceClient({
      apiEndpoint: '127.0.0.1',
      port: server.port,
      sslCreds: credentials.createInsecure(),
      authClient: staticAuth(),
    });
    const provider = new GcpKmsProvider({ client: given, keyRing: KEY_RING });
    expect(await provider.client()).toBe(given);
    const key = await provider.createKey({ name: `lazy-given-${Date.now()}`, spec: 'AES_256' }, signal());
    await provider.close();
    const [raw] = await given.getCryptoKey({ name: key.uri.slice('gcp-kms://'.length) });
    expect(raw.name).toBe(key.uri.slice('gcp-kms://'.length));
    await given.close();
  });

  it('a package that is not installed is a typed KeyportError naming it; a later call tries again', async () => {
    const pkg = '@google-cloud/keyport-not-installed';
    let attempts = 0;
    const sdk = lazyPeer(pkg, 'gcp-kms', () => {
      attempts++;
      return import(pkg);
    });
    for (let i = 0; i < 2; i++) {
      const error = await sdk.load().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(KeyportError);
      expect(error).toMatchObject({ code: 'Unsupported', retryable: false });
      expect((error as Error).message).toContain(pkg);
    }
    expect(attempts).toBe(2);
  });

  it('other load failures are not disguised as a missing package', async () => {
    const sdk = lazyPeer('@google-cloud/kms', 'gcp-kms', () => Promise.reject(new TypeError('boom')));
    await expect(sdk.load()).rejects.toThrow(TypeError);
  });
});
