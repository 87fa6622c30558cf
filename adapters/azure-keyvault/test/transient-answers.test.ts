/**
 * Answers that say "not now" rather than "no": a 408 Request Timeout (from the vault or a gateway
 * before it), and a 409 for a key Key Vault is still deleting or recovering ("retry later").
 * keyport's Key Vault server never gives them, so the vault is played in-process (support/stand-in).
 * Each is retried by core, and the next answer is the call's.
 */
import { generateKeyPairSync } from 'node:crypto';
import { Keyport } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { importJwk, mapAzureError, type PortableJwk, purgeDeletedKey } from '../src/index.js';
import { bundle, deletedBundle, HOST, standIn } from './support/stand-in.js';

const retrying = (provider: ReturnType<ReturnType<typeof standIn>['provider']>) =>
  new Keyport({ providers: [provider], retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 2 } });

const privateJwk = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({
  format: 'jwk',
}) as PortableJwk;

const conflict = (inner: string, message: string) => ({
  status: 409,
  body: { error: { code: 'Conflict', message, innererror: { code: inner } } },
});

describe('408 Request Timeout', () => {
  it('is Unavailable and retryable, and core retries it: the next answer is the call', async () => {
    const vault = standIn();
    let timedOut = 0;
    vault.route = (url) => {
      if (url.pathname !== '/keys/k/' && url.pathname !== '/keys/k') return undefined;
      if (timedOut++ === 0) return { status: 408, body: { error: { code: 'RequestTimeout', message: 'x' } } };
      return { body: bundle('k') };
    };
    const keyport = retrying(vault.provider());
    try {
      const der = await keyport.getPublicKey(`azurekeyvault://${HOST}/keys/k`);
      expect(der.length).toBeGreaterThan(0);
      expect(timedOut).toBe(2);
    } finally {
      await keyport.close();
    }
  });

  it('maps to Unavailable, retryable, naming the status', () => {
    const error = mapAzureError({ name: 'RestError', statusCode: 408, code: 'RequestTimeout' });
    expect(error).toMatchObject({ code: 'Unavailable', retryable: true });
    expect(error?.message).toContain('408');
  });
});

describe('409 for a key still being deleted or recovered', () => {
  it('a purge right after the deletion (ObjectIsBeingDeleted) is retried until the vault takes it', async () => {
    const vault = standIn();
    let refused = 0;
    vault.route = (url, method) => {
      if (method !== 'DELETE' || url.pathname !== '/deletedkeys/k') return undefined;
      if (refused++ === 0) return conflict('ObjectIsBeingDeleted', 'Key is currently being deleted.');
      return { status: 204 };
    };
    const keyport = retrying(vault.provider());
    try {
      await purgeDeletedKey(keyport, `azurekeyvault://${HOST}/keys/k`);
      expect(refused).toBe(2);
    } finally {
      await keyport.close();
    }
  });

  it.each([
    ['ObjectIsBeingDeleted', 'Key is currently being deleted.'],
    ['ObjectIsBeingRecovered', 'Key k is currently being recovered and cannot be re-created; retry later.'],
  ])('%s -> KeyStateConflict, retryable', (inner, message) => {
    const error = mapAzureError({
      name: 'RestError',
      statusCode: 409,
      code: 'Conflict',
      message,
      details: { error: { code: 'Conflict', innerError: { code: inner } } },
    });
    expect(error).toMatchObject({ code: 'KeyStateConflict', retryable: true });
    expect(error?.message).toContain(`409 Conflict/${inner}`);
  });

  it('a create right after a purge (409 without an inner code, no deleted key) is retried until the vault takes it', async () => {
    const vault = standIn();
    let refused = 0;
    vault.route = (url, method) => {
      if (method !== 'POST' || url.pathname !== '/keys/k/create') return undefined;
      // What Key Vault answers while a purge that already answered 204 completes.
      if (refused++ === 0) return { status: 409, body: { error: { code: 'Conflict', message: 'x' } } };
      return { body: bundle('k') };
    };
    const keyport = retrying(vault.provider());
    try {
      const key = await keyport.createKey('azurekeyvault', { name: 'k', spec: 'RSA_2048' });
      expect(key.uri).toBe(`azurekeyvault://${HOST}/keys/k`);
      expect(refused).toBe(2);
      // The deleted key was looked up once, after the 409, to tell the purge from a held name.
      expect(vault.requests.filter((r) => r.startsWith('GET /deletedkeys/k'))).toHaveLength(1);
    } finally {
      await keyport.close();
    }
  });

  it('a create 409 while a deleted key holds the name stays AlreadyExists, asked once', async () => {
    const vault = standIn();
    let creates = 0;
    vault.route = (url, method) => {
      if (method === 'GET' && url.pathname.replace(/\/$/, '') === '/deletedkeys/k') {
        return { body: deletedBundle('k') };
      }
      if (method !== 'POST' || url.pathname !== '/keys/k/create') return undefined;
      creates++;
      return { status: 409, body: { error: { code: 'Conflict', message: 'x' } } };
    };
    const keyport = retrying(vault.provider());
    try {
      await expect(keyport.createKey('azurekeyvault', { name: 'k', spec: 'RSA_2048' })).rejects.toMatchObject(
        {
          code: 'AlreadyExists',
          retryable: false,
        },
      );
      expect(creates).toBe(1);
    } finally {
      await keyport.close();
    }
  });

  it.each([
    // Without asNewVersion the name is looked up first (a live key is refused before any import).
    [false, /^GET \/keys\/k\/?$/],
    [true, /^PUT \/keys\/k$/],
  ])(
    'an import right after a purge (409 without an inner code, no key or deleted key; asNewVersion %s) is retried until the vault takes it',
    async (asNewVersion, first) => {
      const vault = standIn();
      let refused = 0;
      vault.route = (url, method) => {
        if (method !== 'PUT' || url.pathname !== '/keys/k') return undefined;
        // What Key Vault answers while a purge that already answered 204 completes.
        if (refused++ === 0) return { status: 409, body: { error: { code: 'Conflict', message: 'x' } } };
        return { body: bundle('k') };
      };
      const keyport = retrying(vault.provider());
      try {
        const key = await importJwk(keyport, 'azurekeyvault', 'k', privateJwk, { asNewVersion });
        expect(key.uri).toBe(`azurekeyvault://${HOST}/keys/k`);
        expect(refused).toBe(2);
        expect(vault.requests[0]).toMatch(first);
        // The deleted key was looked up once, after the 409, to tell the purge from a held name.
        expect(vault.requests.filter((r) => r.startsWith('GET /deletedkeys/k'))).toHaveLength(1);
      } finally {
        await keyport.close();
      }
    },
  );

  it('the import 409 while a purge completes says so, retryable', async () => {
    const vault = standIn();
    vault.route = (url, method) =>
      method === 'PUT' && url.pathname === '/keys/k'
        ? { status: 409, body: { error: { code: 'Conflict', message: 'x' } } }
        : undefined;
    const error = await vault
      .provider()
      .importJwk('k', privateJwk)
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'KeyStateConflict', retryable: true, requestId: 'req-1' });
    expect((error as Error).message).toBe(
      'Azure Key Vault answered 409 to an import of a name no key or deleted key holds: a purge of the name is still completing',
    );
  });

  it.each([
    ['a deleted key', '/deletedkeys/k', false],
    ['a live key (asNewVersion)', '/keys/k', true],
  ])(
    'an import 409 while %s holds the name stays AlreadyExists, asked once',
    async (_holder, held, asNewVersion) => {
      const vault = standIn();
      let imports = 0;
      vault.route = (url, method) => {
        const path = url.pathname.replace(/\/$/, '');
        if (method === 'GET' && path === held) {
          return { body: held === '/keys/k' ? bundle('k') : deletedBundle('k') };
        }
        if (method !== 'PUT' || path !== '/keys/k') return undefined;
        imports++;
        return { status: 409, body: { error: { code: 'Conflict', message: 'x' } } };
      };
      const keyport = retrying(vault.provider());
      try {
        await expect(
          importJwk(keyport, 'azurekeyvault', 'k', privateJwk, { asNewVersion }),
        ).rejects.toMatchObject({ code: 'AlreadyExists', retryable: false });
        expect(imports).toBe(1);
      } finally {
        await keyport.close();
      }
    },
  );

  it('a name held by a soft-deleted key (ObjectIsDeletedButRecoverable) stays AlreadyExists, not retried', () => {
    const error = mapAzureError({
      name: 'RestError',
      statusCode: 409,
      code: 'Conflict',
      details: { error: { code: 'Conflict', innerError: { code: 'ObjectIsDeletedButRecoverable' } } },
    });
    expect(error).toMatchObject({ code: 'AlreadyExists', retryable: false });
  });

  it('a 409 whose message only says "disabled key" is not read as a 403 KeyDisabled', () => {
    const error = mapAzureError({
      name: 'RestError',
      statusCode: 409,
      message: 'Operation x is not allowed on a disabled key.',
    });
    expect(error).toMatchObject({ code: 'AlreadyExists' });
  });
});
