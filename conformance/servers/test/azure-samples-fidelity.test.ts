import { createHash } from 'node:crypto';
import { CryptographyClient, KeyClient } from '@azure/keyvault-keys';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type AzureKeyVaultServer, startAzureKeyVaultServer } from '../src/azure/index.js';
import { ADMIN, CRYPTO_ONLY, keyClient, PRINCIPALS, raw, sdkOptions, staticToken } from './azure-helpers.js';

// Behaviour that Microsoft's published @azure/keyvault-keys samples rely on, found by running
// those samples (outside this repository) against the server. Each test states the fact in our
// own words and drives it through the official client.
let server: AzureKeyVaultServer;
let client: KeyClient;
beforeEach(async () => {
  server = await startAzureKeyVaultServer({ principals: PRINCIPALS });
  client = keyClient(server, ADMIN);
});
afterEach(() => server?.stop());

const poll = { intervalInMs: 1 };

async function createKeys(prefix: string, count: number): Promise<string[]> {
  const names: string[] = [];
  for (let i = 0; i < count; i++) {
    const name = `${prefix}-${String(i).padStart(2, '0')}`;
    await client.createEcKey(name);
    names.push(name);
  }
  return names;
}

describe('listing continuation ($skiptoken) survives changes between pages', () => {
  // The service's $skiptoken is a continuation marker naming a key, not an offset. A script that
  // empties a vault by deleting every key while it walks the listing (and then purging every
  // deleted key while it walks that listing) must reach every key.
  it('deleting each listed key before asking for the next page skips none', async () => {
    const names = await createKeys('walk', 9);
    const seen: string[] = [];
    for await (const page of client.listPropertiesOfKeys().byPage({ maxPageSize: 2 })) {
      for (const props of page) {
        seen.push(props.name);
        await (await client.beginDeleteKey(props.name, poll)).pollUntilDone();
      }
    }
    expect(seen).toEqual(names);
    const live: string[] = [];
    for await (const props of client.listPropertiesOfKeys()) live.push(props.name);
    expect(live).toEqual([]);
  });

  it('purging each listed deleted key before asking for the next page skips none', async () => {
    const names = await createKeys('gone', 7);
    for (const name of names) await (await client.beginDeleteKey(name, poll)).pollUntilDone();
    const seen: string[] = [];
    for await (const page of client.listDeletedKeys().byPage({ maxPageSize: 3 })) {
      for (const deleted of page) {
        seen.push(deleted.name);
        await client.purgeDeletedKey(deleted.name);
      }
    }
    expect(seen).toEqual(names);
    const left: string[] = [];
    for await (const deleted of client.listDeletedKeys()) left.push(deleted.name);
    expect(left).toEqual([]);
  });

  it('a key created behind the cursor neither shifts nor repeats the rest of the walk', async () => {
    await createKeys('mid', 6);
    const seen: string[] = [];
    let first = true;
    for await (const page of client.listPropertiesOfKeys().byPage({ maxPageSize: 2 })) {
      seen.push(...page.map((p) => p.name));
      if (first) await client.createEcKey('mid-0');
      first = false;
    }
    // 'mid-0' sorts before the cursor: not listed in this walk, and no key is listed twice.
    expect(seen).toEqual(['mid-00', 'mid-01', 'mid-02', 'mid-03', 'mid-04', 'mid-05']);
  });

  it('a $skiptoken the service did not issue is a 400 BadParameter', async () => {
    for (const token of ['not-base64!', Buffer.from('Key With Spaces').toString('base64url')]) {
      const res = await raw(server, 'GET', `/keys?api-version=7.6&maxresults=1&$skiptoken=${token}`, {
        token: ADMIN,
      });
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ error: { code: 'BadParameter' } });
    }
  });
});

// Found by running Microsoft's Java (azure-security-keyvault-keys 4.11.1) and Go (azkeys v1.6.0)
// samples against the server.
describe('what the Java and Go clients send', () => {
  const E_65537 = [1, 0, 1];
  type Req = { url: string; method: string; body?: unknown };
  type Res = { bodyAsText?: string | null };
  const perCall = (
    name: string,
    sendRequest: (req: Req, next: (r: Req) => Promise<Res>) => Promise<Res>,
  ) => ({
    additionalPolicies: [{ policy: { name, sendRequest } as never, position: 'perCall' as const }],
  });

  /** The Node client with its create body carrying `public_exponent`, as the Java client's does. */
  function javaStyleCreate(target: AzureKeyVaultServer, publicExponent: number): KeyClient {
    return new KeyClient(target.url, staticToken(ADMIN), {
      ...sdkOptions(target),
      ...perCall('java-style-public-exponent', (req, next) => {
        if (req.method === 'POST' && new URL(req.url).pathname.endsWith('/create')) {
          const body = typeof req.body === 'string' ? JSON.parse(req.body) : { ...(req.body as object) };
          req.body = JSON.stringify({ ...body, public_exponent: publicExponent });
        }
        return next(req);
      }),
    });
  }

  // The reference documents public_exponent as applying only to keys created in a Managed HSM; a
  // vault asked for e = 3 creates e = 65537 anyway. The Java client sends public_exponent 0 on every
  // RSA create that does not set one, and the service reads that as "the default".
  it('a vault creates RSA keys with e = 65537 whatever public_exponent says, 0 included', async () => {
    for (const e of [0, 3, 65537]) {
      const key = await javaStyleCreate(server, e).createRsaKey(`pubexp-${e}`);
      expect([...(key.key?.e ?? [])], String(e)).toEqual(E_65537);
    }
  });

  it('a Managed HSM honours public_exponent 3 and reads 0 as the default', async () => {
    const hsm = await startAzureKeyVaultServer({ mode: 'hsm', principals: PRINCIPALS });
    try {
      const zero = await javaStyleCreate(hsm, 0).createRsaKey('pubexp-zero', { hsm: true });
      expect([...(zero.key?.e ?? [])]).toEqual(E_65537);
      const three = await javaStyleCreate(hsm, 3).createRsaKey('pubexp-three', { hsm: true });
      expect([...(three.key?.e ?? [])]).toEqual([3]);
      await expect(javaStyleCreate(hsm, 5).createRsaKey('pubexp-five', { hsm: true })).rejects.toMatchObject({
        statusCode: 400,
        code: 'BadParameter',
      });
    } finally {
      await hsm.stop();
    }
  });

  // Go azkeys v1.6.0 (generally available) sends api-version 2026-04-01, its service version; the
  // service names the newest stable version when it refuses one it does not know.
  it('api-version 2026-04-01 is served, and is the version the 400 recommends', async () => {
    const newest = new KeyClient(server.url, staticToken(ADMIN), {
      ...sdkOptions(server),
      serviceVersion: '2026-04-01' as never,
    });
    const urls: string[] = [];
    const created = await newest.createEcKey('api-2026-04', {
      onResponse: (res: { request: { url: string } }) => urls.push(res.request.url),
    } as never);
    expect(urls.at(-1)).toContain('=2026-04-01');
    expect((await newest.getKey('api-2026-04')).id).toBe(created.id);
    const res = await raw(server, 'GET', '/keys?api-version=2026-13-01', { token: ADMIN });
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body)).toContain('latest supported version (2026-04-01)');
  });

  // The JS and Python clients send /keys/{name}//encrypt when no version is given. Go azkeys joins
  // its URL with path.Join, which drops the empty segment, so the "" version its samples and tests
  // pass ("the latest version") reaches the service as /keys/{name}/encrypt, /sign, /wrapkey...,
  // which the service serves with the latest version. The official Node client, with one policy
  // collapsing "//" as Go does, stands in for it here.
  it('POST /keys/{name}/{operation} without a version segment uses the latest version', async () => {
    const posted: string[] = [];
    const kids: string[] = [];
    await client.createRsaKey('go-path', { keySize: 2048 });
    const latest = await client.rotateKey('go-path');
    const crypto = new CryptographyClient(`${server.url}/keys/go-path`, staticToken(CRYPTO_ONLY), {
      ...sdkOptions(server),
      ...perCall('go-style-path-join', async (req, next) => {
        const url = new URL(req.url);
        url.pathname = url.pathname.replace(/\/{2,}/g, '/');
        req.url = url.toString();
        const res = await next(req);
        if (req.method === 'POST') {
          posted.push(url.pathname);
          const { kid } = JSON.parse(res.bodyAsText ?? '{}') as { kid?: string };
          if (kid) kids.push(kid); // verify answers { value } alone
        }
        return res;
      }),
    });
    const plaintext = Buffer.from('go sends no version segment');
    const enc = await crypto.encrypt({ algorithm: 'RSA-OAEP-256', plaintext });
    const dec = await crypto.decrypt({ algorithm: 'RSA-OAEP-256', ciphertext: enc.result });
    expect(Buffer.from(dec.result)).toEqual(plaintext);
    const digest = createHash('sha256').update(plaintext).digest();
    const sig = await crypto.sign('PS256', digest);
    expect((await crypto.verify('PS256', digest, sig.result)).result).toBe(true);
    const wrapped = await crypto.wrapKey('RSA-OAEP', plaintext);
    expect(Buffer.from((await crypto.unwrapKey('RSA-OAEP', wrapped.result)).result)).toEqual(plaintext);
    expect(posted).toEqual(
      ['encrypt', 'decrypt', 'sign', 'verify', 'wrapkey', 'unwrapkey'].map((op) => `/keys/go-path/${op}`),
    );
    expect(kids).toEqual(Array(5).fill(latest.id));
  });
});
