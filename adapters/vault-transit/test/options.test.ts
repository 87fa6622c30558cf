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
import { bytes, call, keyName, openbao } from './helpers.js';

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

// The checks are core's `checkOptions` (as every adapter's): a plain object of own data
// properties, so a getter cannot answer one value to the check and another to the client, and
// an inherited field cannot slip past the list of known ones.
describe('options that are not plain data', () => {
  const endpoint = 'http://127.0.0.1:8200';
  const refusal = (options: unknown): KeyportError => {
    let error: unknown;
    try {
      vaultTransit(options as VaultTransitOptions);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(KeyportError);
    expect(error).toMatchObject({ code: 'InvalidArgument', provider: 'hcvault' });
    const e = error as KeyportError;
    expect(`${e.message}${JSON.stringify(e)}`).not.toMatch(/s\.secret|hunter2/);
    return e;
  };
  class Settings {
    endpoint = endpoint;
  }
  const inherited = <T extends object>(own: T, from: object) => Object.assign(Object.create(from), own) as T;

  it.each([
    ['options built by a class', new Settings(), /options: expected an object/],
    [
      'an accessor for auth',
      {
        endpoint,
        get auth() {
          return 's.secret';
        },
      },
      /options\.auth: accessor/,
    ],
    [
      'an accessor for the token in auth',
      {
        endpoint,
        auth: {
          method: 'token',
          get token() {
            return 's.secret';
          },
        },
      },
      /auth\.token: accessor/,
    ],
    [
      'an accessor for the AppRole secret',
      {
        endpoint,
        auth: {
          method: 'approle',
          roleId: 'r',
          get secretId() {
            return 'hunter2';
          },
        },
      },
      /auth\.secretId: accessor/,
    ],
    [
      'auth whose method is inherited',
      { endpoint, auth: inherited({ token: 's.secret' }, { method: 'token' }) },
      /auth: expected an object/,
    ],
    [
      'a metadata store whose fields are inherited',
      { endpoint, metadataStore: inherited({ kvMount: 'secret' }, { prefix: '..' }) },
      /metadataStore: expected an object/,
    ],
    [
      'tls that is a Map',
      { endpoint, tls: new Map([['rejectUnauthorized', false]]) },
      /tls: expected an object/,
    ],
    [
      'options behind a proxy whose keys cannot be read',
      new Proxy(
        { endpoint },
        {
          ownKeys: () => {
            throw new Error('s.secret');
          },
        },
      ),
      /options: reading it threw/,
    ],
    [
      'auth with a symbol key',
      { endpoint, auth: { method: 'token', token: 's.secret', [Symbol('x')]: 1 } },
      /auth: symbol/,
    ],
    [
      'a renew flag that is not a boolean',
      { endpoint, auth: { method: 'token', token: 's.secret', renew: 'no' } },
      /auth\.renew/,
    ],
    [
      'an empty jwtPath',
      { endpoint, auth: { method: 'kubernetes', role: 'r', jwtPath: '' } },
      /auth\.jwtPath/,
    ],
  ])('refuses %s at construction, never echoing a value', (_, options, message) => {
    expect(refusal(options).message).toMatch(message);
  });

  it("uses what it checked: changing the caller's options after construction changes nothing", async () => {
    const env = openbao();
    const auth = { method: 'token' as const, token: env.token, renew: false };
    const options = { endpoint: env.addr, auth, flavor: 'openbao' as const };
    const driver = new VaultTransitProvider(options);
    // The client is built on the first call: before, it read the caller's object then.
    (auth as { token: string }).token = 's.not-the-token';
    (options as { namespace?: string }).namespace = 'elsewhere';
    const name = keyName('checked-copy');
    await driver.createKey({ name, spec: 'AES_256' }, call());
    const sealed = await driver.encrypt(
      { uri: `hcvault://${new URL(env.addr).host}/transit/keys/${name}` },
      bytes('x'),
      {},
      call(),
    );
    expect(sealed.ciphertext.length).toBeGreaterThan(0);
    await driver.close();
  });
});
