// The driver's own methods called directly (not through a Keyport, which checks arguments first):
// every public method refuses each kind of bad argument with InvalidArgument naming it, and sends
// nothing — counted at a proxy in front of the real OpenBao — while good direct calls still work.
import { createServer, request as httpRequest, type Server } from 'node:http';
import { rootCertificates } from 'node:tls';
import { KeyportError } from '@keyport/core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type VaultTransitOptions, type VaultTransitProvider, vaultTransit } from '../src/index.js';
import { bytes, call, keyName, openbao, provider, text } from './helpers.js';

/** A pass-through proxy to OpenBao that counts the requests it forwards. */
async function countingProxy(target: string) {
  const to = new URL(target);
  const seen: string[] = [];
  const server: Server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    const up = httpRequest(
      { host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  // Node's parser refuses Vault's LIST verb before the handler runs: counted here, then answered 400.
  server.on('clientError', (_, socket) => {
    seen.push('a request Node could not parse (LIST)');
    socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, seen, server };
}

let proxy: Awaited<ReturnType<typeof countingProxy>>;
let p: VaultTransitProvider;
/** A key that does not exist: a request that got out would be counted (and answered NotFound). */
let missing: string;

beforeAll(async () => {
  proxy = await countingProxy(openbao().addr);
  p = provider({ endpoint: proxy.url });
  missing = `hcvault://${p.session.address}/transit/keys/${keyName('never-made')}`;
});
afterAll(async () => {
  await p.close();
  proxy.server.closeAllConnections();
  proxy.server.close();
});
beforeEach(() => {
  proxy.seen.length = 0;
});

/** The outcome of a call: its rejection (an iterable is iterated), or a synchronous throw. */
async function outcome(run: () => unknown): Promise<{ error?: unknown; sync?: unknown }> {
  let pending: unknown;
  try {
    pending = run();
  } catch (sync) {
    return { sync };
  }
  try {
    if (pending !== null && typeof pending === 'object' && Symbol.asyncIterator in pending) {
      for await (const _ of pending as AsyncIterable<unknown>);
    } else await pending;
  } catch (error) {
    return { error };
  }
  return {};
}

// Bad values of each kind, with the argument name the message must carry.
const BAD = {
  ref: [null, 42, {}, { uri: 42 }, { version: '1' }, ['hcvault://x/transit/keys/k']],
  bytes: ['text', null, 42, [1, 2, 3], new ArrayBuffer(4), { length: 1 }],
  req: ['x', 42, null, { context: 42 }, { context: { a: 1 } }, { context: ['a'] }, { unknown: true }],
  o: ['x', 42, null, { signal: 'no' }, { signal: { aborted: false } }],
  list: [{ signal: 'no' }, { pageSize: Number.NaN }, { pageSize: 0 }, { pageSize: 1.5 }, { pageSize: '10' }],
  items: [
    'x',
    null,
    { length: 1, 0: { data: new Uint8Array(1) } },
    [42],
    [null],
    [{ data: 'text' }],
    [{ plaintext: 'text' }],
    [{ ciphertext: [1] }],
    [{ data: new Uint8Array(1), context: 5 }],
    [{ data: new Uint8Array(1), context: { a: 1 } }],
    [{ data: new Uint8Array(1), extra: true }],
    [new Uint8Array(1)],
  ],
  sign: ['x', null, { algorithm: 'NOPE' }, { messageType: 5 }, { unknown: 1 }],
  dataKey: ['x', { bytes: '32' }, { bytes: Number.NaN }, { context: 5 }, { unknown: 1 }],
  createKey: [
    null,
    'x',
    { name: 42, spec: 'AES_256' },
    { name: 'k', spec: 'NOPE' },
    { name: 'k', spec: 'AES_256', rotation: { periodDays: Number.NaN } },
    { name: 'k', spec: 'AES_256', rotation: { nextRotationAt: new Date(Number.NaN) } },
    { name: 'k', spec: 'AES_256', labels: { a: 1 } },
  ],
  policy: [
    null,
    'x',
    { periodDays: Number.NaN },
    { periodDays: '30' },
    { nextRotationAt: new Date(Number.NaN) },
  ],
  grant: [
    null,
    { grantee: 42, operations: ['encrypt'] },
    { grantee: 'g', operations: 'encrypt' },
    { grantee: 'g', operations: ['encrypt'], expiresAt: new Date(Number.NaN) },
  ],
  grantId: [42, null, { id: 'x' }],
  importParameters: ['x', { algorithm: 'NOPE' }],
  importMaterial: [null, 'x', {}, { wrappedMaterial: 'x', algorithm: 'RSA_AES_KEY_WRAP_SHA_256' }],
  versionPolicy: [
    'x',
    null,
    { minDecryptionVersion: Number.NaN },
    { minEncryptionVersion: '1' },
    { other: 1 },
  ],
} as const;
type Kind = keyof typeof BAD;
const NAMED: Record<Kind, RegExp> = {
  ref: /\bref\b/,
  bytes: /plaintext|ciphertext|message|signature|mac/,
  req: /\breq\b/,
  o: /\bo\b/,
  list: /\bo\.(signal|pageSize)\b/,
  items: /\bitems\b/,
  sign: /\breq\b/,
  dataKey: /\breq\b/,
  createKey: /\breq\b/,
  policy: /\bpolicy\b/,
  grant: /\breq\b/,
  grantId: /\bgrantId\b/,
  importParameters: /\breq\b/,
  importMaterial: /\breq\b/,
  versionPolicy: /\bpolicy\b/,
};

/** Each public method: its good arguments and which position holds which kind of argument. */
type Method = { good: () => unknown[]; kinds: Array<[number, Kind]> };
const ref = () => ({ uri: missing });
const one = () => new Uint8Array([1]);
const METHODS: Record<string, Method> = {
  createKey: {
    good: () => [{ name: keyName('x'), spec: 'AES_256' }, call()],
    kinds: [
      [0, 'createKey'],
      [1, 'o'],
    ],
  },
  describeKey: {
    good: () => [ref(), call()],
    kinds: [
      [0, 'ref'],
      [1, 'o'],
    ],
  },
  listKeys: { good: () => [call()], kinds: [[0, 'list']] },
  rotateKey: {
    good: () => [ref(), call()],
    kinds: [
      [0, 'ref'],
      [1, 'o'],
    ],
  },
  setRotationPolicy: {
    good: () => [ref(), { periodDays: 30 }, call()],
    kinds: [
      [0, 'ref'],
      [1, 'policy'],
      [2, 'o'],
    ],
  },
  destroyKeyVersion: {
    good: () => [{ uri: missing, version: '1' }, call()],
    kinds: [
      [0, 'ref'],
      [1, 'o'],
    ],
  },
  enableKey: {
    good: () => [ref(), call()],
    kinds: [
      [0, 'ref'],
      [1, 'o'],
    ],
  },
  disableKey: {
    good: () => [ref(), call()],
    kinds: [
      [0, 'ref'],
      [1, 'o'],
    ],
  },
  encrypt: {
    good: () => [ref(), one(), {}, call()],
    kinds: [
      [0, 'ref'],
      [1, 'bytes'],
      [2, 'req'],
      [3, 'o'],
    ],
  },
  decrypt: {
    good: () => [ref(), one(), {}, call()],
    kinds: [
      [0, 'ref'],
      [1, 'bytes'],
      [2, 'req'],
      [3, 'o'],
    ],
  },
  generateDataKey: {
    good: () => [ref(), {}, call()],
    kinds: [
      [0, 'ref'],
      [1, 'dataKey'],
      [2, 'o'],
    ],
  },
  sign: {
    good: () => [ref(), one(), {}, call()],
    kinds: [
      [0, 'ref'],
      [1, 'bytes'],
      [2, 'sign'],
      [3, 'o'],
    ],
  },
  verify: {
    good: () => [ref(), one(), one(), {}, call()],
    kinds: [
      [0, 'ref'],
      [1, 'bytes'],
      [2, 'bytes'],
      [3, 'sign'],
      [4, 'o'],
    ],
  },
  mac: {
    good: () => [ref(), one(), call()],
    kinds: [
      [0, 'ref'],
      [1, 'bytes'],
      [2, 'o'],
    ],
  },
  verifyMac: {
    good: () => [ref(), one(), one(), call()],
    kinds: [
      [0, 'ref'],
      [1, 'bytes'],
      [2, 'bytes'],
      [3, 'o'],
    ],
  },
  createGrant: {
    good: () => [ref(), { grantee: 'g', operations: ['encrypt'] }, call()],
    kinds: [
      [0, 'ref'],
      [1, 'grant'],
      [2, 'o'],
    ],
  },
  listGrants: {
    good: () => [ref(), call()],
    kinds: [
      [0, 'ref'],
      [1, 'list'],
    ],
  },
  revokeGrant: {
    good: () => [ref(), '0123456789abcdef', call()],
    kinds: [
      [0, 'ref'],
      [1, 'grantId'],
      [2, 'o'],
    ],
  },
  getImportParameters: {
    good: () => [ref(), {}, call()],
    kinds: [
      [0, 'ref'],
      [1, 'importParameters'],
      [2, 'o'],
    ],
  },
  importKeyMaterial: {
    good: () => [ref(), { wrappedMaterial: one(), algorithm: 'RSA_AES_KEY_WRAP_SHA_256' }, call()],
    kinds: [
      [0, 'ref'],
      [1, 'importMaterial'],
      [2, 'o'],
    ],
  },
  encryptBatch: {
    good: () => [ref(), [{ data: one() }], {}],
    kinds: [
      [0, 'ref'],
      [1, 'items'],
      [2, 'o'],
    ],
  },
  decryptBatch: {
    good: () => [ref(), [{ data: one() }], {}],
    kinds: [
      [0, 'ref'],
      [1, 'items'],
      [2, 'o'],
    ],
  },
  createTransitKey: { good: () => [keyName('t'), 'aes256-gcm96', {}, {}], kinds: [[3, 'o']] },
  readTransitKey: {
    good: () => [ref(), {}],
    kinds: [
      [0, 'ref'],
      [1, 'o'],
    ],
  },
  deleteKey: {
    good: () => [ref(), {}],
    kinds: [
      [0, 'ref'],
      [1, 'o'],
    ],
  },
  setVersionPolicy: {
    good: () => [ref(), { minDecryptionVersion: 1 }, {}],
    kinds: [
      [0, 'ref'],
      [1, 'versionPolicy'],
      [2, 'o'],
    ],
  },
  rewrap: {
    good: () => [ref(), one(), {}, {}],
    kinds: [
      [0, 'ref'],
      [1, 'bytes'],
      [2, 'req'],
      [3, 'o'],
    ],
  },
};

describe('every public method refuses bad arguments before sending anything', () => {
  it.each(Object.keys(METHODS))('%s', async (name) => {
    const method = METHODS[name] as Method;
    const fn = (p as unknown as Record<string, (...a: unknown[]) => unknown>)[name] as (
      ...a: unknown[]
    ) => unknown;
    const wrong: string[] = [];
    for (const [at, kind] of method.kinds) {
      const values: readonly unknown[] = BAD[kind];
      for (const [i, bad] of values.entries()) {
        const args = method.good();
        args[at] = bad;
        const { error, sync } = await outcome(() => fn.apply(p, args));
        const label = `${kind} #${i} at ${at}`;
        if (sync !== undefined) wrong.push(`${label}: threw synchronously`);
        else if (!(error instanceof KeyportError) || error.code !== 'InvalidArgument') {
          wrong.push(`${label}: ${error instanceof KeyportError ? error.code : String(error)}`);
        } else if (!NAMED[kind].test(error.message)) wrong.push(`${label}: message "${error.message}"`);
        else if (error.provider !== 'hcvault') wrong.push(`${label}: provider ${error.provider}`);
      }
    }
    expect(wrong).toEqual([]);
    expect(proxy.seen).toEqual([]);
  });
});

describe('good direct calls still work (through the same proxy)', () => {
  it('a URI string, a Map context, omitted options, batch items in either shape, rewrap, listings', async () => {
    const info = await p.createKey({ name: keyName('good'), spec: 'AES_256' }, call());
    const uri = info.uri as unknown as { uri: string };
    const context = new Map([['tenant', 'a']]) as unknown as Record<string, string>;
    const sealed = await p.encrypt(uri, bytes('hello'), { context }, undefined as never);
    const opened = await p.decrypt(
      { uri: info.uri },
      sealed.ciphertext,
      { context: { tenant: 'a' } },
      call(),
    );
    expect(text(opened.plaintext)).toBe('hello');
    const batch = await p.encryptBatch({ uri: info.uri }, [
      { data: bytes('a') },
      { plaintext: bytes('b'), context: { k: 'v' } },
    ]);
    expect(batch.map((r) => r.ok)).toEqual([true, true]);
    const back = await p.decryptBatch(
      { uri: info.uri },
      batch.map((r, i) => ({
        ciphertext: r.ok ? r.value.ciphertext : one(),
        ...(i ? { context: { k: 'v' } } : {}),
      })),
    );
    expect(back.map((r) => (r.ok ? text(r.value.plaintext) : r.error.code))).toEqual(['a', 'b']);
    const rewrapped = await p.rewrap({ uri: info.uri }, sealed.ciphertext, { context });
    expect(
      text((await p.decrypt({ uri: info.uri }, rewrapped.ciphertext, { context }, call())).plaintext),
    ).toBe('hello');
    const listed: string[] = [];
    // Listed directly: the counting proxy cannot pass Vault's LIST verb on.
    const direct = provider();
    try {
      for await (const k of direct.listKeys({ signal: call().signal, pageSize: 5 } as never)) {
        listed.push(k.uri);
        break;
      }
    } finally {
      await direct.close();
    }
    expect(listed).toHaveLength(1);
    const data = await p.generateDataKey({ uri: info.uri }, { bytes: 16 }, call());
    expect(data.plaintext).toHaveLength(16);
    expect((await p.setVersionPolicy({ uri: info.uri }, { minDecryptionVersion: 1 })).uri).toBe(info.uri);
    expect(proxy.seen.length).toBeGreaterThan(0);
  });
});

describe('tls options are checked at construction', () => {
  const endpoint = 'https://127.0.0.1:8200';
  const build = (tls: unknown) => () => vaultTransit({ endpoint, tls } as VaultTransitOptions);

  it.each([
    ['a string', 'ca.pem'],
    ['null', null],
    ['an unknown field', { caFile: '/etc/ssl/ca.pem' }],
    ['a numeric ca', { ca: 42 }],
    ['an empty ca', { ca: '' }],
    ['a ca that is not PEM', { ca: 'not a certificate' }],
    ['a ca of bytes that are not PEM', { ca: new Uint8Array([1, 2, 3]) }],
    ['a string rejectUnauthorized', { rejectUnauthorized: 'false' }],
    ['a cert without its key', { cert: rootCertificates[0] }],
    ['a key without its cert', { key: 'k' }],
    ['a cert and key that are not PEM', { cert: 'garbage', key: 'garbage' }],
    ['a key that does not go with the cert', { cert: rootCertificates[0], key: 'garbage' }],
  ])('refuses %s, naming tls and never echoing the value', (_, tls) => {
    let error: unknown;
    try {
      build(tls)();
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(KeyportError);
    expect(error).toMatchObject({ code: 'InvalidArgument', message: expect.stringMatching(/\btls\b/) });
    expect((error as Error).message).not.toContain('garbage');
  });

  it('takes a PEM CA bundle as text or bytes, and rejectUnauthorized', async () => {
    const ca = rootCertificates.slice(0, 3).join('\n');
    for (const tls of [{ ca }, { ca: new TextEncoder().encode(ca) }, { rejectUnauthorized: false }]) {
      await build(tls)().close();
    }
  });
});
