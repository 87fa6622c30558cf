import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import NodeVault from 'node-vault';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VaultTransitProvider } from '../src/index.js';
import { bytes, call, keyName, openbao, provider, rejection, rootClient } from './helpers.js';

// OpenBao insists on a CA certificate when told not to read the pod's; the stand-in API server
// speaks plain HTTP, so any well-formed certificate (public, no key anywhere) will do.
const CA_PEM = `-----BEGIN CERTIFICATE-----
MIIBezCCASGgAwIBAgIUCrglPKiq7xEhytN0UphlhdAEKKkwCgYIKoZIzj0EAwIw
EzERMA8GA1UEAwwIazhzLXRlc3QwHhcNMjYxMTI1MTcyNDMxWhcNMzYxMTIyMTcy
NDMxWjATMREwDwYDVQQDDAhrOHMtdGVzdDBZMBMGByqGSM49AgEGCCqGSM49AwEH
A0IABPdK5zNykD2vwrBbwGcx2bqJxto4Af1iz2D2nzCrf4dqxAOWFw4uUy2Uyr/U
CjuukotXsDjjAgObs0UMo9I549CjUzBRMB0GA1UdDgQWBBQazLHTkzdjKNUpckCH
lN2d8jnKrTAfBgNVHSMEGDAWgBQazLHTkzdjKNUpckCHlN2d8jnKrTAPBgNVHRMB
Af8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIQCxNo55kVmmY+e1pDe4EiIHNaHN
2kB951wqsU0ZTbPr8gIge54si9HfRUcD2JjQwxiOGtg3X2GGG97TUic+YVx02KA=
-----END CERTIFICATE-----`;

const run = keyName('auth').replace(/[^a-z0-9-]/g, '');

/** A policy allowing encrypt on one key (and nothing else but the default policy). */
async function encryptPolicy(name: string, keyUri: string): Promise<void> {
  const key = keyUri.split('/keys/')[1];
  await rootClient().write(`sys/policy/${name}`, {
    policy: `path "transit/encrypt/${key}" { capabilities = ["update"] }`,
  });
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
  );
}

describe('authentication and cancellation', () => {
  let p: VaultTransitProvider;
  let keyUri: string;
  const root = rootClient();

  beforeAll(async () => {
    p = provider();
    keyUri = (await p.createKey({ name: keyName('auth-key'), spec: 'AES_256' }, call())).uri;
    await encryptPolicy(`${run}-enc`, keyUri);
  });
  afterAll(() => p.close());

  it('logs in with AppRole, renews before expiry, and logs in again once renewal fails', async () => {
    const mount = `${run}-approle`;
    await root.write(`sys/auth/${mount}`, { type: 'approle' });
    await root.write(`auth/${mount}/role/app`, {
      token_policies: [`${run}-enc`],
      token_ttl: '3s',
      token_max_ttl: '60s',
    });
    const roleId = ((await root.read(`auth/${mount}/role/app/role-id`)) as { data: { role_id: string } }).data
      .role_id;
    const secretId = (
      (await root.write(`auth/${mount}/role/app/secret-id`, {})) as { data: { secret_id: string } }
    ).data.secret_id;
    const app = provider({ auth: { method: 'approle', roleId, secretId, mount } });
    try {
      await app.encrypt({ uri: keyUri }, bytes('1'), {}, call());
      expect(app.session.tokens?.stats).toEqual({ logins: 1, renewals: 0 });
      await sleep(2_200);
      await app.encrypt({ uri: keyUri }, bytes('2'), {}, call());
      await sleep(2_200); // 4.4 s after login: only the renewal keeps this token alive
      await app.encrypt({ uri: keyUri }, bytes('3'), {}, call());
      expect(app.session.tokens?.stats).toEqual({ logins: 1, renewals: 2 });
      // Revoke the token behind the adapter's back: the next renewal fails, a fresh login follows.
      await root.write('auth/token/revoke', { token: (await app.session.client()).token });
      await sleep(2_100);
      await app.encrypt({ uri: keyUri }, bytes('4'), {}, call());
      expect(app.session.tokens?.stats.logins).toBe(2);
      const wrong = provider({ auth: { method: 'approle', roleId, secretId: 'not-the-secret', mount } });
      expect((await rejection(wrong, wrong.encrypt({ uri: keyUri }, bytes('5'), {}, call()))).code).toBe(
        'AccessDenied',
      );
      await wrong.close();
    } finally {
      await app.close();
    }
  });

  it('logs in with Kubernetes auth (OpenBao asks a TokenReview endpoint standing in for the API server)', async () => {
    const claims = {
      iss: 'kubernetes/serviceaccount',
      sub: 'system:serviceaccount:default:app',
      'kubernetes.io/serviceaccount/namespace': 'default',
      'kubernetes.io/serviceaccount/service-account.name': 'app',
      'kubernetes.io/serviceaccount/service-account.uid': 'uid-1',
    };
    const b64u = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
    const jwt = `${b64u({ alg: 'RS256', typ: 'JWT' })}.${b64u(claims)}.${Buffer.from('sig').toString('base64url')}`;
    let reviews = 0;
    const k8s = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => {
        body += c.toString();
      });
      req.on('end', () => {
        reviews++;
        const token = (JSON.parse(body) as { spec?: { token?: string } }).spec?.token;
        res.setHeader('content-type', 'application/json');
        res.end(
          JSON.stringify({
            apiVersion: 'authentication.k8s.io/v1',
            kind: 'TokenReview',
            status:
              token === jwt
                ? { authenticated: true, user: { username: claims.sub, uid: 'uid-1' } }
                : { authenticated: false },
          }),
        );
      });
    });
    const port = await listen(k8s);
    const mount = `${run}-k8s`;
    try {
      await root.write(`sys/auth/${mount}`, { type: 'kubernetes' });
      await root.write(`auth/${mount}/config`, {
        kubernetes_host: `http://127.0.0.1:${port}`,
        token_reviewer_jwt: jwt,
        disable_local_ca_jwt: true,
        kubernetes_ca_cert: CA_PEM,
      });
      await root.write(`auth/${mount}/role/app`, {
        bound_service_account_names: ['app'],
        bound_service_account_namespaces: ['default'],
        token_policies: [`${run}-enc`],
        token_ttl: '60s',
      });
      const app = provider({ auth: { method: 'kubernetes', role: 'app', jwt, mount } });
      try {
        expect((await app.encrypt({ uri: keyUri }, bytes('k8s'), {}, call())).keyVersion).toBe('1');
        expect(app.session.tokens?.stats.logins).toBe(1);
        expect(reviews).toBeGreaterThan(0);
      } finally {
        await app.close();
      }
      // From a file, through a symlink as Kubernetes projects the token, its newline trimmed.
      const dir = mkdtempSync(join(tmpdir(), 'vt-jwt-'));
      writeFileSync(join(dir, 'token.real'), `${jwt}\n`);
      symlinkSync(join(dir, 'token.real'), join(dir, 'token'));
      const fromFile = provider({
        auth: { method: 'kubernetes', role: 'app', jwtPath: join(dir, 'token'), mount },
      });
      try {
        expect((await fromFile.encrypt({ uri: keyUri }, bytes('k8s'), {}, call())).keyVersion).toBe('1');
        expect(fromFile.session.tokens?.stats.logins).toBe(1);
      } finally {
        await fromFile.close();
        await rm(dir, { recursive: true, force: true });
      }
    } finally {
      k8s.close();
    }
  });

  it('sends the namespace header when configured (OpenBao namespaces)', async () => {
    const ns = `${run}-ns`;
    await root.write(`sys/namespaces/${ns}`, {});
    const inNs = NodeVault({ endpoint: openbao().addr, token: openbao().token, namespace: ns });
    await inNs.write('sys/mounts/transit', { type: 'transit' });
    const scoped = provider({ namespace: ns });
    try {
      const uri = (await scoped.createKey({ name: keyName('ns'), spec: 'AES_256' }, call())).uri;
      await scoped.encrypt({ uri }, bytes('ns'), {}, call());
      expect((await rejection(p, p.describeKey({ uri }, call()))).code).toBe('NotFound');
    } finally {
      await scoped.close();
    }
  });

  it('aborts the HTTP request itself (the socket closes), and maps a deadline to Timeout', async () => {
    let closed = 0;
    const hanging = createServer((req) => {
      req.socket.on('close', () => closed++);
    });
    const port = await listen(hanging);
    const stuck = new VaultTransitProvider({
      endpoint: `http://127.0.0.1:${port}`,
      auth: { method: 'token', token: 't', renew: false },
    });
    const uri = `hcvault://127.0.0.1:${port}/transit/keys/k`;
    try {
      const controller = new AbortController();
      const pending = stuck.encrypt({ uri }, bytes('x'), {}, { signal: controller.signal });
      setTimeout(() => controller.abort(), 100);
      expect((await rejection(stuck, pending)).code).toBe('Aborted');
      await sleep(50);
      expect(closed).toBe(1);
      const timed = stuck.encrypt({ uri }, bytes('x'), {}, { signal: AbortSignal.timeout(100) });
      expect((await rejection(stuck, timed)).code).toBe('Timeout');
    } finally {
      await stuck.close();
      hanging.closeAllConnections();
      hanging.close();
    }
  });

  it('with a user-supplied node-vault client, stops waiting on abort (the request cannot be cancelled)', async () => {
    const hanging = createServer(() => undefined);
    const port = await listen(hanging);
    const client = NodeVault({ endpoint: `http://127.0.0.1:${port}`, token: 't' });
    const supplied = new VaultTransitProvider({ endpoint: `http://127.0.0.1:${port}`, client });
    try {
      const pending = supplied.encrypt(
        { uri: `hcvault://127.0.0.1:${port}/transit/keys/k` },
        bytes('x'),
        {},
        { signal: AbortSignal.timeout(100) },
      );
      expect((await rejection(supplied, pending)).code).toBe('Timeout');
    } finally {
      await supplied.close();
      hanging.closeAllConnections();
      hanging.close();
    }
  });
});

describe('a Kubernetes token path that is not a regular file', () => {
  // A FIFO with no writer blocks whoever opens or reads it, for good: each login that tried held
  // one of the few threads of Node's fs pool (4 by default) until fs, DNS lookups and crypto of
  // the whole process stalled, however promptly each call itself gave up.
  it.skipIf(process.platform === 'win32')(
    'is refused at once, never holding a thread of the fs pool, and an aborted call still ends Aborted',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'vt-jwt-'));
      const fifo = join(dir, 'token');
      execFileSync('mkfifo', [fifo]);
      const p = provider({ auth: { method: 'kubernetes', role: 'app', jwtPath: fifo } });
      const uri = `hcvault://${p.session.address}/transit/keys/${keyName('fifo')}`;
      try {
        const aborted = AbortSignal.abort();
        expect((await rejection(p, p.encrypt({ uri }, bytes('x'), {}, { signal: aborted }))).code).toBe(
          'Aborted',
        );
        // One call after another: each starts a login of its own (more than the pool's threads).
        const pool = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
        for (let i = 0; i <= Math.min(pool, 16); i++) {
          const started = Date.now();
          const signal = AbortSignal.timeout(250);
          const error = await rejection(p, p.encrypt({ uri }, bytes('x'), {}, { signal }));
          expect(error.code).toBe('InvalidArgument');
          expect(error.message).toMatch(/auth\.jwtPath\) is not a regular file/);
          expect(Date.now() - started).toBeLessThan(250);
        }
        // The process's file system calls still run.
        const probe = await Promise.race([
          stat(dir).then(() => 'answered'),
          new Promise((resolve) => setTimeout(resolve, 2000, 'stalled')),
        ]);
        expect(probe).toBe('answered');
      } finally {
        await p.close();
        // Lets any reader still blocked on the FIFO go: a writer opening releases them all. From a
        // child process, as a blocked pool would queue this process's own open behind them.
        for (let i = 0; i < 20; i++) {
          const writer = spawnSync('sh', ['-c', 'exec 3>"$1"', 'sh', fifo], { timeout: 500 });
          if (writer.status !== 0) break;
        }
        await rm(dir, { recursive: true, force: true });
      }
    },
  );
});

describe('a Kubernetes token path naming a file far larger than a token', () => {
  it('is refused before it is read or sent (a log or a key file named by mistake)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vt-jwt-'));
    const big = join(dir, 'token');
    await writeFile(big, Buffer.alloc(64 * 1024 + 1, 0x61));
    const p = provider({ auth: { method: 'kubernetes', role: 'app', jwtPath: big } });
    const uri = `hcvault://${p.session.address}/transit/keys/${keyName('bigjwt')}`;
    try {
      const error = await rejection(
        p,
        p.encrypt({ uri }, bytes('x'), {}, { signal: AbortSignal.timeout(10_000) }),
      );
      expect(error.code).toBe('InvalidArgument');
      expect(error.message).toMatch(
        /auth\.jwtPath\) is 65537 bytes, more than a token's 65536; nothing was sent/,
      );
    } finally {
      await p.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
