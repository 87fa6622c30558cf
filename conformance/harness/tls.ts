/**
 * An HTTPS server on 127.0.0.1 that no client trusts: its certificate is self-signed, made for
 * the server with the openssl CLI and never given to anyone. For tests that a refused certificate
 * fails at once, typed and not retried. It counts the TCP connections it accepted (a retried call
 * connects again) and answers any request that gets through with 500.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

export interface UntrustedTlsServer {
  /** `https://127.0.0.1:<port>` */
  readonly url: string;
  /** TCP connections accepted so far. */
  connections(): number;
  close(): Promise<void>;
}

export async function startUntrustedTlsServer(): Promise<UntrustedTlsServer> {
  const dir = await mkdtemp(join(tmpdir(), 'keyport-untrusted-tls-'));
  let key: Buffer;
  let cert: Buffer;
  try {
    await promisify(execFile)('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
      '-days',
      '30',
      '-subj',
      '/CN=keyport untrusted test server',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ]);
    key = await readFile(join(dir, 'key.pem'));
    cert = await readFile(join(dir, 'cert.pem'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  let accepted = 0;
  const server = createServer({ key, cert }, (_req, res) => {
    res.statusCode = 500;
    res.end();
  });
  server.on('connection', () => {
    accepted++;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}`,
    connections: () => accepted,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
