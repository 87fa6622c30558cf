/**
 * Keys and their lifecycle on Key Vault: create (refusing an existing name, which Key Vault would
 * turn into a new version, unless it is this same create left unfinished or unanswered: see
 * PENDING_ROTATION_TAG and CREATE_MARKER_TAG), describe, list, rotate and the rotation policy,
 * enable/disable (every version), soft delete as scheduled deletion and recovery as its
 * cancellation.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { DeletedKey, KeyProperties, KeyRotationLifetimeAction, KeyVaultKey } from '@azure/keyvault-keys';
import {
  abortedWaitError,
  type ProviderCallOptions as Call,
  type CreateKeyRequest,
  joinSharedRequest,
  type KeyInfo,
  KeyportError,
  type KeySpec,
  type KeyVersionInfo,
  keyportError,
  type ListOptions,
  MAX_DAYS,
  oneAtATime,
  type RotationPolicy,
  type ScheduleDeletionRequest,
  sleep,
  type UnmodeledKey,
  unmodeledKeyOf,
} from '@keyport/core';
import { mapAzureError, PROVIDER_NAME, requestIdOf, statusOf } from './errors.js';
import { invalid, type Vault } from './options.js';
import { parseKid, type ResolvedKey, type Rpc, sameName, unexpected } from './rpc.js';
import { shapeFor, specOf, usageOf } from './specs.js';

/** Key Vault has no key description: keyport keeps it in this tag (and hides it from labels). */
export const DESCRIPTION_TAG = 'keyport-description';

/**
 * Marks a key createKey made with a rotation and has not finished. Key Vault takes the rotation
 * policy only once the key exists (a second request), so such a key is created disabled carrying
 * this tag (its value the period, `P30D`), and enabled with the tag removed, in one update, once
 * its policy is written. A key left between the two is unusable rather than silently never
 * rotating, and the tag lets a createKey of the same request finish it instead of answering
 * AlreadyExists. Hidden from labels, like the description tag; enableKey removes it too.
 */
export const PENDING_ROTATION_TAG = 'keyport-pending-rotation';

/**
 * Marks a key createKey made without a rotation: a random value this provider instance chose for
 * that create, sent in the create request itself, so the key carries it from its first moment.
 * Core repeats a createKey whose answer was lost (a timeout, a dropped connection after the vault
 * made the key), and the repeat finds the name taken by the key the first attempt made: it
 * answers with that key only when it carries the value this instance still holds for the create
 * (see `unfinishedId`) and matches the request; any other key under the name stays
 * AlreadyExists. Hidden from labels and refused as a label name, like the description tag.
 *
 * It stays on the key. Removing it would take another write after every create, one that needs
 * the `update` permission besides `create` and can fail once the key exists (the create then
 * neither done nor undone). Left on, it gives nothing away: the value is worth something only
 * while this instance holds it for an unanswered create of that name, and it is dropped once that
 * create is answered. With a rotation, PENDING_ROTATION_TAG is the marker (removed when the key is
 * finished), so a key carries at most one of the two.
 */
export const CREATE_MARKER_TAG = 'keyport-create-marker';

/**
 * The key of a create's marker in the record of unanswered and unfinished creates its provider
 * instance keeps (`Rpc.unfinishedCreates`): a createKey answers with or finishes an existing key
 * only when it carries that marker (a random value per create). A marker is only a tag: anyone
 * who may import keys into the vault could plant a key of known material under the name with a
 * marker of the right shape, and a createKey that took it would hand the caller that material.
 * The record is the instance's, as its one-create-at-a-time queue is: with one for the whole
 * process, a second instance creating the same name at the same moment found the first's key
 * created and not yet finished, finished it, and both were told they created it. Creates cut
 * short in another instance or process are finished by hand (setRotationPolicy, then enableKey),
 * after a look at the key.
 */
const unfinishedId = (vault: Vault, name: string) => `${vault.url}/keys/${name.toLowerCase()}`;

/** Tags keyport keeps for itself: never labels, refused as label names. */
const RESERVED_TAGS: readonly string[] = [DESCRIPTION_TAG, PENDING_ROTATION_TAG, CREATE_MARKER_TAG];

/** Key Vault keeps at most 15 tags on a key (a 16th is refused with 400). */
const KEY_VAULT_MAX_TAGS = 15;

/** Labels become tags: a label named like a tag keyport keeps would silently become that tag. */
export function assertOwnLabels(labels: Readonly<Record<string, string>> | undefined): void {
  if (labels === undefined || labels === null) return;
  for (const reserved of RESERVED_TAGS) {
    if (Object.hasOwn(labels, reserved)) {
      throw invalid(`the label name ${reserved} is reserved (keyport keeps its own state in that tag)`);
    }
  }
}

type Failure = 'KeyStateConflict' | 'InvalidCiphertext' | 'NotFound' | 'AlreadyExists' | 'Internal';
export const failure = (code: Failure, message: string, cause?: unknown) =>
  new KeyportError(code, message, { provider: PROVIDER_NAME, requestId: requestIdOf(cause), cause });

const specId = (vault: Vault, name: string) => `${vault.url}|${name.toLowerCase()}`;

/** The answer of a look-up, or undefined when the vault answers 404. */
export async function unless404<T>(lookup: Promise<T>): Promise<T | undefined> {
  try {
    return await lookup;
  } catch (e) {
    if (statusOf(e) === 404) return undefined;
    throw e;
  }
}

export const getKey = (rpc: Rpc, key: ResolvedKey, o: Call) =>
  rpc
    .send(key.vault, o, (kc, so) =>
      kc.getKey(key.name, { ...so, ...(key.version ? { version: key.version } : {}) }),
    )
    .then((found) => ofVersion(key, checkedKey(key.vault, key.name, found)));

/**
 * A key read for a pinned version, refused when its id names another version: getPublicKey of v1
 * answered v2's public key (a verifier would then hold the wrong version's key as v1's), and a
 * pinned version's spec was read from another. Version ids, like names, are case-insensitive.
 */
function ofVersion(key: ResolvedKey, found: KeyVaultKey): KeyVaultKey {
  const answered = key.version === undefined ? undefined : parseKid(found.properties.id)?.version;
  if (answered !== undefined && !sameName(answered, key.version as string)) {
    throw unexpected('a key id (kid) naming another version than the one asked');
  }
  return found;
}
const getDeletedKey = (rpc: Rpc, key: ResolvedKey, o: Call) =>
  rpc
    .send(key.vault, o, (kc, so) => kc.getDeletedKey(key.name, so))
    .then((found) => checkedKey(key.vault, key.name, found));

/** The dates of a key's attributes: an instant JavaScript can hold (`created: 1e20` is none). */
const DATE_FIELDS = [
  'createdOn',
  'updatedOn',
  'notBefore',
  'expiresOn',
  'deletedOn',
  'scheduledPurgeDate',
] as const;
/** Tags a key can carry (Key Vault allows 15) and their sizes, with room to spare. */
const MAX_TAGS = 64;
const MAX_TAG_CHARS = 1024;

/**
 * Key or listing properties as Key Vault gives them: of this vault and, when one was asked for,
 * this key (by its id), with a version, dates and tags of the shapes Key Vault answers. A server
 * that is not quite Key Vault, or a proxy, answering otherwise gets Internal, naming the field
 * and never its value: a key of another vault or name would have been described, cached (its
 * spec) and returned as the one asked for.
 */
export function checkedProperties(vault: Vault, name: string | undefined, p: unknown): KeyProperties {
  if (typeof p !== 'object' || p === null) throw unexpected('a key without its properties');
  const props = p as KeyProperties;
  const id = parseKid(props.id);
  if (id === undefined) throw unexpected('a key whose id (kid) is missing or not a Key Vault key id');
  if (id.origin !== vault.url) throw unexpected('a key id (kid) naming another vault than the one asked');
  if (name !== undefined && !sameName(id.name, name)) {
    throw unexpected('a key id (kid) naming another key than the one asked');
  }
  for (const field of DATE_FIELDS) {
    const d: unknown = (props as unknown as Record<string, unknown>)[field];
    if (d !== undefined && !(d instanceof Date && Number.isFinite(d.getTime()))) {
      throw unexpected(`a key whose ${field} date is out of range`);
    }
  }
  const tags: unknown = props.tags;
  if (tags !== undefined && tags !== null) {
    const entries = typeof tags === 'object' && !Array.isArray(tags) ? Object.entries(tags) : undefined;
    if (
      entries === undefined ||
      entries.length > MAX_TAGS ||
      entries.some(([k, v]) => typeof v !== 'string' || k.length > MAX_TAG_CHARS || v.length > MAX_TAG_CHARS)
    ) {
      throw unexpected('key tags that are not a few short strings');
    }
  }
  return props;
}

/** A key bundle checked as `checkedProperties` does, and with a JWK of a known type. */
export function checkedKey<K extends KeyVaultKey | DeletedKey>(
  vault: Vault,
  name: string | undefined,
  k: K,
): K {
  if (typeof k !== 'object' || k === null) throw unexpected('no key');
  checkedProperties(vault, name, k.properties);
  if (k.key !== undefined && (typeof k.key !== 'object' || k.key === null)) {
    throw unexpected('a key whose JWK is not an object');
  }
  return k;
}

export function keyInfoOf(
  rpc: Rpc,
  vault: Vault,
  key: KeyVaultKey | DeletedKey,
  extra: Partial<KeyInfo> = {},
  name?: string,
) {
  checkedKey(vault, name, key);
  const spec = specOf(key.key);
  rpc.specs.set(specId(vault, key.name), spec);
  const p = key.properties;
  // Own entries only, defined as data (Object.fromEntries): a tag named `__proto__` or
  // `constructor` is a label like any other, never the labels' prototype.
  const labels: Record<string, string> = Object.fromEntries(
    Object.entries(p.tags ?? {}).filter(([k]) => !RESERVED_TAGS.includes(k)),
  );
  const description = Object.hasOwn(p.tags ?? {}, DESCRIPTION_TAG) ? p.tags?.[DESCRIPTION_TAG] : undefined;
  const info: KeyInfo = {
    uri: rpc.uriOf(vault, key.name),
    spec,
    usage: usageOf(spec, key.keyOperations),
    state:
      extra.deletionDate !== undefined ? 'pending_deletion' : p.enabled === false ? 'disabled' : 'enabled',
    labels,
    // The JWK type says it: RSA-HSM, EC-HSM and oct-HSM keys live in HSMs (premium vaults,
    // Managed HSM); RSA and EC keys are software-protected.
    ...(key.key?.kty !== undefined ? { protection: key.key.kty.endsWith('-HSM') ? 'hsm' : 'software' } : {}),
    ...(p.createdOn !== undefined ? { createdAt: p.createdOn } : {}),
    ...(p.version !== undefined ? { primaryVersion: p.version } : {}),
    ...extra,
    ...(description !== undefined ? { description } : {}),
  };
  return info;
}

function versionInfo(p: KeyProperties): KeyVersionInfo {
  const state = p.enabled === false ? 'disabled' : 'enabled';
  if (p.version === undefined) throw unexpected('a key version without its version id');
  return {
    version: p.version,
    state,
    ...(p.createdOn !== undefined ? { createdAt: p.createdOn } : {}),
  };
}

/**
 * The key's spec, looked up once per key name (rotation keeps type and size; a version of another
 * size or type added elsewhere is noticed by the operation it breaks, see `keySpecAgain`): the
 * spec itself when known (every encrypt and decrypt asks, and then needs no wait), else its
 * look-up.
 */
export function keySpec(rpc: Rpc, key: ResolvedKey, o: Call): KeySpec | Promise<KeySpec> {
  const id = specId(key.vault, key.name);
  return rpc.specs.get(id) ?? sharedLookUp(rpc, key, id, o);
}

/** A caller that stopped waiting for a shared look-up or its turn to create (its own signal fired). */
const waitAborted = abortedWaitError(PROVIDER_NAME, 'the Key Vault call');

/** One look-up per key name at a time: concurrent callers join the one in flight (see core's `joinSharedRequest`). */
function sharedLookUp(rpc: Rpc, key: ResolvedKey, id: string, o: Call): Promise<KeySpec> {
  return joinSharedRequest(
    rpc.specLookups,
    id,
    (signal) => lookUpSpec(rpc, key, { signal }),
    o.signal,
    waitAborted,
  );
}

async function lookUpSpec(rpc: Rpc, key: ResolvedKey, o: Call): Promise<KeySpec> {
  const latest = { ...key, version: undefined };
  const spec = specOf((await onKey(rpc, latest, o, () => getKey(rpc, latest, o))).key);
  rpc.specs.set(specId(key.vault, key.name), spec);
  return spec;
}

/**
 * The spec of `key` read anew, after the vault answered an operation in a way the spec used
 * (`stale`) cannot explain (see crypto.ts `withKeySpec`). A key without a version replaces its
 * cached spec, only while that is still `stale`: callers meeting the change together share one
 * look-up. A pinned version is read for itself (the cache holds the latest version's spec).
 */
export function keySpecAgain(
  rpc: Rpc,
  key: ResolvedKey,
  stale: KeySpec,
  o: Call,
): KeySpec | Promise<KeySpec> {
  if (key.version !== undefined) {
    return onKey(rpc, key, o, () => getKey(rpc, key, o)).then((found) => specOf(found.key));
  }
  const id = specId(key.vault, key.name);
  if (rpc.specs.get(id) === stale) rpc.specs.delete(id);
  return keySpec(rpc, key, o);
}

/** A key written anew (created, imported, restored, purged): its cached spec is stale. */
export const forgetSpec = (rpc: Rpc, vault: Vault, name: string) => {
  rpc.specs.delete(specId(vault, name));
  rpc.specLookups.delete(specId(vault, name));
};

/**
 * Runs a call on a key, explaining a 404: the key is soft-deleted (pending deletion:
 * KeyStateConflict, as on other providers), a ciphertext names a version this key does not have
 * (decrypting under the wrong key: InvalidCiphertext), or the key does not exist (NotFound). The
 * look-ups are best effort: when they fail, the answer stays the 404's.
 */
export function onKey<T>(
  rpc: Rpc,
  key: ResolvedKey,
  o: Call,
  run: () => Promise<T>,
  decrypting = false,
): Promise<T> {
  // Chained rather than awaited: every encrypt and decrypt passes here.
  let running: Promise<T>;
  try {
    running = run();
  } catch (e) {
    running = Promise.reject(e);
  }
  return running.catch((e: unknown) => explain404(rpc, key, o, e, decrypting));
}

async function explain404(
  rpc: Rpc,
  key: ResolvedKey,
  o: Call,
  e: unknown,
  decrypting: boolean,
): Promise<never> {
  if (statusOf(e) !== 404) throw e;
  const latest = { ...key, version: undefined };
  const found = (lookup: Promise<unknown>) => lookup.then(Boolean, () => false);
  if (await found(getDeletedKey(rpc, key, o))) {
    throw failure('KeyStateConflict', 'the key is soft-deleted (pending deletion): recover it first', e);
  }
  if (decrypting && (await found(getKey(rpc, latest, o)))) {
    throw failure('InvalidCiphertext', 'the ciphertext was not made by this key', e);
  }
  throw e;
}

/** Refuses a name a live key holds: Key Vault would add a version to it. */
export async function assertNameFree(rpc: Rpc, key: ResolvedKey, o: Call, hint: string): Promise<void> {
  if ((await unless404(getKey(rpc, key, o))) !== undefined) {
    const keyUri = rpc.uriOf(key.vault, key.name);
    throw new KeyportError('AlreadyExists', `a key with this name exists (${hint})`, {
      provider: PROVIDER_NAME,
      keyUri,
    });
  }
}

/**
 * Runs `create` once no other create of the same name (in this provider) is in flight. Refusing a
 * taken name is a check and then a create, two requests: concurrent callers between them each
 * added a version to one key, and each was told it created it. A caller that aborts while waiting
 * leaves at once. Other processes can still race: Key Vault has no create-if-absent.
 */
export function oneCreateAtATime<T>(rpc: Rpc, vault: Vault, name: string, o: Call, create: () => Promise<T>) {
  return oneAtATime(rpc.creating, specId(vault, name), o.signal, waitAborted, create);
}

export async function createKey(rpc: Rpc, req: CreateKeyRequest, o: Call): Promise<KeyInfo> {
  if (req.external === true) {
    const message = 'Key Vault BYOK (key-exchange key) is not offered; use importJwk';
    throw keyportError('Unsupported', message, { provider: PROVIDER_NAME, capability: 'import' });
  }
  const key = { ...rpc.forNewKey(req.name), version: undefined };
  const usage = req.usage ?? (req.spec.startsWith('EC_') ? 'sign_verify' : 'encrypt_decrypt');
  const { kty, keyOps, keySize, curve } = shapeFor(req.spec, usage, rpc.config.kind);
  const periodDays = rotationPeriod(req.rotation, 'req.rotation');
  assertOwnLabels(req.labels);
  const description = req.description !== undefined ? { [DESCRIPTION_TAG]: req.description } : {};
  const tags: Record<string, string> = { ...req.labels, ...description };
  // The whole create, a rotation's policy and enabling included, holds the name: a concurrent
  // createKey of the same request would otherwise find the key unfinished and "finish" it too,
  // both callers told they created it.
  return oneCreateAtATime(rpc, key.vault, key.name, o, async () => {
    const sent = unfinishedId(key.vault, key.name);
    const found = await unless404(getKey(rpc, key, o));
    if (found !== undefined) {
      const same = { spec: req.spec, kty, keyOps, tags };
      const mine = rpc.unfinishedCreates.get(sent);
      if (periodDays === undefined) {
        // Ours only with the marker this instance sent and the rest of the request: the key an
        // earlier attempt made, its answer lost. A create without a rotation is one write: the
        // key is whole, and the answer is the one that attempt would have given.
        if (mine === undefined || !madeAs(found, same, CREATE_MARKER_TAG, mine)) {
          throw nameTaken(rpc, key, found);
        }
        rpc.unfinishedCreates.delete(sent);
        return keyInfoOf(rpc, key.vault, found, { versions: [versionInfo(found.properties)] }, key.name);
      }
      // Ours only with this period, the marker this instance wrote, and the rest of the request.
      if (
        mine === undefined ||
        !mine.startsWith(`P${periodDays}D `) ||
        !madeAs(found, same, PENDING_ROTATION_TAG, mine)
      ) {
        throw nameTaken(rpc, key, found);
      }
      // This request, made before and cut short after the key was created: finish it.
      return finishCreate(rpc, key, found, periodDays, tags, o);
    }
    forgetSpec(rpc, key.vault, key.name);
    // Every create is marked: with a rotation the key starts disabled and marked (see
    // PENDING_ROTATION_TAG), without one it carries CREATE_MARKER_TAG. The marker needs a free
    // tag: with Key Vault's 15 taken by labels and description the key is created unmarked, so
    // a repeat after a lost answer stays AlreadyExists, and a key with a rotation is still
    // created disabled, but only setRotationPolicy and enableKey can finish it.
    const marker: Record<string, string> =
      Object.keys(tags).length >= KEY_VAULT_MAX_TAGS
        ? {}
        : periodDays !== undefined
          ? { [PENDING_ROTATION_TAG]: `P${periodDays}D ${randomUUID()}` }
          : { [CREATE_MARKER_TAG]: randomUUID() };
    // Kept before the request: an answer lost on the way back leaves a key only this marker opens.
    const [markerValue] = Object.values(marker);
    if (markerValue !== undefined) rpc.unfinishedCreates.set(sent, markerValue);
    const created = await rpc
      .send(key.vault, o, (kc, so) =>
        kc.createKey(key.name, kty, {
          keyOps,
          ...(keySize !== undefined ? { keySize } : {}),
          ...(curve !== undefined ? { curve } : {}),
          ...(Object.keys(tags).length + Object.keys(marker).length > 0
            ? { tags: { ...tags, ...marker } }
            : {}),
          ...(periodDays !== undefined ? { enabled: false } : {}),
          ...so,
        }),
      )
      .catch((e: unknown) => purgeUnderWay(rpc, key, o, e, 'create', true));
    if (periodDays !== undefined) {
      return finishCreate(rpc, key, checkedKey(key.vault, key.name, created), periodDays, tags, o);
    }
    // Answered: the key is the caller's, and no later request of this instance may take it.
    rpc.unfinishedCreates.delete(sent);
    return keyInfoOf(rpc, key.vault, created, { versions: [versionInfo(created.properties)] }, key.name);
  });
}

/**
 * A create's or an import's 409 where no key holds the name: a deleted key holds it, or a live
 * one (AlreadyExists, as mapped), or none does and a purge of the name is still completing. Key
 * Vault answers a create or an import 409 for a few seconds after a purge answered 204, without
 * an inner code, while neither the key nor a deleted key can be read: that passes, so it is
 * KeyStateConflict and retryable, as 409 ObjectIsBeingDeleted is. A create or an import into a
 * live name adds a version rather than answering 409; `liveChecked` says the caller just looked
 * the name up and found no live key, else it is looked up here. Throws.
 */
export async function purgeUnderWay(
  rpc: Rpc,
  key: ResolvedKey,
  o: Call,
  e: unknown,
  request: 'create' | 'import',
  liveChecked: boolean,
): Promise<never> {
  if (statusOf(e) !== 409 || mapAzureError(e)?.retryable !== false) throw e;
  let holder: unknown;
  try {
    holder =
      (await unless404(getDeletedKey(rpc, key, o))) ??
      (liveChecked ? undefined : await unless404(getKey(rpc, key, o)));
  } catch {
    // Unknown (no permission to read deleted keys, say): the vault's answer stands.
    throw e;
  }
  if (holder !== undefined) throw e;
  throw new KeyportError(
    'KeyStateConflict',
    `Azure Key Vault answered 409 to ${request === 'create' ? 'a create' : 'an import'} of a name no key or deleted key holds: a purge of the name is still completing`,
    { provider: PROVIDER_NAME, requestId: requestIdOf(e), cause: e, retryable: true },
  );
}

/** What a createKey request makes, to recognise the same request made before. */
interface RequestedKey {
  readonly spec: KeySpec;
  readonly kty: string;
  readonly keyOps: readonly string[];
  readonly tags: Readonly<Record<string, string>>;
}

/**
 * Whether `found` is the key this very request (same spec, key type, key operations, labels,
 * description, and the marker this instance sent in `markerTag`, which holds the rotation period
 * when there is one) made and did not finish or got no answer for: only then may a createKey take
 * an existing name. A key anyone else made, or this adapter made for another request, stays
 * AlreadyExists.
 */
function madeAs(found: KeyVaultKey, wanted: RequestedKey, markerTag: string, marker: string): boolean {
  const tags = found.properties.tags ?? {};
  if (!Object.hasOwn(tags, markerTag) || tags[markerTag] !== marker) return false;
  const own = Object.entries(tags).filter(([k]) => k !== markerTag);
  const sameTags =
    own.length === Object.keys(wanted.tags).length &&
    own.every(([k, v]) => Object.hasOwn(wanted.tags, k) && wanted.tags[k] === v);
  const ops: readonly string[] = found.keyOperations ?? [];
  const sameOps = ops.length === wanted.keyOps.length && wanted.keyOps.every((op) => ops.includes(op));
  let spec: KeySpec;
  try {
    spec = specOf(found.key);
  } catch {
    return false;
  }
  return sameTags && sameOps && found.key?.kty === wanted.kty && spec === wanted.spec;
}

/** A period as the marker holds it, when it is one (the tag's value is whatever the vault holds). */
const markedPeriod = (tags: Readonly<Record<string, string>> | undefined): string | undefined => {
  const value =
    tags !== undefined && Object.hasOwn(tags, PENDING_ROTATION_TAG) ? tags[PENDING_ROTATION_TAG] : '';
  return value?.match(/^(P\d{1,6}D)(?: [0-9a-f-]{36})?$/)?.[1];
};

/** The name is taken: by a key of its own, or by an unfinished createKey of another request. */
function nameTaken(rpc: Rpc, key: ResolvedKey, found: KeyVaultKey): KeyportError {
  const keyUri = rpc.uriOf(key.vault, key.name);
  const period = markedPeriod(found.properties.tags);
  const hint =
    period === undefined
      ? 'rotateKey adds a version'
      : `it is an unfinished createKey of another request or another provider instance or process, disabled until its rotation policy (${period}) is written: look at the key, then call setRotationPolicy and enableKey on ${keyUri} to finish it`;
  return new KeyportError('AlreadyExists', `a key with this name exists (${hint})`, {
    provider: PROVIDER_NAME,
    keyUri,
  });
}

/**
 * The second half of a createKey with a rotation: the policy written, then the key enabled and
 * its marker removed in one update (no moment where it is usable and still marked, or enabled
 * without its policy). A failure names the key, what exists and how to finish it, keeping the
 * failing request's code.
 */
async function finishCreate(
  rpc: Rpc,
  key: ResolvedKey,
  pending: KeyVaultKey,
  periodDays: number,
  tags: Readonly<Record<string, string>>,
  o: Call,
): Promise<KeyInfo> {
  const version = pending.properties.version;
  if (version === undefined) throw unexpected('a created key without its version id');
  const marked = Object.hasOwn(pending.properties.tags ?? {}, PENDING_ROTATION_TAG);
  const half = { uri: rpc.uriOf(key.vault, key.name), periodDays, marked };
  try {
    await writeRotationPolicy(rpc, key, periodDays, o);
  } catch (e) {
    throw unfinished(e, half, 'policy');
  }
  let enabled: KeyVaultKey;
  try {
    enabled = await rpc.send(key.vault, o, (kc, so) =>
      kc.updateKeyProperties(key.name, version, {
        enabled: true,
        ...(marked ? { tags: { ...tags } } : {}),
        ...so,
      }),
    );
  } catch (e) {
    throw unfinished(e, half, 'enable');
  }
  rpc.unfinishedCreates.delete(unfinishedId(key.vault, key.name));
  return keyInfoOf(
    rpc,
    key.vault,
    enabled,
    { versions: [versionInfo(enabled.properties)], rotation: { periodDays } },
    key.name,
  );
}

/**
 * A createKey cut short after the key was created. The code is the failing request's (a 403
 * stays AccessDenied, a 429 Throttled); it is retryable only when a retry can finish the key
 * (it is marked), so core's own retries finish it. The message says what exists and names the
 * calls that finish it; it holds the key URI and the period, never a service message.
 */
function unfinished(
  e: unknown,
  half: { uri: string; periodDays: number; marked: boolean },
  step: 'policy' | 'enable',
): KeyportError {
  const why = mapAzureError(e) ?? failure('Internal', 'an unexpected error', e);
  const { uri, periodDays, marked } = half;
  const state =
    step === 'policy'
      ? `the key ${uri} was created disabled and its rotation policy (rotate every ${periodDays} days) was not written`
      : `the key ${uri} was created disabled and its rotation policy (rotate every ${periodDays} days) written, but enabling it failed`;
  const manual =
    step === 'policy'
      ? `setRotationPolicy(uri, { periodDays: ${periodDays} }) and then enableKey(uri)`
      : 'enableKey(uri)';
  const finish = marked
    ? `repeat this createKey (same name and request) on this provider instance, or call ${manual}`
    : `call ${manual}`;
  return new KeyportError(
    why.code,
    `${state} (${why.message}): it cannot be used until finished; ${finish}`,
    {
      provider: PROVIDER_NAME,
      keyUri: uri,
      requestId: why.requestId,
      retryable: why.retryable && marked,
      ...(why.retryAfterMs !== undefined ? { retryAfterMs: why.retryAfterMs } : {}),
      cause: why,
    },
  );
}

export async function describeKey(rpc: Rpc, key: ResolvedKey, o: Call): Promise<KeyInfo> {
  const latest = { ...key, version: undefined };
  let found: KeyVaultKey;
  try {
    found = await getKey(rpc, latest, o);
  } catch (e) {
    const deleted = statusOf(e) === 404 ? await unless404(getDeletedKey(rpc, key, o)) : undefined;
    if (deleted === undefined) throw e;
    return deletedKeyInfo(rpc, key.vault, deleted, key.name);
  }
  const [versions, rotation] = await Promise.all([versionsOf(rpc, key, o), rotationOf(rpc, key, found, o)]);
  if (key.version !== undefined && !versions.some((v) => v.version === key.version)) {
    throw failure('NotFound', 'the key has no such version');
  }
  return keyInfoOf(rpc, key.vault, found, { versions: versions.map(versionInfo), ...rotation }, key.name);
}

/**
 * Versions one key may have before its listing is refused (kept in memory whole, for describeKey
 * and setEnabled): a key rotated daily for 60 years has fewer. A server whose listing goes on
 * with ever new versions would otherwise fill memory.
 */
export const MAX_LISTED_VERSIONS = 25_000;

async function versionsOf(rpc: Rpc, key: ResolvedKey, o: Call): Promise<KeyProperties[]> {
  const out: KeyProperties[] = [];
  const pages = rpc.pages(key.vault, o, (kc, so) => kc.listPropertiesOfKeyVersions(key.name, so).byPage());
  for await (const page of onePass(pages, (p) => p.id, 'key versions')) {
    for (const p of page) {
      if (out.length >= MAX_LISTED_VERSIONS) {
        throw unexpected(`more than ${MAX_LISTED_VERSIONS} versions of one key: the listing was ended`);
      }
      out.push(checkedProperties(key.vault, key.name, p));
    }
  }
  return out;
}

/** Empty pages one listing may answer (Key Vault sends a few, with a nextLink, while it scans). */
export const MAX_EMPTY_PAGES = 100;

/**
 * The SDK's pages, its complaints about a page's shape (no `value` list, a `nextLink` that is not
 * a string) made Internal: they are RestErrors without a status, which read as "no answer"
 * (Unavailable, retried) though the vault did answer, wrongly.
 */
async function* shapeChecked<T>(pages: AsyncIterable<T>, what: string): AsyncIterable<T> {
  try {
    yield* pages;
  } catch (e) {
    const message = (e as { message?: unknown } | null)?.message;
    if (
      statusOf(e) === undefined &&
      (e as { name?: unknown } | null)?.name === 'RestError' &&
      typeof message === 'string' &&
      /^(Couldn't paginate response|Body Property )/.test(message)
    ) {
      throw unexpected(`a ${what} listing page of the wrong shape`);
    }
    throw e;
  }
}

/**
 * A listing's pages, each once. The SDK follows every `nextLink` it is given: a server answering
 * a link it already gave (or a cycle of them) made the listing loop forever, and versionsOf
 * collect until memory ran out. A page that repeats one already listed (by its entries' ids, a
 * 32-byte digest per page kept), or too many empty ones, end the listing with Internal.
 */
async function* onePass<T>(
  pages: AsyncIterable<T[]>,
  idOf: (entry: T) => unknown,
  what: string,
): AsyncIterable<T[]> {
  const seen = new Set<string>();
  let empty = 0;
  for await (const page of shapeChecked(pages, what)) {
    if (!Array.isArray(page)) throw unexpected(`a ${what} page that is not a list`);
    if (page.length === 0) {
      if (++empty > MAX_EMPTY_PAGES) {
        throw unexpected(`a ${what} listing of more than ${MAX_EMPTY_PAGES} empty pages: it was ended`);
      }
      continue;
    }
    const digest = createHash('sha256');
    for (const entry of page) digest.update(`${String(idOf(entry))}\n`);
    const fingerprint = digest.digest('base64');
    if (seen.has(fingerprint)) {
      throw unexpected(`a ${what} page it had already given (a repeated nextLink): the listing was ended`);
    }
    seen.add(fingerprint);
    yield page;
  }
}

/** Rotation period from a policy's Rotate action (`timeAfterCreate: P<n>D`). */
/**
 * The rotation a policy's `rotate` action describes, from its ISO 8601 `timeAfterCreate`. The
 * portal and the CLI write years, months and weeks too (`P1Y`, `P18M`, `P2W`), not only days:
 * read as days only, a key rotating every year was described as never rotating. `periodDays` is
 * the nominal length (a year 365 days, a month 30); the next rotation is the calendar date Key
 * Vault uses, the latest version's creation plus the duration. Anything else (a time part, a zero
 * or absurd duration) is no schedule keyport can state.
 */
export function rotationOfPolicy(
  actions: readonly KeyRotationLifetimeAction[] | undefined,
  created: Date | undefined,
): { periodDays: number; nextRotationAt?: Date } | undefined {
  const rotate = actions?.find((a) => a.action.toLowerCase() === 'rotate' && a.timeAfterCreate !== undefined);
  const m = /^P(?:(\d{1,4})Y)?(?:(\d{1,5})M)?(?:(\d{1,5})W)?(?:(\d{1,6})D)?$/i.exec(
    rotate?.timeAfterCreate ?? '',
  );
  if (m === null) return undefined;
  const [years, months, weeks, days] = [m[1], m[2], m[3], m[4]].map((x) => Number(x ?? 0)) as [
    number,
    number,
    number,
    number,
  ];
  const periodDays = years * 365 + months * 30 + weeks * 7 + days;
  if (periodDays < 1 || periodDays > MAX_DAYS) return undefined;
  if (created === undefined) return { periodDays };
  const next = new Date(created.getTime());
  next.setUTCFullYear(next.getUTCFullYear() + years, next.getUTCMonth() + months);
  next.setTime(next.getTime() + (weeks * 7 + days) * 86_400_000);
  return { periodDays, nextRotationAt: next };
}

async function rotationOf(rpc: Rpc, key: ResolvedKey, latest: KeyVaultKey, o: Call) {
  try {
    const policy = await rpc.send(key.vault, o, (kc, so) => kc.getKeyRotationPolicy(key.name, so));
    const rotation = rotationOfPolicy(policy.lifetimeActions, latest.properties.createdOn);
    return rotation === undefined ? {} : { rotation };
  } catch (e) {
    // Reading the policy needs its own permission (getrotationpolicy); without it the rest still describes the key.
    if (statusOf(e) === 403) return {};
    throw e;
  }
}

/**
 * A soft-deleted key described as other providers describe theirs: pending deletion. Checked to
 * be `name` in `vault` (the name asked for, not the one the answer gives itself): the SDK's
 * deletion poller hands back the vault's answer unchecked, and a deletion answered with another
 * key was returned as that key.
 */
function deletedKeyInfo(rpc: Rpc, vault: Vault, deleted: DeletedKey, name: string): KeyInfo {
  const p = checkedKey(vault, name, deleted).properties;
  return keyInfoOf(
    rpc,
    vault,
    deleted,
    { deletionDate: p.scheduledPurgeDate ?? p.deletedOn ?? new Date() },
    name,
  );
}

/**
 * Every key of every configured vault, then its soft-deleted keys (pending deletion, as AWS and
 * Cloud KMS list theirs; Key Vault keeps them out of the key listing). Key Vault lists names and
 * attributes only, so each key is fetched for its type (in parallel per page). Keys with no
 * keyport spec (EC P-521, P-256K, RSA of other sizes) are listed as unmodeled; keys deleted, purged
 * or recovered meanwhile are left out.
 */
export async function* listKeys(rpc: Rpc, o: ListOptions): AsyncIterable<KeyInfo | UnmodeledKey> {
  const maxPageSize = Math.min(25, Math.max(1, o.pageSize ?? 25));
  for (const vault of rpc.config.vaults) {
    const ref = (name: string): ResolvedKey => ({ vault, name, version: undefined });
    const live = rpc.pages(vault, o, (kc, so) => kc.listPropertiesOfKeys(so).byPage({ maxPageSize }));
    yield* describePages(
      onePass(live, (p) => p.id, 'key'),
      maxPageSize,
      (p) => rpc.uriOf(vault, p.name),
      async (p) => {
        checkedProperties(vault, undefined, p);
        const found = await unless404(getKey(rpc, ref(p.name), o));
        return found && keyInfoOf(rpc, vault, found);
      },
    );
    const deleted = rpc.pages(vault, o, (kc, so) => kc.listDeletedKeys(so).byPage({ maxPageSize }));
    yield* describePages(
      onePass(deleted, (d) => d.id, 'deleted key'),
      maxPageSize,
      (d) => rpc.uriOf(vault, d.name),
      async (d) => {
        checkedProperties(vault, undefined, d.properties);
        const found = await unless404(getDeletedKey(rpc, ref(d.name), o));
        return found && deletedKeyInfo(rpc, vault, found, d.name);
      },
    );
  }
}

/**
 * Each page's entries described in parallel, at most `atOnce` (the page size asked for) at a
 * time: a server answering thousands of entries in one page made as many reads at once. An entry
 * keyport has no spec for is listed as unmodeled (under `uriOf` its entry), one gone meanwhile
 * (undefined) left out.
 */
async function* describePages<T>(
  pages: AsyncIterable<T[]>,
  atOnce: number,
  uriOf: (entry: T) => string,
  describe: (entry: T) => Promise<KeyInfo | undefined>,
): AsyncIterable<KeyInfo | UnmodeledKey> {
  for await (const page of pages) {
    const infos: (KeyInfo | UnmodeledKey | undefined)[] = [];
    await eachBounded(
      page.map((entry, i) => ({ entry, i })),
      atOnce,
      async ({ entry, i }) => {
        infos[i] = await describe(entry).catch((e: unknown) => {
          // The entry's name was checked before a describe can answer Unsupported.
          if (!(e instanceof KeyportError && e.code === 'Unsupported')) throw e;
          return unmodeledKeyOf(uriOf(entry), e);
        });
      },
    );
    for (const info of infos) if (info !== undefined) yield info;
  }
}

/** Runs a management call on a key (a 404 explained), then describes the key. */
export async function changeKey(rpc: Rpc, key: ResolvedKey, o: Call, run: () => Promise<unknown>) {
  await onKey(rpc, key, o, run);
  return describeKey(rpc, { ...key, version: undefined }, o);
}

/**
 * Reads a key after a write made (`done` says which). Core retries a call whose error is
 * retryable, the write included: a throttled or dropped describe after RotateKey rotated the key
 * again, after a restore made the retried restore fail AlreadyExists (the name now taken), and
 * after a recovery or a deletion made the retry fail as "not pending deletion" or NotFound
 * though the change was made. A failure here keeps its code but is not retryable, and says that
 * the write was made.
 */
export async function readAfterWrite<T>(
  rpc: Rpc,
  key: ResolvedKey,
  done: string,
  read: () => Promise<T>,
): Promise<T> {
  try {
    return await read();
  } catch (e) {
    const why = mapAzureError(e) ?? failure('Internal', 'an unexpected error', e);
    const keyUri = rpc.uriOf(key.vault, key.name);
    throw new KeyportError(
      why.code,
      `${done}, but reading ${keyUri} afterwards failed (${why.message}): do not repeat the call; describeKey reads the key`,
      { provider: PROVIDER_NAME, keyUri, requestId: why.requestId, retryable: false, cause: why },
    );
  }
}

/**
 * A long-running write (`beginDeleteKey`, `beginRecoverDeletedKey`), then a read of its result.
 * The SDK's begin call sends the write and then polls once (a GET): an error of that GET means
 * the write was answered, so it is reported as readAfterWrite reports a failed read.
 */
async function beginThenRead<P, T>(
  rpc: Rpc,
  key: ResolvedKey,
  done: string,
  begin: () => Promise<P>,
  read: (begun: P) => Promise<T>,
): Promise<T> {
  let begun: P;
  try {
    begun = await begin();
  } catch (e) {
    if ((e as { request?: { method?: unknown } } | null)?.request?.method !== 'GET') throw e;
    return readAfterWrite(rpc, key, done, () => Promise.reject(e));
  }
  return readAfterWrite(rpc, key, done, () => read(begun));
}

/** What `untilDone` uses of the SDK's delete and recover pollers. */
interface Poller<T> {
  isDone(): boolean;
  poll(options: { abortSignal: AbortSignal }): Promise<void>;
  getResult(): T | undefined;
}

/**
 * Polls a begun deletion or recovery until the vault reports it done, every `pollIntervalMs`.
 * Not the SDK's `pollUntilDone`: its wait between polls takes no signal, so an aborted call (or
 * one past its deadline) ran on until the interval ended, up to 10 minutes with pollIntervalMs,
 * holding a timer that kept the process alive. Here the wait ends when the signal fires, with
 * core's Aborted (or Timeout, for a deadline).
 */
async function untilDone<T>(rpc: Rpc, poller: Poller<T>, o: Call): Promise<T | undefined> {
  while (!poller.isDone()) {
    await sleep(rpc.pollIntervalMs, o.signal);
    await poller.poll({ abortSignal: o.signal });
  }
  return poller.getResult();
}

/** Describes a key after a write made (see readAfterWrite). */
export const describeAfterWrite = (rpc: Rpc, key: ResolvedKey, o: Call, done: string): Promise<KeyInfo> =>
  readAfterWrite(rpc, key, done, () => describeKey(rpc, { ...key, version: undefined }, o));

export async function rotateKey(rpc: Rpc, key: ResolvedKey, o: Call): Promise<KeyInfo> {
  const rotated: unknown = await onKey(rpc, key, o, () =>
    rpc.send(key.vault, o, (kc, so) => kc.rotateKey(key.name, so)),
  );
  // The new version's id, for the message should describing fail: Key Vault's alphabet only.
  const version = (rotated as Partial<KeyVaultKey> | null)?.properties?.version;
  const named =
    typeof version === 'string' && /^[A-Za-z0-9]{1,64}$/.test(version) ? ` (new version ${version})` : '';
  return describeAfterWrite(rpc, key, o, `the key was rotated${named}`);
}

/**
 * Key Vault rotates at least 7 days after a version's creation: a shorter period is refused here,
 * before createKey makes a key whose policy the vault would then refuse (half a createKey).
 */
function checkPeriod(days: number | undefined): number | undefined {
  if (days !== undefined && (!Number.isInteger(days) || days < 7 || days > MAX_DAYS)) {
    throw invalid(
      `rotation periodDays must be a whole number of days from 7 (Key Vault's minimum) to ${MAX_DAYS}`,
    );
  }
  return days;
}

/** Replaces the policy's Rotate action, keeping its Notify actions and expiry. */
async function writeRotationPolicy(rpc: Rpc, key: ResolvedKey, periodDays: number | undefined, o: Call) {
  const current = await rpc.send(key.vault, o, (kc, so) => kc.getKeyRotationPolicy(key.name, so));
  const kept = (current.lifetimeActions ?? []).filter((a) => a.action.toLowerCase() !== 'rotate');
  const rotate =
    periodDays === undefined ? [] : [{ action: 'Rotate' as const, timeAfterCreate: `P${periodDays}D` }];
  const expiry = current.expiresIn !== undefined ? { expiresIn: current.expiresIn } : {};
  const policy = { lifetimeActions: [...rotate, ...kept], ...expiry };
  await rpc.send(key.vault, o, (kc, so) => kc.updateKeyRotationPolicy(key.name, policy, so));
}

/**
 * The period of a neutral rotation policy. Key Vault rotates a period after each version's
 * creation and takes no date: a `nextRotationAt` it cannot honour is refused, never dropped.
 */
function rotationPeriod(policy: RotationPolicy | undefined, option: string): number | undefined {
  if (policy?.nextRotationAt !== undefined) {
    throw keyportError(
      'Unsupported',
      `${option}.nextRotationAt: Key Vault rotates a period after each version's creation and takes no rotation date`,
      { provider: PROVIDER_NAME, capability: 'rotationSchedule' },
    );
  }
  return checkPeriod(policy?.periodDays);
}

export function setRotationPolicy(rpc: Rpc, key: ResolvedKey, policy: RotationPolicy, o: Call) {
  const periodDays = rotationPeriod(policy, 'policy');
  return changeKey(rpc, key, o, () => writeRotationPolicy(rpc, key, periodDays, o));
}

/**
 * Version updates one setEnabled sends at a time. A key rotated for years has hundreds of
 * versions; all of them at once would be hundreds of requests against the vault's per-vault
 * throttling limit (and sockets), for one call.
 */
export const VERSION_UPDATES_AT_ONCE = 8;

/**
 * Runs `run` over `items`, at most `limit` at a time. After a failure no further item starts;
 * the call settles only once the ones already started have (nothing keeps running after it
 * rejects), with the first failure.
 */
async function eachBounded<T>(items: readonly T[], limit: number, run: (item: T) => Promise<unknown>) {
  let next = 0;
  let failed = false;
  const lane = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const item = items[next++] as T;
      try {
        await run(item);
      } catch (e) {
        failed = true;
        throw e;
      }
    }
  };
  const lanes = Array.from({ length: Math.min(limit, items.length) }, lane);
  const first = (await Promise.allSettled(lanes)).find((r) => r.status === 'rejected');
  if (first !== undefined) throw (first as PromiseRejectedResult).reason;
}

/**
 * A version's tags without createKey's pending marker, for an update enabling it: a key enabled by
 * hand is finished, and a createKey must not later take it for one of its own unfinished keys (and
 * enable it again after someone disabled it). Nothing when the version is not marked: its tags stay.
 */
function withoutMarker(tags: Readonly<Record<string, string>> | undefined): {
  tags?: Record<string, string>;
} {
  if (tags === undefined || !Object.hasOwn(tags, PENDING_ROTATION_TAG)) return {};
  return { tags: Object.fromEntries(Object.entries(tags).filter(([k]) => k !== PENDING_ROTATION_TAG)) };
}

/** Enabled is a per-version attribute: keyport's key state covers the whole key, so every version changes. */
export function setEnabled(rpc: Rpc, key: ResolvedKey, enabled: boolean, o: Call): Promise<KeyInfo> {
  return changeKey(rpc, key, o, async () => {
    const versions = await versionsOf(rpc, key, o);
    await eachBounded(versions, VERSION_UPDATES_AT_ONCE, (v) =>
      rpc.send(key.vault, o, (kc, so) =>
        kc.updateKeyProperties(key.name, v.version ?? '', {
          enabled,
          ...(enabled ? withoutMarker(v.tags) : {}),
          ...so,
        }),
      ),
    );
  });
}

/**
 * Soft delete. The waiting period is the vault's soft-delete retention (7-90 days, a vault
 * setting): `days` must lie in that range but cannot change it; the answer's deletionDate is the
 * vault's scheduled purge date. A `days` longer than the retention (the key's `recoverableDays`)
 * is refused before the delete: the vault would purge the key sooner than the caller asked, and
 * a recovery window is a promise not to shorten silently. A shorter one is kept longer: safe.
 */
export async function scheduleKeyDeletion(rpc: Rpc, key: ResolvedKey, req: ScheduleDeletionRequest, o: Call) {
  if (req.days !== undefined && (!Number.isInteger(req.days) || req.days < 7 || req.days > 90)) {
    throw invalid('Key Vault keeps deleted keys 7 to 90 days (the vault retention setting)');
  }
  if (req.days !== undefined) {
    const latest = { ...key, version: undefined };
    const found = await onKey(rpc, latest, o, () => getKey(rpc, latest, o));
    const retention = found.properties.recoverableDays;
    if (typeof retention === 'number' && req.days > retention) {
      throw invalid(
        `this vault keeps deleted keys ${retention} days (its soft-delete retention, a vault setting): a waiting period of ${req.days} days cannot be honoured`,
        rpc.uriOf(key.vault, key.name),
      );
    }
  }
  return beginThenRead(
    rpc,
    key,
    'the key was deleted (soft delete)',
    () => onKey(rpc, key, o, () => rpc.send(key.vault, o, (kc, so) => kc.beginDeleteKey(key.name, so))),
    async (poller) => {
      const deleted = await untilDone(rpc, poller, o);
      if (deleted === undefined) throw unexpected('a deletion without the deleted key');
      return deletedKeyInfo(rpc, key.vault, deleted, key.name);
    },
  );
}

/**
 * Recovers a soft-deleted key (all versions, as they were). The SDK's recover poller counts a live
 * key as recovered, so keyport first checks that the key is deleted.
 */
export async function cancelKeyDeletion(rpc: Rpc, key: ResolvedKey, o: Call): Promise<KeyInfo> {
  if ((await unless404(getDeletedKey(rpc, key, o))) === undefined) {
    // Not deleted: a live key is a state conflict, a missing one NotFound (the getKey 404).
    await getKey(rpc, { ...key, version: undefined }, o);
    throw failure('KeyStateConflict', 'the key is not pending deletion');
  }
  return beginThenRead(
    rpc,
    key,
    'the key was recovered',
    () => rpc.send(key.vault, o, (kc, so) => kc.beginRecoverDeletedKey(key.name, so)),
    async (poller) => {
      await untilDone(rpc, poller, o);
      return describeKey(rpc, { ...key, version: undefined }, o);
    },
  );
}
