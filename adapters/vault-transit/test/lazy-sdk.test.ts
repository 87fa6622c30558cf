/**
 * node-vault is loaded on first use, not at import (issue #24): importing and constructing the
 * provider loads nothing, the first call loads it once, a given client is used as it is, and a
 * package that is not installed is a typed KeyportError naming it.
 */
import { KeyportError, lazyPeer } from '@keyport/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { bytes, call, keyName, openbao, rootClient, text } from './helpers.js';

afterEach(() => {
  vi.doUnmock('node-vault');
  vi.resetModules();
});

describe('lazy SDK loading', () => {
  it('importing and constructing the provider loads no node-vault; the first call loads it once', async () => {
    const loaded: string[] = [];
    vi.resetModules();
    vi.doMock('node-vault', async (original) => {
      loaded.push('node-vault');
      return original();
    });
    const { VaultTransitProvider } = await import('../src/index.js');
    const env = openbao();
    const provider = new VaultTransitProvider({ endpoint: env.addr, auth: env.token });
    expect(loaded).toEqual([]);
    try {
      const key = await provider.createKey({ name: keyName('lazy'), spec: 'AES_256' }, call());
      const sealed = await provider.encrypt({ uri: key.uri }, bytes('lazy'), {}, call());
      const opened = await provider.decrypt({ uri: key.uri }, sealed.ciphertext, {}, call());
      expect(text(opened.plaintext)).toBe('lazy');
      expect(loaded).toEqual(['node-vault']);
    } finally {
      provider.close();
    }
  });

  it('a given client is used as it is', async () => {
    const { VaultTransitProvider } = await import('../src/index.js');
    const given = rootClient();
    const paths: string[] = [];
    const write = given.write.bind(given);
    given.write = (path: string, data: unknown, o?: unknown) => {
      paths.push(path);
      return write(path, data as never, o as never);
    };
    const provider = new VaultTransitProvider({ endpoint: openbao().addr, client: given });
    try {
      expect(await provider.session.client()).toBe(given);
      const key = await provider.createKey({ name: keyName('lazy-given'), spec: 'AES_256' }, call());
      await provider.encrypt({ uri: key.uri }, bytes('x'), {}, call());
      expect(paths.some((p) => p.includes('/encrypt/'))).toBe(true);
    } finally {
      provider.close();
    }
  });

  it('a package that is not installed is a typed KeyportError naming it; a later call tries again', async () => {
    const pkg = 'keyport-not-installed-vault-client';
    let attempts = 0;
    const { load } = lazyPeer(pkg, 'hcvault', () => {
      attempts++;
      return import(pkg);
    });
    for (let i = 0; i < 2; i++) {
      const error = await load().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(KeyportError);
      expect(error).toMatchObject({ code: 'Unsupported', provider: 'hcvault', retryable: false });
      expect((error as Error).message).toContain(pkg);
    }
    expect(attempts).toBe(2);
  });

  it('other load failures are not disguised as a missing package', async () => {
    const { load } = lazyPeer('node-vault', 'hcvault', () => Promise.reject(new TypeError('boom')));
    await expect(load()).rejects.toThrow(TypeError);
  });
});
