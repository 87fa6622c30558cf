/**
 * Transit key management: create, describe, list, rotate, policies, soft-delete, trim, delete,
 * and what a driver instance remembers about keys between calls: facts that never change (type,
 * derivation), keys waiting for imported material, and the labels, description and usage transit
 * cannot carry (in a KV v2 store when configured, else only as this process saw them).
 */
import { randomInt } from 'node:crypto';
import {
  type CreateKeyRequest,
  type KeyInfo,
  KeyportError,
  type KeySpec,
  keyportError,
  oneAtATime as oneAtATimeIn,
  type RotationPolicy,
  USAGES_BY_SPEC,
  unmodeledKeyError,
} from '@keyport/core';
import { PROVIDER_NAME } from './errors.js';
import type { MetadataStoreOptions } from './options.js';
import { abortError, raceAbort, type VaultSession } from './rpc.js';
import {
  extraFields,
  type KeyInfoExtras,
  TRANSIT_KEY_TYPES,
  type TransitKeyData,
  type TransitKeyType,
  TYPE_BY_SPEC,
  toKeyInfo,
} from './specs.js';
import { type KeyLocation, keyId, keyPath, keyUriOf, type ResolvedKey, resolveKey, URI_NAME } from './uri.js';

/**
 * What never changes for a key name on a server: its type, and whether it is derived (derived
 * keys need `context` besides `associated_data`). Forgotten when the key is deleted.
 */
export class KeyFacts {
  private readonly types = new Map<string, string>();
  readonly derived = new Set<string>();

  async typeOf(s: VaultSession, key: ResolvedKey, signal: AbortSignal): Promise<string> {
    return this.types.get(keyId(key)) ?? this.remember(key, await readKey(s, key, signal)).type;
  }
  remember(key: ResolvedKey, data: TransitKeyData): TransitKeyData {
    this.types.set(keyId(key), data.type);
    if (data.derived === true) this.derived.add(keyId(key));
    return data;
  }
  forget(key: ResolvedKey): void {
    this.types.delete(keyId(key));
    this.derived.delete(keyId(key));
  }
}

/** One driver instance's server and memories, shared by the key, crypto and import calls. */
export interface Transit {
  readonly s: VaultSession;
  readonly facts: KeyFacts;
  /** The mount keys created by bare name, and listed, live in. */
  readonly defaultMount: string;
  readonly store: MetadataStore | undefined;
  /** Keys announced with createKey({ external: true }) and not imported yet (this process only). */
  readonly pending: Map<string, KeySpec>;
  /** Without a store: the extras given at creation, as this process saw them. */
  readonly extrasSeen: Map<string, KeyInfoExtras>;
  /** The creation in flight per key name: creations of one name run one after another. */
  readonly creating: Map<string, Promise<void>>;
}

/**
 * Runs `fn` once every earlier creation of the same key in this instance has settled, so the
 * second of two concurrent creations sees the first one's key (AlreadyExists). A caller that
 * gives up while waiting leaves without running `fn`; the callers after it still wait their turn.
 */
export function oneAtATime<T>(t: Transit, key: ResolvedKey, signal: AbortSignal, fn: () => Promise<T>) {
  return oneAtATimeIn(t.creating, keyId(key), signal, abortError, fn);
}

/** One key's calls: the instance's server and memories, and the key. */
export type KeyTarget = Transit & { readonly key: ResolvedKey };

/** A create request's `name` may be a bare name (default mount) or a full key URI. */
export function keyForName(t: Transit, name: string): ResolvedKey {
  if (typeof name !== 'string') throw new KeyportError('InvalidArgument', 'a key name must be a string');
  const address = t.s.address;
  const uri = name.startsWith('hcvault://') ? name : keyUriOf({ address, mount: t.defaultMount, name });
  return resolveKey({ uri }, address);
}

async function extras(t: Transit, key: ResolvedKey, signal: AbortSignal): Promise<KeyInfoExtras> {
  return (t.store === undefined ? t.extrasSeen.get(keyId(key)) : await t.store.read(key, signal)) ?? {};
}

/** The key as it is now; a transit type keyport has no spec for is refused. */
export async function describe(t: Transit, key: ResolvedKey, signal: AbortSignal): Promise<KeyInfo> {
  const [data, extra] = await Promise.all([readKey(t.s, key, signal), extras(t, key, signal)]);
  const info = toKeyInfo(key, t.facts.remember(key, data), extra);
  if (info !== undefined) return info;
  throw unmodeledKeyError(`transit ${data.type} keys`, { provider: PROVIDER_NAME, keyUri: key.uri });
}

function pendingInfo(key: ResolvedKey, spec: KeySpec, extra: KeyInfoExtras): KeyInfo {
  return {
    uri: keyUriOf(key),
    spec,
    usage: extra.usage ?? 'encrypt_decrypt',
    state: 'pending_import',
    ...extraFields(extra),
    origin: 'external',
  };
}

export async function describeKey(t: Transit, key: ResolvedKey, signal: AbortSignal): Promise<KeyInfo> {
  const spec = t.pending.get(keyId(key));
  return spec === undefined ? describe(t, key, signal) : pendingInfo(key, spec, await extras(t, key, signal));
}

/**
 * Creates a key of a keyport spec; an external one exists only in this process (transit has no
 * key without material) until its material is imported.
 */
export async function createKey(t: Transit, req: CreateKeyRequest, signal: AbortSignal): Promise<KeyInfo> {
  if (t.store === undefined && (Object.keys(req.labels ?? {}).length > 0 || req.description !== undefined)) {
    // Transit keys carry no user metadata; dropping labels silently would lose data.
    const why = 'transit keys cannot carry labels or a description: configure metadataStore to keep them';
    throw new KeyportError('InvalidArgument', why);
  }
  const key = keyForName(t, req.name);
  const extra: KeyInfoExtras = {
    usage: req.usage ?? USAGES_BY_SPEC[req.spec][0],
    ...(req.labels !== undefined ? { labels: req.labels } : {}),
    ...(req.description !== undefined ? { description: req.description } : {}),
  };
  await oneAtATime(t, key, signal, async () => {
    if (req.external !== true) {
      const autoRotatePeriodSeconds = rotationSeconds(req.rotation);
      await createTransitKey(t.s, key, TYPE_BY_SPEC[req.spec], { autoRotatePeriodSeconds }, signal);
    } else if (t.pending.has(keyId(key)) || (await tryReadKey(t.s, key, signal)) !== undefined) {
      throw alreadyExists(key);
    } else {
      t.pending.set(keyId(key), req.spec);
    }
    t.extrasSeen.set(keyId(key), extra);
    await t.store?.write(key, extra, signal);
  });
  return req.external === true ? pendingInfo(key, req.spec, extra) : describe(t, key, signal);
}

/** Keys of the default mount whose type core can name and whose name a key URI can carry. */
export async function* listKeys(t: Transit, signal: AbortSignal): AsyncIterable<KeyInfo> {
  // LIST on an empty mount answers 404.
  const names = await t.s.tryRead<{ data?: { keys?: string[] } }>(signal, `${t.defaultMount}/keys`, 'list');
  for (const name of names?.data?.keys ?? []) {
    if (!URI_NAME.test(name)) continue; // transit accepts names keyport cannot address
    const key = keyForName(t, name);
    const data = await tryReadKey(t.s, key, signal);
    if (data === undefined) continue; // deleted while listing
    const info = toKeyInfo(key, data, await extras(t, key, signal));
    if (info !== undefined) yield info;
  }
}

export async function readKey(s: VaultSession, key: KeyLocation, signal: AbortSignal) {
  return (await s.read<{ data: TransitKeyData }>(signal, keyPath(key))).data;
}

/** The key's data, or undefined when it does not exist. */
export async function tryReadKey(s: VaultSession, key: KeyLocation, signal: AbortSignal) {
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

/**
 * Transit's create is an upsert: on a taken name it answers 200 with the key that is there (the
 * "already existed" warning in its source is never sent: the backend reports every key as new).
 * So the key is created with a marker, an `auto_rotate_period` of a century plus a random number
 * of seconds that no other creator can choose: the answer carries the marker only if this request
 * made the key, and the marker then gives way to the period asked for (`<m>/keys/<k>/config`).
 */
const MARKER_BASE_SECONDS = 200 * 365 * 86_400; // above any period keyport sets (at most 36,500 days)
/** The longest auto-rotation period keyport sets: core's limit, 36,500 days. */
const MAX_PERIOD_SECONDS = 36_500 * 86_400;
const MARKER_RESET_MS = 10_000;

/** Creates a transit key; AlreadyExists when the name is taken, also by a concurrent creator elsewhere. */
export async function createTransitKey(
  s: VaultSession,
  key: ResolvedKey,
  type: TransitKeyType,
  opts: TransitKeyOptions,
  signal: AbortSignal,
) {
  const period = opts?.autoRotatePeriodSeconds ?? 0;
  // Checked before anything is made: a period the server refuses would leave the key behind.
  if (
    !(TRANSIT_KEY_TYPES as readonly unknown[]).includes(type) ||
    !Number.isSafeInteger(period) ||
    (period !== 0 && (period < 3_600 || period > MAX_PERIOD_SECONDS)) ||
    (opts?.derived !== undefined && typeof opts.derived !== 'boolean')
  ) {
    const why = `the type must be one of ${TRANSIT_KEY_TYPES.join(', ')}; autoRotatePeriodSeconds 0 or whole seconds from one hour to 36,500 days; derived a boolean`;
    throw new KeyportError('InvalidArgument', why, { keyUri: key.uri });
  }
  if ((await tryReadKey(s, key, signal)) !== undefined) throw alreadyExists(key);
  const marker = MARKER_BASE_SECONDS + randomInt(2 ** 30);
  const created = await s.write<{ data?: TransitKeyData } | undefined>(signal, keyPath(key), {
    type,
    exportable: false,
    allow_plaintext_backup: false,
    ...(type === 'hmac' ? { key_size: 32 } : {}),
    ...(opts?.derived === true ? { derived: true } : {}),
    auto_rotate_period: `${marker}s`,
  });
  // A server that answers the create without the key (older Vault versions: 204): read it.
  const made = created?.data ?? (await readKey(s, key, signal));
  if (made.auto_rotate_period !== marker) throw alreadyExists(key);
  // The key is this caller's: the marker is replaced even when the caller stops waiting now.
  const asked = { auto_rotate_period: `${period}s` };
  await raceAbort(configure(s, key, asked, AbortSignal.timeout(MARKER_RESET_MS)), signal);
  return readKey(s, key, signal);
}

export function rotationSeconds(policy: RotationPolicy | undefined): number {
  // Transit rotates a period after the last rotation and takes no date: a nextRotationAt it
  // cannot honour is refused, never dropped.
  if (policy?.nextRotationAt !== undefined) {
    throw keyportError(
      'Unsupported',
      'nextRotationAt: Vault transit rotates a period after the last rotation and takes no rotation date',
      { provider: PROVIDER_NAME, capability: 'rotationSchedule' },
    );
  }
  if (policy?.periodDays === undefined) return 0;
  if (!(typeof policy.periodDays === 'number' && policy.periodDays > 0 && policy.periodDays <= 36_500)) {
    throw new KeyportError('InvalidArgument', 'rotation period must be a number of days in (0, 36500]');
  }
  const seconds = Math.round(policy.periodDays * 86_400);
  if (seconds < 3_600)
    throw new KeyportError('InvalidArgument', 'transit auto-rotation periods are at least one hour');
  return seconds;
}

export async function configure(s: VaultSession, key: KeyLocation, body: object, signal: AbortSignal) {
  await s.write(signal, keyPath(key, '/config'), body);
}

/** OpenBao soft-delete (disable) and soft-delete-restore (enable). */
export async function softDelete(s: VaultSession, key: KeyLocation, on: boolean, signal: AbortSignal) {
  if (on) await s.remove(signal, keyPath(key, '/soft-delete'));
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
  const floor = (current: number) => Math.max(current, v + 1);
  const body = {
    min_decryption_version: floor(data.min_decryption_version),
    min_encryption_version: floor(data.min_encryption_version),
  };
  await configure(s, key, body, signal);
  await s.write(signal, keyPath(key, '/trim'), { min_available_version: v + 1 });
}

/** Deletes a key at once (transit has no waiting period): sets deletion_allowed, then DELETE. */
export async function deleteKey(t: Transit, key: ResolvedKey, signal: AbortSignal): Promise<void> {
  await configure(t.s, key, { deletion_allowed: true }, signal);
  await t.s.remove(signal, keyPath(key));
  t.facts.forget(key);
  t.extrasSeen.delete(keyId(key));
  await t.store?.remove(key, signal);
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
