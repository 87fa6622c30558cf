/**
 * What a client of Cloud KMS built with no options needs, by environment only, to reach the test
 * server as if it were cloudkms.googleapis.com:443: a certificate for that name (the client trusts
 * only it), an HTTP CONNECT proxy that splices that one target to the server's port, and a
 * service-account key for Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS; the
 * clients sign their own JWT with it, no token endpoint is called). Shared by Google's Go samples
 * (published-samples.gcp-go.test.ts) and keyport's Java check (gcp-java-sdk.test.ts).
 */
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { type Run, run } from './run-child.js';

/** The one target the proxy accepts. */
export const SERVICE = 'cloudkms.googleapis.com:443';

/** A certificate and key for cloudkms.googleapis.com (self-signed; the child trusts only it). */
export async function serviceCertificate(dir: string): Promise<{ certFile: string; keyFile: string }> {
  const certFile = join(dir, 'cloudkms.pem');
  const keyFile = join(dir, 'cloudkms-key.pem');
  // biome-ignore format: one openssl option per line pair
  const args = [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=cloudkms.googleapis.com',
    '-addext', 'subjectAltName=DNS:cloudkms.googleapis.com',
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,digitalSignature,keyCertSign',
    '-addext', 'extendedKeyUsage=serverAuth',
  ];
  let r: Run;
  try {
    r = await run('openssl', args, process.env);
  } catch (e) {
    throw new Error(`openssl is missing: needed to make the server's certificate (${(e as Error).message})`);
  }
  if (r.code !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${r.stderr}`);
  return { certFile, keyFile };
}

export interface ConnectProxy {
  /** `http://127.0.0.1:<port>`, for HTTPS_PROXY. */
  url: string;
  port: number;
  /** Every CONNECT target asked for, in order (refused ones too). */
  targets: string[];
  /** Ends the open tunnels and stops listening. */
  close(): Promise<void>;
}

/** An HTTP CONNECT proxy that splices cloudkms.googleapis.com:443 to `port` and refuses the rest. */
export async function connectProxy(port: number): Promise<ConnectProxy> {
  const targets: string[] = [];
  const sockets = new Set<Socket>();
  const proxy: Server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    let head = Buffer.alloc(0);
    client.on('error', () => client.destroy());
    client.on('data', function onData(chunk: Buffer) {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      client.off('data', onData);
      const target = /^CONNECT (\S+) HTTP\/1\.1\r\n/.exec(head.toString('latin1'))?.[1] ?? '(not CONNECT)';
      targets.push(target);
      if (target !== SERVICE) {
        client.end('HTTP/1.1 403 Forbidden\r\n\r\n');
        return;
      }
      const upstream = connect(port, '127.0.0.1', () => {
        sockets.add(upstream);
        upstream.on('close', () => sockets.delete(upstream));
        client.write('HTTP/1.1 200 Connection established\r\n\r\n');
        const rest = head.subarray(end + 4);
        if (rest.length > 0) upstream.write(rest);
        client.pipe(upstream).pipe(client);
      });
      upstream.on('error', () => client.destroy());
      client.on('close', () => upstream.destroy());
    });
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const address = proxy.address();
  if (address === null || typeof address === 'string') throw new Error('the proxy has no port');
  return {
    url: `http://127.0.0.1:${address.port}`,
    port: address.port,
    targets,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => proxy.close(resolve));
    },
  };
}

/** A service account key (a fresh RSA key) for `project`, written to `dir`; its path. */
export function serviceAccountFile(dir: string, project: string, account: string): string {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const file = join(dir, 'service-account.json');
  writeFileSync(
    file,
    JSON.stringify({
      type: 'service_account',
      project_id: project,
      private_key_id: 'keyport-test-key',
      private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }),
      client_email: `${account}@${project}.iam.gserviceaccount.com`,
      client_id: '1',
      token_uri: 'https://oauth2.googleapis.com/token',
    }),
  );
  return file;
}
