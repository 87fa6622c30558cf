import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type CloudKmsServer, startCloudKmsServer } from '../src/gcp/index.js';
import { REST_LIMITS, type RestServer, startRestServer } from '../src/gcp/rest.js';

// The REST port is bounded as the gRPC relay is: Node's own timeouts kept a connection that never
// sends a request open indefinitely and the count had no bound, so a loop of connections (or of
// leaked clients) held descriptors of the test runner without end.

interface Raw {
  socket: Socket;
  closed: Promise<void>;
  isClosed: () => boolean;
}

/** A raw TCP connection that sends `first` (or nothing); `closed` settles when the server closes it. */
function rawConnection(port: number, first?: string): Promise<Raw> {
  return new Promise((resolve, reject) => {
    let done = false;
    let markClosed = () => {};
    const closed = new Promise<void>((r) => {
      markClosed = r;
    });
    const socket = connect(port, '127.0.0.1', () => {
      if (first !== undefined) socket.write(first);
      resolve({ socket, closed, isClosed: () => done });
    });
    socket.resume(); // read, so the server's FIN is seen
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const raws: Raw[] = [];
afterEach(() => {
  for (const r of raws.splice(0)) r.socket.destroy();
});

describe('Cloud KMS REST port: bounded connections', () => {
  let server: CloudKmsServer | undefined;
  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });

  it('a flood of silent connections is bounded (the oldest closed) and a real client keeps working', async () => {
    server = await startCloudKmsServer();
    const port = Number(new URL(server.restUrl!).port);
    for (let i = 0; i < REST_LIMITS.maxConnections; i++) raws.push(await rawConnection(port));
    await sleep(1100); // past the grace a new connection has to send its request
    const more: Raw[] = [];
    for (let i = 0; i < 100; i++) more.push(await rawConnection(port));
    raws.push(...more);
    await within(
      Promise.all(raws.slice(0, 100).map((r) => r.closed)),
      5000,
      'closing the oldest connections',
    );
    expect(raws.filter((r) => !r.isClosed()).length).toBeLessThanOrEqual(REST_LIMITS.maxConnections);
    expect(more.every((r) => !r.isClosed())).toBe(true);
    const res = await fetch(`${server.restUrl}/v1/projects/p/locations/global/keyRings`);
    expect(res.status).toBe(200);
  });
});

describe('the REST server itself (small limits, no routes)', () => {
  let rest: RestServer | undefined;
  afterEach(async () => {
    await rest?.close();
    rest = undefined;
  });

  const start = (maxConnections: number, silentMs: number) =>
    startRestServer({
      routes: [],
      invoke: async () => ({}),
      dropped: Symbol('dropped'),
      host: '127.0.0.1',
      port: 0,
      sockets: new Set(),
      limits: { maxConnections, silentMs },
    });

  it('a connection that sends no request is closed after silentMs; one that made a request is kept', async () => {
    rest = await start(8, 300);
    const silent = await rawConnection(rest.port);
    const partial = await rawConnection(rest.port, 'GET /v1/x HTTP/1.1\r\n');
    const spoke = await rawConnection(rest.port, 'GET /v1/x HTTP/1.1\r\nHost: x\r\n\r\n');
    raws.push(silent, partial, spoke);
    await within(Promise.all([silent.closed, partial.closed]), 3000, 'closing the silent connections');
    await sleep(700);
    expect(spoke.isClosed()).toBe(false); // Node's keep-alive timeout (5 s) decides for it
  });

  it('over the limit, the oldest connection silent for a second is closed; none that made a request is', async () => {
    rest = await start(2, 60_000);
    // A request in progress (headers in, body not) and a keep-alive connection after its answer.
    const busy = await rawConnection(
      rest.port,
      'POST /v1/x HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n{',
    );
    const idle = await rawConnection(rest.port, 'GET /v1/x HTTP/1.1\r\nHost: x\r\n\r\n');
    raws.push(busy, idle);
    const silent: Raw[] = [];
    for (let i = 0; i < 2; i++) silent.push(await rawConnection(rest.port));
    raws.push(...silent);
    await sleep(1100);
    const fresh: Raw[] = [];
    for (let i = 0; i < 3; i++) fresh.push(await rawConnection(rest.port));
    raws.push(...fresh);
    await within(Promise.all(silent.map((r) => r.closed)), 3000, 'closing the old silent ones');
    await sleep(100);
    // The third fresh one found no silent connection old enough to close: it is let in over the limit.
    expect([busy, idle, ...fresh].every((r) => !r.isClosed())).toBe(true);
    busy.socket.write('"a":1}   ');
    const answer = await within(
      new Promise<string>((resolve) => busy.socket.once('data', (d: Buffer) => resolve(d.toString()))),
      3000,
      'the answer',
    );
    expect(answer).toMatch(/^HTTP\/1\.1 404/);
  });

  it('more requests at once than the limit all get their answer (no connection that spoke is cut)', async () => {
    rest = await start(4, 60_000);
    const statuses = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        fetch(`${rest!.url}/v1/x${i}`, { method: 'POST', body: '{}' }).then((r) => r.status),
      ),
    );
    expect(statuses.every((s) => s === 404)).toBe(true);
  });
});
