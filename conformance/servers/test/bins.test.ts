import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { KeyClient } from '@azure/keyvault-keys';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { start as startAzure } from '../src/azure-keyvault.js';
import { start as startKms } from '../src/cloud-kms.js';
import { grpc, makeClient } from './gcp-support.js';

// The bins as a user runs them: built to dist/ with the package's own build, spawned with node,
// read until their ready line, used with the official clients, stopped with SIGTERM.
const PKG = join(import.meta.dirname, '..');
const AZURE_BIN = join(PKG, 'dist', 'azure', 'cli.js');
const KMS_BIN = join(PKG, 'dist', 'gcp', 'cli.js');

let dir: string;
beforeAll(async () => {
  execFileSync(join(PKG, '..', '..', 'node_modules', '.bin', 'tsc'), [
    '-p',
    join(PKG, 'tsconfig.build.json'),
  ]);
  dir = await mkdtemp(join(tmpdir(), 'keyport-bins-'));
}, 60_000);
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface Running {
  child: ChildProcess;
  env: Record<string, string>;
  ready: Record<string, string>;
  stdout: () => string;
  stderr: () => string;
}

function launch(bin: string, args: string[]): Promise<Running> {
  const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr?.on('data', (c: Buffer) => {
    err += c.toString();
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ready line; stderr: ${err}`)), 20_000);
    child.on('exit', (code) => reject(new Error(`exited ${code} before ready: ${err}`)));
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      const line = out.split('\n').find((l) => / ready /.test(l));
      if (!line) return;
      clearTimeout(timer);
      const env = Object.fromEntries(
        out
          .split('\n')
          .filter((l) => /^[A-Z_]+=/.test(l))
          .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
      );
      const ready = Object.fromEntries(
        line
          .split(' ')
          .filter((w) => w.includes('='))
          .map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)]),
      );
      resolve({ child, env, ready, stdout: () => out, stderr: () => err });
    });
  });
}

function stop(
  r: Running,
  signal: NodeJS.Signals = 'SIGTERM',
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => {
    r.child.removeAllListeners('exit');
    r.child.on('exit', (code, signal) => resolve({ code, signal }));
    r.child.kill(signal);
  });
}

function run(bin: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  try {
    // A bin that starts instead of refusing its flags would never exit: kill it, fail the test.
    const stdout = execFileSync(process.execPath, [bin, ...args], {
      encoding: 'utf8',
      stdio: 'pipe',
      timeout: 15_000,
    });
    return { status: 0, stdout, stderr: '' };
  } catch (e) {
    const x = e as { status: number | null; stdout: string; stderr: string };
    return { status: x.status, stdout: x.stdout, stderr: x.stderr };
  }
}

/** One HTTPS call to a running Key Vault bin, trusting the CA its ready line names. */
async function azureCall(
  r: Running,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const ca = await readFile(r.ready.ca!);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      `${r.ready.url}${path}`,
      {
        method,
        ca,
        headers: {
          authorization: `Bearer ${r.env.KEYPORT_AZUREKV_TOKEN}`,
          ...(payload ? { 'content-type': 'application/json' } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
          });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

const AKV = 'api-version=2025-07-01';

const staticToken = (token: string) => ({
  getToken: async () => ({ token, expiresOnTimestamp: Date.now() + 3_600_000 }),
});

describe('keyport-azure-keyvault', () => {
  it('--help names every flag; a bad flag is usage error 2', () => {
    const help = run(AZURE_BIN, ['--help']);
    expect(help.status).toBe(0);
    for (const flag of [
      '--mode',
      '--host',
      '--port',
      '--principals',
      '--tls-cert',
      '--tls-key',
      '--state',
      '--soft-delete-days',
    ])
      expect(help.stdout).toContain(flag);
    const bad = run(AZURE_BIN, ['--bogus']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('usage: keyport-azure-keyvault');
    expect(run(AZURE_BIN, ['--port', '99999']).status).toBe(2);
  });

  it('prints a ready line, serves the official client, keeps --state across a SIGTERM restart', async () => {
    const state = join(dir, 'vault.json');
    const first = await launch(AZURE_BIN, ['--state', state]);
    expect(first.ready.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(first.env.KEYPORT_AZUREKV_URL).toBe(first.ready.url);
    expect(first.env.IDENTITY_ENDPOINT).toBe(`${first.ready.url}/_keyport/identity/token`);
    expect(first.env.IDENTITY_HEADER).toMatch(/^[0-9a-f]{32}$/);
    const ca = await readFile(first.ready.ca!);
    const client = new KeyClient(first.ready.url!, staticToken(first.ready.token!), {
      disableChallengeResourceVerification: true,
      retryOptions: { maxRetries: 0 },
      tlsOptions: { ca: ca.toString() },
    } as ConstructorParameters<typeof KeyClient>[2]);
    const created = await client.createEcKey('survives-restart');
    expect((await stop(first)).code).toBe(0);

    const second = await launch(AZURE_BIN, ['--state', state]);
    const again = new KeyClient(second.ready.url!, staticToken(second.ready.token!), {
      disableChallengeResourceVerification: true,
      retryOptions: { maxRetries: 0 },
      tlsOptions: { ca: (await readFile(second.ready.ca!)).toString() },
    } as ConstructorParameters<typeof KeyClient>[2]);
    const got = await again.getKey('survives-restart');
    expect(got.key?.x).toEqual(created.key?.x);
    const { code } = await stop(second);
    expect(code).toBe(0);
    expect(second.stderr()).toContain('stopped (SIGTERM)');
  }, 60_000);

  it('prints the ready line last; SIGINT stops the server and exits 0', async () => {
    const running = await launch(AZURE_BIN, []);
    const lines = running.stdout().trimEnd().split('\n');
    expect(lines.at(-1)).toMatch(/^keyport-azure-keyvault ready url=/);
    const { code } = await stop(running, 'SIGINT');
    expect(code).toBe(0);
    expect(running.stderr()).toContain('stopped (SIGINT)');
  }, 60_000);

  it('--state FILE is written mode 0600', async () => {
    const state = join(dir, 'vault-mode.json');
    const running = await launch(AZURE_BIN, ['--state', state]);
    try {
      expect((await azureCall(running, 'POST', `/keys/mode/create?${AKV}`, { kty: 'EC' })).status).toBe(200);
      expect((await stat(state)).mode & 0o777).toBe(0o600);
    } finally {
      await stop(running);
    }
  }, 60_000);

  it('--state FILE is replaced after every change: a SIGKILLed server loses no key', async () => {
    const sub = await mkdtemp(join(dir, 'vault-kill-'));
    const state = join(sub, 'vault.json');
    const first = await launch(AZURE_BIN, ['--state', state]);
    const created = await azureCall(first, 'POST', `/keys/kept/create?${AKV}`, { kty: 'EC' });
    expect(created.status).toBe(200);
    expect((await stop(first, 'SIGKILL')).signal).toBe('SIGKILL');
    // Written beside the file and renamed: nothing but the state file is left.
    expect(await readdir(sub)).toEqual(['vault.json']);
    const second = await launch(AZURE_BIN, ['--state', state]);
    try {
      const got = await azureCall(second, 'GET', `/keys/kept?${AKV}`);
      expect(got.status).toBe(200);
      expect((got.body.key as { x: string }).x).toBe((created.body.key as { x: string }).x);
    } finally {
      await stop(second);
    }
  }, 60_000);

  it('--soft-delete-days N sets the retention; outside 7-90 is usage error 2', async () => {
    for (const days of ['6', '91', 'x']) {
      const bad = run(AZURE_BIN, ['--soft-delete-days', days]);
      expect(bad.status, days).toBe(2);
      expect(bad.stderr).toContain('usage: keyport-azure-keyvault');
    }
    const running = await launch(AZURE_BIN, ['--soft-delete-days', '7']);
    try {
      expect((await azureCall(running, 'POST', `/keys/short/create?${AKV}`, { kty: 'EC' })).status).toBe(200);
      const deleted = await azureCall(running, 'DELETE', `/keys/short?${AKV}`);
      expect(deleted.body).toMatchObject({
        attributes: { recoverableDays: 7, recoveryLevel: 'CustomizedRecoverable+Purgeable' },
      });
    } finally {
      await stop(running);
    }
  }, 60_000);

  it('--host is 127.0.0.1 or localhost (named in the URL); any other is usage error 2', async () => {
    const bad = run(AZURE_BIN, ['--host', '0.0.0.0']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('usage: keyport-azure-keyvault');
    const running = await launch(AZURE_BIN, ['--host', 'localhost']);
    try {
      expect(running.ready.url).toMatch(/^https:\/\/localhost:\d+$/);
      expect((await azureCall(running, 'GET', `/keys?${AKV}`)).status).toBe(200);
    } finally {
      await stop(running);
    }
  }, 60_000);

  it('start() is the programmatic entry point', async () => {
    const server = await startAzure({ mode: 'hsm' });
    try {
      expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      expect(server.mode).toBe('hsm');
    } finally {
      await server.stop();
    }
  });
});

describe('installable one at a time', () => {
  it('the Key Vault entry point runs with every Cloud KMS dependency unresolvable', () => {
    const out = execFileSync(
      process.execPath,
      [
        join(PKG, 'test', 'fixtures', 'azure-alone.mjs'),
        pathToFileURL(join(PKG, 'dist', 'azure-keyvault.js')).href,
        pathToFileURL(join(PKG, 'dist', 'cloud-kms.js')).href,
      ],
      { encoding: 'utf8' },
    );
    expect(out).toMatch(/started https:\/\/127\.0\.0\.1:\d+/);
    // The blocker is effective: the Cloud KMS entry point does need those packages.
    expect(out).toContain('cloud-kms entry blocked: true');
  });
});

describe('keyport-cloud-kms', () => {
  it('--help names every flag; a bad flag is usage error 2', () => {
    const help = run(KMS_BIN, ['--help']);
    expect(help.status).toBe(0);
    for (const flag of [
      '--host',
      '--port',
      '--rest-port',
      '--no-rest',
      '--tls',
      '--tls-cert',
      '--tls-key',
      '--principals',
      '--state',
    ])
      expect(help.stdout).toContain(flag);
    const bad = run(KMS_BIN, ['--nope']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('usage: keyport-cloud-kms');
  });

  it('serves gRPC and REST from the ready line, keeps --state, stops on SIGTERM', async () => {
    const state = join(dir, 'kms.json');
    const first = await launch(KMS_BIN, ['--state', state]);
    expect(first.ready.grpc).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(first.ready.rest).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const client = makeClient(Number(first.ready.grpc!.split(':')[1]));
    const loc = 'projects/bins/locations/global';
    await client.createKeyRing({ parent: loc, keyRingId: 'r', keyRing: {} });
    const [key] = await client.createCryptoKey({
      parent: `${loc}/keyRings/r`,
      cryptoKeyId: 'k',
      cryptoKey: { purpose: 'ENCRYPT_DECRYPT' },
    });
    const [enc] = await client.encrypt({ name: key.name!, plaintext: Buffer.from('kept') });
    await client.close();
    expect((await stop(first)).code).toBe(0);

    const second = await launch(KMS_BIN, ['--state', state]);
    const res = await fetch(`${second.ready.rest}/v1/${key.name}:decrypt`, {
      method: 'POST',
      body: JSON.stringify({ ciphertext: Buffer.from(enc.ciphertext as Uint8Array).toString('base64') }),
    });
    expect(res.status).toBe(200);
    expect(Buffer.from(((await res.json()) as { plaintext: string }).plaintext, 'base64').toString()).toBe(
      'kept',
    );
    expect((await stop(second)).code).toBe(0);
  }, 60_000);

  it('--tls serves gRPC over TLS with the printed CA', async () => {
    const running = await launch(KMS_BIN, ['--tls', '--no-rest']);
    try {
      expect(running.ready.ca).toMatch(/\.pem$/);
      expect(running.ready.rest).toBe('none');
      const { KeyManagementServiceClient } = await import('@google-cloud/kms');
      const { OAuth2Client } = await import('google-auth-library');
      const authClient = new OAuth2Client();
      authClient.setCredentials({ access_token: running.ready.token! });
      const tls = new KeyManagementServiceClient({
        apiEndpoint: '127.0.0.1',
        port: Number(running.ready.grpc!.split(':')[1]),
        sslCreds: grpc.credentials.createSsl(await readFile(running.ready.ca!)),
        authClient,
      });
      const [ring] = await tls.createKeyRing({
        parent: 'projects/tls/locations/global',
        keyRingId: 'r',
        keyRing: {},
      });
      expect(ring.name).toBe('projects/tls/locations/global/keyRings/r');
      await tls.close();
    } finally {
      expect((await stop(running)).code).toBe(0);
    }
  }, 60_000);

  it('prints the ready line last; SIGINT stops the server and exits 0', async () => {
    const running = await launch(KMS_BIN, []);
    const lines = running.stdout().trimEnd().split('\n');
    expect(lines.at(-1)).toMatch(/^keyport-cloud-kms ready grpc=/);
    const { code } = await stop(running, 'SIGINT');
    expect(code).toBe(0);
    expect(running.stderr()).toContain('stopped (SIGINT)');
  }, 60_000);

  it('--state FILE is written mode 0600', async () => {
    const state = join(dir, 'kms-mode.json');
    const running = await launch(KMS_BIN, ['--state', state]);
    try {
      const res = await fetch(`${running.ready.rest}/v1/projects/p/locations/global/keyRings?keyRingId=r`, {
        method: 'POST',
        body: '{}',
      });
      expect(res.status).toBe(200);
      expect((await stat(state)).mode & 0o777).toBe(0o600);
    } finally {
      await stop(running);
    }
  }, 60_000);

  it('--state FILE is replaced after each changing call: a SIGKILLed server loses nothing', async () => {
    const sub = await mkdtemp(join(dir, 'kms-kill-'));
    const state = join(sub, 'kms.json');
    const ring = 'projects/p/locations/global/keyRings/kept';
    const first = await launch(KMS_BIN, ['--state', state]);
    const res = await fetch(`${first.ready.rest}/v1/projects/p/locations/global/keyRings?keyRingId=kept`, {
      method: 'POST',
      body: '{}',
    });
    expect(res.status).toBe(200);
    expect((await stop(first, 'SIGKILL')).signal).toBe('SIGKILL');
    expect(await readdir(sub)).toEqual(['kms.json']);
    const second = await launch(KMS_BIN, ['--state', state]);
    try {
      expect((await fetch(`${second.ready.rest}/v1/${ring}`)).status).toBe(200);
    } finally {
      await stop(second);
    }
  }, 60_000);

  it('--tls-cert without --tls-key is usage error 2', () => {
    const bad = run(KMS_BIN, ['--tls-cert', join(dir, 'cert.pem')]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('usage: keyport-cloud-kms');
  });

  it('--principals FILE: a listed bearer token is its principal, any other token is UNAUTHENTICATED', async () => {
    const file = join(dir, 'kms-principals.json');
    await writeFile(file, JSON.stringify({ 'token-alice': 'user:alice@example.com' }));
    const running = await launch(KMS_BIN, ['--principals', file]);
    try {
      expect(running.stdout()).toContain('token=(see --principals)');
      const call = (token: string) =>
        fetch(`${running.ready.rest}/v1/projects/p/locations/global/keyRings`, {
          headers: { authorization: `Bearer ${token}` },
        });
      const unknown = await call('token-mallory');
      expect(unknown.status).toBe(401);
      expect(await unknown.json()).toMatchObject({ error: { status: 'UNAUTHENTICATED' } });
      // Alice has no project binding: known, but refused for want of a permission.
      const alice = await call('token-alice');
      expect(alice.status).toBe(403);
      expect(await alice.json()).toMatchObject({ error: { status: 'PERMISSION_DENIED' } });
    } finally {
      await stop(running);
    }
  }, 60_000);

  it('start() is the programmatic entry point', async () => {
    const server = await startKms({ rest: false });
    try {
      expect(server.address).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(server.restUrl).toBeUndefined();
    } finally {
      await server.stop();
    }
  });
});
