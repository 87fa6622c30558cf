// A grant's token must live as long as the grant says, and a grant the caller gave up on must
// leave no token. Against OpenBao: Vault caps a token's TTL at the token mount's max TTL (768h by
// default, the emulator's too) with only a warning, and a caller may abort while the token is
// being made (a proxy holds Vault's answer back so the abort lands then).
import { createHash } from 'node:crypto';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VaultTransitProvider } from '../src/index.js';
import { call, keyName, openbao, provider, rejection, rootClient } from './helpers.js';

const root = rootClient();
const DAY_MS = 24 * 3600 * 1000;

/** The token's TTL as Vault reports it, or undefined when the accessor names no token any more. */
async function ttlOf(accessor: string): Promise<number | undefined> {
  const r = (await root.write('auth/token/lookup-accessor', { accessor }).catch(() => undefined)) as
    | { data: { ttl: number } }
    | undefined;
  return r?.data.ttl;
}

/** A pass-through proxy to OpenBao that holds the answer to a grant token's creation back. */
async function slowTokenCreation(target: string, holdMs: number) {
  const to = new URL(target);
  const minted: string[] = [];
  let asked: () => void = () => undefined;
  const creationAsked = new Promise<void>((resolve) => {
    asked = resolve;
  });
  const server: Server = createServer((req, res) => {
    const creating = req.url === '/v1/auth/token/create-orphan';
    const up = httpRequest(
      { host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        const parts: Buffer[] = [];
        answer.on('data', (part: Buffer) => parts.push(part));
        answer.on('end', () => {
          const body = Buffer.concat(parts);
          if (creating) {
            const accessor = (JSON.parse(body.toString()) as { auth?: { accessor?: string } }).auth?.accessor;
            if (accessor !== undefined) minted.push(accessor);
          }
          setTimeout(
            () => {
              if (res.destroyed) return;
              res.writeHead(answer.statusCode ?? 502, answer.headers);
              res.end(body);
            },
            creating ? holdMs : 0,
          );
        });
      },
    );
    up.on('error', () => res.destroy());
    if (creating) asked();
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, minted, creationAsked, server };
}

describe('grant expiry and its token', () => {
  let p: VaultTransitProvider;
  let uri: string;
  beforeAll(async () => {
    p = provider();
    uri = (await p.createKey({ name: keyName('expiry'), spec: 'AES_256' }, call())).uri;
  });
  afterAll(async () => {
    await p.close();
  });

  it('refuses an expiry beyond the token max TTL (Vault would cap it silently), naming the max, and leaves no token', async () => {
    const expiresAt = new Date(Date.now() + 40 * DAY_MS);
    const error = await rejection(
      p,
      p.createGrant({ uri }, { grantee: 'g', operations: ['encrypt'], expiresAt }, call()),
    );
    expect(error.code).toBe('InvalidArgument');
    expect(error.message).toContain('max TTL is 2764800s (768h)');
    expect(error.message).not.toMatch(/may be left/);
    expect(error.retryable).toBe(false);
    // Nothing of the grant is left: no policy, so no listing.
    const listed = [];
    for await (const g of p.listGrants({ uri }, call())) listed.push(g);
    expect(listed).toEqual([]);
  });

  it("reports the token's own expiry (the max TTL) for a grant made without one, when made and when listed", async () => {
    const grant = await p.createGrant({ uri }, { grantee: 'g', operations: ['encrypt'] }, call());
    try {
      const looked = (await root.write('auth/token/lookup', { token: grant.token })) as {
        data: { expire_time: string; renewable: boolean };
      };
      const real = Date.parse(looked.data.expire_time);
      // Never later than the token's end, and within the time the creation took of it.
      expect(grant.expiresAt?.getTime()).toBeLessThanOrEqual(real);
      expect(grant.expiresAt?.getTime()).toBeGreaterThan(real - 5_000);
      expect(real - Date.now()).toBeGreaterThan(767 * 3600 * 1000);
      // Not renewable: the end known now cannot move.
      expect(looked.data.renewable).toBe(false);
      const listed = [];
      for await (const g of p.listGrants({ uri }, call())) listed.push(g);
      expect(listed.find((g) => g.id === grant.id)?.expiresAt?.getTime()).toBe(grant.expiresAt?.getTime());
    } finally {
      await p.revokeGrant({ uri }, grant.id, call());
    }
  });

  it("lists a grant whose policy recorded no expiry (made before keyport did) with its token's current expiry", async () => {
    // What keyport wrote before: a renewable token with the mount's default TTL, and a policy
    // header without expiresAt.
    const made = (await root.write('auth/token/create-orphan', {
      policies: ['default'],
      renewable: true,
    })) as {
      auth: { accessor: string };
    };
    const { accessor } = made.auth;
    const name = uri.slice(uri.lastIndexOf('/') + 1);
    const id = '00000000000000aa';
    const prefix = `keyport-grant-${createHash('sha256').update(`transit/${name}`).digest('hex').slice(0, 16)}-`;
    const meta = {
      id,
      keyUri: uri,
      grantee: 'old',
      operations: ['encrypt'],
      createdAt: new Date().toISOString(),
      accessor,
    };
    const policy = `# keyport-grant v1 ${Buffer.from(JSON.stringify(meta)).toString('base64url')}\npath "x" { capabilities = ["read"] }\n`;
    await root.write(`sys/policy/${prefix}${id}`, { policy });
    try {
      const looked = (await root.write('auth/token/lookup-accessor', { accessor })) as {
        data: { expire_time: string };
      };
      const listed = [];
      for await (const g of p.listGrants({ uri }, call())) listed.push(g);
      expect(listed.find((g) => g.id === id)?.expiresAt?.getTime()).toBe(Date.parse(looked.data.expire_time));
    } finally {
      await p.revokeGrant({ uri }, id, call());
    }
    expect(await ttlOf(accessor)).toBeUndefined();
  });

  it('grants an expiry within the max TTL, and its token lives until then', async () => {
    const expiresAt = new Date(Date.now() + 30 * DAY_MS);
    const grant = await p.createGrant({ uri }, { grantee: 'g', operations: ['encrypt'], expiresAt }, call());
    try {
      expect(grant.expiresAt?.getTime()).toBe(expiresAt.getTime());
      const looked = (await root.write('auth/token/lookup', { token: grant.token })) as {
        data: { ttl: number };
      };
      expect(looked.data.ttl * 1000).toBeGreaterThanOrEqual(expiresAt.getTime() - Date.now() - 5_000);
    } finally {
      await p.revokeGrant({ uri }, grant.id, call());
    }
  });
});

describe('a caller that aborts while the grant token is being made', () => {
  let proxy: Awaited<ReturnType<typeof slowTokenCreation>>;
  let q: VaultTransitProvider;
  beforeAll(async () => {
    proxy = await slowTokenCreation(openbao().addr, 400);
    q = provider({ endpoint: proxy.url });
  });
  afterAll(async () => {
    await q.close();
    for (const accessor of proxy.minted)
      await root.write('auth/token/revoke-accessor', { accessor }).catch(() => undefined);
    proxy.server.closeAllConnections();
    proxy.server.close();
  });

  it('stops waiting at once, and the token Vault made anyway is revoked', async () => {
    const uri = `hcvault://${q.session.address}/transit/keys/${keyName('abort-grant')}`;
    const controller = new AbortController();
    const pending = q.createGrant(
      { uri },
      { grantee: 'g', operations: ['encrypt'] },
      { signal: controller.signal },
    );
    await proxy.creationAsked;
    const started = Date.now();
    controller.abort();
    const error = await rejection(q, pending);
    expect(error.code).toBe('Aborted');
    expect(Date.now() - started).toBeLessThan(300);
    // Vault made the token (the proxy saw it); it must be revoked, not left to its 768h TTL.
    await expect.poll(() => proxy.minted.length, { timeout: 5_000 }).toBe(1);
    const accessor = proxy.minted[0] as string;
    await expect.poll(() => ttlOf(accessor), { timeout: 5_000, interval: 100 }).toBeUndefined();
  });
});
