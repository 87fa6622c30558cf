/**
 * README promises that no other test held the code to, each against OpenBao (a stand-in server
 * only where OpenBao cannot show it: a login that never answers). Requests are observed by
 * wrapping the provider's own node-vault client, which every request of the provider goes through.
 */
import { createPublicKey } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { VaultTransitProvider } from '../src/index.js';
import { bytes, call, keyName, openbao, provider, rejection, rootClient } from './helpers.js';

const root = rootClient();

interface Sent {
  readonly method: 'read' | 'write';
  readonly path: string;
  readonly body?: Record<string, unknown>;
}

/**
 * Records every read and write `p` sends through its client; `before` runs ahead of a write and
 * may hold it back (the request leaves when it resolves).
 */
async function watch(
  p: VaultTransitProvider,
  before: (path: string) => Promise<void> | void = () => undefined,
): Promise<{ sent: Sent[]; written: string[] }> {
  const client = await p.session.client();
  const sent: Sent[] = [];
  const written: string[] = [];
  const read = client.read.bind(client);
  const write = client.write.bind(client);
  client.read = (path: string, o?: unknown) => {
    sent.push({ method: 'read', path });
    return read(path, o as never);
  };
  client.write = async (path: string, body: unknown, o?: unknown) => {
    sent.push({ method: 'write', path, body: body as Record<string, unknown> });
    await before(path);
    const answer = await write(path, body as never, o as never);
    written.push(path);
    return answer;
  };
  return { sent, written };
}

/** What `path` holds on the server, or undefined when it answers 404. */
async function stored(path: string): Promise<unknown> {
  try {
    return (await root.read(path)).data;
  } catch (error) {
    if ((error as { response?: { statusCode?: number } }).response?.statusCode === 404) return undefined;
    throw error;
  }
}

const nameOf = (uri: string) => uri.slice(uri.lastIndexOf('/') + 1);

describe('README promises (OpenBao)', () => {
  let p: VaultTransitProvider;
  beforeAll(() => {
    p = provider();
  });
  afterAll(() => p.close());

  it('creates keys with exportable: false and allow_plaintext_backup: false', async () => {
    const q = provider();
    try {
      const { sent } = await watch(q);
      const made = await q.createKey({ name: keyName('not-exportable'), spec: 'RSA_2048' }, call());
      const create = sent.find((r) => r.method === 'write' && r.path === `transit/keys/${nameOf(made.uri)}`);
      expect(create?.body).toMatchObject({
        type: 'rsa-2048',
        exportable: false,
        allow_plaintext_backup: false,
      });
      expect(await stored(`transit/keys/${nameOf(made.uri)}`)).toMatchObject({
        exportable: false,
        allow_plaintext_backup: false,
      });
    } finally {
      await q.close();
    }
  });

  it('a createKey caller that aborts after the first request stops waiting at once; the period asked for still lands', async () => {
    const q = provider();
    const controller = new AbortController();
    const name = keyName('abort-config');
    try {
      // The config write (the second request) is held back, and the caller aborts meanwhile.
      const { written } = await watch(q, async (path) => {
        if (path !== `transit/keys/${name}/config`) return;
        controller.abort();
        await sleep(500);
      });
      const pending = q.createKey(
        { name, spec: 'AES_256', rotation: { periodDays: 30 } },
        { signal: controller.signal },
      );
      expect((await rejection(q, pending)).code).toBe('Aborted');
      expect(written).not.toContain(`transit/keys/${name}/config`); // stopped waiting before it ended
      await vi.waitFor(() => expect(written).toContain(`transit/keys/${name}/config`), { timeout: 5_000 });
      // Not the creation marker: the key carries the period asked for and is a finished key.
      expect(await stored(`transit/keys/${name}`)).toMatchObject({ auto_rotate_period: 30 * 86_400 });
      const uri = `hcvault://${q.session.address}/transit/keys/${name}`;
      expect((await p.describeKey({ uri }, call())).rotation?.periodDays).toBe(30);
    } finally {
      await q.close();
    }
  });

  it('pending imports live in the provider instance: createKey({ external: true }) makes nothing on the server', async () => {
    const name = keyName('pending');
    const pending = await p.createKey({ name, spec: 'AES_256', external: true }, call());
    expect(pending.state).toBe('pending_import');
    expect(await stored(`transit/keys/${name}`)).toBeUndefined();
    expect((await p.describeKey({ uri: pending.uri }, call())).state).toBe('pending_import');
    // ...and its import parameters are transit's wrapping key: RSA-4096, SPKI DER.
    const params = await p.getImportParameters({ uri: pending.uri }, {}, call());
    const wrapping = createPublicKey({
      key: Buffer.from(params.wrappingPublicKey),
      format: 'der',
      type: 'spki',
    });
    expect(wrapping.asymmetricKeyDetails?.modulusLength).toBe(4096);
    expect(params.algorithm).toBe('RSA_AES_KEY_WRAP_SHA_256');
    // Another instance (another process) knows nothing of it: neither pending nor on the server.
    const other = provider();
    try {
      expect((await rejection(other, other.describeKey({ uri: pending.uri }, call()))).code).toBe('NotFound');
      const req = { wrappedMaterial: new Uint8Array(600), algorithm: 'RSA_AES_KEY_WRAP_SHA_256' } as const;
      const imported = await rejection(other, other.importKeyMaterial({ uri: pending.uri }, req, call()));
      expect(imported.code).toBe('NotFound');
    } finally {
      await other.close();
    }
  });

  it('verification tries every live version in one batched request, unless the ref pins one', async () => {
    const q = provider();
    try {
      const uri = (await q.createKey({ name: keyName('verify-batch'), spec: 'HMAC_256' }, call())).uri;
      const message = bytes('signed long ago');
      const v1 = await q.mac({ uri }, message, call());
      await q.rotateKey({ uri }, call());
      await q.rotateKey({ uri }, call());
      const { sent } = await watch(q);
      const verifies = () => sent.filter((r) => r.path === `transit/verify/${nameOf(uri)}`);
      const items = (i: number) => (verifies()[i]?.body?.batch_input as unknown[] | undefined)?.length;

      expect(await q.verifyMac({ uri }, message, v1.mac, call())).toBe(true);
      expect(verifies()).toHaveLength(1);
      expect(items(0)).toBe(3); // versions 3, 2 and 1

      expect(await q.verifyMac({ uri, version: '1' }, message, v1.mac, call())).toBe(true);
      expect(await q.verifyMac({ uri, version: '2' }, message, v1.mac, call())).toBe(false);
      expect(verifies()).toHaveLength(3);
      expect([items(1), items(2)]).toEqual([1, 1]);

      // A version below min_decryption_version is not live: it is not tried.
      await q.setVersionPolicy({ uri }, { minDecryptionVersion: 2 });
      expect(await q.verifyMac({ uri }, message, v1.mac, call())).toBe(false);
      expect(items(3)).toBe(2);
    } finally {
      await q.close();
    }
  });

  it('a key on a mount neither `mount` nor in transitMounts is asked about once per mount and provider', async () => {
    const mount = `${keyName('t3').replace(/[^a-z0-9-]/g, '')}`;
    await root.write(`sys/mounts/${mount}`, { type: 'transit' });
    const name = keyName('elsewhere');
    await root.write(`${mount}/keys/${name}`, { type: 'aes256-gcm96' });
    const uri = `hcvault://${new URL(openbao().addr).host}/${mount}/keys/${name}`;
    const asks = (sent: Sent[]) => sent.filter((r) => r.path === `sys/internal/ui/mounts/${mount}`).length;
    const [q, r] = [provider(), provider()];
    try {
      const [inQ, inR] = [await watch(q), await watch(r)];
      const sealed = await Promise.all([1, 2, 3].map(() => q.encrypt({ uri }, bytes('x'), {}, call())));
      for (const s of sealed) await q.decrypt({ uri }, s.ciphertext, {}, call());
      await q.describeKey({ uri }, call());
      expect(asks(inQ.sent)).toBe(1);
      // Another provider asks for itself, once.
      await r.encrypt({ uri }, bytes('y'), {}, call());
      await r.encrypt({ uri }, bytes('z'), {}, call());
      expect(asks(inR.sent)).toBe(1);
    } finally {
      await Promise.all([q.close(), r.close()]);
      await root.delete(`sys/mounts/${mount}`);
    }
  });

  it('listGrants removes the policy of a grant past its expiry', async () => {
    const uri = (await p.createKey({ name: keyName('grant-expiry'), spec: 'AES_256' }, call())).uri;
    const grant = await p.createGrant(
      { uri },
      { grantee: 'app', operations: ['encrypt'], expiresAt: new Date(Date.now() + 2_000) },
      call(),
    );
    const policies = ((await root.read('sys/policy')) as { data: { policies: string[] } }).data.policies;
    const policy = policies.find((n) => n.startsWith('keyport-grant-') && n.endsWith(`-${grant.id}`));
    expect(policy).toBeDefined();
    await sleep(2_600);
    const listed: string[] = [];
    for await (const g of p.listGrants({ uri }, call())) listed.push(g.id);
    expect(listed).not.toContain(grant.id);
    expect(await stored(`sys/policy/${policy}`)).toBeUndefined();
  });
});

describe('a login shared by concurrent callers (a stand-in server whose login never answers)', () => {
  let server: Server;
  let port: number;
  const logins: IncomingMessage[] = [];
  const closed: IncomingMessage[] = [];

  beforeAll(async () => {
    server = createServer((req) => {
      req.resume();
      logins.push(req);
      req.socket.on('close', () => closed.push(req));
    });
    port = await new Promise<number>((resolve) =>
      server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
    );
  });
  afterAll(() => {
    server.closeAllConnections();
    server.close();
  });

  it('a caller giving up leaves the login running for the others; once every one has, the request is cancelled', async () => {
    const q = new VaultTransitProvider({
      endpoint: `http://127.0.0.1:${port}`,
      auth: { method: 'approle', roleId: 'role', secretId: 'secret' },
    });
    const uri = `hcvault://127.0.0.1:${port}/transit/keys/k`;
    const [first, second] = [new AbortController(), new AbortController()];
    try {
      const a = q.encrypt({ uri }, bytes('a'), {}, { signal: first.signal });
      const b = q.encrypt({ uri }, bytes('b'), {}, { signal: second.signal });
      await vi.waitFor(() => expect(logins).toHaveLength(1));
      expect(logins[0]?.url).toBe('/v1/auth/approle/login');
      first.abort();
      expect((await rejection(q, a)).code).toBe('Aborted');
      await sleep(100);
      expect(closed).toHaveLength(0); // still running for the second caller
      second.abort();
      expect((await rejection(q, b)).code).toBe('Aborted');
      await vi.waitFor(() => expect(closed).toHaveLength(1), { timeout: 2_000 });
      expect(logins).toHaveLength(1); // one login for both
    } finally {
      await q.close();
    }
  });
});
