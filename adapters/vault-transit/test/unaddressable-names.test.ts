// Key names transit's API cannot address, passed straight to the calls (not read from a listing):
// by bare name to createKey / createTransitKey and inside a key URI to describeKey / encrypt. Each
// is a typed InvalidArgument naming the problem, made before any request: never transit's 404
// "unsupported path" (NotFound, which reads as "no such key"), never a request to another path,
// and never another key (`k?version=2` as a bare name once created the key `k`).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VaultTransitProvider } from '../src/index.js';
import { bytes, call, keyName, openbao, provider, rejection, rootClient, standInVault } from './helpers.js';

/** Bare names: each is refused as a name, whatever a URI built from it would parse as. */
const BARE = [
  '-lead',
  'trail-',
  '.lead',
  'a/b',
  '..',
  '.',
  '%2e%2e',
  'a\nb',
  'a b',
  'a?b',
  'a#b',
  'é',
  'a:b',
];

/** Names a key URI may carry (core's grammar) that transit's API refuses. */
const IN_URI = ['-lead', 'trail-', '.lead', 'trail.', '-'];
/** Key URI tails core refuses itself (a path, dot segments, percent-encoding, whitespace). */
const NOT_URIS = ['a/b', '..', '%2e%2e', 'a%0Ab', 'a\nb', '../../sys/mounts'];

describe('names transit cannot address, passed to the calls (OpenBao)', () => {
  let p: VaultTransitProvider;
  let base: string;
  beforeAll(() => {
    p = provider();
    base = `hcvault://${p.session.address}/transit/keys`;
  });
  afterAll(async () => {
    await p.close();
  });

  it.each(BARE)(
    'createKey and createTransitKey by the bare name %j are InvalidArgument naming the name rule',
    async (name) => {
      for (const pending of [
        p.createKey({ name, spec: 'AES_256' }, call()),
        p.createTransitKey(name, 'aes256-gcm96', {}, call()),
      ]) {
        const error = await rejection(p, pending);
        expect(error.code).toBe('InvalidArgument');
        expect(error.message).toMatch(/is not one transit can address \(its API takes letters, digits/);
      }
    },
  );

  it.each(IN_URI)(
    'describeKey, encrypt and createKey on a key URI naming %j are InvalidArgument, not NotFound',
    async (name) => {
      const uri = `${base}/${name}`;
      for (const pending of [
        p.describeKey({ uri }, call()),
        p.encrypt({ uri }, bytes('x'), {}, call()),
        p.createKey({ name: uri, spec: 'AES_256' }, call()),
        p.readTransitKey({ uri }),
      ]) {
        const error = await rejection(p, pending);
        expect(error.code).toBe('InvalidArgument');
        expect(error.message).toMatch(/^transit cannot address a key of this name/);
        expect(error.keyUri).toBe(uri);
      }
    },
  );

  it.each(NOT_URIS)('a key URI whose tail is %j is InvalidArgument (the URI grammar)', async (tail) => {
    const uri = `${base}/${tail}`;
    for (const pending of [p.describeKey({ uri }, call()), p.encrypt({ uri }, bytes('x'), {}, call())]) {
      const error = await rejection(p, pending);
      expect(error.code).toBe('InvalidArgument');
      expect(error.message).toMatch(/invalid key URI/);
    }
  });

  it('a bare name carrying "?version=" is refused, never creating the key named before the "?"', async () => {
    const name = keyName('q');
    const error = await rejection(p, p.createKey({ name: `${name}?version=2`, spec: 'AES_256' }, call()));
    expect(error.code).toBe('InvalidArgument');
    const { addr, token } = openbao();
    const read = await fetch(`${addr}/v1/transit/keys/${name}`, { headers: { 'X-Vault-Token': token } });
    expect(read.status).toBe(404);
  });

  it('a key URI with ?version= is refused as a name to create: a key is created unpinned', async () => {
    const name = keyName('pinned');
    const error = await rejection(
      p,
      p.createKey({ name: `${base}/${name}?version=2`, spec: 'AES_256' }, call()),
    );
    expect(error.code).toBe('InvalidArgument');
    expect(error.message).toMatch(/created without a version/);
    expect(
      await rootClient()
        .read(`transit/keys/${name}`)
        .catch(() => 'absent'),
    ).toBe('absent');
  });
});

describe('names transit cannot address make no request (a stand-in server recording them)', () => {
  const seen: string[] = [];
  let p: VaultTransitProvider;
  let base: string;
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({
      provider: p,
      base,
      close,
    } = await standInVault((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"errors":["unsupported path"]}');
    }));
  });
  afterAll(() => close());

  it('no call on such a name reaches the server, by bare name or URI', async () => {
    const calls = [
      ...BARE.flatMap((name) => [
        p.createKey({ name, spec: 'AES_256' }, call()),
        p.createTransitKey(name, 'aes256-gcm96', {}, call()),
      ]),
      ...[...IN_URI, ...NOT_URIS].flatMap((name) => [
        p.describeKey({ uri: `${base}/${name}` }, call()),
        p.encrypt({ uri: `${base}/${name}` }, bytes('x'), {}, call()),
        p.deleteKey({ uri: `${base}/${name}` }),
      ]),
    ];
    const codes = await Promise.all(calls.map(async (c) => (await rejection(p, c)).code));
    expect(new Set(codes)).toEqual(new Set(['InvalidArgument']));
    expect(seen).toEqual([]);
  });
});
