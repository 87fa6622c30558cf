/**
 * An abortable HTTP transport for node-vault.
 *
 * node-vault 0.12.0 sends requests through axios but forwards only method, uri, headers, body,
 * timeout and agents to it — an AbortSignal given in `requestOptions` is dropped, so a call
 * cannot be cancelled. node-vault documents one replacement point, the `request-promise`
 * option: an object whose `defaults(rpDefaults)` returns `request(options) -> Promise<{
 * statusCode, body, request: { path } }>`. This module is that object, written over
 * `node:http`/`node:https`, which take a `signal` natively: aborting destroys the socket, so
 * the request really stops (not just the await). node-vault still builds the paths, token and
 * namespace headers, login bodies and error objects.
 *
 * It never retries (retries belong to core's call policy) and keeps connections alive.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

/** TLS settings for talking to Vault over HTTPS. */
export interface VaultTlsOptions {
  /** PEM CA bundle to trust instead of the system roots. */
  readonly ca?: string | Uint8Array;
  /** Client certificate and key (cert auth, mTLS listeners). */
  readonly cert?: string | Uint8Array;
  readonly key?: string | Uint8Array;
  /** Defaults to true; turning it off is for throwaway test servers only. */
  readonly rejectUnauthorized?: boolean;
}

/** The options object node-vault hands to its request function. */
interface NodeVaultRequestOptions {
  readonly method?: string;
  readonly uri?: string;
  readonly headers?: Record<string, string>;
  readonly json?: unknown;
  readonly signal?: AbortSignal;
  readonly timeout?: number;
}

export interface TransportResponse {
  readonly statusCode: number;
  readonly body: unknown;
  readonly request: { readonly path: string };
  readonly headers: IncomingMessage['headers'];
}

export type RequestFn = (options: NodeVaultRequestOptions) => Promise<TransportResponse>;

/** What node-vault's `request-promise` option expects. */
export interface RequestPromiseLike {
  defaults(defaults: unknown): RequestFn;
}

function bodyOf(text: string): unknown {
  if (text.length === 0) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    // Proxies and load balancers answer HTML; keep it so the status code still maps.
    return text;
  }
}

export function createTransport(tls: VaultTlsOptions = {}): RequestPromiseLike & { close(): void } {
  const httpAgent = new HttpAgent({ keepAlive: true });
  const httpsAgent = new HttpsAgent({
    keepAlive: true,
    ...(tls.ca !== undefined ? { ca: Buffer.from(tls.ca) } : {}),
    ...(tls.cert !== undefined ? { cert: Buffer.from(tls.cert) } : {}),
    ...(tls.key !== undefined ? { key: Buffer.from(tls.key) } : {}),
    rejectUnauthorized: tls.rejectUnauthorized ?? true,
  });

  const send: RequestFn = (options) =>
    new Promise<TransportResponse>((resolve, reject) => {
      const url = new URL(options.uri ?? '');
      const isHttps = url.protocol === 'https:';
      const headers: Record<string, string> = { ...options.headers };
      let payload: Buffer | undefined;
      if (options.json !== undefined && typeof options.json === 'object' && options.json !== null) {
        payload = Buffer.from(JSON.stringify(options.json));
        headers['content-type'] ??= 'application/json';
        headers['content-length'] = String(payload.length);
      }
      const req = (isHttps ? httpsRequest : httpRequest)(
        url,
        {
          method: options.method ?? 'GET',
          headers,
          agent: isHttps ? httpsAgent : httpAgent,
          ...(options.signal !== undefined ? { signal: options.signal } : {}),
          ...(options.timeout !== undefined ? { timeout: options.timeout } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () =>
            resolve({
              statusCode: res.statusCode ?? 0,
              body: bodyOf(Buffer.concat(chunks).toString('utf8')),
              request: { path: url.pathname },
              headers: res.headers,
            }),
          );
        },
      );
      req.on('timeout', () =>
        req.destroy(Object.assign(new Error('request timed out'), { code: 'ETIMEDOUT' })),
      );
      req.on('error', reject);
      req.end(payload);
    });

  return {
    defaults: () => send,
    close() {
      httpAgent.destroy();
      httpsAgent.destroy();
    },
  };
}
