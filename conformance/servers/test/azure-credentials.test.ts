import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AzureKeyVaultServer, startAzureKeyVaultServer } from '../src/azure/index.js';
import { ADMIN, keyClient, PRINCIPALS, raw } from './azure-helpers.js';
import { run } from './run-child.js';

// The offline-credential snippets of README-azure.md, run as separate processes exactly as a
// user runs them: DefaultAzureCredential finds the server's managed-identity endpoint through
// IDENTITY_ENDPOINT / IDENTITY_HEADER and trusts the test CA through the runtime's own variable.
const PYTHON = process.env.KEYPORT_PYTHON ?? join(homedir(), '.cache', 'keyport', 'venv', 'bin', 'python');

let server: AzureKeyVaultServer;
beforeAll(async () => {
  server = await startAzureKeyVaultServer({ principals: PRINCIPALS, identityToken: ADMIN });
});
afterAll(() => server?.stop());

/** A child with only PATH and HOME of this process's environment, and `env`. */
const runWith = (cmd: string, args: string[], env: Record<string, string>) =>
  run(cmd, args, { PATH: process.env.PATH ?? '', HOME: homedir(), ...env });

const credentialEnv = () => ({
  KEYPORT_AZUREKV_URL: server.url,
  IDENTITY_ENDPOINT: server.identity.endpoint,
  IDENTITY_HEADER: server.identity.header,
});

describe('offline credentials for the official clients', () => {
  it('JavaScript: DefaultAzureCredential + NODE_EXTRA_CA_CERTS', async () => {
    const r = await runWith(
      process.execPath,
      [join(import.meta.dirname, 'fixtures', 'offline-default-credential.mjs')],
      {
        ...credentialEnv(),
        NODE_EXTRA_CA_CERTS: server.caFile,
      },
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`created ${server.url}/keys/offline-js/[0-9a-f]{32}`));
    expect((await keyClient(server, ADMIN).getKey('offline-js')).keyType).toBe('RSA');
  }, 60_000);

  it('Python: DefaultAzureCredential + REQUESTS_CA_BUNDLE', async () => {
    if (!existsSync(PYTHON)) {
      throw new Error(
        `Python with azure-identity is missing at ${PYTHON}: run "pnpm emulators up azure-keyvault"`,
      );
    }
    const r = await runWith(PYTHON, [join(import.meta.dirname, '..', 'python', 'offline_credentials.py')], {
      ...credentialEnv(),
      REQUESTS_CA_BUNDLE: server.caFile,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`created ${server.url}/keys/offline-py/[0-9a-f]{32}`));
  }, 60_000);

  it('the identity endpoint refuses a wrong X-IDENTITY-HEADER and foreign resources', async () => {
    const path = `/_keyport/identity/token?api-version=2019-08-01&resource=${encodeURIComponent('https://vault.azure.net')}`;
    expect((await raw(server, 'GET', path)).status).toBe(401);
    const other = `/_keyport/identity/token?api-version=2019-08-01&resource=${encodeURIComponent('https://management.azure.com')}`;
    const { request } = await import('node:https');
    const { readFileSync } = await import('node:fs');
    const status = await new Promise<number>((resolve, reject) => {
      request(
        `${server.url}${other}`,
        { ca: readFileSync(server.caFile), headers: { 'x-identity-header': server.identity.header } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      )
        .on('error', reject)
        .end();
    });
    expect(status).toBe(400);
  });
});
