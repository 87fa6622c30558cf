import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { startAzureKeyVaultServer } from '../src/azure/index.js';

// stop() is what a user's afterAll awaits. A connection that never finishes its TLS handshake (a
// port probe left open, a client that opens connections and never sends) is invisible to
// closeAllConnections(); stop() used to wait for Node's TLS handshake timeout (120 s) and time
// out the user's hook instead.
const opened = (s: Socket) =>
  new Promise<void>((resolve, reject) => s.once('connect', resolve).once('error', reject));
const closed = (s: Socket) =>
  new Promise<void>((resolve) => (s.destroyed ? resolve() : s.once('close', () => resolve())));

describe('Azure Key Vault server: stop()', () => {
  it('ends connections that never sent a byte or stopped mid-request at once', async () => {
    const server = await startAzureKeyVaultServer();
    const port = Number(new URL(server.url).port);
    // Ten silent TCP connections (no ClientHello), and one TLS connection that sent half a request.
    const silent = Array.from({ length: 10 }, () => connect(port, '127.0.0.1'));
    await Promise.all(silent.map(opened));
    const partial = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) =>
      partial.once('secureConnect', resolve).once('error', reject),
    );
    partial.write('GET /keys?api-version=7.6 HTTP/1.1\r\nHost: x\r\n');
    // Let the server accept them all before stopping.
    await new Promise((resolve) => setTimeout(resolve, 200));

    const started = Date.now();
    const result = await Promise.race([
      server.stop().then(() => 'stopped' as const),
      new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 5_000).unref()),
    ]);
    expect(result).toBe('stopped');
    expect(Date.now() - started).toBeLessThan(5_000);
    await Promise.all([...silent, partial].map(closed));
    for (const s of [...silent, partial]) s.destroy();
  });
});
