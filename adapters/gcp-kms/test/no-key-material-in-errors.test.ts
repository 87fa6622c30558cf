/**
 * A failed encrypt or (emulated) generateDataKey keeps no key material in its error: the plaintext
 * or the data key is in the request the client sent (gax keeps requests, gaxios keeps its config
 * with the body, grpc-js its metadata), and none of it may be reachable from the KeyportError.
 * Each failure is the Cloud KMS test server's own (a principal without the role, throttling, a
 * dropped connection, a disabled key, the caller's abort), over gRPC and REST, and the whole
 * object graph of the error is walked.
 */
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { credentials, Metadata, Server, ServerCredentials, type ServiceDefinition } from '@grpc/grpc-js';
import { findSecret } from '@keyport/conformance';
import { Keyport, KeyportError } from '@keyport/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { GcpKmsProvider } from '../src/index.js';
import { keyportOf, kmsSuite, type MakeProvider, TRANSPORTS, wrapClient } from './support/suite.js';
import { grpcProvider, restProvider, staticAuth } from './support/targets.js';

const suite = kmsSuite('projects/keyport-leaks/locations/global/keyRings/leaks');
const PLAINTEXT = new TextEncoder().encode('keyport-secret-plaintext-0123456789-must-not-leak');

/** A provider whose Encrypt requests' plaintexts (the data keys, for generateDataKey) are kept in `sent`. */
async function watched(make: MakeProvider, extra: object = {}) {
  const p: GcpKmsProvider = suite.providerOn(make, { dataKeys: 'emulated', ...extra });
  const sent: Uint8Array[] = [];
  await wrapClient(p, {
    encrypt: (real) => async (request, options) => {
      const plaintext = (request as { plaintext?: unknown }).plaintext;
      if (plaintext instanceof Uint8Array) sent.push(Uint8Array.from(plaintext));
      return real(request, options);
    },
  });
  return { p, sent };
}

async function failureOf(run: Promise<unknown>): Promise<KeyportError> {
  const error = await run.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(KeyportError);
  return error as KeyportError;
}

/** A key made with core's retries on: a dropped connection of the test before may still be met once. */
async function newKey() {
  const setup = new Keyport({
    providers: [suite.provider],
    retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 5 },
  });
  return setup.createKey('gcp-kms', { name: suite.name('leak'), spec: 'AES_256' });
}

const leaks = (error: unknown, secrets: readonly Uint8Array[]) =>
  secrets.flatMap((s) => findSecret(error, s));

describe.each(TRANSPORTS)('over %s', (_, make) => {
  // Every Encrypt meets the fault until it is cleared: a call left over from the test before
  // (the aborted one, still held by the latency) must not use it up.
  const failures: Record<string, { arm?: () => void; principal?: string; abort?: boolean; code: string }> = {
    throttled: {
      arm: () => suite.server.faults.set({ throttleEvery: 1, methods: ['Encrypt'] }),
      code: 'Throttled',
    },
    dropped: {
      arm: () => suite.server.faults.set({ dropNext: 1000, methods: ['Encrypt'] }),
      code: 'Unavailable',
    },
    'refused (no role)': { principal: 'user:nobody@example.com', code: 'AccessDenied' },
    aborted: {
      arm: () => suite.server.faults.set({ latencyMs: 200, methods: ['Encrypt'] }),
      abort: true,
      code: 'Aborted',
    },
  };
  for (const [what, f] of Object.entries(failures)) {
    for (const op of ['encrypt', 'generateDataKey'] as const) {
      it(`${op}, ${what}: neither the plaintext nor the data key is reachable from the error`, async () => {
        const key = await newKey();
        const { p, sent } = await watched(make, f.principal !== undefined ? { principal: f.principal } : {});
        const kp = keyportOf(p);
        try {
          f.arm?.();
          const controller = new AbortController();
          if (f.abort === true) setTimeout(() => controller.abort(), 50);
          const signal = controller.signal;
          const error = await failureOf(
            op === 'encrypt'
              ? kp.encrypt(key.uri, PLAINTEXT, { signal })
              : kp.generateDataKey(key.uri, { bytes: 32, signal }),
          );
          expect(error.code).toBe(f.code);
          expect(sent.length, 'the failing Encrypt was sent').toBeGreaterThan(0);
          expect(leaks(error, [PLAINTEXT, ...sent])).toEqual([]);
        } finally {
          suite.server.faults.clear();
          await kp.close();
        }
      });
    }
  }
});

it('encrypt with a disabled key: the plaintext is not reachable from the error', async () => {
  const key = await newKey();
  await suite.kp.disableKey(key.uri);
  const kp: Keyport = keyportOf(grpcProvider(suite.server, { keyRing: suite.ring }));
  const error = await failureOf(kp.encrypt(key.uri, PLAINTEXT));
  expect(leaks(error, [PLAINTEXT])).toEqual([]);
  await kp.close();
});

const proxies: ReturnType<typeof createServer>[] = [];
afterEach(() => {
  for (const s of proxies.splice(0)) {
    s.closeAllConnections();
    s.close();
  }
});

/**
 * A stand-in in front of the test server's REST surface: every request is passed on, except
 * Encrypt, answered by `refuse` with the request's JSON (an endpoint that quotes what it refuses).
 */
async function quotingProxy(refuse: (res: ServerResponse, body: { plaintext?: string }) => void) {
  const upstream = new URL(suite.server.restUrl as string);
  const proxy = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (/:encrypt\b/.test(req.url ?? ''))
        return refuse(res, JSON.parse(body.toString('utf8')) as { plaintext?: string });
      const out = httpRequest(
        {
          host: upstream.hostname,
          port: upstream.port,
          path: req.url,
          method: req.method,
          headers: req.headers,
        },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      out.end(body);
    });
  });
  proxies.push(proxy);
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const { port } = proxy.address() as AddressInfo;
  return restProvider(
    { ...suite.server, restUrl: `http://127.0.0.1:${port}` },
    { keyRing: suite.ring, dataKeys: 'emulated' },
  );
}

const refusal = (res: ServerResponse, status: number, name: string, message: string) => {
  res.writeHead(status, { 'content-type': 'application/json', 'x-request-id': 'req-1' });
  res.end(JSON.stringify({ error: { code: status, status: name, message } }));
};

describe('an Encrypt refusal that quotes the request (a stand-in endpoint over REST)', () => {
  const QUOTING = {
    'the whole plaintext': (res: ServerResponse, body: { plaintext?: string }) =>
      refusal(
        res,
        400,
        'INVALID_ARGUMENT',
        `Invalid value at 'plaintext' (${body.plaintext}): ${Buffer.from(body.plaintext ?? '', 'base64').toString('latin1')}`,
      ),
    // Characters 8 to 32 of the base64: bytes 6 to 24.
    'a run of it': (res: ServerResponse, body: { plaintext?: string }) =>
      refusal(res, 403, 'PERMISSION_DENIED', `denied for ...${(body.plaintext ?? '').slice(8, 32)}...`),
  };
  for (const [what, refuse] of Object.entries(QUOTING)) {
    it(`${what}: encrypt keeps neither in its error, and still maps the status`, async () => {
      const key = await newKey();
      const p = await quotingProxy(refuse);
      const kp = keyportOf(p);
      const error = await failureOf(kp.encrypt(key.uri, PLAINTEXT));
      expect(error.code).toBe(what === 'a run of it' ? 'AccessDenied' : 'InvalidArgument');
      expect(leaks(error, [PLAINTEXT, PLAINTEXT.subarray(6, 24)])).toEqual([]);
      await kp.close();
    });
  }

  it('generateDataKey (emulated) keeps the data key it sent out of the error', async () => {
    const key = await newKey();
    let sent: Uint8Array | undefined;
    const p = await quotingProxy((res, body) => {
      sent = Buffer.from(body.plaintext ?? '', 'base64');
      refusal(res, 400, 'INVALID_ARGUMENT', `Invalid value at 'plaintext' (${body.plaintext})`);
    });
    const kp = keyportOf(p);
    const error = await failureOf(kp.generateDataKey(key.uri, { bytes: 32 }));
    expect(sent?.length).toBe(32);
    expect(leaks(error, [sent as Uint8Array])).toEqual([]);
    expect(error).toMatchObject({ code: 'InvalidArgument' });
    await kp.close();
  });
});

/** A protobuf length-delimited field. */
const pbField = (tag: number, bytes: Uint8Array | string): Buffer => {
  const body = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : Buffer.from(bytes);
  const length: number[] = [];
  for (let n = body.length; ; n >>>= 7) {
    if (n < 0x80) {
      length.push(n);
      break;
    }
    length.push((n & 0x7f) | 0x80);
  }
  return Buffer.concat([Buffer.of((tag << 3) | 2), Buffer.from(length), body]);
};

/** The plaintext (field 2) of an EncryptRequest as sent on the wire (every field length-delimited). */
function plaintextOf(request: Buffer): Buffer {
  for (let at = 0; at < request.length; ) {
    const tag = (request[at] as number) >> 3;
    let length = 0;
    let shift = 0;
    at++;
    for (;;) {
      const b = request[at++] as number;
      length |= (b & 0x7f) << shift;
      shift += 7;
      if (b < 0x80) break;
    }
    if (tag === 2) return request.subarray(at, at + length);
    at += length;
  }
  return Buffer.alloc(0);
}

describe('an Encrypt refusal that quotes the request (a stand-in endpoint over gRPC)', () => {
  let server: Server;
  let port = 0;
  /** How the stand-in refuses: the gRPC status, and where it puts the plaintext it was sent. */
  let refuse: (plaintext: Buffer) => { code: number; details: string; metadata: Metadata };
  const seen: Buffer[] = [];

  beforeAll(async () => {
    server = new Server();
    const raw = (b: Buffer) => b;
    const Encrypt = {
      path: '/google.cloud.kms.v1.KeyManagementService/Encrypt',
      requestStream: false,
      responseStream: false,
      requestSerialize: raw,
      requestDeserialize: raw,
      responseSerialize: raw,
      responseDeserialize: raw,
    };
    server.addService({ Encrypt } as unknown as ServiceDefinition, {
      Encrypt: (call: { request: Buffer }, done: (e: object) => void) => {
        const plaintext = Buffer.from(plaintextOf(call.request));
        seen.push(plaintext);
        done(refuse(plaintext));
      },
    });
    port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) =>
        e ? reject(e) : resolve(p),
      ),
    );
  });
  afterAll(() => server.forceShutdown());

  const standIn = () =>
    keyportOf(
      new GcpKmsProvider({
        apiEndpoint: '127.0.0.1',
        port,
        sslCreds: credentials.createInsecure(),
        authClient: staticAuth(),
        dataKeys: 'emulated',
      }),
    );
  const URI = 'gcp-kms://projects/p/locations/global/keyRings/r/cryptoKeys/k';

  /** Every place a gRPC error can carry text: status message, trailers (text and binary), status details. */
  const everywhere =
    (code: number, requestId: (b64: string) => string, inMessage = true) =>
    (plaintext: Buffer): { code: number; details: string; metadata: Metadata } => {
      const b64 = plaintext.toString('base64');
      const metadata = new Metadata();
      metadata.set('x-request-id', requestId(b64));
      metadata.set('x-echo', `sent ${b64} / ${plaintext.toString('hex')}`);
      metadata.set('x-echo-bin', Buffer.from(plaintext));
      // google.rpc.Status { code, message, details: [ErrorInfo { reason, domain, metadata }, Any of raw bytes] }
      const errorInfo = Buffer.concat([
        pbField(1, `BAD_${b64}`),
        pbField(2, 'cloudkms.googleapis.com'),
        pbField(3, Buffer.concat([pbField(1, 'plaintext'), pbField(2, b64)])),
      ]);
      const status = Buffer.concat([
        Buffer.of(0x08, code),
        pbField(2, `refused plaintext ${b64}`),
        pbField(
          3,
          Buffer.concat([pbField(1, 'type.googleapis.com/google.rpc.ErrorInfo'), pbField(2, errorInfo)]),
        ),
        pbField(3, Buffer.concat([pbField(1, 'type.googleapis.com/example.Echo'), pbField(2, plaintext)])),
      ]);
      metadata.set('grpc-status-details-bin', status);
      const details = inMessage
        ? `Invalid value at 'plaintext' (${b64}), hex ${plaintext.toString('hex')}`
        : 'refused';
      return { code, details, metadata };
    };

  const cases: [string, number, string, (b64: string) => string, boolean?][] = [
    ['INVALID_ARGUMENT', 3, 'InvalidArgument', () => 'req-1'],
    ['PERMISSION_DENIED', 7, 'AccessDenied', () => 'req-2'],
    ['UNAVAILABLE, the request id quoting it too', 14, 'Unavailable', (b64) => `req-${b64}`],
    [
      'INVALID_ARGUMENT, only the trailers and status details quoting it',
      3,
      'InvalidArgument',
      () => 'req-3',
      false,
    ],
  ];
  for (const [what, code, keyport, requestId, inMessage] of cases) {
    for (const op of ['encrypt', 'generateDataKey'] as const) {
      it(`${op}, ${what}: nothing the stand-in echoed is reachable from the error`, async () => {
        refuse = everywhere(code, requestId, inMessage);
        seen.length = 0;
        const kp = standIn();
        try {
          const error = await failureOf(
            op === 'encrypt' ? kp.encrypt(URI, PLAINTEXT) : kp.generateDataKey(URI, { bytes: 32 }),
          );
          expect(seen.length, 'the stand-in was asked').toBeGreaterThan(0);
          expect(error.code).toBe(keyport);
          expect(leaks(error, [PLAINTEXT, ...seen])).toEqual([]);
        } finally {
          await kp.close();
        }
      });
    }
  }
});
