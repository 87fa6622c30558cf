/**
 * The adapter used as a careless user and an attacker would: options that contradict each other
 * or carry what they should not, values of the wrong type where names, numbers and dates go,
 * caches that a caller naming ever more keys could grow, and half-done calls. Against keyport's
 * Key Vault server where a request is involved.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import type { KeyClientOptions, KeyVaultKey } from '@azure/keyvault-keys';
import { Keyport, KeyportError } from '@keyport/core';
import { type AzureKeyVaultServer, startAzureKeyVaultServer } from '@keyport/test-servers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AzureKeyVaultProvider, importJwk, restoreKey, setValidity } from '../src/index.js';
import { keyInfoOf, VERSION_UPDATES_AT_ONCE } from '../src/keys.js';
import type { Rpc } from '../src/rpc.js';
import {
  clientOptions,
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

const credential = staticToken('unused');
const invalidArgument = expect.objectContaining({ code: 'InvalidArgument' });
const rpcOf = (p: AzureKeyVaultProvider) => (p as unknown as { rpc: Rpc }).rpc;
const nameOf = (uri: string) => uri.split('/keys/')[1] ?? '';
/** Everything an error shows: message, JSON, and the inspected cause chain. */
const shown = (e: unknown) =>
  `${String(e)} ${JSON.stringify(e)} ${inspect(e, { depth: Number.POSITIVE_INFINITY, showHidden: true })}`;

function construct(options: Record<string, unknown>): unknown {
  try {
    new AzureKeyVaultProvider(options as never);
  } catch (e) {
    return e;
  }
  return undefined;
}

describe('options that contradict each other or carry what they should not', () => {
  it('an explicit vaultKind contradicting a host that names the other kind is InvalidArgument', () => {
    for (const [vaultKind, vaultUrl] of [
      ['vault', 'https://kp.managedhsm.azure.net'],
      ['vault', 'https://kp.managedhsm.azure.cn'],
      ['managedHsm', 'https://kp.vault.azure.net'],
      ['managedHsm', 'https://kp.vault.usgovcloudapi.net'],
      ['vault', ['https://a.vault.azure.net', 'https://b.managedhsm.azure.net']],
      ['managedHsm', ['https://a.vault.azure.net', 'https://b.managedhsm.azure.net']],
    ] as const) {
      expect(construct({ vaultUrl, vaultKind, credential }), `${vaultKind} ${vaultUrl}`).toEqual(
        invalidArgument,
      );
    }
    // Hosts that name no kind (private endpoints, test servers) take the kind given.
    for (const vaultKind of ['vault', 'managedHsm'] as const) {
      const p = new AzureKeyVaultProvider({ vaultUrl: 'https://127.0.0.1:8443', vaultKind, credential });
      expect(p.vaultKind).toBe(vaultKind);
    }
    const agreed = new AzureKeyVaultProvider({
      vaultUrl: ['https://a.managedhsm.azure.net', 'https://10.0.0.1'],
      vaultKind: 'managedHsm',
      credential,
    });
    expect(agreed.capabilities.keySpecs.AES_256).toBeDefined();
  });

  it('a vault URL carrying credentials, a path, a query, a fragment or another scheme is refused, never echoed', () => {
    for (const vaultUrl of [
      'https://user:s3cret-pass@kp.vault.azure.net',
      'https://s3cret-user@kp.vault.azure.net/',
      'https://:s3cret-pass@kp.vault.azure.net',
      'https://kp.vault.azure.net/keys',
      'https://kp.vault.azure.net/?api-version=s3cret',
      'https://kp.vault.azure.net/?',
      'https://kp.vault.azure.net/#s3cret',
      'https://kp.vault.azure.net/#',
      'https://kp.vault.azure.net./',
      'http://kp.vault.azure.net',
      'ftp://kp.vault.azure.net',
      'kp.vault.azure.net',
    ]) {
      for (const options of [
        { vaultUrl },
        { vaultUrl: ['https://ok.vault.azure.net', vaultUrl] },
        { keyClient: { vaultUrl } },
      ]) {
        const error = construct({ ...options, credential });
        expect(error, vaultUrl).toEqual(invalidArgument);
        expect(shown(error)).not.toContain('s3cret');
      }
    }
    for (const vaultUrl of [42, null, { toString: () => 'https://kp.vault.azure.net' }, ['https://a', 7]]) {
      expect(construct({ vaultUrl, credential }), String(vaultUrl)).toEqual(invalidArgument);
    }
    for (const keyClient of [null, 'https://kp.vault.azure.net', [undefined], { vaultUrl: 1 }]) {
      expect(construct({ keyClient, credential }), String(keyClient)).toEqual(invalidArgument);
    }
  });

  it('a credential that is not a TokenCredential (a token string) is refused at construction, never echoed', () => {
    for (const bad of ['eyJ0eXAiOiJKV1Qi.s3cret-token', { token: 's3cret-token' }, () => 's3cret-token']) {
      const error = construct({ vaultUrl: 'https://kp.vault.azure.net', credential: bad });
      expect(error).toEqual(invalidArgument);
      expect(shown(error)).not.toContain('s3cret');
    }
  });

  it('an unknown option (a typo) is refused naming it, not ignored', () => {
    for (const typo of [
      { kind: 'managedHsm' },
      { maxCryptoClients: 1 },
      { vaultURL: 'https://kp.vault.azure.net' },
    ]) {
      expect(
        construct({ vaultUrl: 'https://kp.vault.azure.net', credential, ...typo }),
        JSON.stringify(typo),
      ).toEqual(
        expect.objectContaining({
          code: 'InvalidArgument',
          message: expect.stringContaining(Object.keys(typo)[0] ?? ''),
        }),
      );
    }
  });

  it('SDK retry options that are not small whole numbers are refused (Infinity retried forever behind core)', () => {
    for (const retryOptions of [
      { maxRetries: Number.POSITIVE_INFINITY },
      { maxRetries: Number.NaN },
      { maxRetries: -1 },
      { maxRetries: '3' },
      { maxRetries: 1.5 },
      { maxRetries: 11 },
      { retryDelayInMs: Number.NaN },
      { maxRetryDelayInMs: -5 },
    ]) {
      expect(
        construct({ vaultUrl: 'https://kp.vault.azure.net', credential, clientOptions: { retryOptions } }),
        JSON.stringify(retryOptions),
      ).toEqual(invalidArgument);
    }
    for (const clientOptions of ['agent', null, [1]]) {
      expect(construct({ vaultUrl: 'https://kp.vault.azure.net', credential, clientOptions })).toEqual(
        invalidArgument,
      );
    }
    const p = new AzureKeyVaultProvider({
      vaultUrl: 'https://kp.vault.azure.net',
      credential,
      clientOptions: { retryOptions: { maxRetries: 2, retryDelayInMs: 10 } },
    });
    expect(rpcOf(p).config.clientOptions.retryOptions).toEqual({ maxRetries: 2, retryDelayInMs: 10 });
  });
});

describe('caches a caller naming ever more keys cannot grow without bound', () => {
  const fakeKey = (name: string): KeyVaultKey => ({
    name,
    key: { kty: 'EC', crv: 'P-256' },
    // A key id of this vault: keyInfoOf refuses a bundle naming another vault or none.
    properties: { name, vaultUrl: server.url, id: `${server.url}/keys/${name}/v1`, enabled: true },
  });

  it('the key spec cache keeps at most 4096 keys (README); a key whose spec was forgotten still works', async () => {
    const p = providerFor(server);
    const keyport = new Keyport({ providers: [p], retry: { maxAttempts: 1 } });
    const key = await admin.createKey('azurekeyvault', { name: uniqueName('spec'), spec: 'RSA_2048' });
    await keyport.encrypt(key.uri, randomBytes(8));
    const rpc = rpcOf(p);
    const vault = rpc.config.vaults[0] as Rpc['config']['vaults'][number];
    // What listKeys does for every key it lists, many times over.
    for (let i = 0; i < 5000; i++) keyInfoOf(rpc, vault, fakeKey(`k${i}`));
    expect(rpc.specs.size).toBe(4096);
    expect(rpc.specs.has(`${vault.url}|k4999`)).toBe(true);
    expect(rpc.specs.has(`${vault.url}|${nameOf(key.uri)}`)).toBe(false);
    const { ciphertext } = await keyport.encrypt(key.uri, new Uint8Array([7]));
    expect((await keyport.decrypt(key.uri, ciphertext)).plaintext).toEqual(new Uint8Array([7]));
    await keyport.close();
  });

  it('remembered key URIs are bounded to 1024 in all (README), however the URIs and versions are spread', () => {
    const p = new AzureKeyVaultProvider({ vaultUrl: 'https://kp.vault.azure.net', credential });
    const rpc = rpcOf(p) as unknown as {
      resolve(ref: { uri: string; version?: string }): unknown;
      resolved: Map<string, Map<string | undefined, unknown>>;
    };
    for (const name of ['a', 'b', 'c']) {
      for (let v = 0; v < 1000; v++) {
        rpc.resolve({ uri: `azurekeyvault://kp.vault.azure.net/keys/${name}`, version: `v${v}` });
      }
    }
    const total = [...rpc.resolved.values()].reduce((n, m) => n + m.size, 0);
    expect(total).toBeLessThanOrEqual(1024);
  });
});

describe('nothing half done', () => {
  it('createKey with a rotation period Key Vault refuses (< 7 days) creates no key', async () => {
    const name = uniqueName('short-rotation');
    await expect(
      admin.createKey('azurekeyvault', { name, spec: 'RSA_2048', rotation: { periodDays: 3 } }),
    ).rejects.toMatchObject({ code: 'InvalidArgument' });
    await expect(sdkClient(server).getKey(name)).rejects.toMatchObject({ statusCode: 404 });
    await expect(
      admin.createKey('azurekeyvault', { name, spec: 'RSA_2048', rotation: { periodDays: 7 } }),
    ).resolves.toMatchObject({ rotation: { periodDays: 7 } });
  });

  it('a rotation date (nextRotationAt) Key Vault cannot take is Unsupported, at createKey (no key made) and setRotationPolicy (policy unchanged)', async () => {
    const name = uniqueName('rotation-date');
    const nextRotationAt = new Date(Date.now() + 30 * 86_400_000);
    await expect(
      admin.createKey('azurekeyvault', {
        name,
        spec: 'RSA_2048',
        rotation: { periodDays: 30, nextRotationAt },
      }),
    ).rejects.toMatchObject({ code: 'Unsupported', message: expect.stringContaining('nextRotationAt') });
    await expect(sdkClient(server).getKey(name)).rejects.toMatchObject({ statusCode: 404 });
    const key = await admin.createKey('azurekeyvault', {
      name,
      spec: 'RSA_2048',
      rotation: { periodDays: 30 },
    });
    await expect(admin.setRotationPolicy(key.uri, { periodDays: 60, nextRotationAt })).rejects.toMatchObject({
      code: 'Unsupported',
    });
    expect((await admin.describeKey(key.uri)).rotation?.periodDays).toBe(30);
  });

  it('concurrent createKey and importJwk calls of one name: one key with one version, the others AlreadyExists', async () => {
    const versionsOf = async (name: string) => {
      const versions = [];
      for await (const v of sdkClient(server).listPropertiesOfKeyVersions(name)) versions.push(v);
      return versions.length;
    };
    const jwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
    for (const spec of ['RSA_2048', 'EC_P256'] as const) {
      const name = uniqueName('race');
      const results = await Promise.allSettled([
        ...Array.from({ length: 4 }, () => admin.createKey('azurekeyvault', { name, spec })),
        importJwk(admin, 'azurekeyvault', name, jwk as { kty: string }),
      ]);
      expect(
        results.filter((r) => r.status === 'fulfilled'),
        spec,
      ).toHaveLength(1);
      for (const r of results) {
        if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'AlreadyExists' });
      }
      expect(await versionsOf(name), spec).toBe(1);
    }
  });
});

describe('a key with many versions', () => {
  it('enableKey / disableKey update its versions a bounded number at a time, and every one of them', async () => {
    // Counts the version updates (PATCH) in flight at once through the SDK's own pipeline.
    let inFlight = 0;
    let most = 0;
    let patches = 0;
    let failAt = 0;
    type Policy = NonNullable<KeyClientOptions['additionalPolicies']>[number]['policy'];
    const counting: Policy = {
      name: 'count-version-updates',
      async sendRequest(request, next) {
        if (request.method !== 'PATCH') return next(request);
        patches++;
        if (patches === failAt) throw Object.assign(new Error('injected'), { code: 'ECONNRESET' });
        inFlight++;
        most = Math.max(most, inFlight);
        try {
          return await next(request);
        } finally {
          inFlight--;
        }
      },
    };
    const provider = new AzureKeyVaultProvider({
      vaultUrl: server.url,
      credential: staticToken(TOKENS.admin),
      clientOptions: {
        ...clientOptions(server.caFile),
        additionalPolicies: [{ policy: counting, position: 'perCall' }],
      },
      vaultKind: 'vault',
    });
    const kp = new Keyport({ providers: [provider], retry: { maxAttempts: 1 } });
    try {
      const key = await kp.createKey('azurekeyvault', {
        name: uniqueName('many-versions'),
        spec: 'RSA_2048',
      });
      const versions = 3 * VERSION_UPDATES_AT_ONCE + 1;
      for (let i = 1; i < versions; i++) await kp.rotateKey(key.uri);
      const disabled = await kp.disableKey(key.uri);
      expect(disabled.state).toBe('disabled');
      expect(most).toBeGreaterThan(1);
      expect(most).toBeLessThanOrEqual(VERSION_UPDATES_AT_ONCE);
      const enabledVersions = async () => {
        let n = 0;
        for await (const v of sdkClient(server).listPropertiesOfKeyVersions(nameOf(key.uri)))
          if (v.enabled) n++;
        return n;
      };
      expect(await enabledVersions()).toBe(0);
      most = 0;
      await kp.enableKey(key.uri);
      patches = 0;
      expect(most).toBeLessThanOrEqual(VERSION_UPDATES_AT_ONCE);
      expect(await enabledVersions()).toBe(versions);

      // A version update that fails: no further one starts, and none is still running once the
      // call has rejected.
      failAt = 3;
      const failed = await kp.disableKey(key.uri).catch((e: unknown) => e);
      expect(failed).toMatchObject({ code: 'Unavailable' });
      expect(inFlight).toBe(0);
      const started = patches;
      expect(started).toBeLessThan(failAt + VERSION_UPDATES_AT_ONCE);
      expect(started).toBeLessThan(versions);
    } finally {
      await kp.close();
    }
  });
});

describe('a create waiting for its turn', () => {
  it('leaves at once when its caller aborts, while the create before it runs on (driver called directly)', async () => {
    const provider = providerFor(server);
    const name = uniqueName('turn');
    const order: string[] = [];
    const first = provider
      .createKey({ name, spec: 'RSA_4096' }, { signal: new AbortController().signal })
      .then(() => order.push('first created'));
    const controller = new AbortController();
    const second = provider
      .createKey({ name, spec: 'RSA_4096' }, { signal: controller.signal })
      .catch((e: unknown) => {
        order.push(`second ${provider.mapError(e)?.code}`);
      });
    setTimeout(() => controller.abort(), 5);
    await Promise.all([first, second]);
    expect(order).toEqual(['second Aborted', 'first created']);
    await provider.close();
  });
});

describe('setValidity: dates the SDK cannot send, fields it does not know', () => {
  it('a date after 2038-01-19 (sent as 32-bit seconds, it would arrive as 1901) is refused; the key is untouched', async () => {
    const key = await admin.createKey('azurekeyvault', { name: uniqueName('y2038'), spec: 'RSA_2048' });
    for (const window of [
      { expiresOn: new Date('2040-01-01T00:00:00Z') },
      { notBefore: new Date('2038-01-19T03:14:08Z') },
      { expiresOn: new Date('1969-12-31T23:59:59Z') },
    ]) {
      await expect(setValidity(admin, key.uri, window)).rejects.toMatchObject({ code: 'InvalidArgument' });
    }
    const stored = await sdkClient(server).getKey(nameOf(key.uri));
    expect(stored.properties.expiresOn).toBeUndefined();
    expect(stored.properties.notBefore).toBeUndefined();
    await expect(admin.encrypt(key.uri, randomBytes(8))).resolves.toBeDefined();
    // The last sendable instant is sent as it is.
    const last = new Date('2038-01-19T03:14:07Z');
    await setValidity(admin, key.uri, { expiresOn: last });
    expect((await sdkClient(server).getKey(nameOf(key.uri))).properties.expiresOn).toEqual(last);
  });

  it('a misspelt field (expires, expiresAt, notAfter) is InvalidArgument, not a silent no-op', async () => {
    const key = await admin.createKey('azurekeyvault', { name: uniqueName('typo'), spec: 'RSA_2048' });
    const soon = new Date(Date.now() + 60_000);
    for (const window of [{ expires: soon }, { expiresAt: soon }, { notAfter: soon }, 'soon']) {
      await expect(setValidity(admin, key.uri, window as never)).rejects.toMatchObject({
        code: 'InvalidArgument',
      });
    }
  });
});

describe('importJwk and restoreKey: the wrong types where names, key material and flags go', () => {
  const jwk = () =>
    generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }) as {
      kty: string;
      d: string;
    };

  it('refuses every malformed argument with InvalidArgument before any request, never echoing key material', async () => {
    const name = uniqueName('imp');
    const good = jwk();
    const secret = good.d.slice(0, 24);
    for (const [nameOrUri, key, options] of [
      [42, good, {}],
      [null, good, {}],
      [name, null, {}],
      [name, 'not a jwk', {}],
      [name, { ...good, d: 12345 }, {}],
      [name, { ...good, d: `${good.d}+/=` }, {}],
      [name, { ...good, d: { value: good.d } }, {}],
      [name, { ...good, kty: ['RSA'] }, {}],
      [name, good, { usage: 'sign' }],
      [name, good, { hsm: true }],
      [name, good, { hardwareProtected: 'no' }],
      [name, good, { asNewVersion: 'true' }],
      [name, good, { labels: { team: 1 } }],
      [name, good, { labels: 'team=a' }],
      [name, good, 'options'],
    ] as const) {
      const error = await importJwk(
        admin,
        'azurekeyvault',
        nameOrUri as never,
        key as never,
        options as never,
      ).catch((e: unknown) => e);
      expect(error, `${String(nameOrUri)} ${JSON.stringify(options)}`).toBeInstanceOf(KeyportError);
      expect(error).toMatchObject({ code: 'InvalidArgument' });
      expect(shown(error)).not.toContain(secret);
    }
    await expect(sdkClient(server).getKey(name)).rejects.toMatchObject({ statusCode: 404 });
    // The same JWK, well formed: imported for signing as asked.
    await expect(
      importJwk(admin, 'azurekeyvault', name, good, { usage: 'sign_verify', labels: { team: 'a' } }),
    ).resolves.toMatchObject({ usage: 'sign_verify', labels: { team: 'a' } });
  });

  it('a JWK the vault refuses fails InvalidArgument without its private fields in the error', async () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }) as {
      kty: string;
      d: string;
    };
    // An EC key with encryption key operations: the vault answers 400.
    const error = await importJwk(admin, 'azurekeyvault', uniqueName('ec-enc'), {
      ...ec,
      crv: 'P-999',
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: expect.stringMatching(/InvalidArgument|Unsupported/) });
    expect(shown(error)).not.toContain(ec.d);
  });

  it('restoreKey refuses a backup that is not bytes and a vault host that is not a string', async () => {
    for (const [blob, host] of [
      ['backup', undefined],
      [null, undefined],
      [new Uint8Array(8), 42],
      [new Uint8Array(8), { host: hostOf(server) }],
    ] as const) {
      await expect(restoreKey(admin, 'azurekeyvault', blob as never, host as never)).rejects.toMatchObject({
        code: 'InvalidArgument',
      });
    }
  });

  it('the provider methods called directly refuse a missing ref or a signal that is not one with InvalidArgument', async () => {
    const p = providerFor(server);
    const key = await admin.createKey('azurekeyvault', { name: uniqueName('direct'), spec: 'RSA_2048' });
    for (const run of [
      () => p.backupKey(undefined as never),
      () => p.purgeDeletedKey({ uri: 42 } as never),
      () => p.setValidity(null as never, {}),
      () => p.backupKey({ uri: key.uri }, { signal: 'stop' as never }),
    ]) {
      const error = await run().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(KeyportError);
      expect(error).toMatchObject({ code: 'InvalidArgument' });
    }
  });
});

describe('errors carry no plaintext', () => {
  it('a Managed HSM AES encrypt the HSM refuses: the plaintext is in no part of the error', async () => {
    const hsm = await startAzureKeyVaultServer({
      mode: 'hsm',
      principals: { [TOKENS.admin]: 'all', 'token-get-only': ['get'] },
    });
    const make = (token: string) =>
      new Keyport({
        providers: [
          new AzureKeyVaultProvider({
            vaultUrl: hsm.url,
            credential: staticToken(token),
            clientOptions: clientOptions(hsm.caFile),
            vaultKind: 'managedHsm',
          }),
        ],
        retry: { maxAttempts: 1 },
      });
    const owner = make(TOKENS.admin);
    const getOnly = make('token-get-only');
    try {
      const key = await owner.createKey('azurekeyvault', { name: uniqueName('aes'), spec: 'AES_256' });
      const plaintext = randomBytes(48);
      const error = await getOnly
        .encrypt(key.uri, plaintext, { context: { tenant: 'acme-s3cret' } })
        .catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'AccessDenied' });
      const text = shown(error);
      for (const encoding of ['base64url', 'base64', 'hex'] as const) {
        expect(text).not.toContain(plaintext.toString(encoding).slice(0, 32));
      }
      expect(text).not.toContain('acme-s3cret');
    } finally {
      await owner.close();
      await getOnly.close();
      await hsm.stop();
    }
  });
});
