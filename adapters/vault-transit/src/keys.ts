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
  quote,
  type RotationPolicy,
  type UnmodeledKey,
  USAGES_BY_SPEC,
  unmodeledKeyError,
} from '@keyport/core';
import { malformedAnswer, PROVIDER_NAME } from './errors.js';
import type { TransitMounts } from './mounts.js';
import type { MetadataStoreOptions } from './options.js';
import { abortError, raceAbort, type VaultSession } from './rpc.js';
import {
  CREATION_MARKER_SECONDS,
  carriesCreationMarker,
  extraFields,
  type KeyInfoExtras,
  TRANSIT_KEY_TYPES,
  type TransitKeyData,
  type TransitKeyType,
  TYPE_BY_SPEC,
  toKeyInfo,
} from './specs.js';
import {
  type KeyLocation,
  keyId,
  keyPath,
  keyUriOf,
  listedKeyUri,
  type ResolvedKey,
  resolveKey,
  TRANSIT_NAME,
  TRANSIT_NAME_RULE,
} from './uri.js';

/**
 * What never changes for a key name on a server: its type, and whether it is derived (derived
 * keys need `context` besides `associated_data`). Forgotten when the key is deleted or created.
 */
export class KeyFacts {
  private readonly types = new Map<string, string>();
  readonly derived = new Set<string>();

  async typeOf(s: VaultSession, key: ResolvedKey, signal: AbortSignal): Promise<string> {
    return this.types.get(keyId(key)) ?? this.remember(key, await readKey(s, key, signal)).type;
  }
  /**
   * A read of a key whose type this instance knows and which answers another type is refused:
   * the calls made since used the type remembered (sign parameters, MAC refusals), so the key was
   * replaced behind this instance (deleted and created again elsewhere) or the server is not
   * transit's. The facts are forgotten, so the next call learns the key as it is now.
   */
  remember(key: ResolvedKey, data: TransitKeyData): TransitKeyData {
    const known = this.types.get(keyId(key));
    if (known !== undefined && known !== data.type) {
      this.forget(key);
      throw malformedAnswer(
        'a key read of another type than before: the key was replaced (deleted and created again elsewhere) or the server is not transit; call again to use the key as it is now',
        key.uri,
      );
    }
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
  /**
   * Keys announced with createKey({ external: true }) and not seen on the server yet (this process
   * only): describeKey and cryptographic calls ask the server before trusting it (see stillPending).
   */
  readonly pending: Map<string, KeySpec>;
  /** Without a store: the extras given at creation, as this process saw them. */
  readonly extrasSeen: Map<string, KeyInfoExtras>;
  /** The creation in flight per key name: creations of one name run one after another. */
  readonly creating: Map<string, Promise<void>>;
  /** The mounts key URIs may send transit requests to. */
  readonly mounts: TransitMounts;
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

/**
 * A create request's `name` may be a bare name (default mount) or a full key URI. A bare name is
 * checked as a name before it becomes part of a URI: `k?version=2` would otherwise parse as the
 * key `k`, and `a/b` would be refused as a malformed URI path. A key is created unpinned.
 */
export function keyForName(t: Transit, name: string): ResolvedKey {
  if (typeof name !== 'string') throw new KeyportError('InvalidArgument', 'a key name must be a string');
  const address = t.s.address;
  const bare = !name.startsWith('hcvault://');
  if (bare && !TRANSIT_NAME.test(name)) {
    const why = `key name ${quote(name)} is not one transit can address (${TRANSIT_NAME_RULE})`;
    throw new KeyportError('InvalidArgument', why, { provider: PROVIDER_NAME, retryable: false });
  }
  const uri = bare ? keyUriOf({ address, mount: t.defaultMount, name }) : name;
  const key = resolveKey({ uri }, address);
  if (key.version !== undefined) {
    const why = 'a key is created without a version: leave ?version= out of its name';
    throw new KeyportError('InvalidArgument', why, {
      provider: PROVIDER_NAME,
      keyUri: uri,
      retryable: false,
    });
  }
  return key;
}

async function extras(t: Transit, key: ResolvedKey, signal: AbortSignal): Promise<KeyInfoExtras> {
  return (t.store === undefined ? t.extrasSeen.get(keyId(key)) : await t.store.read(key, signal)) ?? {};
}

/**
 * A metadata store entry as KeyInfo may show it: anyone who may write the KV path can put any
 * JSON there, so labels are rebuilt prototype-free with string values only (JSON.parse keeps a
 * `__proto__` key as an own property of an ordinary object), and a description or usage that is
 * not a string is left out.
 */
function storedExtras(value: unknown): KeyInfoExtras | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const v = value as Record<string, unknown>;
  const labels: Record<string, string> = Object.setPrototypeOf({}, null);
  if (typeof v.labels === 'object' && v.labels !== null && !Array.isArray(v.labels)) {
    for (const [name, label] of Object.entries(v.labels)) if (typeof label === 'string') labels[name] = label;
  }
  return {
    labels,
    ...(typeof v.usage === 'string' ? { usage: v.usage as KeyInfoExtras['usage'] } : {}),
    ...(typeof v.description === 'string' ? { description: v.description } : {}),
  };
}

/**
 * A key whose creation did not finish: it carries keyport's creation marker instead of the
 * rotation period asked for. Refused, never finished here: the period asked for is unknown, and
 * a creator in another process may be about to set it (a reset written after its would undo it).
 */
export function halfMadeError(key: ResolvedKey): KeyportError {
  const why =
    "the key's creation did not finish: it still carries keyport's creation marker (a rotation period of 200 years) instead of the period asked for, so it is not auto-rotated; if no other process is creating it right now, set the period with setRotationPolicy";
  return new KeyportError('KeyStateConflict', why, { provider: PROVIDER_NAME, keyUri: key.uri });
}

/**
 * The key as it is now; a transit type keyport has no spec for is refused, and so is a key whose
 * creation did not finish unless `halfMade` is 'present' (then it is described without a rotation).
 */
export async function describe(
  t: Transit,
  key: ResolvedKey,
  signal: AbortSignal,
  halfMade: 'refuse' | 'present' = 'refuse',
): Promise<KeyInfo> {
  const [data, extra] = await Promise.all([readKey(t.s, key, signal), extras(t, key, signal)]);
  if (halfMade === 'refuse' && carriesCreationMarker(data)) throw halfMadeError(key);
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

/**
 * The spec of a key announced here (`external: true`) that is still waiting for its material, or
 * undefined. The record is this process's memory only, so the server is asked: an import whose
 * answer was lost (the connection dropped after the server made the key), or another client's,
 * may have created the key since. A key found on the server ends the record; from then on it is
 * described and used as it is. No request is made for a key without a record (the instance that
 * announced a key could read it: createKey needs the read).
 */
export async function stillPending(
  t: Transit,
  key: ResolvedKey,
  signal: AbortSignal,
): Promise<KeySpec | undefined> {
  const spec = t.pending.get(keyId(key));
  if (spec === undefined || (await tryReadKey(t.s, key, signal)) === undefined) return spec;
  t.pending.delete(keyId(key));
  return undefined;
}

export async function describeKey(t: Transit, key: ResolvedKey, signal: AbortSignal): Promise<KeyInfo> {
  const spec = await stillPending(t, key, signal);
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
  await t.mounts.check(key, signal);
  const extra: KeyInfoExtras = {
    usage: req.usage ?? USAGES_BY_SPEC[req.spec][0],
    ...(req.labels !== undefined ? { labels: req.labels } : {}),
    ...(req.description !== undefined ? { description: req.description } : {}),
  };
  await oneAtATime(t, key, signal, async () => {
    // A key made now is a new key: what was remembered of an earlier one of the name is not its.
    t.facts.forget(key);
    if (req.external !== true) {
      const autoRotatePeriodSeconds = rotationSeconds(req.rotation);
      await createTransitKey(t.s, key, TYPE_BY_SPEC[req.spec], { autoRotatePeriodSeconds }, signal);
    } else {
      const there = t.pending.has(keyId(key)) ? undefined : await tryReadKey(t.s, key, signal);
      if (t.pending.has(keyId(key)) || there !== undefined) throw alreadyExists(key, there);
      t.pending.set(keyId(key), req.spec);
    }
    t.extrasSeen.set(keyId(key), extra);
    await t.store?.write(key, extra, signal);
  });
  return req.external === true ? pendingInfo(key, req.spec, extra) : describe(t, key, signal);
}

/**
 * Why a listed key is unmodeled when transit's API cannot address its name: neither keyport nor
 * any other transit client can read or use it, yet it exists, so an inventory must hear of it.
 */
const UNADDRESSABLE_NAME = `transit cannot address a key of this name (${TRANSIT_NAME_RULE}), so keyport cannot describe or use it`;

const listingError = (why: string): KeyportError => malformedAnswer(`a key listing ${why}`);

/**
 * Every key of the default mount, never one left out: a key whose transit type core has no spec
 * for (chacha20-poly1305, ed25519, ...) is listed as unmodeled, and so is one whose name transit's
 * API cannot address (then its URI is one no call can be made with, see listedKeyUri).
 */
export async function* listKeys(t: Transit, signal: AbortSignal): AsyncIterable<KeyInfo | UnmodeledKey> {
  // LIST on an empty mount answers 404.
  const answer = await t.s.tryRead<{ data?: { keys?: unknown } }>(signal, `${t.defaultMount}/keys`, 'list');
  if (answer === undefined) return;
  const names = answer?.data?.keys;
  // An answer that is not a list of names may be hiding keys: refused, never read as "no keys".
  if (!Array.isArray(names)) throw listingError('without a list of key names');
  for (const name of names) {
    if (typeof name !== 'string') throw listingError('with an entry that is not a key name');
    // Every name transit's API takes is one a key URI carries: this one check decides.
    const key = TRANSIT_NAME.test(name) ? keyForName(t, name) : undefined;
    if (key === undefined) {
      // LIST shows keys stored below `a/` (`a/b`, ...) as one entry `a/`.
      const unmodeled = name.endsWith('/')
        ? `${UNADDRESSABLE_NAME} (a name ending in "/" stands for the keys stored below it)`
        : UNADDRESSABLE_NAME;
      yield { uri: listedKeyUri(t.s.address, t.defaultMount, name), unmodeled };
      continue;
    }
    const data = await tryReadKey(t.s, key, signal);
    if (data === undefined) continue; // deleted while listing
    // A key whose creation did not finish is listed without a rotation period (see describeKey).
    const info = toKeyInfo(key, data, await extras(t, key, signal));
    yield info ?? { uri: key.uri, unmodeled: unmodeledKeyError(`transit ${data.type} keys`).message };
  }
}

export async function readKey(s: VaultSession, key: KeyLocation, signal: AbortSignal) {
  return keyData(key, await s.read<unknown>(signal, keyPath(key)));
}

/** The key's data, or undefined when it does not exist. */
export async function tryReadKey(s: VaultSession, key: KeyLocation, signal: AbortSignal) {
  const answer = await s.tryRead<unknown>(signal, keyPath(key));
  return answer === undefined ? undefined : keyData(key, answer);
}

/**
 * The most versions a key read may claim. Every version is listed in KeyInfo and tried by an
 * unpinned verify, so a server claiming `latest_version: 1e12` would otherwise hang the process;
 * hourly auto-rotation (transit's shortest period) reaches this after eleven years.
 */
export const MAX_KEY_VERSIONS = 100_000;

/**
 * A key read's `data`, checked for the fields keyport computes with: a server (or a proxy in
 * front of it) answering another shape is refused with `Internal`, never turned into NaN
 * versions, a TypeError, or a loop over a version count nobody has.
 */
export function keyData(key: KeyLocation, answer: unknown): TransitKeyData {
  const data = (answer as { data?: unknown } | null | undefined)?.data;
  const bad = (field: string): never => {
    throw malformedAnswer(`a key read with an unexpected ${field}`, keyUriOf(key));
  };
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return bad('shape (no key data)');
  const d = data as Record<string, unknown>;
  if (typeof d.type !== 'string') bad('type');
  const latest = d.latest_version;
  if (!Number.isSafeInteger(latest) || (latest as number) < 1 || (latest as number) > MAX_KEY_VERSIONS) {
    bad(`latest_version (keyport reads keys of 1 to ${MAX_KEY_VERSIONS} versions)`);
  }
  for (const field of ['min_decryption_version', 'min_encryption_version', 'min_available_version']) {
    const v = d[field];
    if (!Number.isSafeInteger(v) || (v as number) < 0 || (v as number) > (latest as number)) bad(field);
  }
  const period = d.auto_rotate_period;
  if (period !== undefined && !(typeof period === 'number' && Number.isFinite(period) && period >= 0)) {
    bad('auto_rotate_period');
  }
  if (d.keys !== undefined && (typeof d.keys !== 'object' || d.keys === null || Array.isArray(d.keys))) {
    bad('keys');
  }
  if (d.keys !== undefined) {
    const oldest = Math.max(d.min_decryption_version as number, d.min_available_version as number, 1);
    checkVersions(d.keys as object, oldest, latest as number, bad);
  }
  return data as TransitKeyData;
}

/**
 * Transit lists exactly the versions a key decrypts with, from `oldest` (the higher of
 * min_decryption_version and min_available_version: versions below the first are archived, below
 * the second trimmed) to the latest; HMAC keys list none (`keys` is absent). Any other entry
 * (`__proto__`, `1.5`, `01`, a version past the latest or below the oldest) or a version missing
 * is a server that is not transit's: refused, never read into KeyInfo.
 */
function checkVersions(keys: object, oldest: number, latest: number, bad: (field: string) => never) {
  let listed = 0;
  for (const name of Object.keys(keys)) {
    const v = /^[1-9][0-9]{0,14}$/.test(name) ? Number(name) : 0;
    if (v < oldest || v > latest) bad(`entry in keys (transit lists versions ${oldest} to ${latest})`);
    listed++;
  }
  if (listed !== latest - oldest + 1) {
    bad(`keys (transit lists versions ${oldest} to ${latest}; ${listed} were listed)`);
  }
}

export interface TransitKeyOptions {
  readonly derived?: boolean;
  /** Seconds; 0 turns auto-rotation off. Vault's minimum is one hour. */
  readonly autoRotatePeriodSeconds?: number;
}

/** The name is taken; `there` (the key found) says whether that key's own creation did not finish. */
export function alreadyExists(key: ResolvedKey, there?: TransitKeyData): KeyportError {
  const why =
    there !== undefined && carriesCreationMarker(there)
      ? 'a transit key with this name exists (its creation did not finish, or is under way: see describeKey)'
      : 'a transit key with this name exists';
  return new KeyportError('AlreadyExists', why, { keyUri: key.uri });
}

/**
 * Transit's create is an upsert: on a taken name it answers 200 with the key that is there (the
 * "already existed" warning in its source is never sent: the backend reports every key as new).
 * So the key is created with a marker, an `auto_rotate_period` of a century plus a random number
 * of seconds that no other creator can choose: the answer carries the marker only if this request
 * made the key, and the marker then gives way to the period asked for (`<m>/keys/<k>/config`).
 */
const MARKER_BASE_SECONDS = CREATION_MARKER_SECONDS; // above any period keyport sets (at most 36,500 days)
/** The longest auto-rotation period keyport sets: core's limit, 36,500 days. */
const MAX_PERIOD_SECONDS = 36_500 * 86_400;
const MARKER_RESET_MS = 10_000;

/**
 * The marker of each create a provider instance sent and has not seen finish, by key: a create
 * whose answer was lost (a timeout, a dropped connection) is repeated by core, and the repeat
 * finds the key the first made. A key carrying the marker only this instance chose is that key,
 * and the repeat finishes it; any other existing key stays AlreadyExists.
 */
const sentCreates = new WeakMap<VaultSession, Map<string, number>>();
const MAX_SENT_CREATES = 10_000;
/** This provider instance's record (another instance is another creator, as another process is). */
function sentBy(s: VaultSession): Map<string, number> {
  const sent = sentCreates.get(s) ?? new Map<string, number>();
  sentCreates.set(s, sent);
  return sent;
}

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
  const id = keyId(key);
  const mine = sentBy(s);
  const there = await tryReadKey(s, key, signal);
  const sent = mine.get(id);
  const ours =
    there !== undefined &&
    sent !== undefined &&
    there.auto_rotate_period === sent &&
    there.type === type &&
    (there.derived === true) === (opts?.derived === true);
  if (there !== undefined && !ours) throw alreadyExists(key, there);
  if (!ours) {
    const marker = MARKER_BASE_SECONDS + randomInt(2 ** 30);
    // Kept before the request: an answer lost on the way back leaves a key only this marker names.
    if (mine.size >= MAX_SENT_CREATES) mine.delete(mine.keys().next().value as string);
    mine.set(id, marker);
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
    if (made.auto_rotate_period !== marker) {
      mine.delete(id);
      throw alreadyExists(key);
    }
  }
  // The key is this caller's: the marker is replaced even when the caller stops waiting now.
  const asked = { auto_rotate_period: `${period}s` };
  await raceAbort(configure(s, key, asked, AbortSignal.timeout(MARKER_RESET_MS)), signal);
  mine.delete(id);
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
    const answer = await this.s.tryRead<{ data?: { data?: unknown } } | null>(signal, this.path('data', key));
    return storedExtras(answer?.data?.data);
  }
  async write(key: KeyLocation, meta: KeyInfoExtras, signal: AbortSignal): Promise<void> {
    await this.s.write(signal, this.path('data', key), { data: meta });
  }
  /** Removes every version of the key's metadata (after the key itself is deleted). */
  async remove(key: KeyLocation, signal: AbortSignal): Promise<void> {
    await this.s.remove(signal, this.path('metadata', key));
  }
}
