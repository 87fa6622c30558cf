// The caller's signal reaches every request a call makes, not only the transit operation itself:
// mount discovery, the key LIST, and the metadata store's reads and deletes. Against a server
// that never answers, an abort or a deadline ends the call at once and closes the socket.
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VaultTransitProvider } from '../src/index.js';
import { rejection } from './helpers.js';

describe('abort and deadline on every request of a call (a server that never answers)', () => {
  let server: Server;
  let port: number;
  /** Requests (method and path) left hanging, and sockets closed since. */
  const hanging: string[] = [];
  let closed = 0;
  /** Paths answered at once (key reads and writes); every other request hangs. */
  const answered = (method: string, url: string) =>
    (method === 'GET' && /^\/v1\/transit\/keys\/k$/.test(url)) ||
    (method === 'POST' && url === '/v1/transit/keys/k/config') ||
    (method === 'DELETE' && url === '/v1/transit/keys/k');
  const keyRead = JSON.stringify({
    data: {
      name: 'k',
      type: 'aes256-gcm96',
      keys: { '1': 1 },
      latest_version: 1,
      min_decryption_version: 1,
      min_encryption_version: 0,
      min_available_version: 0,
    },
  });
  const watched = new WeakSet<Socket>();
  const watch = (socket: Socket) => {
    if (watched.has(socket)) return;
    watched.add(socket);
    socket.on('close', () => closed++);
  };

  beforeAll(async () => {
    server = createServer((req, res) => {
      watch(req.socket);
      req.resume();
      const method = req.method ?? '';
      const url = req.url ?? '';
      if (!answered(method, url)) return void hanging.push(`${method} ${url}`);
      res.writeHead(method === 'GET' ? 200 : 204, { 'content-type': 'application/json' });
      res.end(method === 'GET' ? keyRead : undefined);
    });
    // Node's parser refuses Vault's LIST verb: such a request is left hanging here, unanswered.
    server.on('clientError', (error: Error & { rawPacket?: Buffer }, socket: Socket) => {
      watch(socket);
      hanging.push(String(error.rawPacket ?? '').split('\r\n')[0] ?? '');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });
  afterAll(() => {
    server.closeAllConnections();
    server.close();
  });

  const make = () =>
    new VaultTransitProvider({
      endpoint: `http://127.0.0.1:${port}`,
      auth: { method: 'token', token: 's.stand-in', renew: false },
      metadataStore: { kvMount: 'secret' },
    });
  const uri = (mount: string) => `hcvault://127.0.0.1:${port}/${mount}/keys/k`;
  const calls: Array<[string, RegExp, (p: VaultTransitProvider, signal: AbortSignal) => Promise<unknown>]> = [
    [
      'mount discovery',
      /^GET \/v1\/sys\/internal\/ui\/mounts\/other$/,
      (p, signal) => p.describeKey({ uri: uri('other') }, { signal }),
    ],
    [
      'the key LIST',
      /^LIST \/v1\/transit\/keys /,
      async (p, signal) => {
        for await (const _ of p.listKeys({ signal })) break;
      },
    ],
    [
      'the metadata store read',
      /^GET \/v1\/secret\/data\/keyport\/keys\/transit\/k$/,
      (p, signal) => p.describeKey({ uri: uri('transit') }, { signal }),
    ],
    [
      'the metadata store delete',
      /^DELETE \/v1\/secret\/metadata\/keyport\/keys\/transit\/k$/,
      (p, signal) => p.deleteKey({ uri: uri('transit') }, { signal }),
    ],
  ];

  it.each(calls)('an abort ends %s at once and closes its socket', async (_, request, run) => {
    const p = make();
    try {
      hanging.length = 0;
      const before = closed;
      const controller = new AbortController();
      const pending = run(p, controller.signal);
      await expect.poll(() => hanging.some((h) => request.test(h))).toBe(true);
      const at = Date.now();
      controller.abort();
      const error = await rejection(p, pending);
      expect(Date.now() - at).toBeLessThan(1_000);
      expect(error.code).toBe('Aborted');
      await expect.poll(() => closed).toBeGreaterThan(before);
    } finally {
      await p.close();
    }
  });

  it.each(calls)('a deadline ends %s with Timeout', async (_, _request, run) => {
    const p = make();
    try {
      const error = await rejection(p, run(p, AbortSignal.timeout(200)));
      expect(error.code).toBe('Timeout');
    } finally {
      await p.close();
    }
  });
});
