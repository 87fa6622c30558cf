/**
 * Transit key management: create, read, list, rotate, policies, soft-delete, trim, delete, and
 * the KV v2 store for what transit keys cannot carry (labels, description, usage).
 */
import { KeyportError, type RotationPolicy } from '@keyport/core';
import type { MetadataStoreOptions } from './options.js';
import type { VaultSession } from './rpc.js';
import type { KeyInfoExtras, TransitKeyData, TransitKeyType } from './specs.js';
import { type KeyLocation, keyPath, type ResolvedKey } from './uri.js';

export async function readKey(
  s: VaultSession,
  key: KeyLocation,
  signal: AbortSignal,
): Promise<TransitKeyData> {
  return (await s.read<{ data: TransitKeyData }>(signal, keyPath(key))).data;
}

/** The key's data, or undefined when it does not exist. */
export async function tryReadKey(
  s: VaultSession,
  key: KeyLocation,
  signal: AbortSignal,
): Promise<TransitKeyData | undefined> {
  return (await s.tryRead<{ data: TransitKeyData }>(signal, keyPath(key)))?.data;
}

export interface TransitKeyOptions {
  readonly derived?: boolean;
  /** Seconds; 0 turns auto-rotation off. Vault's minimum is one hour. */
  readonly autoRotatePeriodSeconds?: number;
}

export function alreadyExists(key: ResolvedKey): KeyportError {
  return new KeyportError('AlreadyExists', 'a transit key with this name exists', { keyUri: key.uri });
}

/** Creates a transit key; AlreadyExists when the name is taken (transit itself would answer 200). */
export async function createTransitKey(
  s: VaultSession,
  key: ResolvedKey,
  type: TransitKeyType,
  opts: TransitKeyOptions,
  signal: AbortSignal,
): Promise<TransitKeyData> {
  if ((await tryReadKey(s, key, signal)) !== undefined) throw alreadyExists(key);
  await s.write(signal, keyPath(key), {
    type,
    exportable: false,
    allow_plaintext_backup: false,
    ...(type === 'hmac' ? { key_size: 32 } : {}),
    ...(opts.derived === true ? { derived: true } : {}),
    ...(opts.autoRotatePeriodSeconds ? { auto_rotate_period: `${opts.autoRotatePeriodSeconds}s` } : {}),
  });
  return readKey(s, key, signal);
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
  s: VaultSession,
  key: KeyLocation,
  body: object,
  signal: AbortSignal,
): Promise<void> {
  await s.write(signal, keyPath(key, '/config'), body);
}

/** OpenBao soft-delete (disable) and soft-delete-restore (enable). */
export async function setSoftDeleted(
  s: VaultSession,
  key: KeyLocation,
  deleted: boolean,
  signal: AbortSignal,
): Promise<void> {
  if (deleted) await s.remove(signal, keyPath(key, '/soft-delete'));
  else await s.write(signal, keyPath(key, '/soft-delete-restore'));
}

/**
 * Destroys one version with `trim`. Trim removes every version below a bound, so only the
 * oldest remaining version can be destroyed on its own, never the primary; trim also needs
 * min_decryption_version and min_encryption_version raised past it first.
 */
export async function destroyVersion(s: VaultSession, key: ResolvedKey, signal: AbortSignal): Promise<void> {
  const fail = (code: 'InvalidArgument' | 'NotFound' | 'KeyStateConflict', why: string): never => {
    throw new KeyportError(code, why, { keyUri: key.uri });
  };
  if (key.version === undefined) fail('InvalidArgument', 'destroyKeyVersion needs a version');
  const v = Number(key.version);
  const data = await readKey(s, key, signal);
  const oldest = Math.max(data.min_available_version, 1);
  if (v > data.latest_version) fail('NotFound', 'no such key version');
  if (v < oldest) return; // already destroyed
  if (v === data.latest_version)
    fail('KeyStateConflict', 'the primary version cannot be destroyed; rotate first');
  if (v > oldest)
    fail('KeyStateConflict', `transit destroys versions oldest first: destroy version ${oldest} first`);
  await configure(
    s,
    key,
    {
      min_decryption_version: Math.max(data.min_decryption_version, v + 1),
      min_encryption_version: Math.max(data.min_encryption_version, v + 1),
    },
    signal,
  );
  await s.write(signal, keyPath(key, '/trim'), { min_available_version: v + 1 });
}

/** Deletes a key at once (transit has no waiting period): sets deletion_allowed, then DELETE. */
export async function deleteKey(s: VaultSession, key: KeyLocation, signal: AbortSignal): Promise<void> {
  await configure(s, key, { deletion_allowed: true }, signal);
  await s.remove(signal, keyPath(key));
}

/** The key names of a mount (LIST on an empty mount answers 404). */
export async function listKeyNames(s: VaultSession, mount: string, signal: AbortSignal): Promise<string[]> {
  return (await s.tryRead<{ data?: { keys?: string[] } }>(signal, `${mount}/keys`, 'list'))?.data?.keys ?? [];
}

/** Key metadata kept in a KV v2 mount at `<kvMount>/data/<prefix>/<transit mount>/<key name>`. */
export class MetadataStore {
  constructor(
    private readonly s: VaultSession,
    private readonly options: MetadataStoreOptions,
  ) {}

  private path(kind: 'data' | 'metadata', key: KeyLocation): string {
    return `${this.options.kvMount}/${kind}/${this.options.prefix ?? 'keyport/keys'}/${key.mount}/${key.name}`;
  }
  async read(key: KeyLocation, signal: AbortSignal): Promise<KeyInfoExtras | undefined> {
    return (await this.s.tryRead<{ data?: { data?: KeyInfoExtras } }>(signal, this.path('data', key)))?.data
      ?.data;
  }
  async write(key: KeyLocation, meta: KeyInfoExtras, signal: AbortSignal): Promise<void> {
    await this.s.write(signal, this.path('data', key), { data: meta });
  }
  /** Removes every version of the key's metadata (after the key itself is deleted). */
  async remove(key: KeyLocation, signal: AbortSignal): Promise<void> {
    await this.s.remove(signal, this.path('metadata', key));
  }
}
