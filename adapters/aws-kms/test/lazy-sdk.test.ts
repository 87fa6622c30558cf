/**
 * `@aws-sdk/client-kms` is loaded on first use, not at import (issue #24): importing and
 * constructing the provider loads nothing, the first call loads it once, a given client is used
 * as it is, and a package that is not installed is a typed KeyportError naming it.
 */
import { KeyportError, lazyPeer } from '@keyport/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { call, sdkClientFor, TEST_CREDENTIALS, target, uniqueName, utf8 } from './support/targets.js';

afterEach(() => {
  vi.doUnmock('@aws-sdk/client-kms');
  vi.resetModules();
});

describe('lazy SDK loading', () => {
  it('importing and constructing the provider loads no SDK; the first call loads it once', async () => {
    const loaded: string[] = [];
    vi.resetModules();
    vi.doMock('@aws-sdk/client-kms', async (original) => {
      loaded.push('@aws-sdk/client-kms');
      return original();
    });
    const { AwsKmsProvider } = await import('../src/index.js');
    const provider = new AwsKmsProvider({
      region: 'us-east-1',
      endpoint: target('moto').endpoint,
      credentials: TEST_CREDENTIALS,
    });
    expect(loaded).toEqual([]);
    try {
      const key = await provider.createKey({ name: uniqueName('lazy'), spec: 'AES_256' }, call());
      const sealed = await provider.encrypt({ uri: key.uri }, utf8('lazy'), {}, call());
      const opened = await provider.decrypt({ uri: key.uri }, sealed.ciphertext, {}, call());
      expect(new TextDecoder().decode(opened.plaintext)).toBe('lazy');
      expect(loaded).toEqual(['@aws-sdk/client-kms']);
    } finally {
      provider.close();
    }
  });

  it('a given client is used as it is (its middleware sees every call) and left open by close()', async () => {
    const { AwsKmsProvider } = await import('../src/index.js');
    const given = sdkClientFor(target('moto'));
    const seen: string[] = [];
    given.middlewareStack.add(
      (next, context) => (args) => {
        seen.push(String(context.commandName));
        return next(args);
      },
      { step: 'initialize' },
    );
    const provider = new AwsKmsProvider({ client: given });
    const key = await provider.createKey({ name: uniqueName('lazy-given'), spec: 'AES_256' }, call());
    await provider.encrypt({ uri: key.uri }, utf8('x'), {}, call());
    provider.close();
    expect(seen).toContain('CreateKeyCommand');
    expect(seen).toContain('EncryptCommand');
    const { DescribeKeyCommand } = await import('@aws-sdk/client-kms');
    await given.send(new DescribeKeyCommand({ KeyId: key.uri.replace(/^aws-kms:\/\//, '') }));
    given.destroy();
  });

  it('a package that is not installed is a typed KeyportError naming it; a later call tries again', async () => {
    const pkg = '@aws-sdk/keyport-not-installed';
    let attempts = 0;
    const { load } = lazyPeer(pkg, 'aws-kms', () => {
      attempts++;
      return import(pkg);
    });
    for (let i = 0; i < 2; i++) {
      const error = await load().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(KeyportError);
      expect(error).toMatchObject({ code: 'Unsupported', provider: 'aws-kms', retryable: false });
      expect((error as Error).message).toContain(pkg);
    }
    expect(attempts).toBe(2);
  });

  it('other load failures are not disguised as a missing package', async () => {
    const { load } = lazyPeer('@aws-sdk/client-kms', 'aws-kms', () => Promise.reject(new TypeError('boom')));
    await expect(load()).rejects.toThrow(TypeError);
  });
});
