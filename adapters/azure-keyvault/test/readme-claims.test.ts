/**
 * README promises not proven elsewhere, read as a careless user and as an attacker would: the
 * SDK's retries stay off, concurrent first calls share one key look-up, signals and deadlines cut
 * requests off, the vault (not the SDK) judges every signature, validity dates are checked,
 * hostile names, labels, contexts and URIs, several vaults in one provider, and what errors carry.
 * Against keyport's Key Vault server.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { inspect } from 'node:util';
import type { KeyClientOptions } from '@azure/keyvault-keys';
import { FRAME_MECHANISMS, Keyport, readFrame, writeFrame } from '@keyport/core';
import { type AzureKeyVaultServer, startAzureKeyVaultServer } from '@keyport/test-servers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { retryAfterMsOf } from '../src/errors.js';
import { AzureKeyVaultProvider, azureKeyVault } from '../src/index.js';
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

/** Client options that also record every request the SDK sends (method and path). */
function recorded(options: KeyClientOptions): { options: KeyClientOptions; requests: string[] } {
  const requests: string[] = [];
  const policy = {
    name: 'keyport-test-recorder',
    sendRequest: async (
      request: { method: string; url: string },
      next: (r: { method: string; url: string }) => Promise<unknown>,
    ) => {
      requests.push(`${request.method} ${new URL(request.url).pathname}`);
      return next(request);
    },
  };
  return {
    options: {
      ...options,
      additionalPolicies: [{ policy, position: 'perCall' }],
    } as unknown as KeyClientOptions,
    requests,
  };
}

function driver(extra: Partial<ConstructorParameters<typeof AzureKeyVaultProvider>[0]> = {}) {
  return new AzureKeyVaultProvider({
    vaultUrl: server.url,
    credential: staticToken(TOKENS.admin),
    clientOptions: clientOptions(server.caFile),
    pollIntervalMs: 5,
    ...extra,
  });
}

const nameOf = (uri: string) => uri.split('/keys/')[1] ?? '';

describe('retries: core is the only one', () => {
  it('retryOptions given without maxRetries (or with maxRetries: undefined) keep the SDK from retrying', async () => {
    const key = await admin.createKey('azurekeyvault', { name: uniqueName('retry'), spec: 'RSA_2048' });
    // `maxRetries: undefined` is what JavaScript callers and TypeScript without exactOptionalPropertyTypes write.
    const given = [{ retryDelayInMs: 1 }, { maxRetries: undefined, retryDelayInMs: 1 }] as {
      retryDelayInMs: number;
    }[];
    for (const retryOptions of given) {
      const keyport = new Keyport({
        providers: [driver({ clientOptions: { ...clientOptions(server.caFile), retryOptions } })],
        retry: { maxAttempts: 1 },
      });
      server.faults.set({ throttle: { requests: 1, retryAfterSeconds: 0 } });
      try {
        // One throttled answer: an SDK retry would have succeeded behind core's back.
        await expect(keyport.describeKey(key.uri)).rejects.toMatchObject({ code: 'Throttled' });
      } finally {
        server.faults.clear();
        await keyport.close();
      }
    }
  });

  it('an empty retry-after-ms does not hide the Retry-After beside it', () => {
    const headers = new Map([
      ['retry-after-ms', ''],
      ['x-ms-retry-after-ms', ' '],
      ['retry-after', '5'],
    ]);
    const error = {
      name: 'RestError',
      statusCode: 429,
      response: { headers: { get: (n: string) => headers.get(n) } },
    };
    expect(retryAfterMsOf(error)).toBe(5000);
    headers.set('retry-after-ms', '250');
    expect(retryAfterMsOf(error)).toBe(250);
    for (const bad of ['-1', 'NaN', 'Infinity', '1e400', '0x10']) {
      headers.set('retry-after-ms', bad);
      expect(retryAfterMsOf(error)).toBe(5000);
    }
  });
});

describe('concurrent callers', () => {
  it('16 first calls on a key share one `get` (least privilege: "once per key"), and all succeed', async () => {
    const key = await admin.createKey('azurekeyvault', { name: uniqueName('burst'), spec: 'RSA_2048' });
    const { options, requests } = recorded(clientOptions(server.caFile));
    const keyport = new Keyport({
      providers: [driver({ clientOptions: options })],
      retry: { maxAttempts: 1 },
    });
    const sealed = await Promise.all(
      Array.from({ length: 16 }, (_, i) => keyport.encrypt(key.uri, new Uint8Array([i]))),
    );
    expect(requests.filter((r) => r === `GET /keys/${nameOf(key.uri)}/`)).toHaveLength(1);
    expect(requests.filter((r) => r.endsWith('/wrapkey'))).toHaveLength(16);
    const opened = await Promise.all(sealed.map((s) => keyport.decrypt(key.uri, s.ciphertext)));
    expect(opened.map((o) => o.plaintext[0])).toEqual(Array.from({ length: 16 }, (_, i) => i));
    await keyport.close();
  });

  it('a caller whose signal cuts the shared look-up off does not fail the callers that joined it', async () => {
    const key = await admin.createKey('azurekeyvault', { name: uniqueName('join'), spec: 'RSA_2048' });
    const keyport = new Keyport({ providers: [driver()], retry: { maxAttempts: 1 } });
    server.faults.set({ latencyMs: 300 });
    try {
      const first = new AbortController();
      const aborted = keyport.encrypt(key.uri, randomBytes(8), { signal: first.signal });
      const joined = keyport.encrypt(key.uri, randomBytes(8));
      setTimeout(() => first.abort(), 50);
      await expect(aborted).rejects.toMatchObject({ code: 'Aborted' });
      await expect(joined).resolves.toMatchObject({ keyVersion: key.primaryVersion });
    } finally {
      server.faults.clear();
      await keyport.close();
    }
  });

  it('maxCryptographyClients bounds the clients kept; evicted keys still work', async () => {
    const p = driver({ maxCryptographyClients: 1 });
    const keyport = new Keyport({ providers: [p], retry: { maxAttempts: 1 } });
    const keys = await Promise.all(
      [1, 2, 3].map(() => admin.createKey('azurekeyvault', { name: uniqueName('lru'), spec: 'RSA_2048' })),
    );
    for (const round of [0, 1]) {
      for (const key of keys) {
        const { ciphertext } = await keyport.encrypt(key.uri, new Uint8Array([round]));
        expect((await keyport.decrypt(key.uri, ciphertext)).plaintext).toEqual(new Uint8Array([round]));
      }
    }
    const cache = (p as unknown as { rpc: { cryptoClients: Map<string, unknown> } }).rpc.cryptoClients;
    expect(cache.size).toBeLessThanOrEqual(1);
    await keyport.close();
  });
});

describe('abort and deadlines reach the request in flight', () => {
  // The server answers after 5 s; generous bounds: the call must end long before that.
  it('a signal fired mid-request ends encrypt, a Key Vault-only operation and deletion with Aborted', async () => {
    const key = await admin.createKey('azurekeyvault', { name: uniqueName('abort'), spec: 'RSA_2048' });
    const { backupKey } = await import('../src/index.js');
    server.faults.set({ latencyMs: 5000 });
    try {
      for (const run of [
        (signal: AbortSignal) => admin.encrypt(key.uri, randomBytes(8), { signal }),
        (signal: AbortSignal) => backupKey(admin, key.uri, { signal }),
        (signal: AbortSignal) => admin.scheduleKeyDeletion(key.uri, {}, { signal }),
      ]) {
        const started = Date.now();
        await expect(run(AbortSignal.timeout(100))).rejects.toMatchObject({ code: 'Aborted' });
        expect(Date.now() - started).toBeLessThan(4000);
      }
      const started = Date.now();
      await expect(admin.describeKey(key.uri, { timeoutMs: 100 })).rejects.toMatchObject({ code: 'Timeout' });
      expect(Date.now() - started).toBeLessThan(4000);
    } finally {
      server.faults.clear();
    }
    // Nothing half-done: the key is still live.
    await expect(admin.describeKey(key.uri)).resolves.toMatchObject({ state: 'enabled' });
  });
});

describe('the vault judges every operation', () => {
  it('verify on a disabled key is refused by the vault (KeyStateConflict), not answered locally', async () => {
    const key = await admin.createKey('azurekeyvault', { name: uniqueName('dis'), spec: 'EC_P256' });
    const message = randomBytes(32);
    const { signature, algorithm } = await admin.sign(key.uri, message);
    await admin.disableKey(key.uri);
    await expect(admin.verify(key.uri, message, signature, { algorithm })).rejects.toMatchObject({
      code: 'KeyStateConflict',
    });
  });

  it('outside the validity window sign is KeyStateConflict and verify still works; before notBefore too', async () => {
    const p = driver();
    const key = await admin.createKey('azurekeyvault', { name: uniqueName('window'), spec: 'EC_P384' });
    const message = randomBytes(32);
    const { signature, algorithm } = await admin.sign(key.uri, message);
    await p.setValidity({ uri: key.uri }, { expiresOn: new Date(Date.now() - 60_000) });
    await expect(admin.sign(key.uri, message)).rejects.toMatchObject({ code: 'KeyStateConflict' });
    expect(await admin.verify(key.uri, message, signature, { algorithm })).toBe(true);
    const later = await admin.createKey('azurekeyvault', { name: uniqueName('nbf'), spec: 'RSA_2048' });
    await p.setValidity({ uri: later.uri }, { notBefore: new Date(Date.now() + 3_600_000) });
    await expect(admin.encrypt(later.uri, randomBytes(8))).rejects.toMatchObject({
      code: 'KeyStateConflict',
    });
  });

  it('setValidity refuses what is not a valid Date (InvalidArgument) and leaves the key as it was', async () => {
    const p = driver();
    const key = await admin.createKey('azurekeyvault', { name: uniqueName('date'), spec: 'RSA_2048' });
    const { ciphertext } = await admin.encrypt(key.uri, randomBytes(8));
    for (const window of [
      { expiresOn: new Date('not a date') },
      { notBefore: new Date(Number.NaN) },
      { expiresOn: '2027-01-01' },
      { expiresOn: Date.now() + 60_000 },
      { expiresOn: null },
    ]) {
      await expect(p.setValidity({ uri: key.uri }, window as never)).rejects.toMatchObject({
        code: 'InvalidArgument',
      });
    }
    const stored = await sdkClient(server).getKey(nameOf(key.uri));
    expect(stored.properties.expiresOn).toBeUndefined();
    expect(stored.properties.notBefore).toBeUndefined();
    await expect(admin.encrypt(key.uri, randomBytes(8))).resolves.toBeDefined();
    await expect(admin.decrypt(key.uri, ciphertext)).resolves.toBeDefined();
  });
});

describe('hostile values', () => {
  it('__proto__ and constructor as label names round-trip as plain labels, polluting nothing', async () => {
    const labels = JSON.parse('{"__proto__":"x","constructor":"y","team":"z"}') as Record<string, string>;
    const key = await admin.createKey('azurekeyvault', {
      name: uniqueName('proto'),
      spec: 'EC_P256',
      labels,
    });
    const described = await admin.describeKey(key.uri);
    expect(Object.getPrototypeOf(described.labels)).toBe(Object.prototype);
    expect(Object.hasOwn(described.labels ?? {}, '__proto__')).toBe(true);
    expect(JSON.stringify(described.labels)).toBe('{"__proto__":"x","constructor":"y","team":"z"}');
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });

  it('a label named like the description tag is refused, not silently turned into the description', async () => {
    const labels = { 'keyport-description': 'looks like a label' };
    await expect(
      admin.createKey('azurekeyvault', { name: uniqueName('desc'), spec: 'EC_P256', labels }),
    ).rejects.toMatchObject({ code: 'InvalidArgument' });
    const jwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
    await expect(
      driver().importJwk(uniqueName('desc'), jwk as { kty: string }, { labels }),
    ).rejects.toMatchObject({
      code: 'InvalidArgument',
    });
    const key = await admin.createKey('azurekeyvault', {
      name: uniqueName('desc'),
      spec: 'EC_P256',
      labels: { team: 'a' },
      description: 'kept',
    });
    expect(await admin.describeKey(key.uri)).toMatchObject({ labels: { team: 'a' }, description: 'kept' });
  });

  it('__proto__ as a context key is bound like any other; an empty plaintext round-trips', async () => {
    const key = await admin.createKey('azurekeyvault', { name: uniqueName('ctxp'), spec: 'RSA_2048' });
    const context = JSON.parse('{"__proto__":"evil","tenant":"acme"}') as Record<string, string>;
    const { ciphertext } = await admin.encrypt(key.uri, randomBytes(8), { context });
    await expect(admin.decrypt(key.uri, ciphertext, { context })).resolves.toBeDefined();
    for (const wrong of [{ tenant: 'acme' }, JSON.parse('{"__proto__":"other","tenant":"acme"}')]) {
      await expect(admin.decrypt(key.uri, ciphertext, { context: wrong })).rejects.toMatchObject({
        code: 'InvalidCiphertext',
      });
    }
    const empty = await admin.encrypt(key.uri, new Uint8Array(0), { context: { a: 'b' } });
    const opened = await admin.decrypt(key.uri, empty.ciphertext, { context: { a: 'b' } });
    expect(opened.plaintext.length).toBe(0);
  });

  it('odd key URIs and versions are refused (InvalidArgument) before any request', async () => {
    const { options, requests } = recorded(clientOptions(server.caFile));
    const keyport = new Keyport({
      providers: [driver({ clientOptions: options })],
      retry: { maxAttempts: 1 },
    });
    const host = hostOf(server);
    for (const uri of [
      `azurekeyvault://${host}/keys/a%2Fb`,
      `azurekeyvault://${host}/keys/a%2e%2e`,
      `azurekeyvault://${host}/keys/${'a'.repeat(128)}`,
      `azurekeyvault://${host}/keys/ünï`,
      `azurekeyvault://${host}/keys/k/`,
      `azurekeyvault://${host}/keys/k?api-version=1`,
      `azurekeyvault://${host}/keys/k#x`,
      `azurekeyvault://${host}./keys/k`,
      `azurekeyvault://user@${host}/keys/k`,
      `azurekeyvault://${host}/keys/k/v1/extra`,
      `azurekeyvault://evil.vault.azure.net/keys/k`,
    ]) {
      await expect(keyport.encrypt(uri, randomBytes(8)), uri).rejects.toMatchObject({
        code: 'InvalidArgument',
      });
    }
    expect(requests).toEqual([]);
    await keyport.close();
  });

  it('a keyport frame naming a version that is not a Key Vault version id never reaches a request path', async () => {
    const key = await admin.createKey('azurekeyvault', { name: uniqueName('frame'), spec: 'RSA_2048' });
    const { ciphertext } = await admin.encrypt(key.uri, randomBytes(8));
    const { body } = readFrame(ciphertext);
    const { options, requests } = recorded(clientOptions(server.caFile));
    const keyport = new Keyport({
      providers: [driver({ clientOptions: options })],
      retry: { maxAttempts: 1 },
    });
    // Core's frame allows [A-Za-z0-9._-]; Key Vault versions are letters and digits only.
    for (const version of ['..', '.', 'a.b', '-', 'v_1']) {
      const hostile = writeFrame(FRAME_MECHANISMS.WRAPPED_KEY_AES_256_GCM, version, body);
      await expect(keyport.decrypt(key.uri, hostile)).rejects.toMatchObject({ code: 'InvalidCiphertext' });
    }
    expect(requests).toEqual([]);
    await keyport.close();
  });

  it('options: NaN, strings and unknown kinds where numbers and kinds go are InvalidArgument', () => {
    const base = { vaultUrl: 'https://kp.vault.azure.net', credential: staticToken('unused') };
    for (const bad of [
      { pollIntervalMs: Number.NaN },
      { pollIntervalMs: '5' },
      { pollIntervalMs: 0 },
      { maxCryptographyClients: Number.NaN },
      { maxCryptographyClients: 0 },
      { maxCryptographyClients: '256' },
      { vaultKind: 'hsm' },
      { vaultUrl: 'not a url' },
      { vaultUrl: 'http://kp.vault.azure.net' },
    ]) {
      expect(() => new AzureKeyVaultProvider({ ...base, ...bad } as never), JSON.stringify(bad)).toThrow(
        expect.objectContaining({ code: 'InvalidArgument' }),
      );
    }
  });
});

describe('what errors and URIs carry', () => {
  it('the bearer token is in no error: not its message, its JSON, nor its inspected cause chain', async () => {
    const token = 'tok-secret-7f3a9c1e5b2d4a68';
    const denied = await startAzureKeyVaultServer({ mode: 'vault', principals: { [token]: ['get'] } });
    const keyport = new Keyport({
      providers: [
        new AzureKeyVaultProvider({
          vaultUrl: denied.url,
          credential: staticToken(token),
          clientOptions: clientOptions(denied.caFile),
        }),
      ],
      retry: { maxAttempts: 1 },
    });
    try {
      const error = await keyport
        .createKey('azurekeyvault', { name: uniqueName('tok'), spec: 'RSA_2048' })
        .catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'AccessDenied' });
      const seen = `${String(error)} ${JSON.stringify(error)} ${inspect(error, { depth: Number.POSITIVE_INFINITY, showHidden: true })}`;
      expect(seen).not.toContain(token);
      expect(seen).not.toContain(token.slice(10));
    } finally {
      await keyport.close();
      await denied.stop();
    }
  });

  it('credentials in a vault URL are refused at construction (never echoed), so they never reach a key URI', () => {
    const error = (() => {
      try {
        return new AzureKeyVaultProvider({
          vaultUrl: `https://user:s3cret-pass@${hostOf(server)}`,
          credential: staticToken(TOKENS.admin),
          clientOptions: clientOptions(server.caFile),
        });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toMatchObject({ code: 'InvalidArgument' });
    expect(inspect(error, { depth: Number.POSITIVE_INFINITY })).not.toContain('s3cret');
  });
});

describe('several vaults in one provider', () => {
  it('bare names go to the first vault, URIs to the vault they name; listKeys covers both; other hosts get nothing', async () => {
    const second = await startServer('vault');
    const agent = new Agent({
      ca: [readFileSync(server.caFile), readFileSync(second.caFile)],
      keepAlive: true,
    });
    const { options, requests } = recorded({ agent, disableChallengeResourceVerification: true });
    const keyport = new Keyport({
      providers: [
        azureKeyVault({
          vaultUrl: [server.url, second.url],
          credential: staticToken(TOKENS.admin),
          clientOptions: options,
        }),
      ],
      retry: { maxAttempts: 1 },
    });
    try {
      const first = await keyport.createKey('azurekeyvault', { name: uniqueName('multi'), spec: 'RSA_2048' });
      expect(first.uri.startsWith(`azurekeyvault://${hostOf(server)}/`)).toBe(true);
      const other = await keyport.createKey('azurekeyvault', {
        name: `azurekeyvault://${hostOf(second)}/keys/${uniqueName('multi')}`,
        spec: 'RSA_2048',
      });
      expect(other.uri.startsWith(`azurekeyvault://${hostOf(second)}/`)).toBe(true);
      await expect(sdkClient(second).getKey(nameOf(other.uri))).resolves.toBeDefined();
      const sealed = await keyport.encrypt(other.uri, randomBytes(8), { context: { a: 'b' } });
      await expect(
        keyport.decrypt(other.uri, sealed.ciphertext, { context: { a: 'b' } }),
      ).resolves.toBeDefined();
      // The other vault's ciphertext under the first vault's key: not this key's.
      await expect(
        keyport.decrypt(first.uri, sealed.ciphertext, { context: { a: 'b' } }),
      ).rejects.toMatchObject({
        code: 'InvalidCiphertext',
      });
      const listed: string[] = [];
      for await (const k of keyport.listKeys('azurekeyvault')) listed.push(k.uri);
      expect(listed).toEqual(expect.arrayContaining([first.uri, other.uri]));
      const before = requests.length;
      await expect(
        keyport.encrypt(`azurekeyvault://127.0.0.1:1/keys/${nameOf(first.uri)}`, randomBytes(8)),
      ).rejects.toMatchObject({ code: 'InvalidArgument' });
      expect(requests.length).toBe(before);
    } finally {
      await keyport.close();
      await second.stop();
    }
  });
});
