import { createConnection, createServer, type Socket } from 'node:net';

// Clients reach the in-process gRPC server through this TCP relay so a fault can drop their
// connection for real. Every relayed connection costs three descriptors of the process that embeds
// the server (the accepted socket, the socket to the inner server, and the inner server's end of
// it), so the relay is bounded: a test that opens connections in a loop (or a client leaked per
// test) must not exhaust the descriptors of the test runner.

export interface RelayLimits {
  /**
   * Most connections relayed at once. One more evicts the least recently active connection (a
   * silent or idle one, typically a leaked client's), so a flood cannot lock out a working client.
   */
  maxConnections: number;
  /** A connection that has sent nothing for this long is closed (gRPC and TLS clients speak first). */
  silentMs: number;
  /** A connection with no traffic either way for this long is closed (clients reconnect on their next call). */
  idleMs: number;
}

export const RELAY_LIMITS: Readonly<RelayLimits> = Object.freeze({
  maxConnections: 256,
  silentMs: 10_000,
  idleMs: 5 * 60_000,
});

export interface Relay {
  port: number;
  /** Connections currently relayed. */
  readonly size: number;
  /** Stops accepting and destroys every relayed connection. */
  close(): Promise<void>;
}

interface Conn {
  client: Socket;
  upstream?: Socket;
}

export async function startRelay(opts: {
  host: string;
  port: number;
  /** Port of the inner server on 127.0.0.1. */
  target: number;
  limits?: Readonly<RelayLimits>;
  /** Every socket the relay holds is also in this set while open (faults destroy them). */
  sockets: Set<Socket>;
}): Promise<Relay> {
  const limits = opts.limits ?? RELAY_LIMITS;
  // Insertion order is recency order: a connection is moved to the end on every chunk either way,
  // so the first entry is the least recently active one.
  const conns = new Map<Socket, Conn>();
  let closed = false;

  const end = (conn: Conn) => {
    conns.delete(conn.client);
    conn.client.destroy();
    conn.upstream?.destroy();
    opts.sockets.delete(conn.client);
    if (conn.upstream) opts.sockets.delete(conn.upstream);
  };
  const touch = (conn: Conn) => {
    if (!conns.has(conn.client)) return;
    conns.delete(conn.client);
    conns.set(conn.client, conn);
  };

  const server = createServer((client) => {
    if (closed) {
      client.destroy();
      return;
    }
    while (conns.size >= limits.maxConnections) {
      const oldest = conns.values().next().value;
      if (!oldest) break;
      end(oldest);
    }
    const conn: Conn = { client };
    conns.set(client, conn);
    opts.sockets.add(client);
    client.on('error', () => end(conn)).on('close', () => end(conn));
    client.setTimeout(limits.silentMs, () => end(conn));
    // Without this every small gRPC frame waits for Nagle and a delayed ACK (~40 ms a call).
    client.setNoDelay(true);
    // The inner connection is opened only once the client speaks, so connections that never do
    // cost one descriptor, not three, until they are evicted or time out.
    client.once('data', (first: Buffer) => {
      client.pause();
      const upstream = createConnection({ host: '127.0.0.1', port: opts.target });
      conn.upstream = upstream;
      opts.sockets.add(upstream);
      upstream.on('error', () => end(conn)).on('close', () => end(conn));
      upstream.setNoDelay(true);
      upstream.on('data', () => touch(conn));
      client.on('data', () => touch(conn));
      client.setTimeout(limits.idleMs);
      touch(conn);
      upstream.write(first);
      client.pipe(upstream);
      upstream.pipe(client);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    port,
    get size() {
      return conns.size;
    },
    close: () =>
      new Promise<void>((resolve) => {
        closed = true;
        server.close(() => resolve());
        for (const conn of [...conns.values()]) end(conn);
      }),
  };
}
