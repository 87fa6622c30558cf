/**
 * Answers too large to be Key Vault's: a server that is not quite Key Vault (or a proxy before
 * it) answering a body of hundreds of MB, or a few MB gzip-compressed that decompress to as many
 * (the SDK's pipeline asks for gzip). A real HTTPS stand-in on 127.0.0.1 (its own self-signed
 * certificate, trusted by this test's client only), since the bound is at the transport.
 */
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { Agent, createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createGzip } from 'node:zlib';
import { KeyClient } from '@azure/keyvault-keys';
import { Keyport, KeyportError } from '@keyport/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AzureKeyVaultProvider } from '../src/index.js';
import { MAX_ANSWER_BYTES } from '../src/rpc.js';
import { staticToken } from './support/server.js';

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' });
const MiB = 1024 * 1024;

let server: Server;
let url: string;
let ca: Buffer;
/** Bytes of padding the stand-in sends inside the bundle of `/keys/<name>` (0 for none). */
const padding: Record<string, number> = { small: 0, padded: MAX_ANSWER_BYTES + 8 * MiB };

/** A key bundle whose JSON carries `pad` bytes of whitespace (valid JSON, whatever its size). */
async function sendBundle(name: string, pad: number, write: (chunk: string) => Promise<void>) {
  await write(`{"key":{"kid":"${url}/keys/${name}/v1","kty":"RSA","n":"${rsa.n}","e":"${rsa.e}"},`);
  const blank = ' '.repeat(MiB);
  for (let left = pad; left > 0; left -= MiB) await write(left >= MiB ? blank : ' '.repeat(left));
  await write('"attributes":{"enabled":true,"created":1700000000,"updated":1700000000},"tags":{}}');
}

beforeAll(async () => {
  const dir = await mkdtemp(join(tmpdir(), 'keyport-akv-size-'));
  let key: Buffer;
  try {
    await promisify(execFile)('openssl', [
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
      ...['-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '2'],
      ...['-subj', '/CN=keyport answer-size stand-in', '-addext', 'subjectAltName=IP:127.0.0.1'],
    ]);
    key = await readFile(join(dir, 'key.pem'));
    ca = await readFile(join(dir, 'cert.pem'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  server = createServer({ key, cert: ca }, (req, res) => {
    if (req.headers.authorization === undefined) {
      // Key Vault's challenge: the SDK then sends the request again with its token.
      res.writeHead(401, {
        'www-authenticate':
          'Bearer authorization="https://login.microsoftonline.com/tenant", resource="https://vault.azure.net"',
      });
      res.end();
      return;
    }
    const name = /^\/keys\/([^/?]+)/.exec(req.url ?? '')?.[1] ?? '';
    const pad = padding[name];
    if (pad === undefined) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"error":{"code":"KeyNotFound","message":"no key"}}');
      return;
    }
    const gzip = /\bgzip\b/.test(String(req.headers['accept-encoding']));
    res.writeHead(200, {
      'content-type': 'application/json',
      ...(gzip ? { 'content-encoding': 'gzip' } : {}),
    });
    const out = gzip ? createGzip() : res;
    if (gzip) out.pipe(res);
    // The client hanging up (as it should, past the bound) ends the answer.
    let gone = false;
    res.on('close', () => {
      gone = true;
    });
    out.on('error', () => {});
    const write = (chunk: string) =>
      new Promise<void>((resolve) => {
        if (gone || out.write(chunk)) resolve();
        else out.once('drain', resolve);
      });
    sendBundle(name, pad, write).then(
      () => out.end(),
      () => out.destroy(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function keyportFor(how: 'gzip' | 'plain' | 'keyClient'): Keyport {
  const clientOptions = {
    agent: new Agent({ ca }),
    disableChallengeResourceVerification: true,
    // Without gzip the stand-in sends the body as it is.
    ...(how === 'plain' ? { additionalPolicies: [{ policy: noGzip, position: 'perRetry' as const }] } : {}),
  };
  const credential = staticToken('token');
  const vault =
    how === 'keyClient' ? { keyClient: new KeyClient(url, credential, clientOptions) } : { vaultUrl: url };
  return new Keyport({
    providers: [new AzureKeyVaultProvider({ ...vault, credential, clientOptions, vaultKind: 'vault' })],
    retry: { maxAttempts: 1, deadlineMs: 60_000 },
  });
}
const noGzip = {
  name: 'testNoGzip',
  sendRequest: (request: { headers: { set(n: string, v: string): void } }, next: (r: never) => unknown) => {
    request.headers.set('Accept-Encoding', 'identity');
    return next(request as never);
  },
} as never;

describe('answers larger than any Key Vault gives', () => {
  it.each([
    ['gzip-compressed (a few hundred KB on the wire)', 'gzip'],
    ['sent as it is', 'plain'],
    ['read by a caller-built KeyClient', 'keyClient'],
  ] as const)(
    'a key bundle padded past MAX_ANSWER_BYTES, %s, is Internal, read no further',
    {
      timeout: 60_000,
    },
    async (_, gzip) => {
      const keys = keyportFor(gzip);
      try {
        // A normal answer through the same pipeline reads as before.
        expect(await keys.getPublicKey(`azurekeyvault://${new URL(url).host}/keys/small`)).toBeInstanceOf(
          Uint8Array,
        );
        const error = await keys
          .getPublicKey(`azurekeyvault://${new URL(url).host}/keys/padded`)
          .catch((e: unknown) => e);
        expect(error).toBeInstanceOf(KeyportError);
        expect(error).toMatchObject({ code: 'Internal', retryable: false });
        expect((error as Error).message).toMatch(/more than 64 MiB/);
      } finally {
        await keys.close();
      }
    },
  );
});
