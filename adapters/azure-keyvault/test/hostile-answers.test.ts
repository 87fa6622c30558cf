/**
 * What the adapter reads back, read as an attacker would write it: answers from a server that is
 * not quite Key Vault, or a proxy in front of it. keyport's Key Vault server never answers so, so
 * a stand-in answers here: an SDK `httpClient` that plays the vault in-process (the SDK's whole
 * pipeline, keyport's policies included, runs before it), recording every URL asked for.
 */
import { generateKeyPairSync } from 'node:crypto';
import { KeyClient, type KeyClientOptions } from '@azure/keyvault-keys';
import { Keyport, KeyportError, MAX_TIMER_MS } from '@keyport/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { retryAfterMsOf } from '../src/errors.js';
import { AzureKeyVaultProvider } from '../src/index.js';
import { MAX_EMPTY_PAGES, MAX_LISTED_VERSIONS } from '../src/keys.js';
import { staticToken } from './support/server.js';

type HttpClient = NonNullable<KeyClientOptions['httpClient']>;
type PipelineRequest = Parameters<HttpClient['sendRequest']>[0];
interface Answer {
  readonly status?: number;
  readonly body?: unknown;
}
type Route = (url: URL, method: string) => Answer | undefined;

const VAULT = 'https://kp.vault.azure.net';
const HOST = 'kp.vault.azure.net';
const TOKEN = 's3cret-token-value';

function headersOf(values: Record<string, string>) {
  const map = new Map(Object.entries(values).map(([k, v]) => [k.toLowerCase(), v]));
  return {
    get: (name: string) => map.get(name.toLowerCase()),
    has: (name: string) => map.has(name.toLowerCase()),
    set: (name: string, value: string | number | boolean) => void map.set(name.toLowerCase(), String(value)),
    delete: (name: string) => void map.delete(name.toLowerCase()),
    toJSON: () => Object.fromEntries(map),
    [Symbol.iterator]: () => map.entries(),
  };
}

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
const attributes = { enabled: true, created: 1_700_000_000, updated: 1_700_000_000 };
const b64 = (n: number, fill = 1) => Buffer.alloc(n, fill).toString('base64url');

/** A key bundle as Key Vault answers it, with `over` merged in. */
function bundle(name: string, over: Record<string, unknown> = {}, keyOver: Record<string, unknown> = {}) {
  return {
    key: {
      kid: `${VAULT}/keys/${name}/v1`,
      kty: 'RSA',
      key_ops: ['wrapKey', 'unwrapKey'],
      n: rsa.n,
      e: rsa.e,
      ...keyOver,
    },
    attributes,
    tags: {},
    ...over,
  };
}
const ecBundle = (name: string) =>
  bundle(
    name,
    {},
    { kty: 'EC', crv: 'P-256', x: ec.x, y: ec.y, n: undefined, e: undefined, key_ops: ['sign'] },
  );

const REQUEST_CAP = 400;
let requests: string[];
let route: Route;
let keyport: Keyport;
let httpClient: HttpClient;

beforeEach(() => {
  requests = [];
  route = () => undefined;
  httpClient = {
    async sendRequest(request: PipelineRequest) {
      requests.push(request.url);
      // A macrotask per answer, as a socket would take: a listing that never ends then cannot
      // starve the test's timers; and past REQUEST_CAP the stand-in stops answering (500), so
      // code that would loop forever fails the test rather than hang or fill memory.
      await new Promise((resolve) => setImmediate(resolve));
      const url = new URL(request.url);
      const answer =
        requests.length > REQUEST_CAP ? { status: 500 } : (route(url, request.method) ?? defaults(url));
      return {
        request,
        status: answer.status ?? 200,
        headers: headersOf({ 'content-type': 'application/json', 'x-ms-request-id': 'req-1' }),
        bodyAsText: answer.body === undefined ? '' : JSON.stringify(answer.body),
      } as Awaited<ReturnType<HttpClient['sendRequest']>>;
    },
  };
  keyport = new Keyport({
    providers: [
      new AzureKeyVaultProvider({
        vaultUrl: VAULT,
        credential: staticToken(TOKEN),
        clientOptions: { httpClient },
        vaultKind: 'vault',
      }),
    ],
    retry: { maxAttempts: 1 },
  });
});
afterEach(async () => {
  await keyport.close();
});

const notFound = { status: 404, body: { error: { code: 'KeyNotFound', message: 'no key' } } };
/** What the stand-in answers when a test's route does not: no other keys, no rotation policy. */
function defaults(url: URL): Answer {
  if (url.pathname === '/deletedkeys') return { body: { value: [] } };
  if (/\/rotationpolicy$/.test(url.pathname)) return { body: { lifetimeActions: [] } };
  if (/^\/keys\/[^/]+\/versions$/.test(url.pathname)) return { body: { value: [] } };
  return notFound;
}
const keyPath = (url: URL) => /^\/keys\/([^/]+)\/?([^/]*)$/.exec(url.pathname);

async function failure(run: Promise<unknown> | (() => Promise<unknown>)): Promise<KeyportError> {
  try {
    await (typeof run === 'function' ? run() : run);
  } catch (e) {
    expect(e).toBeInstanceOf(KeyportError);
    return e as KeyportError;
  }
  throw new Error('expected a failure');
}
async function listAll(): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const k of keyport.listKeys('azurekeyvault')) out.push(k);
  return out;
}
const shown = (e: KeyportError) => `${e.message} ${JSON.stringify(e)}`;

describe('listings that do not end', () => {
  const page = (names: string[], next?: string) => ({
    body: {
      value: names.map((n) => ({ kid: `${VAULT}/keys/${n}`, attributes })),
      ...(next !== undefined ? { nextLink: next } : {}),
    },
  });
  const getKeyRoute = (url: URL): Answer | undefined => {
    const m = keyPath(url);
    return m?.[1] !== undefined && m[1] !== 'versions' ? { body: bundle(m[1]) } : undefined;
  };

  it('a key listing whose nextLink repeats itself ends with Internal', { timeout: 10_000 }, async () => {
    const again = `${VAULT}/keys?api-version=7.6&$skiptoken=again`;
    route = (url) => (url.pathname === '/keys' ? page(['a', 'b'], again) : getKeyRoute(url));
    const error = await failure(listAll);
    expect(error.code).toBe('Internal');
    expect(error.message).toMatch(/already given/);
    expect(requests.filter((u) => u.startsWith(`${VAULT}/keys?`)).length).toBeLessThan(5);
  });

  it('a key listing whose nextLinks cycle (A, B, A) ends with Internal', { timeout: 10_000 }, async () => {
    const link = (t: string) => `${VAULT}/keys?api-version=7.6&$skiptoken=${t}`;
    route = (url) => {
      if (url.pathname !== '/keys') return getKeyRoute(url);
      const token = url.searchParams.get('$skiptoken');
      return token === 'b' ? page(['c'], link('a')) : page(['a', 'b'], link('b'));
    };
    expect((await failure(listAll)).code).toBe('Internal');
  });

  it('a deleted-key listing of endless empty pages ends with Internal', { timeout: 20_000 }, async () => {
    let n = 0;
    route = (url) =>
      url.pathname === '/deletedkeys'
        ? page([], `${VAULT}/deletedkeys?api-version=7.6&$skiptoken=${n++}`)
        : url.pathname === '/keys'
          ? page([])
          : undefined;
    const error = await failure(listAll);
    expect(error.code).toBe('Internal');
    expect(n).toBe(MAX_EMPTY_PAGES + 1);
  });

  it('a versions listing that repeats its nextLink ends describeKey with Internal', {
    timeout: 10_000,
  }, async () => {
    route = (url) => {
      if (url.pathname === '/keys/k/versions') {
        return {
          body: {
            value: [{ kid: `${VAULT}/keys/k/v1`, attributes }],
            nextLink: `${VAULT}/keys/k/versions?api-version=7.6&$skiptoken=x`,
          },
        };
      }
      return getKeyRoute(url);
    };
    const error = await failure(keyport.describeKey(`azurekeyvault://${HOST}/keys/k`));
    expect(error.code).toBe('Internal');
  });

  it('versions collected stop at MAX_LISTED_VERSIONS, however many pages follow', {
    timeout: 30_000,
  }, async () => {
    let n = 0;
    route = (url) => {
      if (url.pathname === '/keys/k/versions') {
        n++;
        const value = Array.from({ length: 500 }, (_, i) => ({
          kid: `${VAULT}/keys/k/v${n}x${i}`,
          attributes,
        }));
        return { body: { value, nextLink: `${VAULT}/keys/k/versions?api-version=7.6&$skiptoken=${n}` } };
      }
      return getKeyRoute(url);
    };
    const error = await failure(keyport.describeKey(`azurekeyvault://${HOST}/keys/k`));
    expect(error.code).toBe('Internal');
    expect(n).toBe(MAX_LISTED_VERSIONS / 500 + 1);
  });

  it('a page far longer than asked is described a page size at a time, not all at once', async () => {
    // Key Vault pages hold at most 25 keys (keyport asks for 25); a server answering thousands
    // in one page made as many key reads at once (300 here: the stand-in answers 400 requests).
    const names = Array.from({ length: 300 }, (_, i) => `k${i}`);
    let reading = 0;
    let most = 0;
    const inner = httpClient.sendRequest.bind(httpClient);
    httpClient.sendRequest = async (request) => {
      const single = /^\/keys\/[^/]+\/?$/.test(new URL(request.url).pathname);
      if (single) most = Math.max(most, ++reading);
      try {
        return await inner(request);
      } finally {
        if (single) reading--;
      }
    };
    route = (url) => (url.pathname === '/keys' ? page(names) : getKeyRoute(url));
    const listed = await listAll();
    expect(listed).toHaveLength(names.length);
    expect(listed.map((k) => (k as { uri: string }).uri)).toEqual(
      names.map((n) => `azurekeyvault://${HOST}/keys/${n}`),
    );
    expect(most).toBeGreaterThan(1);
    expect(most).toBeLessThanOrEqual(25);
  });

  it('a nextLink to another host is never followed: Internal, no request reaches it', async () => {
    route = (url) =>
      url.host === HOST && url.pathname === '/keys'
        ? page(['a'], 'https://attacker.example/keys?$skiptoken=1')
        : url.host !== HOST
          ? page(['planted'])
          : getKeyRoute(url);
    const error = await failure(listAll);
    expect(error.code).toBe('Internal');
    expect(requests.some((u) => u.includes('attacker.example'))).toBe(false);
    expect(shown(error)).not.toContain('attacker.example');
  });

  it('a caller-built KeyClient is held to its vault too: a nextLink to another host is not followed', async () => {
    route = (url) =>
      url.host === HOST && url.pathname === '/keys'
        ? page(['a'], 'https://attacker.example/keys?$skiptoken=1')
        : url.host !== HOST
          ? page(['planted'])
          : getKeyRoute(url);
    // Built by the caller, with none of keyport's options: keyport adds its policies to it.
    const keyClient = new KeyClient(VAULT, staticToken(TOKEN), {
      httpClient,
      retryOptions: { maxRetries: 0 },
    });
    const provider = new AzureKeyVaultProvider({
      keyClient,
      credential: staticToken(TOKEN),
      vaultKind: 'vault',
    });
    const own = new Keyport({ providers: [provider], retry: { maxAttempts: 1 } });
    try {
      const error = await failure(async () => {
        for await (const _ of own.listKeys('azurekeyvault'));
      });
      expect(error.code).toBe('Internal');
      expect(requests.some((u) => u.includes('attacker.example'))).toBe(false);
      expect(requests.some((u) => new URL(u).pathname === '/keys')).toBe(true);
      // Given to a second provider, the client still works (its policies are not doubled).
      const again = new AzureKeyVaultProvider({
        keyClient,
        credential: staticToken(TOKEN),
        vaultKind: 'vault',
      });
      route = (url) => (url.pathname === '/keys' ? page(['a']) : getKeyRoute(url));
      const listed: unknown[] = [];
      for await (const k of again.listKeys({ signal: new AbortController().signal })) listed.push(k);
      expect(listed).toHaveLength(1);
    } finally {
      await own.close();
    }
  });

  it('a keyClient that is not a KeyClient keyport can hold to its vault is refused (InvalidArgument)', () => {
    expect(
      () => new AzureKeyVaultProvider({ keyClient: { vaultUrl: VAULT } as never, vaultKind: 'vault' }),
    ).toThrow(expect.objectContaining({ code: 'InvalidArgument' }));
  });
});

describe('key bundles of the wrong shape', () => {
  const uri = `azurekeyvault://${HOST}/keys/k`;
  const answering = (body: unknown) => {
    route = (url) => (/^\/keys\/k\/(v1)?$/.test(url.pathname) ? { body } : undefined);
  };

  it.each([
    ['a kid naming another key', bundle('other')],
    ['a kid naming another vault', bundle('k', {}, { kid: 'https://evil.vault.azure.net/keys/k/v1' })],
    ['no kid', bundle('k', {}, { kid: undefined })],
    ['a version with path characters', bundle('k', {}, { kid: `${VAULT}/keys/k/v1%2F..%2Fx` })],
    ['no key at all', { attributes, tags: {} }],
    ['a created date out of range', bundle('k', { attributes: { ...attributes, created: 1e20 } })],
    ['tags that are not strings', bundle('k', { tags: { a: { b: 1 } } })],
  ])('a key read with %s is Internal, never a TypeError or another key', async (_, body) => {
    answering(body);
    const error = await failure(keyport.describeKey(uri));
    expect(error.code).toBe('Internal');
    expect(shown(error)).not.toContain('evil.vault');
    // Nothing was cached for the key the answer named: the next call asks again.
    expect(await failure(keyport.encrypt(uri, new Uint8Array([1])))).toMatchObject({ code: 'Internal' });
  });

  it('a listing page without its value list is Internal, not Unavailable', async () => {
    route = (url) => (url.pathname === '/keys' ? { body: { nextLink: null } } : undefined);
    expect((await failure(listAll)).code).toBe('Internal');
  });

  it('an unknown kty or an enormous modulus is a typed refusal', async () => {
    for (const keyOver of [{ kty: 'XYZ' }, { n: b64(1 << 20) }]) {
      answering(bundle('k', {}, keyOver));
      const error = await failure(keyport.describeKey(uri));
      expect(['Unsupported', 'Internal']).toContain(error.code);
    }
  });

  it('tags named __proto__ and constructor are labels, never a prototype', async () => {
    answering(bundle('k', { tags: JSON.parse('{"__proto__":"x","constructor":"y","ok":"z"}') }));
    const info = await keyport.describeKey(uri);
    expect(Object.getPrototypeOf(info.labels)).toBe(Object.prototype);
    expect(Object.hasOwn(info.labels, '__proto__')).toBe(true);
    expect(info.labels.constructor).toBe('y');
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });

  it("getPublicKey of a pinned version answered with another version's key is Internal, never that key", async () => {
    // The stand-in answers v2's bundle whatever version is asked for.
    route = (url) =>
      keyPath(url)?.[1] === 'k' ? { body: bundle('k', {}, { kid: `${VAULT}/keys/k/v2` }) } : undefined;
    const error = await failure(keyport.getPublicKey(`${uri}/v1`));
    expect(error.code).toBe('Internal');
    expect(error.message).toMatch(/another version/);
    // The version asked for, in other case, is that version.
    route = (url) =>
      keyPath(url)?.[1] === 'k' ? { body: bundle('k', {}, { kid: `${VAULT}/keys/k/V1` }) } : undefined;
    await expect(keyport.getPublicKey(`${uri}/v1`)).resolves.toBeInstanceOf(Uint8Array);
  });

  it('a public key whose x is not its curve size is Internal, naming the public key', async () => {
    answering({ ...ecBundle('k'), key: { ...ecBundle('k').key, x: b64(1 << 16) } });
    const error = await failure(keyport.getPublicKey(uri));
    expect(error.code).toBe('Internal');
    expect(error.message).toMatch(/public key/);
  });
});

describe('crypto results of the wrong shape', () => {
  const uri = `azurekeyvault://${HOST}/keys/k`;
  const crypto = (name: string, op: Answer, key = bundle(name)) => {
    route = (url, method) => {
      if (method === 'POST' && /\/(wrapkey|sign|encrypt)$/.test(url.pathname)) return op;
      return keyPath(url)?.[1] === name ? { body: key } : undefined;
    };
  };

  it.each([
    ['an enormous value', { kid: `${VAULT}/keys/k/v1`, value: b64(4 << 20) }],
    ['a value longer than the modulus', { kid: `${VAULT}/keys/k/v1`, value: b64(300) }],
    ['a value that is not base64url', { kid: `${VAULT}/keys/k/v1`, value: '!!!!' }],
  ])('a wrapKey answer with %s is Internal, not a ciphertext', async (_, body) => {
    crypto('k', { body });
    expect(await failure(keyport.encrypt(uri, new Uint8Array([1, 2, 3])))).toMatchObject({
      code: 'Internal',
    });
  });

  it('a wrapKey answer whose kid names another key is Internal, not a ciphertext of that version', async () => {
    crypto('k', { body: { kid: `${VAULT}/keys/other/v9`, value: b64(256) } });
    const error = await failure(keyport.encrypt(uri, new Uint8Array([1])));
    expect(error.code).toBe('Internal');
    expect(error.message).toMatch(/another vault or key/);
  });

  it('a wrapKey answer for a pinned version whose kid names another version is Internal, not a ciphertext naming the pinned one', async () => {
    crypto('k', { body: { kid: `${VAULT}/keys/k/v2`, value: b64(256) } });
    const error = await failure(keyport.encrypt(`${uri}/v1`, new Uint8Array([1])));
    expect(error.code).toBe('Internal');
    expect(error.message).toMatch(/another version/);
    // The same version in other case is the same version.
    crypto('k', { body: { kid: `${VAULT}/keys/k/V1`, value: b64(256) } });
    await expect(keyport.encrypt(`${uri}/v1`, new Uint8Array([1]))).resolves.toMatchObject({
      keyVersion: 'v1',
    });
  });

  it('a wrapKey answer of the wrong size is Internal after the key is read once more: sent again only for another spec, once', async () => {
    const sent = (re: RegExp) => requests.filter((u) => re.test(new URL(u).pathname)).length;
    const misfit = { body: { kid: `${VAULT}/keys/k/v1`, value: b64(300) } };
    // The key read anew is what it was: the answer is the vault's fault, not the cache's.
    crypto('k', misfit);
    expect(await failure(keyport.encrypt(uri, new Uint8Array([1])))).toMatchObject({ code: 'Internal' });
    expect([sent(/^\/keys\/k\/?$/), sent(/wrapkey$/)]).toEqual([2, 1]);

    // Read anew as another size (the cache held 2048 bits), the answer fitting neither: one more
    // wrapKey, then Internal.
    requests = [];
    const rsa3072 = generateKeyPairSync('rsa', { modulusLength: 3072 }).publicKey.export({ format: 'jwk' });
    crypto('k', misfit, bundle('k', {}, { n: rsa3072.n }));
    expect(await failure(keyport.encrypt(uri, new Uint8Array([1])))).toMatchObject({ code: 'Internal' });
    expect([sent(/^\/keys\/k\/?$/), sent(/wrapkey$/)]).toEqual([1, 2]);
  });

  it('an EC signature of the wrong length is Internal, not a malformed DER signature', async () => {
    crypto('k', { body: { kid: `${VAULT}/keys/k/v1`, value: b64(400) } }, ecBundle('k'));
    const error = await failure(keyport.sign(uri, new Uint8Array([1]), { algorithm: 'ECDSA_SHA_256' }));
    expect(error.code).toBe('Internal');
  });
});

describe('retry hints', () => {
  const throttled = (headers: Record<string, string>) => ({ response: { headers: headersOf(headers) } });

  it('an absurd or fractional Retry-After is a whole number of ms a timer can wait', () => {
    for (const headers of [
      { 'retry-after-ms': '1.5' },
      { 'retry-after-ms': '99999999999999999999' },
      { 'retry-after': '9'.repeat(400) },
      { 'retry-after': 'Fri, 31 Dec 9999 23:59:59 GMT' },
    ]) {
      const ms = retryAfterMsOf(throttled(headers));
      expect(Number.isInteger(ms), JSON.stringify(headers)).toBe(true);
      expect(ms).toBeLessThanOrEqual(MAX_TIMER_MS);
    }
    expect(retryAfterMsOf(throttled({ 'retry-after-ms': '1.5' }))).toBe(2);
  });
});

it('no token or key material shows in these errors', async () => {
  route = (url) => (keyPath(url)?.[1] === 'k' ? { body: bundle('other') } : undefined);
  const error = await failure(keyport.describeKey(`azurekeyvault://${HOST}/keys/k`));
  expect(shown(error)).not.toContain(TOKEN);
  expect(shown(error)).not.toContain(String(rsa.n).slice(0, 40));
});
