import { existsSync, readdirSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startCloudKmsServer } from '../src/gcp/index.js';
import { RELAY_LIMITS, startRelay } from '../src/gcp/relay.js';
import { type Harness, LOCATION, startHarness } from './gcp-support.js';

// The gRPC port is a TCP relay in front of the in-process gRPC server. Each relayed connection
// used to cost three descriptors of the embedding process with no bound and no timeout, so a loop
// of connections (or of leaked clients) exhausted the test runner's descriptors.

const hasProcFds = existsSync('/proc/self/fd');
const openFds = () => readdirSync('/proc/self/fd').length;

interface Raw {
  socket: Socket;
  closed: Promise<void>;
  isClosed: () => boolean;
}

/** A raw TCP connection that never speaks; `closed` settles when the other side closes it. */
function rawConnection(port: number): Promise<Raw> {
  return new Promise((resolve, reject) => {
    let done = false;
    let markClosed = () => {};
    const closed = new Promise<void>((r) => {
      markClosed = r;
    });
    const socket = connect(port, '127.0.0.1', () => resolve({ socket, closed, isClosed: () => done }));
    socket.resume(); // read, so the other side's FIN is seen
    socket.on('error', (e) => (done ? undefined : reject(e)));
    socket.on('close', () => {
      done = true;
      markClosed();
    });
  });
}

const within = <T>(p: Promise<T>, ms: number, what: string) =>
  Promise.race([
    p,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms),
    ),
  ]);

describe('Cloud KMS gRPC relay: bounded connections', () => {
  const raws: Raw[] = [];
  let h: Harness | undefined;
  afterEach(async () => {
    for (const r of raws.splice(0)) r.socket.destroy();
    await h?.close();
    h = undefined;
  });

  it('a flood of silent TCP connections is bounded (least recently active evicted) and a real client keeps working', async () => {
    h = await startHarness({ rest: false });
    const [ring] = await h.client.createKeyRing({ parent: LOCATION, keyRingId: 'relay', keyRing: {} });
    const fdsBefore = hasProcFds ? openFds() : 0;
    const flood = RELAY_LIMITS.maxConnections + 300;
    for (let i = 0; i < flood; i++) raws.push(await rawConnection(h.server.port));
    // The server closes the oldest so no more than the limit stay open.
    await within(
      Promise.all(raws.slice(0, flood - RELAY_LIMITS.maxConnections).map((r) => r.closed)),
      5000,
      'evicting the oldest connections',
    );
    expect(raws.filter((r) => !r.isClosed()).length).toBeLessThanOrEqual(RELAY_LIMITS.maxConnections);
    if (hasProcFds) {
      // Ours (one each, until closed) plus at most one per relayed silent connection: no inner
      // connection is opened for a client that never speaks. It was about four per connection.
      expect(openFds() - fdsBefore).toBeLessThan(flood + RELAY_LIMITS.maxConnections + 64);
    }
    // The real client still works, its connection evicted or not (it reconnects).
    const [got] = await h.client.getKeyRing({ name: ring.name! });
    expect(got.name).toBe(ring.name);
    const [rings] = await h.client.listKeyRings({ parent: LOCATION });
    expect(rings.map((r) => r.name)).toContain(ring.name);
  });

  it('stop() closes silent and live connections promptly and accepts no more', async () => {
    h = await startHarness({ rest: false });
    await h.client.listKeyRings({ parent: LOCATION });
    for (let i = 0; i < 50; i++) raws.push(await rawConnection(h.server.port));
    const server = h.server;
    await within(server.stop(), 2000, 'stop()');
    await within(Promise.all(raws.map((r) => r.closed)), 2000, 'closing the connections');
    await expect(rawConnection(server.port)).rejects.toThrow();
    await h.client.close();
    h = undefined;
  });
});

describe('Cloud KMS server: a start that fails', () => {
  const listening = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPServerWrap').length;

  it.each([
    ['the gRPC port', 'port'],
    ['the REST port', 'restPort'],
  ] as const)('with %s in use rejects and leaves nothing listening', async (_what, option) => {
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
    const address = busy.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    try {
      await new Promise((r) => setTimeout(r, 100)); // servers of earlier tests finish closing
      const before = listening();
      await expect(startCloudKmsServer({ [option]: port })).rejects.toMatchObject({ code: 'EADDRINUSE' });
      // The inner gRPC server (and the relay, when REST failed) used to stay listening, keeping
      // the process alive after the error.
      await new Promise((r) => setTimeout(r, 100));
      expect(listening()).toBe(before);
    } finally {
      await new Promise<void>((r) => busy.close(() => r()));
    }
  });
});

describe('the relay itself (small limits, a stand-in inner server)', () => {
  let inner: Server | undefined;
  afterAll(() => inner?.close());

  async function echo(): Promise<number> {
    inner = createServer((s) => s.pipe(s));
    await new Promise<void>((r) => inner?.listen(0, '127.0.0.1', () => r()));
    const a = inner.address();
    return typeof a === 'object' && a ? a.port : 0;
  }

  it('closes silent connections after silentMs and idle ones after idleMs; active ones stay', async () => {
    const target = await echo();
    const sockets = new Set<Socket>();
    const relay = await startRelay({
      host: '127.0.0.1',
      port: 0,
      target,
      limits: { maxConnections: 8, silentMs: 200, idleMs: 600 },
      sockets,
    });
    try {
      const t0 = Date.now();
      const silent = await rawConnection(relay.port);
      const idle = await rawConnection(relay.port);
      const active = await rawConnection(relay.port);
      const echoed = new Promise<string>((r) => idle.socket.once('data', (d) => r(String(d))));
      idle.socket.write('hello');
      expect(await echoed).toBe('hello'); // relayed both ways
      const ticker = setInterval(() => active.socket.write('.'), 100);
      try {
        await within(silent.closed, 1000, 'closing the silent connection');
        expect(idle.isClosed()).toBe(false); // it spoke: the longer idle timeout applies
        await within(idle.closed, 1500, 'closing the idle connection');
        expect(Date.now() - t0).toBeGreaterThanOrEqual(550);
        expect(active.isClosed()).toBe(false);
        expect(relay.size).toBe(1);
      } finally {
        clearInterval(ticker);
      }
      active.socket.destroy();
    } finally {
      await relay.close();
    }
    expect(sockets.size).toBe(0);
  });

  it('at the limit evicts the least recently active connection, not the busy one', async () => {
    const target = await echo();
    const relay = await startRelay({
      host: '127.0.0.1',
      port: 0,
      target,
      limits: { maxConnections: 3, silentMs: 10_000, idleMs: 10_000 },
      sockets: new Set(),
    });
    try {
      const a = await rawConnection(relay.port);
      const b = await rawConnection(relay.port);
      const c = await rawConnection(relay.port);
      // `a` is the oldest but speaks now, so `b` becomes the least recently active.
      const echoed = new Promise<void>((r) => a.socket.once('data', () => r()));
      a.socket.write('x');
      await echoed;
      const d = await rawConnection(relay.port);
      await within(b.closed, 1000, 'evicting b');
      expect([a, c, d].map((r) => r.isClosed())).toEqual([false, false, false]);
      expect(relay.size).toBe(3);
      for (const r of [a, c, d]) r.socket.destroy();
    } finally {
      await relay.close();
    }
  });
});
