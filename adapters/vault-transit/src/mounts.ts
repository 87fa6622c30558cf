/**
 * Which mounts a key URI may send transit requests to. A key URI names its mount, and the request
 * path is `<mount>/<op>/<name>`: on a mount that is not a transit engine the same request means
 * something else (`cubbyhole/decrypt/x` or a KV v1 `secret/decrypt/x` stores the request body as
 * a secret). Key URIs also come from messages (`anyKeyOf('hcvault')` discovery, a migration's
 * input), so a message could otherwise choose a write on the caller's server with the caller's
 * token. A mount is used once the server has said it is a transit engine mounted exactly there
 * (`sys/internal/ui/mounts/<mount>`, which any token with a capability under the mount may read,
 * as Vault's own CLI does for KV); the configured mount and `transitMounts` are taken as given.
 */
import { joinSharedRequest, KeyportError, type SharedRequest } from '@keyport/core';
import { PROVIDER_NAME } from './errors.js';
import { abortError, type VaultSession } from './rpc.js';
import type { ResolvedKey } from './uri.js';

export class TransitMounts {
  /** Mounts known to be transit: given in the options, or confirmed by the server. */
  private readonly transit: Set<string>;
  private readonly asking = new Map<string, SharedRequest<void>>();

  constructor(
    private readonly s: VaultSession,
    given: readonly string[],
  ) {
    this.transit = new Set(given);
  }

  /** Resolves once `key`'s mount is known to be a transit engine; refuses any other mount. */
  check(key: ResolvedKey, signal: AbortSignal): Promise<void> {
    if (this.transit.has(key.mount)) return Promise.resolve();
    return joinSharedRequest(this.asking, key.mount, (own) => this.ask(key, own), signal, abortError);
  }

  private async ask(key: ResolvedKey, signal: AbortSignal): Promise<void> {
    const answer = await this.s.read<{ data?: { type?: unknown; path?: unknown } }>(
      signal,
      `sys/internal/ui/mounts/${key.mount}`,
    );
    const { type, path } = answer?.data ?? {};
    // The answer names the mount holding the path: a deeper path inside another engine's mount
    // (`secret/a` in the KV mount `secret/`) answers that mount, which is not the key's.
    if (type === 'transit' && path === `${key.mount}/`) {
      this.transit.add(key.mount);
      return;
    }
    const what =
      typeof type === 'string' && typeof path === 'string' && /^[\x20-\x7e]{1,200}$/.test(`${type}${path}`)
        ? `the server has a ${type} engine at ${path}`
        : 'the server does not describe it as a transit engine';
    throw new KeyportError(
      'InvalidArgument',
      `${key.mount}/ is not a transit mount (${what}): keyport sends transit requests to transit mounts only; name a mount in transitMounts if the server cannot be asked`,
      { provider: PROVIDER_NAME, keyUri: key.uri, retryable: false },
    );
  }
}
