/**
 * One connection to one Vault / OpenBao server: the node-vault client, the token manager,
 * and `call`, through which every request goes (token freshness, abort, no retries).
 */
import { KeyportError } from '@keyport/core';
import NodeVault from 'node-vault';
import { TokenManager, type VaultAuth } from './auth.js';
import type { MetadataStoreOptions } from './metadata.js';
import { createTransport, type VaultTlsOptions } from './transport.js';

export interface VaultTransitOptions {
  /** `http(s)://host:port` of the server. Key URIs name the same host:port. */
  readonly endpoint: string;
  /** How to authenticate. A bare string is a token. */
  readonly auth?: VaultAuth | string;
  /** Vault Enterprise namespace (sent as X-Vault-Namespace). */
  readonly namespace?: string;
  /** Transit mount used when a key is created by name; default `transit`. */
  readonly mount?: string;
  /**
   * `openbao` unlocks OpenBao-only features: disable/enable through transit soft-delete.
   * Default `vault` (the common subset).
   */
  readonly flavor?: 'vault' | 'openbao';
  readonly tls?: VaultTlsOptions;
  /**
   * An already-built node-vault client. It must already hold a token (or pass `auth`).
   * Its transport cannot take an AbortSignal, so an aborted call stops waiting at once but the
   * HTTP request itself runs to completion; build from options to get real cancellation.
   */
  readonly client?: NodeVault.client;
  /**
   * A KV v2 mount where keyport keeps labels, description and usage of transit keys (transit
   * has no place for them). Without it, creating a key with labels is refused.
   */
  readonly metadataStore?: MetadataStoreOptions;
  /** Renew the token once this fraction of its lease has passed; default 2/3. */
  readonly renewAfterFraction?: number;
}

export interface RequestOptions {
  readonly signal: AbortSignal;
}

function abortError(signal: AbortSignal): KeyportError {
  const reason: unknown = signal.reason;
  const timedOut = reason instanceof Error && reason.name === 'TimeoutError';
  return new KeyportError(
    timedOut ? 'Timeout' : 'Aborted',
    timedOut ? 'the Vault call timed out' : 'the Vault call was aborted',
    {
      provider: 'hcvault',
    },
  );
}

/** Resolves like `promise` but rejects as soon as `signal` aborts. */
function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(abortError(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

export class VaultSession {
  readonly client: NodeVault.client;
  readonly tokens: TokenManager | undefined;
  /** host:port as it appears in key URIs. */
  readonly address: string;
  private readonly ownsTransport: { close(): void } | undefined;

  constructor(readonly options: VaultTransitOptions) {
    const url = new URL(options.endpoint);
    this.address = url.host;
    if (options.client !== undefined) {
      this.client = options.client;
      this.ownsTransport = undefined;
    } else {
      const transport = createTransport(options.tls);
      this.ownsTransport = transport;
      this.client = NodeVault({
        endpoint: `${url.protocol}//${url.host}`,
        ...(options.namespace !== undefined ? { namespace: options.namespace } : {}),
        'request-promise': transport,
      });
      // node-vault falls back to VAULT_TOKEN, VAULT_PREFIX and VAULT_NAMESPACE from the
      // environment when options are absent; explicit configuration wins here, always.
      const mutable = this.client as unknown as { token: string; pathPrefix: string; namespace?: string };
      mutable.token = '';
      mutable.pathPrefix = '';
      if (options.namespace === undefined) delete mutable.namespace;
    }
    const auth =
      typeof options.auth === 'string' ? { method: 'token' as const, token: options.auth } : options.auth;
    this.tokens =
      auth === undefined ? undefined : new TokenManager(this.client, auth, options.renewAfterFraction);
  }

  /**
   * Runs one request. `fn` gets request options carrying the signal; with the adapter's own
   * transport the signal aborts the socket, with a user-supplied client the wait is raced.
   */
  async call<T>(signal: AbortSignal, fn: (o: RequestOptions) => Promise<T>): Promise<T> {
    if (signal.aborted) throw abortError(signal);
    if (this.tokens !== undefined) await raceAbort(this.tokens.ensure(signal), signal);
    const pending = fn({ signal });
    try {
      return this.ownsTransport !== undefined ? await pending : await raceAbort(pending, signal);
    } catch (error) {
      if (signal.aborted) throw abortError(signal);
      throw error;
    }
  }

  close(): void {
    this.ownsTransport?.close();
  }
}
