// Secrets a careless deployment would leak, and settings it would lose without a word:
// node-vault logs every request body through `debug` (a `DEBUG=*` set for another library is
// enough), and a `namespace` or `tls` given beside a ready-made `client` was dropped.
import { createRequire } from 'node:module';
import NodeVault from 'node-vault';
import { afterEach, describe, expect, it } from 'vitest';
import { type VaultTransitOptions, vaultTransit } from '../src/index.js';
import { bytes, call, keyName, openbao, provider, rejection, rootClient } from './helpers.js';

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
