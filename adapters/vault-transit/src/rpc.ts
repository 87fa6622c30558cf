/**
 * The one send path to one Vault / OpenBao server: the node-vault client (built on the first
 * call), the token it carries (logged in and renewed before a call that needs it), and `send`,
 * through which every request goes with its AbortSignal. No retries: core's call policy retries.
 *
 * Cancellation: node-vault 0.12 forwards only method, uri, headers, body, timeout and agents to
 * axios, dropping an AbortSignal. Its documented replacement point is the `request-promise`
 * option (`defaults()` returning `request(options) -> Promise<{ statusCode, body }>`); this
 * module passes one written over node:http(s), which take the signal natively, so an abort
 * destroys the socket. node-vault still builds paths, headers, login bodies and error objects.
 * A client given in the options keeps its transport: the wait is raced against the signal.
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import {
  abortedWaitError,
  joinSharedRequest,
  KeyportError,
  type SharedRequest,
  settleOrAbort,
} from '@keyport/core';
import type NodeVault from 'node-vault';
import { maskErrorTokens, withholdServerText } from './errors.js';
import type { VaultAuth, VaultTlsOptions, VaultTransitOptions } from './options.js';
import { nodeVault } from './sdk.js';

type Method = 'read' | 'write' | 'list' | 'delete';

/** The HTTP status of a node-vault error, if the server answered. */
export function statusOf(error: unknown): number | undefined {
  return (error as { response?: { statusCode?: number } } | null)?.response?.statusCode;
}

/** Transit answers 400 for a batch with failed items but still lists every item's result. */
export function batchResultsOf(error: unknown): unknown[] | undefined {
  const results = (error as { response?: { body?: { data?: { batch_results?: unknown } } } } | null)?.response
    ?.body?.data?.batch_results;
  return Array.isArray(results) ? results : undefined;
}

export const abortError = abortedWaitError('hcvault', 'the Vault call');

/** Resolves like `promise` but rejects as soon as `signal` aborts. */
export function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return settleOrAbort(promise, signal, abortError);
}

interface TransportRequest {
  readonly method?: string;
  readonly uri?: string;
  readonly headers?: Record<string, string>;
  readonly json?: unknown;
  readonly signal?: AbortSignal;
  readonly timeout?: number;
  /** A tighter bound than MAX_ANSWER_BYTES, for a request whose answer size follows from it. */
  readonly maxAnswerBytes?: number;
}

/**
 * A TLS setting as the agent keeps it: text as given; bytes copied once into memory of their
 * own (never Node's shared Buffer pool, where a client key would sit beside unrelated data).
 */
const tlsValue = (v: string | Uint8Array): string | Buffer =>
  typeof v === 'string' ? v : Buffer.from(new Uint8Array(v).buffer);

/** `parts` joined in memory of their own, each part wiped (they held a response body). */
function joinAndWipe(parts: readonly Buffer[]): Buffer {
  const joined = Buffer.allocUnsafeSlow(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    at += p.copy(joined, at);
    p.fill(0);
  }
  return joined;
}

/**
 * The most bytes of one answer the transport reads: four times Vault's default `max_request_size`
 * (32 MiB), which bounds what transit answers to requests keyport sends. A server, proxy or
 * impostor answering more (or declaring more) is refused rather than buffered until memory runs out.
 */
export const MAX_ANSWER_BYTES = 128 * 1024 * 1024;

const answerTooLarge = (limit: number) =>
  new KeyportError('Internal', `Vault's answer is larger than ${describeBytes(limit)}`, {
    provider: 'hcvault',
    retryable: false,
  });

const describeBytes = (n: number) =>
  n === MAX_ANSWER_BYTES ? `${n / 1024 / 1024} MiB` : `${n} bytes, the most its request can be answered with`;

/**
 * node-vault's `request-promise` replacement over node:http(s), keep-alive, never retrying.
 * Request and response bodies carry secrets as base64 (plaintexts, data keys, tokens): their
 * bytes live outside Node's shared Buffer pool and are wiped once the call is over. The JSON
 * strings on either side are V8's and are left to the collector.
 */
function createTransport(tls: VaultTlsOptions = {}) {
  const http = new HttpAgent({ keepAlive: true });
  const https = new HttpsAgent({
    keepAlive: true,
    ...(tls.ca !== undefined ? { ca: tlsValue(tls.ca) } : {}),
    ...(tls.cert !== undefined ? { cert: tlsValue(tls.cert) } : {}),
    ...(tls.key !== undefined ? { key: tlsValue(tls.key) } : {}),
    rejectUnauthorized: tls.rejectUnauthorized ?? true,
  });
  const send = (o: TransportRequest) => {
    let payload: Buffer | undefined;
    return new Promise<{ statusCode: number; body: unknown; request: { path: string } }>(
      (resolve, reject) => {
        const url = new URL(o.uri ?? '');
        const limit = Math.min(o.maxAnswerBytes ?? MAX_ANSWER_BYTES, MAX_ANSWER_BYTES);
        const secure = url.protocol === 'https:';
        const headers: Record<string, string> = { ...o.headers };
        if (typeof o.json === 'object' && o.json !== null) {
          const json = JSON.stringify(o.json);
          payload = Buffer.allocUnsafeSlow(Buffer.byteLength(json));
          payload.write(json);
          headers['content-type'] ??= 'application/json';
          headers['content-length'] = String(payload.length);
        }
        const options = {
          method: o.method ?? 'GET',
          headers,
          agent: secure ? https : http,
          ...(o.signal !== undefined ? { signal: o.signal } : {}),
          ...(o.timeout !== undefined ? { timeout: o.timeout } : {}),
        };
        const req = (secure ? httpsRequest : httpRequest)(url, options, (res) => {
          const chunks: Buffer[] = [];
          let received = 0;
          res.on('error', (error) => {
            for (const c of chunks) c.fill(0);
            reject(error);
          });
          const tooLarge = () => {
            for (const c of chunks) c.fill(0);
            chunks.length = 0;
            reject(answerTooLarge(limit));
            req.destroy();
          };
          // A declared length over the limit is refused before a byte is read.
          if (Number(res.headers['content-length'] ?? 0) > limit) return tooLarge();
          res.on('data', (c: Buffer) => {
            if (received > limit) return c.fill(0);
            received += c.length;
            chunks.push(c);
            if (received > limit) tooLarge();
          });
          res.on('end', () => {
            const raw = joinAndWipe(chunks);
            const text = raw.toString('utf8');
            raw.fill(0);
            let body: unknown;
            if (text.length > 0) {
              try {
                body = JSON.parse(text);
              } catch {
                // Proxies and load balancers answer HTML; keep it so the status code still maps.
                body = text;
              }
            }
            resolve({ statusCode: res.statusCode ?? 0, body, request: { path: url.pathname } });
          });
        });
        req.on('timeout', () =>
          req.destroy(Object.assign(new Error('request timed out'), { code: 'ETIMEDOUT' })),
        );
        req.on('error', reject);
        req.end(payload);
      },
    ).finally(() => payload?.fill(0));
  };
  return {
    defaults: () => send,
    close() {
      http.destroy();
      https.destroy();
    },
  };
}

const K8S_JWT_PATH = '/var/run/secrets/kubernetes.io/serviceaccount/token';
/** The largest service account token read (projected tokens are 1–2 KiB). */
const MAX_JWT_BYTES = 64 * 1024;

/**
 * The service account token at `path` (links followed: Kubernetes projects it through symlinks),
 * read under the login's signal. Opened without blocking and refused unless a regular file: a
 * FIFO (or a device) would block the open, or the read, for good, holding a thread of Node's
 * small fs pool per call until fs, DNS lookups and crypto of the whole process stall behind them.
 */
async function readJwt(path: string, signal: AbortSignal): Promise<string> {
  // O_NONBLOCK: opening a FIFO with no writer returns at once (Windows has no such flag, nor FIFOs).
  const file = await open(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  try {
    const st = await file.stat();
    if (!st.isFile()) {
      throw new KeyportError(
        'InvalidArgument',
        'vaultTransit: the Kubernetes service account token path (auth.jwtPath) is not a regular file',
        { provider: 'hcvault' },
      );
    }
    // A token is a few KiB. A path naming some other file (a log, a key) would otherwise be read
    // whole and sent to Vault as the login's JWT.
    if (st.size > MAX_JWT_BYTES) {
      throw new KeyportError(
        'InvalidArgument',
        `vaultTransit: the file at the Kubernetes service account token path (auth.jwtPath) is ${st.size} bytes, more than a token's ${MAX_JWT_BYTES}; nothing was sent`,
        { provider: 'hcvault' },
      );
    }
    return (await file.readFile({ encoding: 'utf8', signal })).trim();
  } finally {
    await file.close();
  }
}

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

function leaseOf(response: unknown): { ttl: number; renewable: boolean } {
  const auth = (response as { auth?: { lease_duration?: unknown; renewable?: unknown } } | undefined)?.auth;
  return { ttl: num(auth?.lease_duration), renewable: auth?.renewable === true };
}

/**
 * A given token, or an AppRole / Kubernetes login. Before a call, a token past
 * `renewAfterFraction` of its lease is renewed (renew-self); one that cannot be renewed any more
 * is replaced by a fresh login. On demand rather than on a timer: no timers keep the process
 * alive and no call starts with a token about to lapse. Concurrent calls share one refresh.
 */
export class TokenManager {
  readonly stats = { logins: 0, renewals: 0 };
  private lease: { at: number; ttl: number; renewable: boolean } | undefined;
  /** The login or renewal in flight, shared by every call that needs the token meanwhile. */
  private readonly refreshing = new Map<'token', SharedRequest<void>>();

  constructor(
    private readonly client: NodeVault.client,
    private readonly auth: VaultAuth,
    private readonly renewAfterFraction = 2 / 3,
  ) {
    if (auth.method === 'token') client.token = auth.token;
  }

  /** Makes sure the client holds a token that will outlive the next call. */
  ensure(signal: AbortSignal): Promise<void> {
    const lease = this.lease;
    const due =
      lease === undefined
        ? this.auth.method !== 'token' || this.auth.renew !== false
        : lease.ttl > 0 && Date.now() - lease.at >= lease.ttl * 1000 * this.renewAfterFraction;
    if (!due) return Promise.resolve();
    return joinSharedRequest(this.refreshing, 'token', (own) => this.refresh(own), signal, abortError);
  }

  private async refresh(signal: AbortSignal): Promise<void> {
    const lease = this.lease;
    if (lease?.renewable && Date.now() - lease.at < lease.ttl * 1000) {
      try {
        const { ttl, renewable } = leaseOf(await this.client.write('auth/token/renew-self', {}, { signal }));
        this.stats.renewals++;
        // A renewal capped by the max TTL returns less than asked; at zero the next refresh logs in.
        this.lease = { at: Date.now(), ttl, renewable: renewable && ttl > 0 };
        return;
      } catch (error) {
        if (this.auth.method === 'token') throw error;
        // Past max TTL or revoked: log in again.
      }
    }
    await this.login(signal);
  }

  private async login(signal: AbortSignal): Promise<void> {
    const auth = this.auth;
    if (auth.method === 'token') {
      let r: { data?: { ttl?: unknown; renewable?: unknown } };
      try {
        r = (await this.client.read('auth/token/lookup-self', { signal })) as typeof r;
      } catch (error) {
        // A token without the `default` policy may not look itself up: use it as it is, unrenewed.
        if (statusOf(error) !== 403) throw error;
        r = {};
      }
      this.lease = { at: Date.now(), ttl: num(r.data?.ttl), renewable: r.data?.renewable === true };
      return;
    }
    // node-vault's generated login commands render paths with mustache, which bundlers that prefer
    // mustache's ESM build break; `write` is the same request.
    // The default mounts are named after the methods.
    const body =
      auth.method === 'approle'
        ? { role_id: auth.roleId, ...(auth.secretId !== undefined ? { secret_id: auth.secretId } : {}) }
        : { role: auth.role, jwt: auth.jwt ?? (await readJwt(auth.jwtPath ?? K8S_JWT_PATH, signal)) };
    const path = `auth/${auth.mount ?? auth.method}/login`;
    const response: unknown = await this.client.write(path, body, { signal });
    const token = (response as { auth?: { client_token?: unknown } }).auth?.client_token;
    if (typeof token !== 'string' || token === '') {
      throw new KeyportError('AccessDenied', `Vault ${auth.method} login returned no token`, {
        provider: 'hcvault',
      });
    }
    this.client.token = token;
    this.stats.logins++;
    this.lease = { at: Date.now(), ...leaseOf(response) };
  }
}

const silent = (): void => {};

/**
 * `<mount>/<op>/<name>` of the transit calls whose request or answer carries a plaintext
 * (encrypt, decrypt, datakey/plaintext and /wrapped), single or batch: their errors keep no server text.
 */
const PLAINTEXT_PATH = /(?:^|\/)(?:encrypt|decrypt|datakey\/[^/]+)\/[^/]+$/;

export class VaultSession {
  /** The token manager, once the client exists (none when no `auth` is configured). */
  tokens: TokenManager | undefined;
  /** host:port as it appears in key URIs. */
  readonly address: string;
  private transport: ReturnType<typeof createTransport> | undefined;
  private built: Promise<NodeVault.client> | undefined;
  /** The client once built (its token is masked out of errors). */
  private current: NodeVault.client | undefined;

  constructor(
    private readonly options: VaultTransitOptions,
    private readonly url: URL,
  ) {
    this.address = url.host;
  }

  /** The client given in the options, or one built on first use; a failed build is retried next call. */
  client(): Promise<NodeVault.client> {
    this.built ??= this.build().catch((e: unknown) => {
      this.built = undefined;
      throw e;
    });
    return this.built;
  }

  private async build(): Promise<NodeVault.client> {
    const o = this.options;
    let client = o.client;
    if (client === undefined) {
      const make = await nodeVault.load();
      this.transport ??= createTransport(o.tls);
      client = make({
        endpoint: `${this.url.protocol}//${this.url.host}`,
        ...(o.namespace !== undefined ? { namespace: o.namespace } : {}),
        'request-promise': this.transport,
        // node-vault logs every request body through `debug` (`DEBUG=node-vault`, or any `DEBUG=*`
        // set for another library): plaintexts, AppRole secret ids and Kubernetes JWTs would reach
        // stderr. Its logging is switched off for the clients keyport builds.
        debug: silent,
      });
      // node-vault falls back to VAULT_TOKEN, VAULT_PREFIX and VAULT_NAMESPACE from the
      // environment when options are absent; explicit configuration wins, always.
      const mutable = client as unknown as { token: string; pathPrefix: string; namespace?: string };
      mutable.token = '';
      mutable.pathPrefix = '';
      if (o.namespace === undefined) delete mutable.namespace;
    }
    const auth = typeof o.auth === 'string' ? { method: 'token' as const, token: o.auth } : o.auth;
    this.tokens = auth === undefined ? undefined : new TokenManager(client, auth, o.renewAfterFraction);
    this.current = client;
    return client;
  }

  /**
   * One request: `body` for writes only. Resolves with the parsed response body. `maxAnswerBytes`
   * tightens the transport's answer bound (node-vault hands its request options to the transport;
   * a user-supplied client ignores it).
   */
  async send<T>(
    signal: AbortSignal,
    method: Method,
    path: string,
    body?: object,
    as?: string,
    maxAnswerBytes?: number,
  ): Promise<T> {
    if (signal.aborted) throw abortError(signal);
    try {
      const vault = await raceAbort(this.client(), signal);
      if (as === undefined && this.tokens !== undefined) await raceAbort(this.tokens.ensure(signal), signal);
      // node-vault sends a request's own X-Vault-Token header instead of the client's token.
      const o = {
        signal,
        ...(as === undefined ? {} : { headers: { 'X-Vault-Token': as } }),
        ...(maxAnswerBytes === undefined ? {} : { maxAnswerBytes }),
      };
      const pending = (
        method === 'write' ? vault.write(path, body ?? {}, o) : vault[method](path, o)
      ) as Promise<T>;
      return this.options.client === undefined ? await pending : await raceAbort(pending, signal);
    } catch (error) {
      if (signal.aborted) throw abortError(signal);
      // Logins and renewals (tokens.ensure) fail through here too, with the same masking.
      maskErrorTokens(error, this.secrets(as));
      if (PLAINTEXT_PATH.test(path)) withholdServerText(error);
      throw error;
    }
  }

  /**
   * What no error may carry: the configured token and login secrets, the token the client holds
   * now (a login's), and the one a request was sent as. A proxy or server echoing one in its
   * error text would otherwise put it into `cause`, and so into logs.
   */
  private secrets(as?: string): string[] {
    const auth = this.options.auth;
    const given =
      typeof auth === 'string'
        ? [auth]
        : auth?.method === 'token'
          ? [auth.token]
          : auth?.method === 'approle'
            ? [auth.secretId]
            : [auth?.jwt];
    const held = (this.current as { token?: unknown } | undefined)?.token;
    return [...given, typeof held === 'string' ? held : undefined, as].filter(
      (s): s is string => typeof s === 'string' && s !== '',
    );
  }

  read<T>(signal: AbortSignal, path: string): Promise<T> {
    return this.send<T>(signal, 'read', path);
  }
  write<T = unknown>(
    signal: AbortSignal,
    path: string,
    body: object = {},
    maxAnswerBytes?: number,
  ): Promise<T> {
    return this.send<T>(signal, 'write', path, body, undefined, maxAnswerBytes);
  }
  /** A write authenticated as `token` rather than this session's token (e.g. a token's revoke-self). */
  writeAs<T = unknown>(token: string, signal: AbortSignal, path: string, body: object = {}): Promise<T> {
    return this.send<T>(signal, 'write', path, body, token);
  }
  /** A read that answers undefined for 404 (missing key, empty mount, missing metadata). */
  async tryRead<T>(signal: AbortSignal, path: string, method: 'read' | 'list' = 'read') {
    try {
      return await this.send<T>(signal, method, path);
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw error;
    }
  }
  async remove(signal: AbortSignal, path: string): Promise<void> {
    await this.send(signal, 'delete', path);
  }

  close(): void {
    this.transport?.close();
  }
}
