/**
 * One connection to one Vault / OpenBao server: the node-vault client, the token manager,
 * and `call`, through which every request goes (token freshness, abort, no retries).
 * node-vault is loaded and the client built on the first call, not at import: loading it costs
 * more than an app should pay at start-up for a provider it may not call.
 */
import { KeyportError } from '@keyport/core';
import type NodeVault from 'node-vault';
import { TokenManager, type VaultAuth } from './auth.js';
import type { MetadataStoreOptions } from './metadata.js';
import { loadNodeVault } from './sdk.js';
import type { createTransport, VaultTlsOptions } from './transport.js';

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
  /** The token manager, once the client exists (none when no `auth` is configured). */
  tokens: TokenManager | undefined;
  /** host:port as it appears in key URIs. */
  readonly address: string;
  private readonly url: URL;
  /** The adapter's own transport (no `client` given), made with the client on first use. */
  private ownsTransport: ReturnType<typeof createTransport> | undefined;
  private built: Promise<NodeVault.client> | undefined;

  constructor(readonly options: VaultTransitOptions) {
    this.url = new URL(options.endpoint);
    this.address = this.url.host;
  }

  /**
   * The node-vault client: the one given in the options, used as it is, or one built on first
   * use (loading node-vault then). A failed load is not kept: the next call tries again.
   */
  client(): Promise<NodeVault.client> {
    this.built ??= this.build().catch((e: unknown) => {
      this.built = undefined;
      throw e;
    });
    return this.built;
  }

  private async build(): Promise<NodeVault.client> {
    const options = this.options;
    let client: NodeVault.client;
    if (options.client !== undefined) {
      client = options.client;
    } else {
      const [nodeVault, { createTransport }] = await Promise.all([loadNodeVault(), import('./transport.js')]);
      this.ownsTransport ??= createTransport(options.tls);
      client = nodeVault({
        endpoint: `${this.url.protocol}//${this.url.host}`,
        ...(options.namespace !== undefined ? { namespace: options.namespace } : {}),
        'request-promise': this.ownsTransport,
      });
      // node-vault falls back to VAULT_TOKEN, VAULT_PREFIX and VAULT_NAMESPACE from the
      // environment when options are absent; explicit configuration wins here, always.
      const mutable = client as unknown as { token: string; pathPrefix: string; namespace?: string };
      mutable.token = '';
      mutable.pathPrefix = '';
      if (options.namespace === undefined) delete mutable.namespace;
    }
    const auth =
      typeof options.auth === 'string' ? { method: 'token' as const, token: options.auth } : options.auth;
    this.tokens = auth === undefined ? undefined : new TokenManager(client, auth, options.renewAfterFraction);
    return client;
  }

  /**
   * Runs one request. `fn` gets the client and request options carrying the signal; with the adapter's own
   * transport the signal aborts the socket, with a user-supplied client the wait is raced.
   */
  async call<T>(
    signal: AbortSignal,
    fn: (o: RequestOptions, vault: NodeVault.client) => Promise<T>,
  ): Promise<T> {
    if (signal.aborted) throw abortError(signal);
    const vault = await raceAbort(this.client(), signal);
    if (this.tokens !== undefined) await raceAbort(this.tokens.ensure(signal), signal);
    const pending = fn({ signal }, vault);
    try {
      return this.options.client === undefined ? await pending : await raceAbort(pending, signal);
    } catch (error) {
      if (signal.aborted) throw abortError(signal);
      throw error;
    }
  }

  close(): void {
    this.ownsTransport?.close();
  }
}
