// A self-signed certificate for 127.0.0.1/localhost, made at start with the openssl CLI. The PEM
// is both the server certificate and the CA a test trusts (for its own process only).
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface LoopbackCertificate {
  readonly dir: string;
  readonly caFile: string;
  readonly cert: Buffer;
  readonly key: Buffer;
  remove(): Promise<void>;
}

export async function makeLoopbackCertificate(): Promise<LoopbackCertificate> {
  const dir = await mkdtemp(join(tmpdir(), 'keyport-test-server-'));
  const caFile = join(dir, 'ca.pem');
  const keyFile = join(dir, 'key.pem');
  try {
    await execFileAsync('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      caFile,
      '-days',
      '30',
      '-subj',
      '/CN=keyport test server (loopback)',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,digitalSignature,keyCertSign',
      '-addext',
      'extendedKeyUsage=serverAuth',
    ]);
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    const reason = e instanceof Error ? e.message : String(e);
    throw new Error(`could not make the test server's certificate with openssl: ${reason}`);
  }
  const [cert, key] = await Promise.all([readFile(caFile), readFile(keyFile)]);
  return { dir, caFile, cert, key, remove: () => rm(dir, { recursive: true, force: true }) };
}
