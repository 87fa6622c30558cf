/**
 * How the adapter gets and keeps a Vault token: a given token, or an AppRole / Kubernetes
 * login through node-vault. Renewal is on demand: before a call, a token
 * past `renewAfterFraction` of its lease is renewed (renew-self); a token that cannot be
 * renewed any more is replaced by a fresh login. Doing it before the call (not on a timer)
 * leaves no timers behind and never lets a call start with a token about to lapse.
 * Concurrent calls share one login or renewal (single flight).
 */
import { readFile } from 'node:fs/promises';
import { KeyportError } from '@keyport/core';
import type NodeVault from 'node-vault';

export type VaultAuth =
  | {
      readonly method: 'token';
      readonly token: string;
      /** Renew the token before it expires (it must be renewable). Default true. */
      readonly renew?: boolean;
    }
  | {
      readonly method: 'approle';
      readonly roleId: string;
      readonly secretId?: string;
      /** Auth mount path; default `approle`. */
      readonly mount?: string;
    }
  | {
      readonly method: 'kubernetes';
      readonly role: string;
      /** The service account JWT; read from `jwtPath` when absent. */
      readonly jwt?: string;
      /** Default `/var/run/secrets/kubernetes.io/serviceaccount/token`. */
      readonly jwtPath?: string;
      /** Auth mount path; default `kubernetes`. */
      readonly mount?: string;
    };

const K8S_JWT_PATH = '/var/run/secrets/kubernetes.io/serviceaccount/token';

interface LeaseState {
  /** When the lease was obtained or last renewed (ms). */
  readonly at: number;
  /** Lease duration in seconds; 0 means it never expires. */
  readonly ttl: number;
  readonly renewable: boolean;
}

export interface TokenStats {
  logins: number;
  renewals: number;
}

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

function authBlock(response: unknown): { ttl: number; renewable: boolean } {
  const auth = (response as { auth?: { lease_duration?: unknown; renewable?: unknown } } | undefined)?.auth;
  return { ttl: num(auth?.lease_duration), renewable: auth?.renewable === true };
}

export class TokenManager {
  readonly stats: TokenStats = { logins: 0, renewals: 0 };
  private lease: LeaseState | undefined;
  private inflight: Promise<void> | undefined;

  constructor(
    private readonly client: NodeVault.client,
    private readonly auth: VaultAuth,
    /** Renew once this fraction of the lease has passed. */
    private readonly renewAfterFraction = 2 / 3,
  ) {
    if (auth.method === 'token') client.token = auth.token;
  }

  /** Makes sure the client holds a token that will outlive the next call. */
  ensure(signal: AbortSignal): Promise<void> {
    if (!this.needsWork()) return Promise.resolve();
    this.inflight ??= this.refresh(signal).finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  private needsWork(): boolean {
    const lease = this.lease;
    if (lease === undefined) return this.auth.method !== 'token' || this.auth.renew !== false;
    if (lease.ttl === 0) return false;
    return Date.now() - lease.at >= lease.ttl * 1000 * this.renewAfterFraction;
  }

  private async refresh(signal: AbortSignal): Promise<void> {
    const lease = this.lease;
    const expired = lease !== undefined && Date.now() - lease.at >= lease.ttl * 1000;
    if (lease?.renewable && !expired) {
      try {
        const r = await this.client.write('auth/token/renew-self', {}, { signal });
        const { ttl, renewable } = authBlock(r);
        this.stats.renewals++;
        // A renewal capped by the token's max TTL returns less than asked; once nothing is
        // left, the next refresh logs in again.
        this.lease = { at: Date.now(), ttl, renewable: renewable && ttl > 0 };
        return;
      } catch (error) {
        if (this.auth.method === 'token') throw error;
        // Past max TTL or revoked: fall through to a fresh login.
      }
    }
    await this.login(signal);
  }

  private async login(signal: AbortSignal): Promise<void> {
    const auth = this.auth;
    const requestOptions = { signal };
    if (auth.method === 'token') {
      let r: { data?: { ttl?: unknown; renewable?: unknown } };
      try {
        r = (await this.client.read('auth/token/lookup-self', requestOptions)) as typeof r;
      } catch (error) {
        // A token without the `default` policy may not look itself up: use it as it is, unrenewed.
        if ((error as { response?: { statusCode?: number } }).response?.statusCode !== 403) throw error;
        this.lease = { at: Date.now(), ttl: 0, renewable: false };
        return;
      }
      this.lease = { at: Date.now(), ttl: num(r.data?.ttl), renewable: r.data?.renewable === true };
      return;
    }
    // node-vault's generated login commands render their paths with mustache, which bundlers
    // and test runners that prefer the ESM build of mustache break; `write` is the same request.
    let response: unknown;
    if (auth.method === 'approle') {
      response = await this.client.write(
        `auth/${auth.mount ?? 'approle'}/login`,
        { role_id: auth.roleId, ...(auth.secretId !== undefined ? { secret_id: auth.secretId } : {}) },
        requestOptions,
      );
    } else {
      const jwt = auth.jwt ?? (await readFile(auth.jwtPath ?? K8S_JWT_PATH, 'utf8')).trim();
      response = await this.client.write(
        `auth/${auth.mount ?? 'kubernetes'}/login`,
        { role: auth.role, jwt },
        requestOptions,
      );
    }
    const token = (response as { auth?: { client_token?: unknown } }).auth?.client_token;
    if (typeof token !== 'string' || token === '') {
      throw new KeyportError('AccessDenied', `Vault ${auth.method} login returned no token`, {
        provider: 'hcvault',
      });
    }
    this.client.token = token;
    this.stats.logins++;
    this.lease = { at: Date.now(), ...authBlock(response) };
  }
}
