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
import { findSecret } from '@keyport/conformance';
import { Keyport, KeyportError } from '@keyport/core';
import { afterEach, describe, expect, it } from 'vitest';
import type { GcpKmsProvider } from '../src/index.js';
import { keyportOf, kmsSuite, type MakeProvider, TRANSPORTS, wrapClient } from './support/suite.js';
import { grpcProvider, restProvider } from './support/targets.js';

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

it('the walk finds a secret where inspect does not show it', () => {
  const secret = Uint8Array.from({ length: 32 }, (_, i) => i * 7 + 1);
  const hidden = (value: unknown) => {
    const e = new Error('failed');
    Object.defineProperty(e, 'request', { value, enumerable: false });
    return e;
  };
  const body = (text: string) => hidden({ headers: new Map([['x', 'y']]), body: text });
  const b64 = Buffer.from(secret).toString('base64');
  for (const found of [
    hidden(Buffer.concat([Buffer.from('{'), secret])),
    body(JSON.stringify({ value: Buffer.from(secret).toString('base64url') })),
    body(`x${Buffer.concat([Buffer.alloc(1), secret]).toString('base64')}`),
    body(Buffer.from(secret).toString('hex')),
    new Error('outer', { cause: new Map([['k', new Set([body(b64)])]]) }),
    {
      [Symbol('s')]: {
        get inner() {
          return secret.buffer.slice(0);
        },
      },
    },
  ])
    expect(findSecret(found, secret), String(found)).not.toEqual([]);
  expect(findSecret(body('nothing here'), secret)).toEqual([]);
});
