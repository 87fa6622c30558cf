import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AzureKeyVaultServer, startAzureKeyVaultServer } from '../src/azure/index.js';
import { type CloudKmsServer, startCloudKmsServer } from '../src/gcp/index.js';
import { ADMIN, PRINCIPALS, raw } from './azure-helpers.js';
import { expectCode, grpc, makeClient } from './gcp-support.js';

// Names that Object.prototype gives every plain object. A server that looks request strings up in
// a plain-object table sees them as present; each must get the answer an ordinary unknown name
// ("foo") gets, and a tag or label named after one must be kept or refused as any other key is.
const INHERITED = ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf', 'isPrototypeOf'];

/** A JSON body whose objects may hold an own `__proto__` key (an object literal cannot). */
const json = (text: string): Record<string, unknown> => JSON.parse(text) as Record<string, unknown>;

describe('Key Vault server: names inherited from Object.prototype', () => {
  let server: AzureKeyVaultServer;
  let version: string;
  const V = 'api-version=7.5';
  /** The answer with `name` written as `foo`, to compare with the answer `foo` itself gets. */
  const asFoo = (body: unknown, name: string) => JSON.parse(JSON.stringify(body).split(name).join('foo'));

  beforeAll(async () => {
    server = await startAzureKeyVaultServer({ principals: PRINCIPALS });
    const created = await raw(server, 'POST', `/keys/k1/create?${V}`, { token: ADMIN, body: { kty: 'RSA' } });
    expect(created.status).toBe(200);
    version = String((created.body.key as { kid: string }).kid)
      .split('/')
      .pop()!;
  });
  afterAll(() => server?.stop());

  const post = (path: string, body: unknown) => raw(server, 'POST', `${path}?${V}`, { token: ADMIN, body });

  it('create: a kty or crv named after one is an unsupported key type / invalid curve (400), not a 500', async () => {
    const foo = await post('/keys/x/create', { kty: 'foo' });
    const fooCurve = await post('/keys/x/create', { kty: 'EC', crv: 'foo' });
    expect(foo.status).toBe(400);
    expect(fooCurve.status).toBe(400);
    for (const name of INHERITED) {
      const kty = await post('/keys/x/create', { kty: name });
      expect([kty.status, asFoo(kty.body, name)], `kty ${name}`).toEqual([400, foo.body]);
      const crv = await post('/keys/x/create', { kty: 'EC', crv: name });
      expect([crv.status, asFoo(crv.body, name)], `crv ${name}`).toEqual([400, fooCurve.body]);
    }
  });

  it('import: a JWK kty named after one is an unsupported key type', async () => {
    const put = (kty: string) =>
      raw(server, 'PUT', `/keys/imported?${V}`, {
        token: ADMIN,
        body: { key: { kty, n: 'AQAB', e: 'AQAB' } },
      });
    const foo = await put('foo');
    expect(foo.status).toBe(400);
    for (const name of INHERITED) {
      const res = await put(name);
      expect([res.status, asFoo(res.body, name)], name).toEqual([400, foo.body]);
    }
  });

  it('a key operation path named after one is an unknown operation (400 BadParameter), not a 403', async () => {
    for (const path of [`/keys/k1/${version}/`, '/keys/k1/']) {
      const foo = await post(`${path}foo`, { alg: 'RS256', value: 'AA' });
      expect(foo.status).toBe(400);
      expect((foo.body.error as { code: string }).code).toBe('BadParameter');
      for (const name of INHERITED) {
        const res = await post(`${path}${name}`, { alg: 'RS256', value: 'AA' });
        expect([res.status, asFoo(res.body, name)], `${path}${name}`).toEqual([400, foo.body]);
        expect(JSON.stringify(res.body)).not.toContain('native code');
      }
    }
  });

  it('sign and verify: an alg named after one is an invalid algorithm, whatever the digest length', async () => {
    const digests = ['', 'AA', Buffer.alloc(32).toString('base64url')];
    const call = (op: 'sign' | 'verify', alg: string, value: string) =>
      post(`/keys/k1/${version}/${op}`, op === 'sign' ? { alg, value } : { alg, digest: value, value: 'AA' });
    for (const op of ['sign', 'verify'] as const) {
      for (const digest of digests) {
        const foo = await call(op, 'foo', digest);
        expect(foo.status).toBe(400);
        for (const name of INHERITED) {
          const res = await call(op, name, digest);
          expect([res.status, asFoo(res.body, name)], `${op} ${name} ${digest.length}`).toEqual([
            400,
            foo.body,
          ]);
        }
      }
    }
  });

  it('tags named __proto__ and constructor round-trip exactly (create, get, list, update)', async () => {
    const created = await post(
      '/keys/tagged/create',
      json('{"kty":"EC","tags":{"__proto__":"a","constructor":"b","toString":"c"}}'),
    );
    expect(created.status).toBe(200);
    const same = (body: Record<string, unknown>) => JSON.stringify(body.tags);
    expect(same(created.body)).toBe(
      JSON.stringify(json('{"__proto__":"a","constructor":"b","toString":"c"}')),
    );
    expect(Object.keys(created.body.tags as object)).toEqual(['__proto__', 'constructor', 'toString']);
    const got = await raw(server, 'GET', `/keys/tagged?${V}`, { token: ADMIN });
    expect(same(got.body)).toBe(same(created.body));
    const listed = await raw(server, 'GET', `/keys?${V}`, { token: ADMIN });
    const item = (listed.body.value as Array<Record<string, unknown>>).find((i) =>
      String(i.kid).endsWith('/keys/tagged'),
    );
    expect(same(item!)).toBe(same(created.body));
    const updated = await raw(server, 'PATCH', `/keys/tagged?${V}`, {
      token: ADMIN,
      body: json('{"tags":{"__proto__":"x","constructor":"y"}}'),
    });
    expect(updated.status).toBe(200);
    expect(same(updated.body)).toBe('{"__proto__":"x","constructor":"y"}');
  });
});

describe('Cloud KMS server: names inherited from Object.prototype', () => {
  let server: CloudKmsServer;
  const LOC = 'projects/keyport-proto/locations/global';
  const RING = `${LOC}/keyRings/r`;
  const TOKEN = 'tok-alice';
  const auth = { authorization: `Bearer ${TOKEN}` };

  const rest = async (
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = auth,
  ) => {
    const res = await fetch(`${server.restUrl}${path}`, {
      method,
      headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  /** gRPC call options sending `token` as the bearer token (the insecure channel sends no call credentials). */
  const bearer = (token: string) => ({ otherArgs: { headers: { authorization: `Bearer ${token}` } } });

  beforeAll(async () => {
    server = await startCloudKmsServer({
      principals: { [TOKEN]: 'user:alice@example.com' },
      projectBindings: [{ role: 'roles/owner', members: ['user:alice@example.com'] }],
    });
    expect((await rest('POST', `/v1/${LOC}/keyRings?keyRingId=r`, {})).status).toBe(200);
    const key = await rest('POST', `/v1/${RING}/cryptoKeys?cryptoKeyId=k`, {
      purpose: 'ENCRYPT_DECRYPT',
      labels: { constructor: 'b' },
    });
    expect(key.status).toBe(200);
  });
  afterAll(() => server?.stop());

  it('REST filter and orderBy: a field named after one is an invalid field path (400), not a 500', async () => {
    const e = encodeURIComponent;
    for (const [list, type] of [
      [`/v1/${RING}/cryptoKeys`, 'CryptoKey'],
      [`/v1/${RING}/cryptoKeys/k/cryptoKeyVersions`, 'CryptoKeyVersion'],
    ] as const) {
      for (const name of ['foo', ...INHERITED]) {
        for (const [query, path] of [
          [`filter=${e(`${name}=x`)}`, name],
          [`filter=${e(`primary.${name}=x`)}`, `primary.${name}`],
          [`orderBy=${e(name)}`, name],
        ] as const) {
          if (path.startsWith('primary.') && type !== 'CryptoKey') continue;
          const res = await rest('GET', `${list}?${query}`);
          const of = path.startsWith('primary.') ? 'CryptoKeyVersion' : type;
          expect([res.status, res.body], `${list}?${query}`).toEqual([
            400,
            {
              error: {
                code: 400,
                message: `Invalid field path: ${JSON.stringify(path)} is not a field of ${of}.`,
                status: 'INVALID_ARGUMENT',
              },
            },
          ]);
        }
      }
    }
  });

  it('gRPC filter and orderBy: a field named after one is INVALID_ARGUMENT, not INTERNAL', async () => {
    const client = makeClient(server.port);
    try {
      await client.listCryptoKeys(
        { parent: RING, filter: 'labels.constructor=b', orderBy: 'name' },
        bearer(TOKEN),
      );
      for (const name of ['foo', ...INHERITED]) {
        await expectCode(
          client.listCryptoKeys({ parent: RING, filter: `${name}=x` }, bearer(TOKEN)),
          grpc.status.INVALID_ARGUMENT,
        );
        await expectCode(
          client.listCryptoKeys({ parent: RING, orderBy: name }, bearer(TOKEN)),
          grpc.status.INVALID_ARGUMENT,
        );
      }
    } finally {
      await client.close();
    }
  });

  it('a bearer token named after one is an unknown token (401 UNAUTHENTICATED), not a principal', async () => {
    const ok = await rest('GET', `/v1/${RING}`);
    expect(ok.status).toBe(200);
    for (const token of ['foo', ...INHERITED]) {
      const res = await rest('GET', `/v1/${RING}`, undefined, { authorization: `Bearer ${token}` });
      expect([res.status, res.body], token).toEqual([
        401,
        {
          error: {
            code: 401,
            message: 'Request had invalid authentication credentials.',
            status: 'UNAUTHENTICATED',
          },
        },
      ]);
      const client = makeClient(server.port);
      try {
        await expectCode(client.getKeyRing({ name: RING }, bearer(token)), grpc.status.UNAUTHENTICATED);
      } finally {
        await client.close();
      }
    }
  });

  it('REST labels: __proto__ is refused as any invalid key is; constructor round-trips and filters', async () => {
    const create = (id: string, labels: string) =>
      rest(
        'POST',
        `/v1/${RING}/cryptoKeys?cryptoKeyId=${id}`,
        `{"purpose":"ENCRYPT_DECRYPT","labels":${labels}}`,
      );
    const invalid = await create('l0', '{"_foo":"a"}');
    expect(invalid.status).toBe(400);
    expect(await create('l1', '{"__proto__":"a","constructor":"b"}')).toEqual(invalid);
    expect((await rest('GET', `/v1/${RING}/cryptoKeys/l1`)).status).toBe(404);

    const kept = await create('l2', '{"constructor":"b","tostring":"c"}');
    expect(kept.status).toBe(200);
    expect(JSON.stringify(kept.body.labels)).toBe('{"constructor":"b","tostring":"c"}');
    expect((await rest('GET', `/v1/${RING}/cryptoKeys/l2`)).body.labels).toEqual(kept.body.labels);
    const filtered = await rest(
      'GET',
      `/v1/${RING}/cryptoKeys?filter=${encodeURIComponent('labels.constructor=b')}`,
    );
    expect(
      (filtered.body.cryptoKeys as Array<{ name: string }>).map((k) => k.name.split('/').pop()).sort(),
    ).toEqual(['k', 'l2']);

    // An update naming __proto__ is refused and leaves the labels as they were.
    const patch = (labels: string) =>
      rest('PATCH', `/v1/${RING}/cryptoKeys/l2?updateMask=labels`, `{"labels":${labels}}`);
    expect(await patch('{"__proto__":"a"}')).toEqual(await patch('{"_foo":"a"}'));
    expect((await rest('GET', `/v1/${RING}/cryptoKeys/l2`)).body.labels).toEqual(kept.body.labels);
  });

  it('gRPC labels: __proto__ is refused as any invalid key is; constructor round-trips', async () => {
    const client = makeClient(server.port);
    const create = async (id: string, labels: string) => {
      const cryptoKey = {
        purpose: 'ENCRYPT_DECRYPT' as const,
        labels: json(labels) as Record<string, string>,
      };
      const [key] = await client.createCryptoKey({ parent: RING, cryptoKeyId: id, cryptoKey }, bearer(TOKEN));
      return key;
    };
    try {
      await expectCode(create('g0', '{"_foo":"a"}'), grpc.status.INVALID_ARGUMENT);
      await expectCode(create('g1', '{"__proto__":"a","constructor":"b"}'), grpc.status.INVALID_ARGUMENT);
      await expectCode(
        client.getCryptoKey({ name: `${RING}/cryptoKeys/g1` }, bearer(TOKEN)),
        grpc.status.NOT_FOUND,
      );
      const kept = await create('g2', '{"constructor":"b","x__proto__":"a"}');
      expect(JSON.stringify(kept.labels)).toBe('{"constructor":"b","x__proto__":"a"}');
      const [got] = await client.getCryptoKey({ name: kept.name! }, bearer(TOKEN));
      expect(JSON.stringify(got.labels)).toBe(JSON.stringify(kept.labels));
    } finally {
      await client.close();
    }
  });
});
