/** The error mapping table (README "Error mapping"), row by row, plus the operation refinements. */
import { startUntrustedTlsServer } from '@keyport/conformance/harness';
import { Keyport, KeyportError, UnsupportedError } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { GCP_KMS_ERROR_TABLE, GRPC_STATUS_NAMES, mapGcpError } from '../src/errors.js';
import { GcpKmsProvider } from '../src/index.js';
import { staticAuth } from './support/targets.js';

const GRPC = Object.fromEntries(GRPC_STATUS_NAMES.map((name, code) => [name, code])) as Record<
  string,
  number
>;

/** The shape the client raises: a GoogleError with a gRPC code (and, over REST, the HTTP status). */
function googleError(code: number, message = 'service message', extra: Record<string, unknown> = {}) {
  return Object.assign(new Error(message), { code, details: message, ...extra });
}

describe('gRPC status → keyport code', () => {
  const rows: Array<[string, string, boolean]> = [
    ['NOT_FOUND', 'NotFound', false],
    ['ALREADY_EXISTS', 'AlreadyExists', false],
    ['PERMISSION_DENIED', 'AccessDenied', false],
    ['UNAUTHENTICATED', 'AccessDenied', false],
    ['FAILED_PRECONDITION', 'KeyStateConflict', false],
    ['INVALID_ARGUMENT', 'InvalidArgument', false],
    ['OUT_OF_RANGE', 'InvalidArgument', false],
    ['RESOURCE_EXHAUSTED', 'Throttled', true],
    ['UNAVAILABLE', 'Unavailable', true],
    ['INTERNAL', 'Unavailable', true],
    ['ABORTED', 'Unavailable', true],
    ['DEADLINE_EXCEEDED', 'Timeout', true],
    ['CANCELLED', 'Aborted', false],
    ['UNIMPLEMENTED', 'Unsupported', false],
    ['DATA_LOSS', 'Integrity', false],
    ['UNKNOWN', 'Internal', false],
  ];
  for (const [name, code, retryable] of rows) {
    it(`${name} → ${code}${retryable ? ' (retryable)' : ''}`, () => {
      const mapped = mapGcpError(googleError(GRPC[name] as number), 'other', {
        keyUri: 'gcp-kms://x',
        provider: 'gcp-kms',
      });
      expect(mapped).toBeInstanceOf(KeyportError);
      expect(mapped?.code).toBe(code);
      expect(mapped?.retryable).toBe(retryable);
      expect(mapped?.keyUri).toBe('gcp-kms://x');
      expect(mapped?.provider).toBe('gcp-kms');
    });
  }

  it('covers every gRPC status code but OK', () => {
    for (const name of GRPC_STATUS_NAMES.slice(1))
      expect(Object.hasOwn(GCP_KMS_ERROR_TABLE, name)).toBe(true);
  });

  it('every row of the table is what mapGcpError answers for it', () => {
    const keys = Object.keys(GCP_KMS_ERROR_TABLE);
    expect(keys.length).toBeGreaterThan(25);
    for (const key of keys) {
      const row = GCP_KMS_ERROR_TABLE[key];
      const [status, refinement] = key.split(' ', 2) as [string, string | undefined];
      let error: Error;
      let op: 'decrypt' | 'other' = 'other';
      if (key === 'socket error') error = Object.assign(new Error('socket'), { code: 'ECONNRESET' });
      else if (key === 'TLS certificate refused')
        error = Object.assign(new TypeError('fetch failed'), {
          cause: Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }),
        });
      else if (key === 'answer that could not be decoded')
        error = googleError(GRPC.INTERNAL as number, 'Response message parsing error: index out of range');
      else {
        const code = /^\d+$/.test(status) ? Number(status) : (GRPC[status] as number);
        const message =
          refinement === 'naming'
            ? 'bad crc32c'
            : refinement === 'for'
              ? 'Received message larger than max (5 vs 4)'
              : 'service message';
        error = googleError(code, message);
        if (refinement === 'from') op = 'decrypt';
      }
      const mapped = mapGcpError(error, op);
      expect(mapped?.code, key).toBe(row?.code);
      if (row?.retryable !== undefined) expect(mapped?.retryable, key).toBe(row.retryable);
      if (row?.code === 'Unsupported') expect(mapped, key).toBeInstanceOf(UnsupportedError);
    }
  });

  it('a hostile status is an unknown answer, not a row', () => {
    expect(mapGcpError(googleError(0))).toBeUndefined();
    expect(mapGcpError(Object.assign(new Error('x'), { code: '__proto__' }))).toBeUndefined();
    expect(mapGcpError(Object.assign(new Error('x'), { code: 'constructor' }))).toBeUndefined();
    expect(mapGcpError(googleError(99))).toBeUndefined();
  });
});

describe('HTTP status (REST) → keyport code', () => {
  const rows: Array<[number, string]> = [
    [404, 'NotFound'],
    [409, 'AlreadyExists'],
    [403, 'AccessDenied'],
    [401, 'AccessDenied'],
    [400, 'InvalidArgument'],
    [429, 'Throttled'],
    [503, 'Unavailable'],
    [504, 'Timeout'],
    [501, 'Unsupported'],
  ];
  for (const [status, code] of rows) {
    it(`${status} → ${code}`, () => {
      expect(mapGcpError(googleError(status))?.code).toBe(code);
      expect(GCP_KMS_ERROR_TABLE[status]?.code).toBe(code);
    });
  }
});

describe('refinements', () => {
  it('INVALID_ARGUMENT from Decrypt (bad ciphertext or AAD) is InvalidCiphertext', () => {
    const e = googleError(GRPC.INVALID_ARGUMENT as number, 'Decryption failed: the ciphertext is invalid.');
    expect(mapGcpError(e, 'decrypt')?.code).toBe('InvalidCiphertext');
    expect(mapGcpError(e, 'other')?.code).toBe('InvalidArgument');
    expect(mapGcpError(googleError(400), 'decrypt')?.code).toBe('InvalidCiphertext');
  });

  it('a checksum the service refused is an Integrity error, whatever the operation', () => {
    const e = googleError(GRPC.INVALID_ARGUMENT as number, 'plaintext_crc32c did not match the data.');
    expect(mapGcpError(e, 'decrypt')?.code).toBe('Integrity');
    expect(mapGcpError(e, 'other')?.code).toBe('Integrity');
  });

  it('UNIMPLEMENTED is an UnsupportedError', () => {
    expect(mapGcpError(googleError(GRPC.UNIMPLEMENTED as number))).toBeInstanceOf(UnsupportedError);
  });

  it('keeps the original error as cause and writes its own message', () => {
    const original = googleError(
      GRPC.NOT_FOUND as number,
      'CryptoKey projects/p/.../cryptoKeys/k not found.',
    );
    const mapped = mapGcpError(original);
    // core keeps a reduced copy of the SDK error (class, code, message, request id), not the original
    expect(mapped?.cause).toMatchObject({ code: original.code, message: original.message });
    expect(mapped?.message).not.toContain('projects/p');
  });

  it('keeps a request id the service sent in metadata', () => {
    const metadata = { get: (k: string) => (k === 'x-request-id' ? ['req-123'] : []) };
    expect(mapGcpError(googleError(GRPC.UNAVAILABLE as number, 'x', { metadata }))?.requestId).toBe(
      'req-123',
    );
  });

  it('leaves what is not a Google API error alone, and KeyportErrors as they are', () => {
    expect(mapGcpError(new Error('boom'))).toBeUndefined();
    expect(mapGcpError('text')).toBeUndefined();
    const k = new KeyportError('NotFound', 'x');
    expect(mapGcpError(k)).toBe(k);
  });

  it('over REST, an endpoint whose TLS certificate is refused fails at once: Unavailable, not retried', async () => {
    const server = await startUntrustedTlsServer();
    const url = new URL(server.url);
    const keys = new Keyport({
      providers: [
        new GcpKmsProvider({
          transport: 'rest',
          apiEndpoint: url.hostname,
          port: Number(url.port),
          authClient: staticAuth(),
        }),
      ],
      retry: { maxAttempts: 4, baseDelayMs: 1 },
    });
    try {
      const error = await keys
        .describeKey('gcp-kms://projects/p/locations/global/keyRings/r/cryptoKeys/k')
        .catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'Unavailable', retryable: false });
      expect(server.connections()).toBe(1);
    } finally {
      await keys.close();
      await server.close();
    }
  });
});
