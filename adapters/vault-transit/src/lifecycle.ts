/** Transit key management: create, describe, list, rotate, policies, disable, trim, delete. */
import { type CreateKeyRequest, KeyportError, type KeyUsage, type RotationPolicy } from '@keyport/core';
import { type KeyFacts, readKey } from './crypto.js';
import { type TransitKeyData, type TransitKeyType, USAGES } from './key-types.js';
import { keyPath, type ResolvedKey } from './locate.js';
import type { VaultSession } from './session.js';

function statusOf(error: unknown): number | undefined {
  return (error as { response?: { statusCode?: number } }).response?.statusCode;
}

/** The key's data, or undefined when it does not exist. */
export async function tryReadKey(
  session: VaultSession,
  key: ResolvedKey,
  signal: AbortSignal,
): Promise<TransitKeyData | undefined> {
  try {
    return await readKey(session, key, signal);
  } catch (error) {
    if (statusOf(error) === 404) return undefined;
    throw error;
  }
}

export function checkCreateRequest(req: CreateKeyRequest, canStoreMetadata: boolean): KeyUsage {
  if (!canStoreMetadata && (Object.keys(req.labels ?? {}).length > 0 || req.description !== undefined)) {
    // Transit keys carry no user metadata; dropping labels silently would lose data.
    throw new KeyportError(
      'InvalidArgument',
      'transit keys cannot carry labels or a description: configure metadataStore to keep them',
    );
  }
  const usage = req.usage ?? (USAGES[req.spec][0] as KeyUsage);
  if (!USAGES[req.spec].includes(usage)) {
    throw new KeyportError('InvalidArgument', `${req.spec} keys cannot be used for ${usage}`);
  }
  return usage;
}

export interface TransitKeyOptions {
  readonly derived?: boolean;
  /** Seconds; 0 turns auto-rotation off. Vault's minimum is one hour. */
  readonly autoRotatePeriodSeconds?: number;
}

/** Creates a transit key; AlreadyExists when the name is taken (transit itself would answer 200). */
export async function createTransitKey(
  session: VaultSession,
  key: ResolvedKey,
  type: TransitKeyType,
  opts: TransitKeyOptions,
  signal: AbortSignal,
): Promise<TransitKeyData> {
  if ((await tryReadKey(session, key, signal)) !== undefined) {
    throw new KeyportError('AlreadyExists', 'a transit key with this name exists', { keyUri: key.uri });
  }
  const body: Record<string, unknown> = {
    type,
    exportable: false,
    allow_plaintext_backup: false,
    ...(type === 'hmac' ? { key_size: 32 } : {}),
    ...(opts.derived === true ? { derived: true } : {}),
    ...(opts.autoRotatePeriodSeconds ? { auto_rotate_period: `${opts.autoRotatePeriodSeconds}s` } : {}),
  };
  await session.call(signal, (o, vault) => vault.write(keyPath(key), body, o));
  return readKey(session, key, signal);
}

export function rotationSeconds(policy: RotationPolicy | undefined): number {
  if (policy?.periodDays === undefined) return 0;
  if (!(policy.periodDays > 0)) throw new KeyportError('InvalidArgument', 'rotation period must be positive');
  const seconds = Math.round(policy.periodDays * 86_400);
  if (seconds < 3_600)
    throw new KeyportError('InvalidArgument', 'transit auto-rotation periods are at least one hour');
  return seconds;
}

export async function configure(
  session: VaultSession,
  key: ResolvedKey,
  body: Record<string, unknown>,
  signal: AbortSignal,
): Promise<void> {
  await session.call(signal, (o, vault) => vault.write(keyPath(key, '/config'), body, o));
}

export async function rotate(session: VaultSession, key: ResolvedKey, signal: AbortSignal): Promise<void> {
  await session.call(signal, (o, vault) => vault.write(keyPath(key, '/rotate'), {}, o));
}

/** OpenBao soft-delete (disable) and soft-delete-restore (enable). */
export async function setSoftDeleted(
  session: VaultSession,
  key: ResolvedKey,
  deleted: boolean,
  signal: AbortSignal,
): Promise<void> {
  await session.call(signal, (o, vault) =>
    deleted
      ? vault.delete(keyPath(key, '/soft-delete'), o)
      : vault.write(keyPath(key, '/soft-delete-restore'), {}, o),
  );
}

/**
 * Destroys one version with `trim`. Trim removes every version below a bound, so only the
 * oldest remaining version can be destroyed on its own; the primary never can. Destroying v
 * implies v can no longer decrypt or encrypt, so min_decryption_version and
 * min_encryption_version are raised past v first (trim requires it).
 */
export async function destroyVersion(
  session: VaultSession,
  key: ResolvedKey,
  signal: AbortSignal,
): Promise<void> {
  if (key.version === undefined)
    throw new KeyportError('InvalidArgument', 'destroyKeyVersion needs a version', { keyUri: key.uri });
  const v = Number(key.version);
  const data = await readKey(session, key, signal);
  const oldest = Math.max(data.min_available_version, 1);
  if (v > data.latest_version) throw new KeyportError('NotFound', 'no such key version', { keyUri: key.uri });
  if (v < oldest) return; // already destroyed
  if (v === data.latest_version) {
    throw new KeyportError('KeyStateConflict', 'the primary version cannot be destroyed; rotate first', {
      keyUri: key.uri,
    });
  }
  if (v > oldest) {
    throw new KeyportError(
      'KeyStateConflict',
      `transit destroys versions oldest first: destroy version ${oldest} first`,
      {
        keyUri: key.uri,
      },
    );
  }
  await configure(
    session,
    key,
    {
      min_decryption_version: Math.max(data.min_decryption_version, v + 1),
      min_encryption_version: Math.max(data.min_encryption_version, v + 1),
    },
    signal,
  );
  await session.call(signal, (o, vault) =>
    vault.write(keyPath(key, '/trim'), { min_available_version: v + 1 }, o),
  );
}

/** Deletes a key at once (transit has no waiting period): sets deletion_allowed, then DELETE. */
export async function deleteKey(
  session: VaultSession,
  facts: KeyFacts,
  key: ResolvedKey,
  signal: AbortSignal,
): Promise<void> {
  await configure(session, key, { deletion_allowed: true }, signal);
  await session.call(signal, (o, vault) => vault.delete(keyPath(key), o));
  facts.forget(key);
}

export async function* listKeyNames(
  session: VaultSession,
  mount: string,
  signal: AbortSignal,
): AsyncIterable<string> {
  let names: string[];
  try {
    const r = (await session.call(signal, (o, vault) => vault.list(`${mount}/keys`, o))) as {
      data?: { keys?: string[] };
    };
    names = r.data?.keys ?? [];
  } catch (error) {
    // LIST on an empty mount answers 404.
    if (statusOf(error) === 404) return;
    throw error;
  }
  yield* names;
}
