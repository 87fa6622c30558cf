/**
 * Answers to the calls that return key material (unwrapKey, and decrypt on a Managed HSM's AES
 * keys) that the SDK cannot take: cut short, followed by junk, of a status it does not expect.
 * The SDK quotes a body it cannot parse in its error, and keyport keeps that error as `cause`,
 * which `console.error(e)` prints: nothing of the answer may show there. A stand-in plays the
 * vault (keyport's Key Vault server never answers so), handing the body to keyport's own
 * answer-reading policy as a stream, as a socket would.
 */
import { generateKeyPairSync } from 'node:crypto';
import { Readable } from 'node:stream';
import { inspect } from 'node:util';
import type { KeyClientOptions } from '@azure/keyvault-keys';
import { Keyport, KeyportError } from '@keyport/core';
import { afterEach, describe, expect, it } from 'vitest';
import { AzureKeyVaultProvider } from '../src/index.js';
import { staticToken } from './support/server.js';

type HttpClient = NonNullable<KeyClientOptions['httpClient']>;
type Response = Awaited<ReturnType<HttpClient['sendRequest']>>;

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' });
/** The key material the vault's answer carries: 32 known bytes, looked for as base64url and hex. */
const SECRET = Buffer.from(Array.from({ length: 32 }, (_, i) => 0xa0 + i));
const B64 = SECRET.toString('base64url');

function headersOf(values: Record<string, string>) {
  const map = new Map(Object.entries(values).map(([k, v]) => [k.toLowerCase(), v]));
  return {
    get: (name: string) => map.get(name.toLowerCase()),
    has: (name: string) => map.has(name.toLowerCase()),
    set: (name: string, value: string | number | boolean) => void map.set(name.toLowerCase(), String(value)),
    delete: (name: string) => void map.delete(name.toLowerCase()),
    toJSON: () => Object.fromEntries(map),
    [Symbol.iterator]: () => map.entries(),
  };
}

interface Vault {
  readonly url: string;
  readonly kind: 'vault' | 'managedHsm';
  /** The key bundle's kty and key_ops. */
  readonly key: Record<string, unknown>;
  /** The secret-returning call's path end. */
  readonly secretCall: RegExp;
  /** The call that makes a ciphertext, and its answer. */
  readonly sealCall: RegExp;
  readonly sealed: Record<string, unknown>;
}

const VAULTS: Record<string, Vault> = {
  unwrapKey: {
    url: 'https://kp.vault.azure.net',
    kind: 'vault',
    key: { kty: 'RSA', key_ops: ['wrapKey', 'unwrapKey'], n: rsa.n, e: rsa.e },
    secretCall: /\/unwrapkey$/,
    sealCall: /\/wrapkey$/,
    sealed: { value: Buffer.alloc(256, 7).toString('base64url') },
  },
  decrypt: {
    url: 'https://kp.managedhsm.azure.net',
    kind: 'managedHsm',
    key: { kty: 'oct-HSM', key_ops: ['encrypt', 'decrypt'] },
    secretCall: /\/decrypt$/,
    sealCall: /\/encrypt$/,
    sealed: {
      value: Buffer.alloc(5, 7).toString('base64url'),
      iv: Buffer.alloc(12, 1).toString('base64url'),
      tag: Buffer.alloc(16, 2).toString('base64url'),
    },
  },
};

let keyport: Keyport | undefined;
afterEach(async () => {
  await keyport?.close();
  keyport = undefined;
});

/** decrypt's failure when the vault answers the secret-returning call with `status` and `body`. */
async function decryptAnswered(
  vault: Vault,
  status: number,
  body: (kid: string) => string,
  headers: Record<string, string> = {},
): Promise<KeyportError> {
  const kid = `${vault.url}/keys/k/v1`;
  const httpClient: HttpClient = {
    async sendRequest(request) {
      await new Promise((resolve) => setImmediate(resolve));
      const path = new URL(request.url).pathname;
      const [answerStatus, text] = vault.secretCall.test(path)
        ? [status, body(kid)]
        : vault.sealCall.test(path)
          ? [200, JSON.stringify({ kid, ...vault.sealed })]
          : [200, JSON.stringify({ key: { kid, ...vault.key }, attributes: { enabled: true }, tags: {} })];
      // keyport's answer-reading policy asks for every body as a stream, as the transport gives it.
      const streamed = request.streamResponseStatusCodes !== undefined;
      return {
        request,
        status: answerStatus,
        headers: headersOf({ 'content-type': 'application/json', 'x-ms-request-id': 'req-7', ...headers }),
        ...(streamed ? { readableStreamBody: Readable.from([Buffer.from(text)]) } : { bodyAsText: text }),
      } as Response;
    },
  };
  keyport = new Keyport({
    providers: [
      new AzureKeyVaultProvider({
        vaultUrl: vault.url,
        credential: staticToken('token'),
        clientOptions: { httpClient },
        vaultKind: vault.kind,
      }),
    ],
    retry: { maxAttempts: 1 },
  });
  const uri = `azurekeyvault://${new URL(vault.url).host}/keys/k`;
  const { ciphertext } = await keyport.encrypt(uri, Buffer.from('hello'));
  try {
    await keyport.decrypt(uri, ciphertext);
  } catch (e) {
    expect(e).toBeInstanceOf(KeyportError);
    return e as KeyportError;
  }
  throw new Error('expected decrypt to fail');
}

/** What `console.error(e)` prints of an error, cause chain and all, and its JSON. */
const printed = (e: KeyportError) => `${inspect(e, { depth: 10 })} ${JSON.stringify(e)}`;

function expectNoSecret(e: KeyportError) {
  const text = printed(e);
  expect(text).not.toContain(B64);
  expect(text).not.toContain(SECRET.toString('base64'));
  expect(text).not.toContain(SECRET.toString('hex'));
  // V8 quotes a few characters around where the parse failed: none of the value either.
  expect(text).not.toContain(B64.slice(-12));
}

describe.each(Object.entries(VAULTS))('answers to %s carrying key material', (_, vault) => {
  const value = (kid: string) => `{"kid":"${kid}","value":"${B64}"`;

  it('cut short: Internal, saying the body is not JSON, with nothing of it printed', async () => {
    const e = await decryptAnswered(vault, 200, value);
    expect(e.code).toBe('Internal');
    expect(e.message).toMatch(/answered 200 with a body that is not JSON/);
    expect(e.requestId).toBe('req-7');
    expect((e.cause as { code?: unknown }).code).toBe('PARSE_ERROR');
    expectNoSecret(e);
  });

  it('followed by junk: nothing of it printed', async () => {
    const e = await decryptAnswered(vault, 200, (kid) => `${value(kid)}}garbage`);
    expect(e.code).toBe('Internal');
    expectNoSecret(e);
  });

  it('as an error body (a status the SDK does not expect): nothing of it printed', async () => {
    const e = await decryptAnswered(vault, 500, (kid) => `${value(kid)}} and more`);
    expect(e.code).toBe('Unavailable');
    expect(e.requestId).toBe('req-7');
    expectNoSecret(e);
  });

  it('a genuine error keeps its mapping: a 403 on a disabled key, told only in the message', async () => {
    const body =
      '{"error":{"code":"Forbidden","message":"Operation decrypt is not allowed on a disabled key."}}';
    const e = await decryptAnswered(vault, 403, () => body);
    expect(e.code).toBe('KeyStateConflict');
  });

  it('a 429 keeps its Retry-After', async () => {
    const body = '{"error":{"code":"Throttled","message":"slow down"}}';
    const e = await decryptAnswered(vault, 429, () => body, { 'retry-after': '3' });
    expect(e.code).toBe('Throttled');
    expect(e.retryAfterMs).toBe(3000);
  });
});
