import { describe, expect, it } from 'vitest';
import {
  assertContextBindable,
  assertSpecServes,
  type ErrorTable,
  errorFromTable,
  errorMapping,
  KeyportError,
  keyportError,
  lazyPeer,
  networkErrorCode,
  signingAlgorithmFor,
  tlsErrorCode,
  UnsupportedError,
  unmodeledKeyError,
} from '../src/index.js';

const TABLE: ErrorTable = {
  NotFoundException: { code: 'NotFound' },
  Busy: { code: 'Throttled', retryable: false },
  NotImplemented: { code: 'Unsupported', capability: 'grants' },
};

describe('error tables', () => {
  it('maps a row to its code, retryability and capability', () => {
    const e = errorFromTable(TABLE, 'NotFoundException', 'no such key', { provider: 'p', requestId: 'r1' });
    expect(e).toBeInstanceOf(KeyportError);
    expect(e?.code).toBe('NotFound');
    expect(e?.requestId).toBe('r1');
    expect(errorFromTable(TABLE, 'Busy', 'busy')?.retryable).toBe(false);
    expect(errorFromTable(TABLE, 'NotFoundException', 'x')?.retryable).toBe(false);
    const refused = errorFromTable(TABLE, 'NotImplemented', 'no grants');
    expect(refused).toBeInstanceOf(UnsupportedError);
    expect((refused as UnsupportedError).capability).toBe('grants');
  });

  it('sees only its own rows: inherited names from a hostile answer are unknown', () => {
    for (const key of ['__proto__', 'constructor', 'toString', 'hasOwnProperty', '', undefined]) {
      expect(errorMapping(TABLE, key)).toBeUndefined();
      expect(errorFromTable(TABLE, key, 'm')).toBeUndefined();
    }
    expect(errorMapping({ 404: { code: 'NotFound' } }, 404)?.code).toBe('NotFound');
  });

  it('keyportError makes an UnsupportedError for Unsupported, defaulting the capability', () => {
    const e = keyportError('Unsupported', 'nope');
    expect(e).toBeInstanceOf(UnsupportedError);
    expect((e as UnsupportedError).capability).toBe('operation');
    expect(keyportError('NotFound', 'gone')).not.toBeInstanceOf(UnsupportedError);
  });

  it('finds socket failures on the error or its causes', () => {
    expect(networkErrorCode(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }))).toBe('ECONNREFUSED');
    const wrapped = new TypeError('fetch failed', {
      cause: Object.assign(new Error('y'), { code: 'ECONNRESET' }),
    });
    expect(networkErrorCode(wrapped)).toBe('ECONNRESET');
    expect(networkErrorCode(Object.assign(new Error('z'), { code: 'ENOENT' }))).toBeUndefined();
    expect(networkErrorCode('ECONNREFUSED')).toBeUndefined();
  });

  it('finds a refused TLS certificate on the error or three causes deep, and nothing else', () => {
    const tls = (code: string) => Object.assign(new Error('cert'), { code });
    expect(tlsErrorCode(tls('DEPTH_ZERO_SELF_SIGNED_CERT'))).toBe('DEPTH_ZERO_SELF_SIGNED_CERT');
    // As Google's REST client wraps it: UNAVAILABLE (14) over an Error over node-fetch's FetchError.
    const deep = Object.assign(new Error('14'), {
      code: 14,
      cause: Object.assign(new Error('x'), { cause: tls('CERT_HAS_EXPIRED') }),
    });
    expect(tlsErrorCode(deep)).toBe('CERT_HAS_EXPIRED');
    expect(tlsErrorCode(new TypeError('fetch failed', { cause: tls('ERR_TLS_CERT_ALTNAME_INVALID') }))).toBe(
      'ERR_TLS_CERT_ALTNAME_INVALID',
    );
    expect(tlsErrorCode(tls('ECONNREFUSED'))).toBeUndefined();
    expect(networkErrorCode(tls('UNABLE_TO_VERIFY_LEAF_SIGNATURE'))).toBeUndefined();
    expect(tlsErrorCode(tls('__proto__'))).toBeUndefined();
    expect(tlsErrorCode('DEPTH_ZERO_SELF_SIGNED_CERT')).toBeUndefined();
    // A cause cycle ends the walk.
    const cyclic: { code: string; cause?: unknown } = { code: 'x' };
    cyclic.cause = cyclic;
    expect(tlsErrorCode(cyclic)).toBeUndefined();
  });
});

describe('key rules', () => {
  it('refuses a context on a key pair unless the driver binds it, never on symmetric keys', () => {
    const ctx = { tenant: 'a' };
    expect(() => assertContextBindable('RSA_2048', ctx, 'none', { keyUri: 'k' })).toThrow(UnsupportedError);
    try {
      assertContextBindable('RSA_2048', ctx, 'none');
    } catch (e) {
      expect((e as UnsupportedError).capability).toBe('context');
    }
    expect(() => assertContextBindable('RSA_2048', ctx, 'emulated')).not.toThrow();
    expect(() => assertContextBindable('RSA_2048', {}, 'none')).not.toThrow();
    expect(() => assertContextBindable('RSA_2048', undefined, 'none')).not.toThrow();
    expect(() => assertContextBindable('AES_256', ctx, 'none')).not.toThrow();
  });

  it('refuses a usage the spec cannot serve as the caller mistake', () => {
    expect(() => assertSpecServes('EC_P256', 'encrypt_decrypt')).toThrow(
      expect.objectContaining({ code: 'InvalidArgument' }),
    );
    expect(() => assertSpecServes('AES_256', 'sign_verify')).toThrow(/cannot be used for sign_verify/);
    expect(() => assertSpecServes('RSA_3072', 'sign_verify')).not.toThrow();
  });

  it('chooses the signing algorithm of the key family', () => {
    expect(signingAlgorithmFor('EC_P384', undefined)).toBe('ECDSA_SHA_384');
    expect(signingAlgorithmFor('RSA_2048', 'RSASSA_PKCS1_V1_5_SHA_256')).toBe('RSASSA_PKCS1_V1_5_SHA_256');
    expect(() => signingAlgorithmFor('EC_P256', 'ECDSA_SHA_384')).toThrow(
      expect.objectContaining({ code: 'InvalidArgument' }),
    );
    expect(() => signingAlgorithmFor('AES_256', undefined)).toThrow(
      expect.objectContaining({ code: 'InvalidArgument' }),
    );
    expect(() => signingAlgorithmFor('HMAC_256', 'ECDSA_SHA_256')).toThrow(/do not sign with/);
  });

  it('names an unmodeled provider key as a keySpec refusal', () => {
    const e = unmodeledKeyError('AWS key spec SM2', { provider: 'aws-kms' });
    expect(e).toBeInstanceOf(UnsupportedError);
    expect((e as UnsupportedError).capability).toBe('keySpec');
    expect(e.provider).toBe('aws-kms');
  });
});

describe('lazyPeer', () => {
  it('loads once, names a missing package, and retries after a failed load', async () => {
    let calls = 0;
    let fail = true;
    const peer = lazyPeer('@acme/sdk', 'acme', async () => {
      calls++;
      if (fail)
        throw Object.assign(new Error("Cannot find package '@acme/sdk'"), { code: 'ERR_MODULE_NOT_FOUND' });
      return { version: 1 };
    });
    expect(() => peer.get()).toThrow(/used before it was loaded/);
    await expect(peer.load()).rejects.toThrow(/needs the peer dependency @acme\/sdk/);
    fail = false;
    const [a, b] = await Promise.all([peer.load(), peer.load()]);
    expect(a).toBe(b);
    expect(peer.get()).toBe(a);
    expect(calls).toBe(2);
  });

  it('passes other load failures through unchanged', async () => {
    const boom = new SyntaxError('bad module');
    const peer = lazyPeer('@acme/sdk', 'acme', async () => {
      throw boom;
    });
    await expect(peer.load()).rejects.toBe(boom);
  });
});
