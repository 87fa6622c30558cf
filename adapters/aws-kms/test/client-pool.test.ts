/**
 * The clients kept per region/endpoint are bounded: URIs may come from users, and every distinct
 * `?endpoint=` would otherwise keep a client (its agent and sockets) for the provider's life.
 * Against local-kms, which listens on every interface, so 127.0.x.y are a thousand endpoints
 * (each listed in `allowedEndpoints`: a URI naming an unlisted one is refused, see endpoints.test.ts).
 */
import { readdirSync, readlinkSync } from 'node:fs';
import { createServer, type Socket, connect as tcpConnect } from 'node:net';
import { describe, expect, it, vi } from 'vitest';
import { AwsKmsProvider } from '../src/index.js';
import { MAX_LOCATION_CLIENTS } from '../src/rpc.js';
import { DATA_KEY_32, keyMetadata, stubTransport } from './support/stub-transport.js';
import { call, TEST_CREDENTIALS, target, uniqueName } from './support/targets.js';

/** Open sockets of this process, kept-alive idle ones included (Node unrefs those: not "active"). */
function openSockets(): number {
  const fds = readdirSync('/proc/self/fd');
  return fds.filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:');
    } catch {
      return false; // closed meanwhile (the directory's own descriptor, for one)
    }
  }).length;
}

/** `http://127.0.a.b:<port>` for the i-th distinct loopback address (all reach local-kms). */
function loopback(i: number): string {
  const url = new URL(target('local-kms').endpoint);
  return `http://127.0.${Math.floor(i / 250)}.${(i % 250) + 2}:${url.port}`;
}

/** The provider for local-kms, with the loopback endpoints (and `more`) allowed in key URIs. */
function poolProvider(count: number, more: readonly string[] = []): AwsKmsProvider {
  const t = target('local-kms');
  return new AwsKmsProvider({
    region: 'us-east-1',
    endpoint: t.endpoint,
    allowedEndpoints: [...Array.from({ length: count }, (_, i) => loopback(i)), ...more],
    credentials: TEST_CREDENTIALS,
  });
}

async function inBatches(count: number, size: number, run: (i: number) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < count; i += size) {
    await Promise.all(Array.from({ length: Math.min(size, count - i) }, (_, j) => run(i + j)));
  }
}

/** A loopback TCP proxy to local-kms that holds what clients send until `release()`. */
async function holdingProxy() {
  const upstream = new URL(target('local-kms').endpoint);
  const clients: Socket[] = [];
  let released = false;
  const waiting: Array<() => void> = [];
  const server = createServer((client) => {
    clients.push(client);
    const server = tcpConnect(Number(upstream.port), upstream.hostname);
    const pipe = () => {
      client.pipe(server);
      server.pipe(client);
    };
    client.on('error', () => undefined);
    server.on('error', () => client.destroy());
    client.on('close', () => server.destroy());
    if (released) pipe();
    else waiting.push(pipe);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    endpoint: `http://127.0.0.1:${port}`,
    clients,
    release(): void {
      released = true;
      for (const pipe of waiting.splice(0)) pipe();
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('clients per region/endpoint', () => {
  it('keeps at most a few dozen clients for 1,000 distinct endpoints, and a dropped one is rebuilt', async () => {
    const provider = poolProvider(1_000);
    try {
      const key = await provider.createKey({ name: uniqueName('pool'), spec: 'AES_256' }, call());
      const before = openSockets();
      await inBatches(1_000, 16, (i) =>
        provider.generateDataKey({ uri: `${key.uri}?endpoint=${loopback(i)}` }, {}, call()),
      );
      // each client keeps its keep-alive socket: a client per endpoint would hold ~1,000
      await vi.waitFor(() => expect(openSockets() - before).toBeLessThanOrEqual(MAX_LOCATION_CLIENTS + 2), {
        timeout: 5_000,
      });
      // the first endpoint's client was dropped long ago; its (cached) URI still works
      const again = await provider.generateDataKey({ uri: `${key.uri}?endpoint=${loopback(0)}` }, {}, call());
      expect(`aws-kms://${again.keyArn}`).toBe(key.uri);
    } finally {
      await provider.close();
    }
  });

  it('lets a call in flight on a dropped client finish, then closes that client', async () => {
    const proxy = await holdingProxy();
    const provider = poolProvider(MAX_LOCATION_CLIENTS + 8, [proxy.endpoint]);
    try {
      const key = await provider.createKey({ name: uniqueName('in-flight'), spec: 'AES_256' }, call());
      const held = provider.generateDataKey({ uri: `${key.uri}?endpoint=${proxy.endpoint}` }, {}, call());
      await vi.waitFor(() => expect(proxy.clients).toHaveLength(1));
      // more endpoints than the pool keeps: the held call's client is the least recently used
      await inBatches(MAX_LOCATION_CLIENTS + 8, 8, (i) =>
        provider.generateDataKey({ uri: `${key.uri}?endpoint=${loopback(i)}` }, {}, call()),
      );
      const socket = proxy.clients[0] as Socket;
      expect(socket.destroyed).toBe(false);
      proxy.release();
      expect(`aws-kms://${(await held).keyArn}`).toBe(key.uri);
      // its last call ended: the dropped client is destroyed, closing its kept-alive socket
      await vi.waitFor(() => expect(socket.destroyed).toBe(true), { timeout: 5_000 });
    } finally {
      await provider.close();
      await proxy.close();
    }
  });

  it('never destroys a requestHandler given in clientConfig when it drops a client (every client shares it)', async () => {
    const stub = stubTransport((op) =>
      op === 'GenerateDataKey'
        ? { json: { CiphertextBlob: 'AAEC', Plaintext: DATA_KEY_32, KeyId: keyMetadata('').KeyMetadata.Arn } }
        : { json: {} },
    );
    const handler = (stub.clientConfig as { requestHandler: { destroy(): void } }).requestHandler;
    let destroyed = 0;
    handler.destroy = () => {
      destroyed++;
    };
    const endpoint = (i: number) => `http://127.0.0.1:${10_000 + i}`;
    const provider = new AwsKmsProvider({
      region: 'us-east-1',
      credentials: TEST_CREDENTIALS,
      clientConfig: stub.clientConfig,
      allowedEndpoints: Array.from({ length: MAX_LOCATION_CLIENTS * 3 }, (_, i) => endpoint(i)),
    });
    const uri = (i: number) => `aws-kms://alias/shared?endpoint=${endpoint(i)}`;
    await inBatches(MAX_LOCATION_CLIENTS * 3, 8, (i) =>
      provider.generateDataKey({ uri: uri(i) }, {}, call()),
    );
    expect(destroyed).toBe(0);
    expect(stub.requests).toHaveLength(MAX_LOCATION_CLIENTS * 3);
  });
});
