/**
 * Reliability against the Cloud KMS test server's fault injection: the client's own retries are
 * off (one dropped connection with core retries off surfaces as Unavailable), core's policy retries
 * throttling to success, a dropped connection is Unavailable, and a corrupted response is caught
 * by the CRC32C checks (Integrity).
 */
import { randomBytes } from 'node:crypto';
import type { protos } from '@google-cloud/kms';
import { type AuditEvent, Keyport } from '@keyport/core';
import type { CloudKmsServer } from '@keyport/test-servers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GcpKmsProvider } from '../src/index.js';
import { grpcProvider, startServer } from './support/targets.js';

type Unary<Req, Res> = (request: Req, options: object) => Promise<[Res, unknown, unknown]>;
type EncryptRequest = protos.google.cloud.kms.v1.IEncryptRequest;
type EncryptResponse = protos.google.cloud.kms.v1.IEncryptResponse;
type DecryptRequest = protos.google.cloud.kms.v1.IDecryptRequest;
type DecryptResponse = protos.google.cloud.kms.v1.IDecryptResponse;

const KEY_RING = 'projects/keyport-faults/locations/global/keyRings/faults';
let server: CloudKmsServer;
let provider: GcpKmsProvider;
let keyUri: string;

beforeAll(async () => {
  server = await startServer();
  provider = grpcProvider(server, { keyRing: KEY_RING });
  const setup = new Keyport({ providers: [provider] });
  keyUri = (await setup.createKey('gcp-kms', { name: 'faults', spec: 'AES_256' })).uri;
});
afterAll(async () => {
  await provider.close();
  await server.stop();
});

function client(maxAttempts: number, events: AuditEvent[] = []): Keyport {
  return new Keyport({
    providers: [provider],
    retry: { maxAttempts, baseDelayMs: 5, maxDelayMs: 20 },
    audit: [{ write: (e) => void events.push(e) }],
  });
}

describe('faults', () => {
  it('RESOURCE_EXHAUSTED with core retries off is Throttled (retryable)', async () => {
    server.faults.set({ throttleNext: 1, methods: ['Encrypt'] });
    const error = await client(1)
      .encrypt(keyUri, randomBytes(16))
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'Throttled', retryable: true, provider: 'gcp-kms', keyUri });
    server.faults.clear();
  });

  it('throttling is retried by core and then succeeds', async () => {
    server.faults.set({ throttleNext: 2, methods: ['Encrypt'] });
    const events: AuditEvent[] = [];
    const kp = client(4, events);
    const plaintext = randomBytes(32);
    const { ciphertext, keyVersion } = await kp.encrypt(keyUri, plaintext, { context: { a: 'b' } });
    server.faults.clear();
    expect(keyVersion).toBe('1');
    expect(events.find((e) => e.op === 'encrypt')).toMatchObject({ outcome: 'success', attempts: 3 });
    const opened = await kp.decrypt(keyUri, ciphertext, { context: { a: 'b' } });
    expect(Buffer.from(opened.plaintext).equals(plaintext)).toBe(true);
  });

  it('a dropped connection is Unavailable: the client does not retry it itself; the next call reconnects', async () => {
    // The client's default config retries UNAVAILABLE for Encrypt; with retry: null one drop must surface.
    server.faults.set({ dropNext: 1, methods: ['Encrypt'] });
    const kp = client(1);
    const error = await kp.encrypt(keyUri, randomBytes(16)).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'Unavailable', retryable: true });
    server.faults.clear();
    await expect(kp.encrypt(keyUri, randomBytes(16))).resolves.toMatchObject({ keyVersion: '1' });
  });

  it('added latency beyond timeoutMs is a Timeout, and the gRPC call is cancelled', async () => {
    server.faults.set({ latencyMs: 500, methods: ['GetCryptoKey'] });
    const error = await client(1)
      .describeKey(keyUri, { timeoutMs: 100 })
      .catch((e: unknown) => e);
    server.faults.clear();
    expect(error).toMatchObject({ code: 'Timeout' });
  });
});

describe('integrity (CRC32C)', () => {
  it('a ciphertext corrupted on the way back fails the ciphertext_crc32c check', async () => {
    // A real client whose Encrypt answers are altered in flight, as a faulty network would.
    const tampering = grpcProvider(server, { keyRing: KEY_RING });
    const kms = await tampering.client();
    const real = kms.encrypt.bind(kms) as unknown as Unary<EncryptRequest, EncryptResponse>;
    Object.assign(kms, {
      encrypt: async (request: EncryptRequest, options: object) => {
        const result = await real(request, options);
        const ciphertext = result[0].ciphertext;
        if (ciphertext instanceof Uint8Array) ciphertext[10] = (ciphertext[10] as number) ^ 1;
        return result;
      },
    });
    const kp = new Keyport({ providers: [tampering], retry: { maxAttempts: 1 } });
    await expect(kp.encrypt(keyUri, randomBytes(16))).rejects.toMatchObject({ code: 'Integrity' });
    await tampering.close();
  });

  it('a plaintext corrupted on the way back fails the plaintext_crc32c check', async () => {
    const kp = new Keyport({ providers: [provider], retry: { maxAttempts: 1 } });
    const { ciphertext } = await kp.encrypt(keyUri, randomBytes(16));
    const tampering = grpcProvider(server, { keyRing: KEY_RING });
    const kms = await tampering.client();
    const real = kms.decrypt.bind(kms) as unknown as Unary<DecryptRequest, DecryptResponse>;
    Object.assign(kms, {
      decrypt: async (request: DecryptRequest, options: object) => {
        const result = await real(request, options);
        const plaintext = result[0].plaintext;
        if (plaintext instanceof Uint8Array) plaintext[0] = (plaintext[0] as number) ^ 1;
        return result;
      },
    });
    const other = new Keyport({ providers: [tampering], retry: { maxAttempts: 1 } });
    await expect(other.decrypt(keyUri, ciphertext)).rejects.toMatchObject({ code: 'Integrity' });
    await tampering.close();
  });
});
