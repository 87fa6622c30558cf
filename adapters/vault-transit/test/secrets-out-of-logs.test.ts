// Secrets a careless deployment would leak, and settings it would lose without a word:
// node-vault logs every request body through `debug` (a `DEBUG=*` set for another library is
// enough), a proxy echoing the token into its error text put it into errors' `cause`, and a
// `namespace` or `tls` given beside a ready-made `client` was dropped.
import { createRequire } from 'node:module';
import { inspect } from 'node:util';
import type { KeyportError } from '@keyport/core';
import NodeVault from 'node-vault';
import { afterEach, describe, expect, it } from 'vitest';
import { type VaultTransitOptions, vaultTransit } from '../src/index.js';
import {
  bytes,
  call,
  json,
  keyName,
  openbao,
  provider,
  rejection,
  rootClient,
  standInVault,
} from './helpers.js';

/** The `debug` module node-vault logs through (the same instance: resolved from node-vault's folder). */
interface Debug {
  enable(namespaces: string): void;
  disable(): string;
  log: (...args: unknown[]) => void;
}
const fromTests = createRequire(import.meta.url);
const debug = createRequire(fromTests.resolve('node-vault'))('debug') as Debug;

describe("node-vault's debug log", () => {
  const originalLog = debug.log;
  afterEach(() => {
    debug.disable();
    debug.log = originalLog;
  });

  it('never receives a plaintext, a token or login secrets, with DEBUG=node-vault switched on', async () => {
    const logged: string[] = [];
    debug.log = (...args: unknown[]) => void logged.push(args.map(String).join(' '));
    debug.enable('node-vault');
    const secretText = 'a plaintext nobody may log';
    const p = provider();
    const login = vaultTransit({
      endpoint: openbao().addr,
      auth: { method: 'approle', roleId: 'role-id-not-for-logs', secretId: 'secret-id-not-for-logs' },
    });
    try {
      const { uri } = await p.createKey({ name: keyName('logged'), spec: 'AES_256' }, call());
      await p.encrypt({ uri }, bytes(secretText), {}, call());
      await rejection(login, login.describeKey({ uri }, call()));
    } finally {
      await Promise.all([p.close(), login.close()]);
    }
    // The hook is live: a node-vault client of the test's own still logs its request bodies.
    const control = Buffer.from('control text').toString('base64');
    await rootClient()
      .write(`transit/encrypt/${keyName('control')}`, { plaintext: control })
      .catch(() => undefined);
    const all = logged.join('\n');
    expect(all).toContain(control);
    expect(all).not.toContain(Buffer.from(secretText).toString('base64'));
    expect(all).not.toContain('secret-id-not-for-logs');
    expect(all).not.toContain(openbao().token);
  });
});

/** Everything an error shows a log: message, JSON, and inspect's view of it and its causes. */
const shown = (e: KeyportError) =>
  [e.message, JSON.stringify(e), inspect(e, { depth: 10, showHidden: true }), String(e.cause)].join('\n');

describe('a token echoed in an error answer (a proxy in front of Vault)', () => {
  const configured = 'proxy-sees-this-token-1234';
  it.each([
    ['the configured token, bare', configured, configured],
    ['the configured token in a sentence', `permission denied for ${configured}`, configured],
    ['a Vault token', 'hvs.CAESIJlWqu3dSMzKxXs0DhhKa8tN3fvWW5cxUPl9kELsH4dU', 'hvs.CAESIJl'],
    ['a legacy or OpenBao token', 'bad token s.Ar5GxMfAMFdPhSkTNa3K7Ty1', 's.Ar5GxMfA'],
    ['a batch token', 'b.AAAAAQKmTpzGEIiCNSKQCXBOIbdXX8KaqZlJkNlW-4q0Jh', 'b.AAAAAQ'],
  ])('%s is masked out of the error and its cause, which still maps', async (_, echoed, secret) => {
    const standIn = await standInVault((_req, res) => json(res, { errors: [echoed] }, 403), {
      auth: { method: 'token', token: configured, renew: false },
    });
    try {
      const p = standIn.provider;
      // A call whose server text is kept (encrypt's is withheld altogether): masked, not dropped.
      const error = await rejection(p, p.rotateKey({ uri: `${standIn.base}/k` }, call()));
      expect(error.code).toBe('AccessDenied');
      expect(shown(error)).not.toContain(secret);
      expect(String(error.cause)).toContain('<redacted>');
    } finally {
      await standIn.close();
    }
  });

  it('the token a login issued and the login secrets are masked too', async () => {
    const issued = 'issued-by-this-login-5678';
    const secretId = 'approle-secret-id-9012';
    let loggedIn = false;
    const standIn = await standInVault(
      (req, res) => {
        if (req.url?.includes('/auth/approle/login') && !loggedIn) {
          loggedIn = true;
          return json(res, { auth: { client_token: issued, lease_duration: 3600, renewable: false } });
        }
        // A login answered by a proxy echoing the request (the secret id), a call echoing the token.
        const echoed = req.url?.includes('/login') ? `invalid secret id ${secretId}` : `token ${issued}`;
        json(res, { errors: [echoed] }, 400);
      },
      { auth: { method: 'approle', roleId: 'role', secretId } },
    );
    try {
      const p = standIn.provider;
      const call1 = await rejection(p, p.encrypt({ uri: `${standIn.base}/k` }, bytes('x'), {}, call()));
      expect(call1.code).toBe('InvalidArgument');
      expect(shown(call1)).not.toContain(issued);
      // A second instance whose login fails: the echoed secret id is masked, the failure still denied.
      const again = await standInVault(
        (_req, res) => json(res, { errors: [`invalid secret id ${secretId}`] }, 400),
        {
          auth: { method: 'approle', roleId: 'role', secretId },
        },
      );
      try {
        const q = again.provider;
        const login = await rejection(q, q.encrypt({ uri: `${again.base}/k` }, bytes('x'), {}, call()));
        expect(login.code).toBe('AccessDenied');
        expect(shown(login)).not.toContain(secretId);
      } finally {
        await again.close();
      }
    } finally {
      await standIn.close();
    }
  });
});

describe('a ready-made client beside the settings keyport gives the clients it builds', () => {
  const endpoint = 'http://127.0.0.1:8200';
  const client = NodeVault({ endpoint, token: 's.given' });
  it.each([
    ['namespace (the calls would go to the root namespace)', { namespace: 'team-a' }],
    ['tls (the client would keep its own TLS settings)', { tls: { rejectUnauthorized: true } }],
  ])('%s is refused at construction, not dropped', (_, extra) => {
    const options = { endpoint, client, ...extra } as VaultTransitOptions;
    expect(() => vaultTransit(options)).toThrow(
      expect.objectContaining({
        code: 'InvalidArgument',
        message: expect.stringMatching(/with client, set them/),
      }),
    );
  });

  it('a client with auth and mounts is taken as before', () => {
    expect(() => vaultTransit({ endpoint, client, auth: 's.token', transitMounts: ['t2'] })).not.toThrow();
  });
});
