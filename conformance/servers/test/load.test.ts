import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AzureKeyVaultServer, startAzureKeyVaultServer } from '../src/azure/index.js';
import { type CloudKmsServer, startCloudKmsServer } from '../src/gcp/index.js';
import { ADMIN, keyClient, PRINCIPALS } from './azure-helpers.js';
import { makeClient } from './gcp-support.js';

// Both servers stay up, and keep answering, while clients send 10–100 MB bodies and many calls
// at once: oversized bodies are refused with the service's status, never buffered whole.
const MB = 1024 * 1024;
let kms: CloudKmsServer;
let vault: AzureKeyVaultServer;
beforeAll(async () => {
  [kms, vault] = await Promise.all([
    startCloudKmsServer(),
    startAzureKeyVaultServer({ principals: PRINCIPALS }),
  ]);
});
afterAll(async () => {
  await Promise.all([kms?.stop(), vault?.stop()]);
});

/** POSTs `size` bytes in 1 MiB chunks; resolves the status, or 0 when the server closed first. */
function bigHttps(
  url: string,
  size: number,
  ca?: Buffer,
  headers: Record<string, string> = {},
): Promise<number> {
  return new Promise((resolve) => {
    const req = request(
      url,
      { method: 'POST', ...(ca && { ca }), headers: { 'content-type': 'application/json', ...headers } },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', () => resolve(0));
    const chunk = Buffer.alloc(MB, 0x41);
    let sent = 0;
    const pump = () => {
      while (sent < size) {
        sent += MB;
        if (!req.write(chunk)) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
}

/** The same over plain HTTP (the REST surface without TLS). */
function bigHttpPlain(url: string, size: number): Promise<number> {
  return import('node:http').then(
    ({ request: plain }) =>
      new Promise((resolve) => {
        const req = plain(url, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', () => resolve(0));
        const chunk = Buffer.alloc(MB, 0x41);
        let sent = 0;
        const pump = () => {
          while (sent < size) {
            sent += MB;
            if (!req.write(chunk)) return void req.once('drain', pump);
          }
          req.end();
        };
        pump();
      }),
  );
}

describe('large bodies and parallel load', () => {
  it('Key Vault: 10 and 100 MB bodies are refused, the server keeps serving 64 parallel calls', async () => {
    const ca = readFileSync(vault.caFile);
    const statuses = await Promise.all(
      [10 * MB, 100 * MB].map((n) =>
        bigHttps(`${vault.url}/keys/big/create?api-version=7.6`, n, ca, { authorization: `Bearer ${ADMIN}` }),
      ),
    );
    for (const s of statuses) expect([0, 400, 413]).toContain(s);
    const client = keyClient(vault, ADMIN);
    const key = await client.createEcKey('after-big');
    const results = await Promise.all(Array.from({ length: 64 }, () => client.getKey('after-big')));
    expect(results.every((k) => k.id === key.id)).toBe(true);
  }, 120_000);

  it('Cloud KMS REST: 10 and 100 MB bodies are 400, gRPC refuses a 20 MB message; 64 parallel calls each way', async () => {
    const url = `${kms.restUrl}/v1/projects/p/locations/global/keyRings?keyRingId=big`;
    const statuses = await Promise.all([10 * MB, 100 * MB].map((n) => bigHttpPlain(url, n)));
    for (const s of statuses) expect([0, 400]).toContain(s);

    const client = makeClient(kms.port);
    const err = await client
      .createKeyRing({ parent: 'projects/p/locations/global', keyRingId: 'x'.repeat(20 * MB), keyRing: {} })
      .catch((e: { code?: number }) => e);
    expect((err as { code?: number }).code).toBe(8); // RESOURCE_EXHAUSTED: message larger than max
    await client.createKeyRing({ parent: 'projects/p/locations/global', keyRingId: 'load', keyRing: {} });
    const ring = 'projects/p/locations/global/keyRings/load';
    const [key] = await client.createCryptoKey({
      parent: ring,
      cryptoKeyId: 'k',
      cryptoKey: { purpose: 'ENCRYPT_DECRYPT' },
    });
    const grpcCalls = Array.from({ length: 64 }, (_, i) =>
      client.encrypt({ name: key.name!, plaintext: Buffer.from(`m${i}`) }),
    );
    const restCalls = Array.from({ length: 64 }, () =>
      fetch(`${kms.restUrl}/v1/${ring}`).then((r) => r.status),
    );
    const [enc, rest] = await Promise.all([Promise.all(grpcCalls), Promise.all(restCalls)]);
    expect(enc).toHaveLength(64);
    expect(rest.every((s) => s === 200)).toBe(true);
    await client.close();
  }, 120_000);
});
