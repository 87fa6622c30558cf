/**
 * Keys, versions and their lifecycle: create (with the key ring on demand), describe, list,
 * rotate (a new version, made primary for ENCRYPT_DECRYPT keys), rotation policy,
 * enable/disable/destroy/restore of one version, and CryptoKey messages → KeyInfo.
 */
import { randomBytes } from 'node:crypto';
import type { protos } from '@google-cloud/kms';
import type {
  CreateKeyRequest,
  KeyInfo,
  KeyRef,
  KeyState,
  ListOptions,
  RotationPolicy,
  UnmodeledKey,
} from '@keyport/core';
import {
  abortedWaitError,
  KeyportError,
  type ProviderCallOptions as Opts,
  oneAtATime,
  quote,
  USAGES_BY_SPEC,
  unmodeledKeyOf,
} from '@keyport/core';
import { defined, type Runtime, remember, type UnansweredCreate, unless } from './rpc.js';
import {
  algorithmName,
  describeAlgorithm,
  KEY_STATE_BY_VERSION,
  newKeyAlgorithm,
  purposeName,
  versionState,
} from './specs.js';
import { type KeyTarget, keyUriOf, targetOf, versionIdOf, versionName } from './uri.js';

export type CryptoKey = protos.google.cloud.kms.v1.ICryptoKey;
type CryptoKeyVersion = protos.google.cloud.kms.v1.ICryptoKeyVersion;
/** The algorithm enum as the client's request types spell it. */
export type AlgorithmField = NonNullable<CryptoKeyVersion['algorithm']>;

const KEY_ID = /^[A-Za-z0-9_-]{1,63}$/;
/** Resource names are quoted whole in messages (core's default cut, 80 characters, would halve them). */
const NAME_CHARS = 512;
/** Cloud KMS label rules (https://cloud.google.com/kms/docs/creating-managing-labels). */
const LABEL_KEY = /^[\p{Ll}\p{Lo}][\p{Ll}\p{Lo}\p{N}_-]{0,62}$/u;
const LABEL_VALUE = /^[\p{Ll}\p{Lo}\p{N}_-]{0,63}$/u;
/** Cloud KMS holds at most 64 labels on a key (core lets a request give as many). */
const MAX_LABELS = 64;

/**
 * The label carrying createKey's marker: a random value (32 hex digits, within the label value
 * grammar) this provider instance chose for one request, sent in the CreateCryptoKey request
 * itself, so a key made by that request carries it from its first moment. A repeat of a create
 * whose answer was lost takes the existing key as its own only when it carries that value (see
 * claimOwnKey). It is keyport's, never a user's: refused as a label name and left out of KeyInfo.
 *
 * It stays on the key. Removing it would take an UpdateCryptoKey after every create: another
 * write that can fail once the key exists (the create would then be neither cleanly done nor
 * undone, and the marker would stay anyway), that needs cloudkms.cryptoKeys.update besides
 * create, and whose `labels` mask replaces the whole map (racing anyone editing labels then).
 * Left on, it gives nothing away: the value is worth something only while this instance holds it
 * for an unanswered create of that name, and it is dropped once that create is settled.
 */
export const CREATE_MARKER_LABEL = 'keyport-create-marker';

/**
 * The labels as Cloud KMS takes them, refused here when it would not: the REST transport builds
 * its message with plain assignment, so a `__proto__` key would vanish there (the key created
 * without it) while gRPC sends it; checking first gives both transports the same answer.
 */
function cloudKmsLabels(labels: Readonly<Record<string, string>> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  let index = 0;
  for (const [k, v] of Object.entries(labels ?? {})) {
    if (k === CREATE_MARKER_LABEL) {
      const why = `label #${index}: the label name ${CREATE_MARKER_LABEL} is reserved (keyport marks the keys it creates with it)`;
      throw new KeyportError('InvalidArgument', why);
    }
    if (!LABEL_KEY.test(k) || typeof v !== 'string' || !LABEL_VALUE.test(v)) {
      const why = `label #${index}: Cloud KMS label keys start with a lowercase letter and hold lowercase letters, digits, _ or - (at most 63); values the same, possibly empty`;
      throw new KeyportError('InvalidArgument', why);
    }
    out[k] = v;
    index++;
  }
  return out;
}

/** A key's labels without keyport's create marker: what callers gave, as KeyInfo shows them. */
function userLabels(labels: CryptoKey['labels']): Record<string, string> {
  return Object.fromEntries(Object.entries(labels ?? {}).filter(([k]) => k !== CREATE_MARKER_LABEL));
}
const DAY_SECONDS = 86_400;
const LIVE_STATES: readonly string[] = ['enabled', 'disabled', 'pending_import'];

/**
 * A protobuf Timestamp (seconds as number, string or Long) → Date; undefined when there is none,
 * or when it is no date (seconds past what a Date holds, text that is not a number): an Invalid
 * Date would reach the caller as a Date whose getTime() is NaN and whose toISOString() throws.
 */
export function toDate(t: { seconds?: unknown; nanos?: unknown } | null | undefined): Date | undefined {
  if (t?.seconds === null || t?.seconds === undefined) return undefined;
  const nanos = t.nanos === null || t.nanos === undefined ? 0 : Number(t.nanos);
  const at = new Date(Number(String(t.seconds)) * 1000 + Math.floor(nanos / 1e6));
  return Number.isNaN(at.getTime()) ? undefined : at;
}

/**
 * A rotation_period in days; undefined when there is none, or when it is not a positive number of
 * seconds (Cloud KMS periods are at least a day): a NaN, negative or zero period is no period.
 */
function periodDaysOf(period: { seconds?: unknown } | null | undefined): number | undefined {
  if (period?.seconds === null || period?.seconds === undefined) return undefined;
  const seconds = Number(String(period.seconds));
  return Number.isFinite(seconds) && seconds > 0 ? seconds / DAY_SECONDS : undefined;
}

/**
 * An answer naming a resource outside the key asked for (a listed version of another key, a
 * primary version of another key, a created key of another name): a malformed answer, Internal
 * and not retryable. Described as this key's, it would steer enable/disable and rotation to
 * another version id, and show another key's versions as this one's.
 */
function foreignAnswer(rt: Runtime, why: string, keyName: string): KeyportError {
  return new KeyportError('Internal', why, {
    keyUri: keyUriOf(keyName),
    provider: rt.rpc.providerName,
    retryable: false,
  });
}

/** Whether `name` is a version of the key `keyName` (`<keyName>/cryptoKeyVersions/<id>`). */
function isVersionOf(name: string | null | undefined, keyName: string): boolean {
  const id = versionIdOf(name);
  return id !== undefined && name === versionName(keyName, id);
}

/** The key as answered, refused when its embedded primary version is not one of its own versions. */
function ownPrimary(rt: Runtime, key: CryptoKey, keyName: string): CryptoKey {
  if (key.primary != null && !isVersionOf(key.primary.name, keyName)) {
    const named = key.primary.name ? quote(key.primary.name, NAME_CHARS) : 'no version name';
    throw foreignAnswer(
      rt,
      `Cloud KMS answered the key with a primary version ${named}, not one of its versions`,
      keyName,
    );
  }
  return key;
}

export const purposeOf = (key: CryptoKey): string => purposeName(key.purpose);

/**
 * The version keyport uses for a key without a pinned version. ENCRYPT_DECRYPT keys have a
 * primary; other purposes have none in Cloud KMS, so keyport takes the newest version that is
 * not destroyed (or scheduled for destruction) — rotateKey makes a new one, which then leads.
 */
function currentVersion(versions: readonly CryptoKeyVersion[]): CryptoKeyVersion | undefined {
  const newest = [...versions].sort(
    (a, b) => Number(versionIdOf(b.name) ?? 0) - Number(versionIdOf(a.name) ?? 0),
  );
  return newest.find((v) => LIVE_STATES.includes(versionState(v.state))) ?? newest[0];
}

/** Cloud KMS protection levels; EXTERNAL and EXTERNAL_VPC are Cloud EKM (material outside Google). */
const PROTECTION_BY_LEVEL: Readonly<Record<string, KeyInfo['protection']>> = Object.assign(
  Object.create(null),
  {
    SOFTWARE: 'software',
    HSM: 'hsm',
    EXTERNAL: 'external',
    EXTERNAL_VPC: 'external',
  },
);

/** KeyInfo for a key; `versions` (when listed) fills the version list and non-symmetric state. */
function toKeyInfo(key: CryptoKey, versions?: readonly CryptoKeyVersion[]): KeyInfo {
  const uri = keyUriOf(key.name ?? '');
  const algorithm = algorithmName(key.primary?.algorithm ?? key.versionTemplate?.algorithm);
  const { spec, usage } = describeAlgorithm(algorithm, uri);
  const leading = purposeOf(key) === 'ENCRYPT_DECRYPT' ? key.primary : versions && currentVersion(versions);
  const state: KeyState = leading
    ? KEY_STATE_BY_VERSION[versionState(leading.state)]
    : key.importOnly
      ? 'pending_import'
      : 'disabled';
  const rotation = defined({
    periodDays: periodDaysOf(key.rotationPeriod),
    nextRotationAt: toDate(key.nextRotationTime),
  });
  return {
    uri,
    spec,
    usage,
    state,
    labels: userLabels(key.labels),
    origin: key.importOnly ? 'external' : 'provider',
    ...defined({
      protection:
        PROTECTION_BY_LEVEL[String(key.primary?.protectionLevel ?? key.versionTemplate?.protectionLevel)],
      createdAt: toDate(key.createTime),
      primaryVersion: versionIdOf(leading?.name),
      versions: versions?.map((v) => ({
        version: versionIdOf(v.name) ?? '',
        state: versionState(v.state),
        ...defined({ createdAt: toDate(v.createTime), destroyAt: toDate(v.destroyTime) }),
      })),
      rotation: Object.keys(rotation).length > 0 ? rotation : undefined,
    }),
  };
}

/** Where a new key goes: a full gcp-kms:// URI, or a bare id inside the configured key ring. */
function newKeyTarget(rt: Runtime, name: string): { keyRing: string; id: string } {
  if (name.startsWith('gcp-kms://')) {
    const t = targetOf({ uri: name });
    if (t.version !== undefined) throw new KeyportError('InvalidArgument', 'a new key URI names no version');
    return { keyRing: t.keyRing, id: t.keyName.slice(t.keyRing.length + '/cryptoKeys/'.length) };
  }
  if (rt.keyRing === undefined) {
    const why = 'createKey with a bare name needs the keyRing option (or pass a gcp-kms:// URI)';
    throw new KeyportError('InvalidArgument', why);
  }
  if (!KEY_ID.test(name)) {
    throw new KeyportError('InvalidArgument', 'Cloud KMS key ids are 1-63 letters, digits, _ or -');
  }
  return { keyRing: rt.keyRing, id: name };
}

export async function createKey(rt: Runtime, req: CreateKeyRequest, o: Opts): Promise<KeyInfo> {
  // core has checked spec and usage against the capabilities; a direct caller gets InvalidArgument.
  const usage = req.usage ?? USAGES_BY_SPEC[req.spec]?.[0];
  const made = usage === undefined ? undefined : newKeyAlgorithm(req.spec, usage);
  if (made === undefined)
    throw new KeyportError('InvalidArgument', `no Cloud KMS key for ${req.spec}/${usage}`);
  const [purpose, algorithm] = made;
  const { keyRing, id } = newKeyTarget(rt, req.name);
  const external = req.external === true;
  const cryptoKey: CryptoKey = {
    purpose,
    versionTemplate: { algorithm: algorithm as AlgorithmField, protectionLevel: rt.protectionLevel },
    labels: cloudKmsLabels(req.labels),
    ...rotationOf(req.rotation),
    ...(external && { importOnly: true }),
  };
  const request = {
    parent: keyRing,
    cryptoKeyId: id,
    cryptoKey,
    ...(external && { skipInitialVersionCreation: true }),
  };
  const keyName = `${keyRing}/cryptoKeys/${id}`;
  const keyUri = `gcp-kms://${keyName}`;
  // Creates of one name in one provider go one at a time: a retry of a cut-off attempt then
  // sends only once that attempt has settled and said whether it went unanswered.
  const waited = abortedWaitError(
    rt.rpc.providerName,
    'createKey (waiting for an earlier createKey of this name)',
  );
  return oneAtATime(rt.creating, keyName, o.signal, waited, async () => {
    const created = await createCryptoKey(rt, request, keyName, keyUri, o);
    // The answer must be the key asked for: another key's would be handed back (its URI in
    // KeyInfo) and used by the caller as the new key.
    if (created.name !== keyName) {
      const named = created.name ? quote(created.name, NAME_CHARS) : 'no key name';
      const why = `Cloud KMS answered CreateCryptoKey with ${named}, not the key asked for; the key may have been made: describe it before creating it again`;
      throw foreignAnswer(rt, why, keyName);
    }
    ownPrimary(rt, created, keyName);
    if (purpose === 'ENCRYPT_DECRYPT') return toKeyInfo(created);
    return toKeyInfo(created, await listVersions(rt, keyName, o, keyUri));
  });
}

type CreateRequest = protos.google.cloud.kms.v1.ICreateCryptoKeyRequest & {
  parent: string;
  cryptoKeyId: string;
  cryptoKey: CryptoKey;
};

/** How long an unanswered CreateCryptoKey is remembered: a caller's own retry comes soon after. */
const UNANSWERED_MS = 10 * 60_000;
const PROTECTION_NAMES: readonly string[] = ['UNSPECIFIED', 'SOFTWARE', 'HSM', 'EXTERNAL', 'EXTERNAL_VPC'];

/**
 * What a key made from a request shows of it (purpose, algorithm, protection level, labels
 * without the create marker, import-only, rotation period), as one string: the request's, or a
 * fetched key's, to compare. next_rotation_time is left out: each attempt computes "now + period"
 * anew.
 */
function createdShape(key: CryptoKey): string {
  const level = key.versionTemplate?.protectionLevel;
  const period = key.rotationPeriod?.seconds;
  return JSON.stringify([
    purposeName(key.purpose),
    algorithmName(key.versionTemplate?.algorithm),
    typeof level === 'number' ? (PROTECTION_NAMES[level] ?? 'UNSPECIFIED') : String(level ?? 'SOFTWARE'),
    Object.entries(userLabels(key.labels)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    key.importOnly === true,
    period == null ? null : Number(String(period)),
  ]);
}

/** No answer came back: the connection dropped, the attempt timed out or was aborted. */
function unanswered(e: unknown, signal: AbortSignal): boolean {
  if (signal.aborted) return true;
  return !(e instanceof KeyportError) || ['Unavailable', 'Timeout', 'Aborted'].includes(e.code);
}

/**
 * A new create marker, or none when the request's labels leave no room for it on the key (a
 * repeat of such a create after a lost answer then stays AlreadyExists).
 */
function newMarker(cryptoKey: CryptoKey): string | undefined {
  return Object.keys(cryptoKey.labels ?? {}).length < MAX_LABELS
    ? randomBytes(16).toString('hex')
    : undefined;
}

/**
 * CreateCryptoKey (with the key ring created on demand). Cloud KMS takes no request id, so a
 * retry of an attempt whose answer was lost (core's, or the caller's own) meets ALREADY_EXISTS
 * for the key that attempt made. Each request carries a create marker (CREATE_MARKER_LABEL), the
 * same for every attempt of one request through this provider; attempts that end unanswered are
 * remembered (time sent, request, marker). When ALREADY_EXISTS follows one, the key is fetched
 * and is the answer only if it carries that marker and matches the request. A key someone else
 * made under the name, whenever and to whatever request, stays AlreadyExists: its creator could
 * not know the marker (a creation time after our send, the earlier test, let a key another
 * principal made to the same request in that window pass as ours).
 */
async function createCryptoKey(
  rt: Runtime,
  request: CreateRequest,
  keyName: string,
  keyUri: string,
  o: Opts,
): Promise<CryptoKey> {
  const shape = createdShape(request.cryptoKey);
  const send = async (): Promise<CryptoKey> => {
    const sentAt = Date.now();
    // Any attempt of this request may be the one that made the key: they all carry one marker.
    const marker = earlierAttempt(rt, keyName, shape, sentAt)?.marker ?? newMarker(request.cryptoKey);
    const labels = {
      ...request.cryptoKey.labels,
      ...(marker !== undefined && { [CREATE_MARKER_LABEL]: marker }),
    };
    const marked = { ...request, cryptoKey: { ...request.cryptoKey, labels } };
    try {
      const created = await rt.rpc.call(o, (co, kms) => kms.createCryptoKey(marked, co), keyUri);
      rt.unanswered.delete(keyName);
      return created;
    } catch (e) {
      // The earliest unanswered attempt of this request stays remembered (a later one carried
      // the same marker): its send time is what the memory of it runs from.
      const keep = earlierAttempt(rt, keyName, shape, sentAt) !== undefined;
      if (unanswered(e, o.signal) && !keep) remember(rt.unanswered, keyName, { sentAt, shape, marker });
      throw e;
    }
  };
  const create = () => send().catch((e: unknown) => claimOwnKey(rt, e, keyName, shape, keyUri, o));
  return create().catch(async (e: unknown) => {
    // The key ring does not exist yet: create it (key rings cannot be deleted, so this is one-off).
    unless('NotFound')(e);
    const [parent, keyRingId] = request.parent.split('/keyRings/') as [string, string];
    await rt.rpc
      .call(o, (co, kms) => kms.createKeyRing({ parent, keyRingId, keyRing: {} }, co))
      .catch(unless('AlreadyExists'));
    return create();
  });
}

/** The unanswered attempt remembered for `keyName`, if it was of this request and is recent at `now`. */
function earlierAttempt(
  rt: Runtime,
  keyName: string,
  shape: string,
  now: number,
): UnansweredCreate | undefined {
  const earlier = rt.unanswered.get(keyName);
  return earlier !== undefined && earlier.shape === shape && now - earlier.sentAt < UNANSWERED_MS
    ? earlier
    : undefined;
}

/** ALREADY_EXISTS after an unanswered attempt of this request: that attempt's key, if it is one. */
async function claimOwnKey(
  rt: Runtime,
  e: unknown,
  keyName: string,
  shape: string,
  keyUri: string,
  o: Opts,
): Promise<CryptoKey> {
  if (!(e instanceof KeyportError && e.code === 'AlreadyExists') || !rt.unanswered.has(keyName)) throw e;
  const earlier = earlierAttempt(rt, keyName, shape, Date.now());
  if (earlier?.marker === undefined) {
    rt.unanswered.delete(keyName);
    throw e;
  }
  // A lookup that fails retryably leaves the question open (and remembered) for the next attempt.
  const key = await getKey(rt, targetOf({ uri: keyUri }), o).catch((lookUp: unknown) => {
    if (lookUp instanceof KeyportError && lookUp.retryable) throw lookUp;
    throw e;
  });
  rt.unanswered.delete(keyName);
  // Only a request of ours carried this value: the key is the one our lost attempt made.
  const ours = key.labels?.[CREATE_MARKER_LABEL] === earlier.marker && createdShape(key) === shape;
  if (!ours) throw e;
  return key;
}

/**
 * GetCryptoKey, whose answer must be the key asked for: another key's would be described as this
 * one (its URI in KeyInfo), or its purpose would steer encrypt (an RSA key is encrypted to locally).
 */
export async function getKey(rt: Runtime, t: KeyTarget, o: Opts): Promise<CryptoKey> {
  const key = await rt.rpc.call(o, (co, kms) => kms.getCryptoKey({ name: t.keyName }, co), t.uri);
  if (key.name !== t.keyName) {
    const why = `Cloud KMS answered GetCryptoKey with ${key.name ? quote(key.name, NAME_CHARS) : 'no key name'}, not the requested key`;
    throw new KeyportError('Integrity', why, {
      keyUri: t.uri,
      provider: rt.rpc.providerName,
      retryable: true,
    });
  }
  return ownPrimary(rt, key, t.keyName);
}

/**
 * Versions one key may have before its listing is refused (kept in memory whole, for describeKey,
 * listKeys and picking the newest version; as the Key Vault driver has it): a key rotated daily
 * for 60 years has fewer. A server whose listing goes on with ever new page tokens would otherwise
 * fill memory until the call's deadline.
 */
export const MAX_LISTED_VERSIONS = 25_000;

async function listVersions(rt: Runtime, keyName: string, o: Opts, keyUri?: string) {
  const out: CryptoKeyVersion[] = [];
  const first = { parent: keyName, pageSize: 1000 };
  for await (const v of rt.rpc.pages(o, first, (r, co, kms) => kms.listCryptoKeyVersions(r, co), keyUri)) {
    if (out.length >= MAX_LISTED_VERSIONS)
      throw foreignAnswer(
        rt,
        `Cloud KMS listed more than ${MAX_LISTED_VERSIONS} versions of the key: the listing was ended`,
        keyName,
      );
    // A version of another key (or one without a name) is not one this listing asked for: shown
    // as this key's, or taken as its newest, it would steer sign/MAC/enable to that version id.
    if (!isVersionOf(v.name, keyName)) {
      const named = v.name ? quote(v.name, NAME_CHARS) : 'a version without a name';
      throw foreignAnswer(rt, `Cloud KMS listed ${named} among the versions of the key`, keyName);
    }
    out.push(v);
  }
  return out;
}

export async function describeKey(rt: Runtime, ref: KeyRef, o: Opts): Promise<KeyInfo> {
  const t = targetOf(ref);
  const key = await getKey(rt, t, o);
  try {
    return toKeyInfo(key, await listVersions(rt, t.keyName, o, t.uri));
  } catch (e) {
    // An endpoint without version listing (drongo, say) still describes ENCRYPT_DECRYPT keys,
    // whose primary version is embedded in the key.
    const missing = e instanceof KeyportError && (e.code === 'NotFound' || e.code === 'Unsupported');
    if (missing && purposeOf(key) === 'ENCRYPT_DECRYPT') return toKeyInfo(key);
    throw e;
  }
}

/** A listed key with an algorithm keyport has no spec for, before any further call; else undefined. */
function unmodeledOf(key: CryptoKey): UnmodeledKey | undefined {
  const uri = keyUriOf(key.name ?? '');
  try {
    describeAlgorithm(algorithmName(key.primary?.algorithm ?? key.versionTemplate?.algorithm), uri);
    return undefined;
  } catch (e) {
    const unmodeled = unmodeledKeyOf(uri, e);
    if (unmodeled === undefined) throw e;
    return unmodeled;
  }
}

export async function* listKeys(rt: Runtime, o: ListOptions): AsyncIterable<KeyInfo | UnmodeledKey> {
  if (rt.keyRing === undefined)
    throw new KeyportError('InvalidArgument', 'listKeys needs the keyRing option');
  const first = { parent: rt.keyRing, pageSize: o.pageSize ?? 100 };
  const inRing = `${rt.keyRing}/cryptoKeys/`;
  for await (const key of rt.rpc.pages(o, first, (r, co, kms) => kms.listCryptoKeys(r, co))) {
    // A key of another ring (or none) in the answer is not one this listing asked for: an
    // inventory showing it would mislead, and leaving it out would hide that the answer is wrong.
    const name = key.name ?? '';
    if (!name.startsWith(inRing) || name.slice(inRing.length).includes('/'))
      throw new KeyportError('Internal', `Cloud KMS listed a key outside the key ring ${rt.keyRing}`, {
        provider: rt.rpc.providerName,
        retryable: false,
      });
    // Only ENCRYPT_DECRYPT keys embed their leading version; others need their versions listed.
    const symmetric = purposeOf(key) === 'ENCRYPT_DECRYPT';
    // A key keyport has no spec for is listed as such (it used to end the whole listing).
    ownPrimary(rt, key, name);
    yield unmodeledOf(key) ?? (symmetric ? toKeyInfo(key) : toKeyInfo(key, await listVersions(rt, name, o)));
  }
}

/**
 * The version a call means, with its algorithm: the pinned one, else the primary (with
 * `preferPrimary`, for ENCRYPT_DECRYPT keys) or the newest live version. Algorithms are cached.
 */
export async function resolveVersion(rt: Runtime, t: KeyTarget, o: Opts, preferPrimary = false) {
  if (t.version !== undefined) {
    const name = versionName(t.keyName, t.version);
    const cached = rt.algorithms.get(name);
    if (cached !== undefined) return { id: t.version, algorithm: cached };
    const v = await rt.rpc.call(o, (co, kms) => kms.getCryptoKeyVersion({ name }, co), t.uri);
    return { id: t.version, algorithm: remember(rt.algorithms, name, algorithmName(v.algorithm)) };
  }
  const key = preferPrimary ? await getKey(rt, t, o) : undefined;
  const leading =
    key !== undefined && purposeOf(key) === 'ENCRYPT_DECRYPT'
      ? key.primary
      : currentVersion(await listVersions(rt, t.keyName, o, t.uri));
  const id = versionIdOf(leading?.name);
  if (!leading || id === undefined) {
    throw new KeyportError('KeyStateConflict', 'the key has no usable version', { keyUri: t.uri });
  }
  return {
    id,
    algorithm: remember(rt.algorithms, versionName(t.keyName, id), algorithmName(leading.algorithm)),
  };
}

export async function rotateKey(rt: Runtime, ref: KeyRef, o: Opts): Promise<KeyInfo> {
  const t = targetOf(ref);
  const request = { parent: t.keyName, cryptoKeyVersion: {} };
  const created = await rt.rpc.call(o, (co, kms) => kms.createCryptoKeyVersion(request, co), t.uri);
  const id = versionIdOf(created.name);
  // The new version is made primary by its id under this key: an answer naming no version, or
  // a version of another key, would make some other (older) version primary or none, and the
  // rotation would not be the one reported.
  if (id === undefined || created.name !== versionName(t.keyName, id)) {
    const named = created.name ? quote(created.name, NAME_CHARS) : 'no version name';
    const why = `Cloud KMS answered CreateCryptoKeyVersion with ${named}, not a new version of the key; a version may have been made: describe the key before rotating again`;
    throw new KeyportError('Internal', why, {
      keyUri: t.uri,
      provider: rt.rpc.providerName,
      retryable: false,
    });
  }
  // Only ENCRYPT_DECRYPT keys have a primary; for the others the newest version leads by itself.
  if (algorithmName(created.algorithm) === 'GOOGLE_SYMMETRIC_ENCRYPTION') {
    await setPrimary(rt, t, id, o);
  }
  return describeKey(rt, { uri: t.uri }, o);
}

export async function setPrimary(rt: Runtime, t: KeyTarget, id: string, o: Opts): Promise<void> {
  const request = { name: t.keyName, cryptoKeyVersionId: id };
  await rt.rpc.call(o, (co, kms) => kms.updateCryptoKeyPrimaryVersion(request, co), t.uri);
}

export async function setRotationPolicy(rt: Runtime, ref: KeyRef, policy: RotationPolicy, o: Opts) {
  const t = targetOf(ref);
  const request = {
    cryptoKey: { name: t.keyName, ...rotationOf(policy, t.uri) },
    updateMask: { paths: ['rotation_period', 'next_rotation_time'] },
  };
  await rt.rpc.call(o, (co, kms) => kms.updateCryptoKey(request, co), t.uri);
  return describeKey(rt, { uri: t.uri }, o);
}

/** Enables or disables the pinned version, or the primary (newest live version for keys without one). */
export async function setVersionState(rt: Runtime, ref: KeyRef, state: 'ENABLED' | 'DISABLED', o: Opts) {
  const t = targetOf(ref);
  const { id } = await resolveVersion(rt, t, o, true);
  const request = {
    cryptoKeyVersion: { name: versionName(t.keyName, id), state },
    updateMask: { paths: ['state'] },
  };
  await rt.rpc.call(o, (co, kms) => kms.updateCryptoKeyVersion(request, co), t.uri);
  return describeKey(rt, { uri: t.uri }, o);
}

/**
 * DestroyCryptoKeyVersion (DESTROY_SCHEDULED for the key's destroy_scheduled_duration, then
 * DESTROYED) or, Cloud KMS only, RestoreCryptoKeyVersion (the version comes back DISABLED).
 */
export async function destroyOrRestore(rt: Runtime, ref: KeyRef, action: 'destroy' | 'restore', o: Opts) {
  const t = targetOf(ref);
  if (t.version === undefined)
    throw new KeyportError('InvalidArgument', `${action}KeyVersion needs a key version`);
  const request = { name: versionName(t.keyName, t.version) };
  await rt.rpc.call(
    o,
    (co, kms) =>
      action === 'destroy'
        ? kms.destroyCryptoKeyVersion(request, co)
        : kms.restoreCryptoKeyVersion(request, co),
    t.uri,
  );
  return describeKey(rt, { uri: t.uri }, o);
}

/**
 * The rotation fields of a policy: none for `{}` (automatic rotation off, both fields cleared by
 * setRotationPolicy's update mask). A `nextRotationAt` without `periodDays` is refused: the
 * contract reads a missing period as "rotation off", so it would be dropped, and on
 * setRotationPolicy it would clear the key's rotation period instead of moving its next date.
 */
function rotationOf(
  policy: RotationPolicy | undefined,
  keyUri?: string,
): Pick<CryptoKey, 'rotationPeriod' | 'nextRotationTime'> {
  if (policy?.periodDays !== undefined) return rotationFields(policy);
  if (policy?.nextRotationAt !== undefined) {
    const why = 'rotation nextRotationAt needs periodDays (the period then starts from that date)';
    throw new KeyportError('InvalidArgument', why, keyUri === undefined ? {} : { keyUri });
  }
  return {};
}

/** rotation_period and next_rotation_time for a policy; refuses periods Cloud KMS cannot hold. */
function rotationFields(policy: RotationPolicy): Pick<CryptoKey, 'rotationPeriod' | 'nextRotationTime'> {
  const days = policy.periodDays;
  if (days === undefined || !Number.isFinite(days) || days <= 0) {
    throw new KeyportError('InvalidArgument', 'rotation periodDays must be a positive number of days');
  }
  const seconds = Math.round(days * DAY_SECONDS);
  const next = (policy.nextRotationAt ?? new Date(Date.now() + seconds * 1000)).getTime();
  return {
    rotationPeriod: { seconds },
    nextRotationTime: { seconds: Math.floor(next / 1000), nanos: (next % 1000) * 1e6 },
  };
}
