// createGrant makes the grant's token first and then its policy. When the policy cannot be
// written, the token must not stay behind: it carries the grant's policy name, so a policy of
// that name written later would arm it. Against OpenBao, with a caller that may mint tokens but
// may neither revoke by accessor nor write policies.
import { createHash } from 'node:crypto';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VaultTransitOptions, VaultTransitProvider } from '../src/index.js';
import { call, keyName, openbao, provider, rejection, rootClient } from './helpers.js';

const root = rootClient();
const POLICY = `gc-${keyName('caller').replace(/[^a-z0-9-]/g, '')}`;

/** The prefix of every grant policy of `transit/<name>` (as src/grants.ts names them). */
const grantPrefix = (name: string) =>
  `keyport-grant-${createHash('sha256').update(`transit/${name}`).digest('hex').slice(0, 16)}-`;

async function accessors(): Promise<Set<string>> {
  const r = (await root.list('auth/token/accessors')) as { data: { keys: string[] } };
  return new Set(r.data.keys);
}

/** The accessors, created since `before`, of tokens carrying a grant policy of key `name`. */
async function grantTokensSince(before: Set<string>, name: string): Promise<string[]> {
  const found: string[] = [];
  for (const accessor of await accessors()) {
    if (before.has(accessor)) continue;
    const r = (await root.write('auth/token/lookup-accessor', { accessor }).catch(() => undefined)) as
      | { data: { policies?: string[] } }
      | undefined;
    if (r?.data.policies?.some((p) => p.startsWith(grantPrefix(name)))) found.push(accessor);
  }
  return found;
}

/** A provider whose token may mint tokens (sudo) but is denied revoke-accessor and policy writes. */
async function tokenMinter(options: Partial<VaultTransitOptions> = {}): Promise<VaultTransitProvider> {
  const created = (await root.write('auth/token/create', {
    policies: [POLICY],
    no_default_policy: true,
    ttl: '10m',
  })) as { auth: { client_token: string } };
  const token = created.auth.client_token;
  return provider({ auth: { method: 'token', token, renew: false }, ...options });
}

/** A pass-through proxy to OpenBao that refuses revoke-self, and remembers the tokens it carried. */
async function refusingRevokeSelf(target: string) {
  const to = new URL(target);
  const selfTokens: string[] = [];
  const server: Server = createServer((req, res) => {
    if (req.url === '/v1/auth/token/revoke-self') {
      selfTokens.push(String(req.headers['x-vault-token']));
      req.resume();
      res.writeHead(403, { 'content-type': 'application/json' });
      res.end('{"errors":["permission denied"]}');
      return;
    }
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
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, selfTokens, server };
}

describe('createGrant leaves no token behind when its policy cannot be written', () => {
  const opened: VaultTransitProvider[] = [];
  let proxy: Awaited<ReturnType<typeof refusingRevokeSelf>>;

  beforeAll(async () => {
    await root.write(`sys/policy/${POLICY}`, {
      policy: [
        'path "auth/token/create-orphan" { capabilities = ["update", "sudo"] }',
        'path "auth/token/revoke-accessor" { capabilities = ["deny"] }',
        'path "sys/policy/*" { capabilities = ["deny"] }',
      ].join('\n'),
    });
    proxy = await refusingRevokeSelf(openbao().addr);
  });
  afterAll(async () => {
    await Promise.all(opened.map((q) => q.close()));
    proxy.server.closeAllConnections();
    proxy.server.close();
    await root.delete(`sys/policy/${POLICY}`);
  });

  it('revokes the token as itself (revoke-self) when the caller may not revoke by accessor', async () => {
    const q = await tokenMinter();
    opened.push(q);
    const name = keyName('gc-self');
    const uri = `hcvault://${q.session.address}/transit/keys/${name}`;
    const before = await accessors();
    const error = await rejection(
      q,
      q.createGrant({ uri }, { grantee: 'g', operations: ['encrypt'] }, call()),
    );
    expect(error.code).toBe('AccessDenied'); // the policy write's own refusal
    expect(error.message).not.toMatch(/may be left/);
    const left = await grantTokensSince(before, name);
    for (const accessor of left) await root.write('auth/token/revoke-accessor', { accessor });
    expect(left).toEqual([]);
  });

  it('when every clean-up fails, the error says a token may be left and names its accessor, never the token', async () => {
    const q = await tokenMinter({ endpoint: proxy.url });
    opened.push(q);
    const name = keyName('gc-left');
    const uri = `hcvault://${q.session.address}/transit/keys/${name}`;
    const before = await accessors();
    const error = await rejection(
      q,
      q.createGrant({ uri }, { grantee: 'g', operations: ['encrypt'] }, call()),
    );
    const left = await grantTokensSince(before, name);
    try {
      expect(left).toHaveLength(1);
      expect(error.code).toBe('AccessDenied');
      expect(error.message).toContain('a grant token may be left');
      expect(error.message).toContain(left[0]);
      expect(proxy.selfTokens).toHaveLength(1); // revoke-self was tried, as the new token
      const token = proxy.selfTokens[0] as string;
      expect(token.length).toBeGreaterThan(8);
      const shown = `${error.message} ${JSON.stringify(error)} ${String(error.stack)} ${JSON.stringify(error.cause)}`;
      expect(shown).not.toContain(token);
    } finally {
      for (const accessor of left) await root.write('auth/token/revoke-accessor', { accessor });
    }
  });
});
