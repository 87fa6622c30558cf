import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  escapeControl,
  Keyport,
  KeyportError,
  type KmsProvider,
  quote,
  reduceCause,
  toKeyportError,
  UnsupportedError,
} from '../src/index.js';
import { AES_ONLY_CAPABILITIES } from './support/capabilities.js';

/** A fake AWS SDK v3 service exception, shaped as the real one: request, response, headers. */
class FakeServiceException extends Error {
  override name = 'AccessDeniedException';
  readonly $fault = 'client';
  readonly $metadata = { httpStatusCode: 400, requestId: 'req-4711', attempts: 1 };
  readonly $response = {
    statusCode: 400,
    headers: {
      authorization: 'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/kms/aws4_request',
      'x-amz-security-token': 'FwoGZXIvYXdzEXAMPLESESSIONTOKEN',
      'x-amzn-requestid': 'req-4711',
    },
    body: '{"__type":"AccessDeniedException","message":"User arn:aws:iam::111122223333:user/alice is not authorized"}',
  };
  readonly config = {
    credentials: { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG' },
  };
  constructor() {
    super(
      'User is not authorized to perform kms:Decrypt\u001b[2J (Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.secret)',
    );
  }
}

const SECRETS = [
  'AKIAIOSFODNN7EXAMPLE',
  'wJalrXUtnFEMI',
  'FwoGZXIvYXdzEXAMPLESESSIONTOKEN',
  'eyJhbGciOiJIUzI1NiJ9',
  '$response',
  'headers',
  'secretAccessKey',
  '\u001b',
];

describe('clean messages', () => {
  it('quote escapes control characters, bidi overrides and lone surrogates, and caps the length', () => {
    expect(quote('a\nb\u001b[31mc')).toBe('"a\\u000ab\\u001b[31mc"');
    expect(quote('\u202eevil\ud800')).toBe('"\\u202eevil\\ud800"');
    expect(quote('say "hi"')).toBe('"say \\"hi\\""');
    const long = quote('x'.repeat(500));
    expect(long.length).toBeLessThan(120);
    expect(long).toContain('(500 chars)');
    expect(quote(42)).toBe('(number)');
    expect(quote(new Map())).toBe('(Map)');
    expect(escapeControl('ok 😀')).toBe('ok 😀');
  });

  it('escapeControl escapes the bidirectional marks too (they reorder a line as the overrides do)', () => {
    // U+200E/U+200F (LRM/RLM) and U+061C (ALM) flip the direction of what follows them.
    expect(escapeControl('key\u200fexe.txt')).toBe('key\\u200fexe.txt');
    expect(escapeControl('a\u200eb\u061cc')).toBe('a\\u200eb\\u061cc');
    expect(escapeControl('\u2066x\u2069')).toBe('\\u2066x\\u2069');
  });

  it('a KeyportError escapes control characters in its message, key URI and request id', () => {
    const e = new KeyportError('NotFound', 'no key\nFAKE LOG LINE', {
      keyUri: 'local://k#a\u001b[2J',
      requestId: 'id\r\n',
    });
    expect(e.message).toBe('no key\\u000aFAKE LOG LINE');
    expect(e.keyUri).toBe('local://k#a\\u001b[2J');
    expect(e.requestId).toBe('id\\u000d\\u000a');
  });

  it('an SDK error kept as cause is reduced to its class, code, message and request id', () => {
    const raw = Object.assign(new FakeServiceException(), { code: 'AccessDeniedException' });
    const mapped = new KeyportError('AccessDenied', 'access denied by AWS KMS', {
      cause: raw,
      requestId: 'req-4711',
    });
    const cause = mapped.cause as Error & { code?: string; requestId?: string };
    expect(cause).not.toBe(raw);
    expect(cause).toBeInstanceOf(FakeServiceException);
    expect(cause.name).toBe('AccessDeniedException');
    expect(cause.code).toBe('AccessDeniedException');
    expect(cause.requestId).toBe('req-4711');
    expect(cause.message).toContain('not authorized to perform kms:Decrypt');
    for (const view of [
      inspect(mapped, { depth: 20, showHidden: true }),
      inspect(mapped, { depth: 20 }),
      JSON.stringify(mapped),
      JSON.stringify(cause),
      String(cause.stack),
    ]) {
      for (const secret of SECRETS) expect(view, `${secret} leaked`).not.toContain(secret);
    }
    expect(inspect(mapped, { depth: 20 })).toContain('req-4711');
  });

  it('the request id is found in response headers when the SDK keeps it only there', () => {
    const raw = Object.assign(new Error('boom'), {
      response: { headers: new Headers({ 'x-ms-request-id': 'ms-1', authorization: 'Bearer abcdefghijkl' }) },
    });
    const cause = reduceCause(raw) as Error & { requestId?: string };
    expect(cause.requestId).toBe('ms-1');
    expect(inspect(cause, { depth: 20, showHidden: true })).not.toContain('abcdefghijkl');
  });

  it.each([
    ['a Vault token', 'hvs.CAESIJlWqu3dSMzKxXs0DhhKa8tN3fvWW5cxUPl9kELsH4dU'],
    ['an OpenBao service token', 's.Ar5GxMfAMFdPhSkTNa3K7Ty1'],
    ['a batch token', 'b.AAAAAQKmTpzGEIiCNSKQCXBOIbdXX8KaqZlJkNlW-4q0Jh'],
    ['an Entra ID or service-account JWT', 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl'],
    ['a Google OAuth access token', 'ya29.a0AfB_byC9xRk2mQ1vT7wL4pZ8nE3sJ6hY0uI'],
    ['a Google API key', 'AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW'],
    ['an AWS access key id', 'ASIAQWERTYUIOPASDFGH'],
  ])('%s echoed without its name (a proxy answering with the request header) is masked', (_, secret) => {
    const raw = Object.assign(new Error(`rejected credentials ${secret} for this request`), {
      code: `bad ${secret}`,
    });
    const e = new KeyportError('AccessDenied', 'denied', { cause: new Error('outer', { cause: raw }) });
    const text = [inspect(e, { depth: 20, showHidden: true }), JSON.stringify(e)].join('\n');
    expect(text).not.toContain(secret);
    expect(text).toContain('rejected credentials <redacted> for this request');
  });

  it('ordinary error text that merely looks dotted is kept', () => {
    const message = 'key versions.abcdefghijklmnopqrstuvwxyz of projects/p/keyRings/r.ring was not found';
    expect((reduceCause(new Error(message)) as Error).message).toBe(message);
  });

  it('nested causes and aggregates are reduced too; DOMException-like prototypes do not break inspect', () => {
    const inner = Object.assign(new Error('connect ECONNREFUSED'), {
      code: 'ECONNREFUSED',
      config: { headers: { authorization: 'Basic dXNlcjpwYXNzd29yZA==' } },
    });
    const outer = new Error('request failed', { cause: inner });
    const agg = new AggregateError([outer, new DOMException('aborted', 'AbortError')], 'all failed');
    const e = new KeyportError('Unavailable', 'no provider answered', { cause: agg });
    const text = inspect(e, { depth: 20, showHidden: true });
    expect(text).toContain('ECONNREFUSED');
    expect(text).toContain('AbortError');
    expect(text).not.toContain('dXNlcjpwYXNzd29yZA');
    expect(((e.cause as AggregateError).errors[0] as Error).cause).toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('through Keyport: an unmapped SDK error becomes Internal with a reduced cause', async () => {
    const caps = AES_ONLY_CAPABILITIES;
    const kp = new Keyport({
      retry: { maxAttempts: 1 },
      providers: [
        {
          scheme: 'local',
          name: 'local',
          capabilities: caps,
          encrypt: async () => {
            throw new FakeServiceException();
          },
        } as unknown as KmsProvider,
      ],
    });
    const error = await kp.encrypt('local://k.kp#a', new Uint8Array(1)).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'Internal' });
    const text = inspect(error, { depth: 20, showHidden: true });
    for (const secret of SECRETS) expect(text, `${secret} leaked`).not.toContain(secret);
    expect(toKeyportError(new FakeServiceException()).cause).toBeInstanceOf(FakeServiceException);
  });
});

describe('withDetails', () => {
  /** A subclass whose constructor takes other arguments, carrying a field of its own. */
  class StoppedError extends KeyportError {
    override readonly name: string = 'StoppedError';
    constructor(
      readonly done: readonly string[],
      cause: KeyportError,
    ) {
      super(cause.code, `stopped after ${done.length}`, { cause, retryable: false });
    }
  }

  it('fills in provider and key, keeping the class, every field and the stack of a subclass', () => {
    const original = new StoppedError(['a', 'b'], new KeyportError('Aborted', 'aborted'));
    const copy = original.withDetails({ provider: 'p\u001b[31m', keyUri: 'local://k' });
    expect(copy).toBeInstanceOf(StoppedError);
    expect(copy).not.toBe(original);
    expect(copy).toMatchObject({
      name: 'StoppedError',
      code: 'Aborted',
      message: 'stopped after 2',
      done: ['a', 'b'],
      retryable: false,
      provider: 'p\\u001b[31m',
      keyUri: 'local://k',
    });
    expect(copy.cause).toBe(original.cause);
    expect(copy.stack).toBe(original.stack);
    // The original is left as it was; details already known are not replaced.
    expect(original.provider).toBeUndefined();
    expect(copy.withDetails({ provider: 'other' })).toBe(copy);
  });

  it('keeps an UnsupportedError its capability and retry settings', () => {
    const e = new UnsupportedError('rotationSchedule', 'no schedules', { retryAfterMs: 5 });
    const copy = e.withDetails({ provider: 'aws-kms' });
    expect(copy).toBeInstanceOf(UnsupportedError);
    expect(copy).toMatchObject({ capability: 'rotationSchedule', provider: 'aws-kms', retryAfterMs: 5 });
  });
});
