/**
 * Grant expiry for providers whose grants never expire on their own (AWS KMS): the driver
 * stores the expiry with the grant (declared `grantExpiry: 'swept'`), and this sweep — one
 * implementation for every such driver — revokes the grants whose expiry has passed. Run it on a
 * schedule; each listing and revocation is an ordinary call (policy, audit).
 */
import type { Grant, KeyLike } from './types.js';

export interface SweptGrant {
  readonly keyUri: string;
  readonly grantId: string;
  readonly name?: string;
  readonly expiresAt: Date;
}

export interface GrantCalls {
  listGrants(key: KeyLike, o?: { signal?: AbortSignal }): AsyncIterable<Grant>;
  revokeGrant(key: KeyLike, grantId: string, o?: { signal?: AbortSignal }): Promise<void>;
}

/** Revokes every grant on `keys` whose expiry is at or before `now`; returns what it revoked. */
export async function sweepExpiredGrants(
  calls: GrantCalls,
  keys: readonly KeyLike[],
  now: Date,
  signal: AbortSignal | undefined,
): Promise<SweptGrant[]> {
  const o = signal === undefined ? {} : { signal };
  const swept: SweptGrant[] = [];
  for (const key of keys) {
    const expired: Grant[] = [];
    for await (const grant of calls.listGrants(key, o)) {
      if (grant.expiresAt !== undefined && grant.expiresAt.getTime() <= now.getTime()) expired.push(grant);
    }
    for (const grant of expired) {
      await calls.revokeGrant(key, grant.id, o);
      swept.push({
        keyUri: grant.keyUri,
        grantId: grant.id,
        expiresAt: grant.expiresAt as Date,
        ...(grant.name !== undefined ? { name: grant.name } : {}),
      });
    }
  }
  return swept;
}
