/**
 * A vault played in-process by an SDK `httpClient`, for answers keyport's Key Vault server never
 * gives (a 408, a 409 for a key still being deleted, a deletion that stays pending). The SDK's
 * whole pipeline, keyport's policies included, runs before it; every request is recorded.
 */
import { generateKeyPairSync } from 'node:crypto';
import type { KeyClientOptions } from '@azure/keyvault-keys';
import { type AzureKeyVaultOptions, AzureKeyVaultProvider } from '../../src/index.js';
import { staticToken } from './server.js';

type HttpClient = NonNullable<KeyClientOptions['httpClient']>;
type Response = Awaited<ReturnType<HttpClient['sendRequest']>>;

export const VAULT = 'https://kp.vault.azure.net';
export const HOST = 'kp.vault.azure.net';

export interface Answer {
  readonly status?: number;
  readonly body?: unknown;
  /** Headers besides content-type and x-ms-request-id (a 401's WWW-Authenticate challenge). */
  readonly headers?: Readonly<Record<string, string>>;
}
/** The answer to a request, or undefined for a 404 KeyNotFound. */
export type Route = (url: URL, method: string) => Answer | undefined;

export interface StandIn {
  /** `METHOD path` of every request, in order. */
  readonly requests: string[];
  route: Route;
  provider(options?: Partial<AzureKeyVaultOptions>): AzureKeyVaultProvider;
}

export function headersOf(values: Record<string, string>) {
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

const notFound: Answer = { status: 404, body: { error: { code: 'KeyNotFound', message: 'no key' } } };

export function standIn(): StandIn {
  const requests: string[] = [];
  const self: StandIn = {
    requests,
    route: () => undefined,
    provider: (options = {}) =>
      new AzureKeyVaultProvider({
        vaultUrl: VAULT,
        credential: staticToken('token'),
        clientOptions: { httpClient },
        vaultKind: 'vault',
        ...options,
      }),
  };
  const httpClient: HttpClient = {
    async sendRequest(request) {
      // A macrotask per answer, as a socket would take.
      await new Promise((resolve) => setImmediate(resolve));
      const url = new URL(request.url);
      requests.push(`${request.method} ${url.pathname}`);
      const answer = self.route(url, request.method) ?? notFound;
      return {
        request,
        status: answer.status ?? 200,
        headers: headersOf({
          'content-type': 'application/json',
          'x-ms-request-id': 'req-1',
          ...answer.headers,
        }),
        bodyAsText: answer.body === undefined ? '' : JSON.stringify(answer.body),
      } as Response;
    },
  };
  return self;
}

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' });
const attributes = { enabled: true, created: 1_700_000_000, updated: 1_700_000_000, recoverableDays: 90 };

/** A key bundle as Key Vault answers it (an RSA-2048 key for wrapping). */
export function bundle(name: string, over: Record<string, unknown> = {}) {
  return {
    key: {
      kid: `${VAULT}/keys/${name}/v1`,
      kty: 'RSA',
      key_ops: ['wrapKey', 'unwrapKey'],
      n: rsa.n,
      e: rsa.e,
    },
    attributes,
    tags: {},
    ...over,
  };
}

/** A deleted key bundle, as a deletion answers it and `GET /deletedkeys/<name>` gives it. */
export function deletedBundle(name: string) {
  return bundle(name, {
    recoveryId: `${VAULT}/deletedkeys/${name}`,
    deletedDate: 1_700_000_100,
    scheduledPurgeDate: 1_707_776_100,
  });
}
