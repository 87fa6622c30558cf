/**
 * Keys and their lifecycle. A keyport key name is an AWS alias (`alias/<name>`), created right
 * after the key; labels are tags; rotation status is read with GetKeyRotationStatus, and the date
 * of the current material with ListKeyRotations. AWS answers most lifecycle calls with nothing,
 * so those re-describe the key to return its new state.
 */
import type { KeyMetadata, Tag } from '@aws-sdk/client-kms';
import {
  checkCreateKeyRequest,
  checkInteger,
  checkRotationPolicy,
  checkScheduleDeletion,
  isKeyportError,
  isValidDate,
  type KeyInfo,
  type KeyportError,
  type KeyRef,
  type KeyUsage,
  keyportError,
  type ListOptions,
  needs,
  type ProviderCallOptions,
  quote,
  type RotationPolicy,
  settleOrAbort,
  type UnmodeledKey,
  USAGES_BY_SPEC,
  unmodeledKeyOf,
} from '@keyport/core';
import { answered, mapAwsError, nextMarker, PROVIDER_NAME, pageMarkers } from './errors.js';
import {
  type DriverOp,
  type InputOf,
  type KmsRpc,
  metadataOf,
  type OutputOf,
  type ResolvedKey,
  resolvedKey,
} from './rpc.js';
import { AWS_KEY_SPEC, AWS_KEY_USAGE, KEYPORT_KEY_STATE, keyportSpecOf } from './specs.js';
import { bareKeyId, isAlias, keyArnParts, keyUriFor, parseAwsUri } from './uri.js';

const ALIAS = /^alias\/[a-zA-Z0-9/_-]{1,250}$/;
const LIST_CONCURRENCY = 8;
/** How long createKey's clean-up of a key it could not name may take. */
const CLEANUP_MS = 10_000;
/** How long a CreateKey in flight may still answer after the caller's signal fired. */
const GRACE_MS = 10_000;

interface KeyInfoExtras {
  readonly labels?: Readonly<Record<string, string>>;
  readonly rotation?: RotationPolicy;
  readonly materialCreatedAt?: Date;
  readonly via?: ResolvedKey['parsed'];
}

function toKeyInfo(meta: KeyMetadata, extras: KeyInfoExtras = {}): KeyInfo {
  const uri = keyUriFor(answered(meta.Arn, 'a key ARN'), extras.via);
  const { spec, usage } = keyportSpecOf(meta, uri);
  // own entries only: an answer's KeyState "constructor" or "__proto__" is no state of ours
  const state =
    meta.KeyState !== undefined && Object.hasOwn(KEYPORT_KEY_STATE, meta.KeyState)
      ? KEYPORT_KEY_STATE[meta.KeyState]
      : undefined;
  return {
    uri,
    spec,
    usage,
    state: state ?? (meta.Enabled === true ? 'enabled' : 'disabled'),
    labels: extras.labels ?? {},
    origin: meta.Origin === 'EXTERNAL' ? 'external' : 'provider',
    // A date no instant (the SDK reads an epoch of 1e20 seconds as Invalid Date) is left out, not
    // handed on to fail `toISOString()` (the CLI's describe) or compare false with every date.
    ...(isValidDate(meta.CreationDate) ? { createdAt: meta.CreationDate } : {}),
    ...(isValidDate(meta.DeletionDate) ? { deletionDate: meta.DeletionDate } : {}),
    ...(meta.Description !== undefined && meta.Description !== '' ? { description: meta.Description } : {}),
    ...(extras.rotation !== undefined ? { rotation: extras.rotation } : {}),
    ...(extras.materialCreatedAt !== undefined ? { materialCreatedAt: extras.materialCreatedAt } : {}),
  };
}

/** `name` is a bare alias name or an `aws-kms://alias/<name>[?region=&endpoint=]` URI. */
async function aliasTarget(rpc: KmsRpc, name: string): Promise<ResolvedKey> {
  const uri = name.startsWith('aws-kms://') ? name : `aws-kms://alias/${name}`;
  needs(
    name.startsWith('aws-kms://') || ALIAS.test(`alias/${name}`),
    'AWS alias names are letters, digits, "/", "_" and "-"',
  );
  const key = await rpc.resolve(uri);
  needs(ALIAS.test(key.keyId), 'a new key is named by an alias: aws-kms://alias/<name>');
  // refused here, not by CreateAlias once the key exists (it would be made only to be deleted)
  needs(
    !key.keyId.startsWith('alias/aws/'),
    'AWS reserves alias/aws/ names for its managed keys: name the key otherwise',
  );
  return key;
}

/**
 * The rotation period of a neutral policy. AWS takes a period only (EnableKeyRotation's
 * RotationPeriodInDays) and schedules each rotation itself: a `nextRotationAt` it cannot honour
 * is refused, never dropped. The driver may be called directly, so the policy's shape is checked
 * here too (core checks it for a Keyport).
 */
function rotationPeriod(policy: unknown, option: string): number | undefined {
  const checked = checkRotationPolicy(policy, option);
  if (checked.nextRotationAt !== undefined)
    throw keyportError(
      'Unsupported',
      `${option}.nextRotationAt: AWS KMS takes a rotation period only and schedules each rotation itself`,
      { provider: PROVIDER_NAME, capability: 'rotationSchedule' },
    );
  const days = checked.periodDays;
  needs(
    days === undefined || (days >= 90 && days <= 2560),
    `${option}.periodDays: AWS rotation periods are 90 to 2560 days`,
  );
  return days;
}

/**
 * AWS rotates only symmetric keys whose material it made: asymmetric, HMAC and imported keys
 * answer EnableKeyRotation with UnsupportedOperationException. Checked before the key exists, so
 * a refused rotation leaves no half-made key (or alias) behind.
 */
function checkRotatable(req: { spec: string; external?: boolean | undefined }): void {
  needs(
    req.spec === 'AES_256' && req.external !== true,
    'AWS KMS rotates only AES_256 keys with AWS-made material (not asymmetric, HMAC or imported keys)',
  );
}

/** AWS answered with a refusal (HTTP 4xx): the request did nothing. */
function refusedByAws(error: unknown): boolean {
  const status = (error as { $metadata?: { httpStatusCode?: unknown } } | null)?.$metadata?.httpStatusCode;
  return typeof status === 'number' && status >= 400 && status < 500;
}

/**
 * A signal that fires GRACE_MS after `signal` does. CreateKey is sent with it, not with the
 * caller's: an abort cutting off a CreateKey AWS has already carried out would leave a key whose
 * id nobody learns. With the grace, its answer still arrives and the key is scheduled away.
 */
function graced(signal: AbortSignal): { signal: AbortSignal; done: () => void } {
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const onAbort = (): void => {
    timer = setTimeout(() => controller.abort(signal.reason), GRACE_MS);
  };
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  return {
    signal: controller.signal,
    done: () => {
      signal.removeEventListener('abort', onAbort);
      clearTimeout(timer);
    },
  };
}

/**
 * Best effort, never throws: schedules the key away (7 days, the shortest AWS allows; disabled
 * instead when the credentials may not schedule deletions, so it is at least unusable), then
 * drops the alias if it names that key. Says what became of the key, for the caller's error.
 */
async function cleanUpUnnamedKey(
  rpc: KmsRpc,
  target: ResolvedKey,
  KeyId: string,
  aliasMayExist: boolean,
): Promise<string> {
  const signal = AbortSignal.timeout(CLEANUP_MS);
  let fate = 'is scheduled for deletion in 7 days';
  try {
    await rpc.send(target, 'ScheduleKeyDeletion', { KeyId, PendingWindowInDays: 7 }, signal);
  } catch {
    fate = await rpc.send(target, 'DisableKey', { KeyId }, signal).then(
      () => 'could not be scheduled for deletion and is disabled instead: delete it yourself',
      () => 'could not be scheduled for deletion nor disabled: delete it yourself',
    );
  }
  if (aliasMayExist) {
    try {
      const named = await rpc.send(target, 'DescribeKey', { KeyId: target.keyId }, signal);
      // never another key's alias: a name already taken answers AlreadyExists, but check anyway
      if (named.KeyMetadata?.KeyId === KeyId)
        await rpc.send(target, 'DeleteAlias', { AliasName: target.keyId }, signal);
    } catch {
      // NotFound: the alias was never made
    }
  }
  return fate;
}

/** The caller's error, saying which key AWS made and what became of it (never key material). */
function withFate(error: unknown, KeyId: string, fate: string): KeyportError {
  const mapped = mapAwsError(error) ?? keyportError('Internal', 'createKey failed', { cause: error });
  return keyportError(mapped.code, `${mapped.message}; AWS had created key ${KeyId}, which ${fate}`, {
    provider: PROVIDER_NAME,
    ...(mapped.requestId !== undefined ? { requestId: mapped.requestId } : {}),
    retryable: mapped.retryable,
    ...(mapped.retryAfterMs !== undefined ? { retryAfterMs: mapped.retryAfterMs } : {}),
    cause: error,
  });
}

/**
 * Waits for this provider's earlier creation of the same name (alias and location), if any, and
 * registers this one (settled by calling what is returned) for the next to wait for. A retry of
 * a cut-off attempt then neither trips over that attempt's alias (AlreadyExists) nor races its
 * clean-up. The wait ends with the caller's signal.
 */
async function waitForEarlier(rpc: KmsRpc, name: string, signal: AbortSignal): Promise<() => void> {
  let settle = (): void => undefined;
  const mine = new Promise<void>((resolve) => {
    settle = resolve;
  });
  const earlier = rpc.creating.get(name);
  // settles once the earlier one has too, so a third waits for both
  const both = Promise.all([earlier?.catch(() => undefined), mine]);
  rpc.creating.set(name, both);
  void both.then(() => {
    if (rpc.creating.get(name) === both) rpc.creating.delete(name);
  });
  if (earlier !== undefined) {
    try {
      await settleOrAbort(
        earlier.catch(() => undefined),
        signal,
        () => aborted('before AWS was asked to create the key'),
      );
    } catch (e) {
      settle();
      throw e;
    }
  }
  return settle;
}

function aborted(when: string): KeyportError {
  return keyportError('Aborted', `createKey was aborted ${when}`, {
    provider: PROVIDER_NAME,
    retryable: false,
  });
}

/**
 * CreateKey's metadata and key id, refused (`Internal`, as every answer naming another key than
 * the one asked is) unless it names one key in the region the request was sent to: a key ARN of
 * that region, the key id its own, the account its AWSAccountId (when given). An endpoint
 * answering for another region (a proxy, a misrouted custom endpoint) would otherwise have its
 * ARN returned as the new key's URI, and every later call made with that URI go elsewhere. The
 * caller's own account is not known without STS, so it is not checked. Nothing is done with a
 * refused answer's key id (no alias, no clean-up: an id an untrusted answer names may be another
 * key's, such as a multi-Region replica's), so the error says a key may exist and names its id.
 */
async function createdKey(
  rpc: KmsRpc,
  target: ResolvedKey,
  out: OutputOf<'CreateKey'>,
): Promise<{ meta: KeyMetadata; KeyId: string }> {
  const meta = out.KeyMetadata;
  const KeyId = meta?.KeyId;
  const arn = meta?.Arn;
  const parts = typeof arn === 'string' ? keyArnParts(arn) : undefined;
  const region = await rpc.regionOf(target);
  let wrong: string | undefined;
  if (meta === undefined) wrong = 'without key metadata';
  else if (typeof KeyId !== 'string') wrong = 'without a key id';
  else if (parts === undefined)
    wrong = arn === undefined ? 'without a key ARN' : `with a key ARN that is none (${quote(arn, 256)})`;
  else if (parts.region !== region)
    wrong = `with a key of another region (${quote(arn, 256)}) than the one asked (${quote(region)})`;
  else if (parts.keyId !== KeyId)
    wrong = `with a key id (${quote(KeyId, 256)}) that is not its key ARN's (${quote(arn, 256)})`;
  else if (meta.AWSAccountId !== undefined && meta.AWSAccountId !== parts.account)
    wrong = `with a key ARN (${quote(arn, 256)}) of another account than its AWSAccountId (${quote(meta.AWSAccountId, 64)})`;
  if (wrong === undefined && meta !== undefined && typeof KeyId === 'string') return { meta, KeyId };
  const id = typeof KeyId === 'string' ? KeyId : parts?.keyId;
  throw keyportError(
    'Internal',
    `AWS KMS answered CreateKey ${wrong}: a key may have been created${id !== undefined ? ` (key id ${quote(id, 256)})` : ''}, which keyport neither named nor scheduled for deletion: check the endpoint and region, and delete it yourself`,
    { provider: PROVIDER_NAME, keyUri: target.uri, retryable: false },
  );
}

/** Core has checked the spec and usage against the declared capabilities. */
export const createKey: DriverOp<'createKey'> = async (rpc, given, o) => {
  // strict: AWS takes no provider-specific fields, so one meant for another provider is refused
  const req = checkCreateKeyRequest(given);
  const usage = req.usage ?? (USAGES_BY_SPEC[req.spec][0] as KeyUsage);
  const days = req.rotation !== undefined ? rotationPeriod(req.rotation, 'req.rotation') : undefined;
  if (days !== undefined) checkRotatable(req);
  const target = await aliasTarget(rpc, req.name);
  const tags = Object.entries(req.labels ?? {}).map(([TagKey, TagValue]) => ({ TagKey, TagValue }));
  const settle = await waitForEarlier(rpc, target.specKey, o.signal);
  /** The id of the key AWS made, once CreateKey has answered. */
  let made: string | undefined;
  // The whole creation, clean-up included, runs to its end even when the caller stops waiting.
  const work = (async () => {
    const sending = graced(o.signal);
    let created: OutputOf<'CreateKey'>;
    try {
      created = await rpc.send(
        target,
        'CreateKey',
        {
          KeySpec: AWS_KEY_SPEC[req.spec],
          KeyUsage: AWS_KEY_USAGE[usage],
          ...(req.external === true ? { Origin: 'EXTERNAL' } : {}),
          ...(req.description !== undefined ? { Description: req.description } : {}),
          ...(tags.length > 0 ? { Tags: tags } : {}),
        },
        sending.signal,
      );
    } finally {
      sending.done();
    }
    const { meta, KeyId } = await createdKey(rpc, target, created);
    made = KeyId;
    // Aborted (or timed out, which core retries): whatever was made is undone, alias included,
    // so what the caller was told (not created) holds and a retry finds the name free.
    const named = async (aliasMayExist: boolean) => {
      if (!o.signal.aborted) return meta;
      await cleanUpUnnamedKey(rpc, target, KeyId, aliasMayExist);
      throw aborted(`after AWS created key ${KeyId}, which is scheduled for deletion`);
    };
    if (o.signal.aborted) return named(false);
    let aliasSent = false;
    try {
      // the alias last: once it exists, the name is taken, so nothing may fail after it
      if (days !== undefined)
        await rpc.send(target, 'EnableKeyRotation', { KeyId, RotationPeriodInDays: days }, o.signal);
      aliasSent = true;
      await rpc.send(target, 'CreateAlias', { AliasName: target.keyId, TargetKeyId: KeyId }, o.signal);
    } catch (e) {
      // A CreateAlias cut off before AWS answered (lost connection, 5xx) may have made the
      // alias: the alias naming our key is the success the caller asked for (a retry would
      // only trip over it), so it is looked up first.
      let mayExist = aliasSent && !refusedByAws(e);
      if (mayExist && !o.signal.aborted) {
        const found = await rpc
          .send(target, 'DescribeKey', { KeyId: target.keyId }, o.signal)
          .catch((lookUp: unknown) => lookUp);
        const id = (found as { KeyMetadata?: { KeyId?: unknown } } | null)?.KeyMetadata?.KeyId;
        if (id === KeyId) return named(true);
        // another key's alias, or none at all (NotFound): nothing of ours to drop
        if (id !== undefined || refusedByAws(found)) mayExist = false;
      }
      if (o.signal.aborted) return named(mayExist);
      // The key is useless without its name: schedule it away and say so. An alias the cut-off
      // CreateAlias made would name a key pending deletion, so it goes too if it names ours.
      throw withFate(e, KeyId, await cleanUpUnnamedKey(rpc, target, KeyId, mayExist));
    }
    return named(true);
  })();
  // a caller that stopped waiting leaves it to finish alone
  work.then(settle, settle);
  // The clean-up outlives the caller's signal (CLEANUP_MS at most) but the caller is answered
  // at once, before AWS answered CreateKey or before the clean-up of the key it made finished.
  const meta = await settleOrAbort(work, o.signal, () =>
    made === undefined
      ? aborted('before AWS answered CreateKey; a key it made is scheduled for deletion once it answers')
      : aborted(`after AWS created key ${made}, which is being scheduled for deletion`),
  );
  const info = toKeyInfo(meta, {
    labels: { ...req.labels },
    via: target.parsed,
    ...(days !== undefined ? { rotation: { periodDays: days } } : {}),
  });
  rpc.remember(parseAwsUri(info.uri), info.spec);
  rpc.remember(target.parsed, info.spec);
  return info;
};

/**
 * A page size as AWS takes it: at most `max` (ListKeys 1000, ListGrants 100). Checked as core
 * checks it (a NaN or a string would reach AWS as null), then narrowed to what AWS allows.
 */
export function pageLimit(pageSize: unknown, max: number): number {
  return pageSize === undefined
    ? Math.min(100, max)
    : Math.min(checkInteger(pageSize, 'pageSize', 1, 10_000), max);
}

/** Tags as labels; own properties only, so a tag named `__proto__` is a label like any other. */
async function labelsOf(rpc: KmsRpc, key: ResolvedKey, KeyId: string, signal: AbortSignal) {
  const tags: Tag[] = [];
  let Marker: string | undefined;
  const markers = pageMarkers();
  do {
    const out = await rpc.send(key, 'ListResourceTags', { KeyId, Marker }, signal);
    tags.push(...(out.Tags ?? []));
    Marker = nextMarker(out, markers);
  } while (Marker !== undefined);
  return Object.fromEntries(
    tags.flatMap((t) => (t.TagKey !== undefined ? [[t.TagKey, t.TagValue ?? '']] : [])),
  );
}

/** Rotation applies to symmetric keys with AWS-generated material; other keys have none to report. */
async function rotationOf(rpc: KmsRpc, key: ResolvedKey, meta: KeyMetadata, signal: AbortSignal) {
  if (meta.KeySpec !== 'SYMMETRIC_DEFAULT' || meta.Origin !== 'AWS_KMS') return undefined;
  try {
    const out = await rpc.send(key, 'GetKeyRotationStatus', { KeyId: meta.KeyId }, signal);
    if (out.KeyRotationEnabled !== true) return {};
    return {
      periodDays: out.RotationPeriodInDays ?? 365,
      ...(out.NextRotationDate !== undefined ? { nextRotationAt: out.NextRotationDate } : {}),
    };
  } catch (e) {
    // a key pending deletion may refuse the status call; its state says enough
    if (isKeyportError(mapAwsError(e), 'KeyStateConflict')) return undefined;
    throw e;
  }
}

/** A page of ListKeyRotations holds at most this many (AWS's own maximum). */
const ROTATIONS_PAGE = 1000;

/** Answers to ListKeyRotations that leave the material's date unknown rather than fail the describe. */
const UNANSWERED_ROTATIONS: ReadonlySet<string> = new Set([
  'KeyStateConflict',
  'Unsupported',
  'AccessDenied',
]);

/**
 * When the key's current material was made. AWS names no versions, but ListKeyRotations lists
 * each completed rotation, the newest being the material in use; a key that never rotated uses
 * the material it was made with, dated by CreationDate when AWS made it (origin AWS_KMS) and the
 * key is no multi-Region replica (a replica shares material its primary made earlier). Imported
 * material was made outside AWS at a time AWS cannot know, and a rotation listed without its date
 * hides when the newest was made: both leave the date out, as does an endpoint without the call
 * (local-kms answers 501), credentials without kms:ListKeyRotations (describeKey asked for no
 * more before) and a key pending deletion that refuses it.
 */
async function materialCreatedOf(
  rpc: KmsRpc,
  key: ResolvedKey,
  meta: KeyMetadata,
  signal: AbortSignal,
): Promise<Date | undefined> {
  if (meta.Origin !== 'AWS_KMS') return undefined;
  const own =
    meta.MultiRegionConfiguration?.MultiRegionKeyType !== 'REPLICA' && isValidDate(meta.CreationDate)
      ? meta.CreationDate
      : undefined;
  // only symmetric keys rotate (checkRotatable): the others keep the material they were made with
  if (meta.KeySpec !== 'SYMMETRIC_DEFAULT') return own;
  let newest: Date | undefined;
  let Marker: string | undefined;
  const markers = pageMarkers();
  try {
    do {
      const page = await rpc.send(
        key,
        'ListKeyRotations',
        { KeyId: meta.KeyId, Limit: ROTATIONS_PAGE, Marker },
        signal,
      );
      for (const rotation of page.Rotations ?? []) {
        if (!isValidDate(rotation.RotationDate)) return undefined;
        if (newest === undefined || rotation.RotationDate > newest) newest = rotation.RotationDate;
      }
      Marker = nextMarker(page, markers);
    } while (Marker !== undefined);
  } catch (e) {
    const mapped = mapAwsError(e);
    if (mapped !== undefined && UNANSWERED_ROTATIONS.has(mapped.code)) return undefined;
    throw e;
  }
  return newest ?? own;
}

/**
 * Describes the key `key` names, or with `pinned` the key of that KeyId (an id or ARN an alias
 * was resolved to earlier in the same call): another principal may move an alias at any moment,
 * so a call that acted on the key the alias named must describe that key, not the alias again.
 */
async function describeResolved(
  rpc: KmsRpc,
  key: ResolvedKey,
  signal: AbortSignal,
  withRotation: boolean,
  pinned?: string,
) {
  const KeyId = pinned ?? key.keyId;
  const meta = metadataOf((await rpc.send(key, 'DescribeKey', { KeyId }, signal)).KeyMetadata, key, KeyId);
  const [labels, rotation, materialCreatedAt] = await Promise.all([
    labelsOf(rpc, key, answered(meta.KeyId, 'a key id'), signal),
    withRotation ? rotationOf(rpc, key, meta, signal) : undefined,
    withRotation ? materialCreatedOf(rpc, key, meta, signal) : undefined,
  ]);
  const info = toKeyInfo(meta, {
    labels,
    via: key.parsed,
    ...(rotation !== undefined ? { rotation } : {}),
    ...(materialCreatedAt !== undefined ? { materialCreatedAt } : {}),
  });
  // an alias described through its pinned key id may name another key by now: the spec is the ARN's
  rpc.remember(pinned !== undefined && isAlias(key.keyId) ? parseAwsUri(info.uri) : key.parsed, info.spec);
  return info;
}

/** The key of `KeyId` (resolved from `key` earlier in this call), described as describeKey does. */
export function describePinned(
  rpc: KmsRpc,
  key: ResolvedKey,
  KeyId: string,
  signal: AbortSignal,
): Promise<KeyInfo> {
  return describeResolved(rpc, key, signal, true, KeyId);
}

export const describeKey: DriverOp<'describeKey'> = async (rpc, ref, o) =>
  describeResolved(rpc, await rpc.resolve(ref), o.signal, true);

/** Why a listed key these credentials may not read is unmodeled (no AWS text: it names principals). */
const UNREADABLE_KEY =
  'these credentials may not read this key (AccessDenied on DescribeKey or ListResourceTags: its key policy refuses them), so keyport cannot describe it';

/**
 * Every key the credentials can list, described (tags included, rotation left to describeKey).
 * Keys whose spec keyport does not model (SM2, ECC_SECG_P256K1, HMAC_384...) are yielded as
 * unmodeled keys.
 */
export async function* listKeys(rpc: KmsRpc, o: ListOptions): AsyncIterable<KeyInfo | UnmodeledKey> {
  const route = await rpc.primary();
  const Limit = pageLimit(o.pageSize, 1000);
  let Marker: string | undefined;
  const markers = pageMarkers();
  do {
    const page = await rpc.send({ route }, 'ListKeys', { Limit, Marker }, o.signal);
    const arns = (page.Keys ?? []).flatMap((k) => (k.KeyArn !== undefined ? [k.KeyArn] : []));
    for (let i = 0; i < arns.length; i += LIST_CONCURRENCY) {
      const batch = await Promise.all(
        arns.slice(i, i + LIST_CONCURRENCY).map((arn) => {
          const uri = `aws-kms://${arn}`;
          const key = resolvedKey(route, uri, parseAwsUri(uri));
          return describeResolved(rpc, key, o.signal, false).catch((e: unknown) => {
            // A spec keyport does not model: listed as such, never left out.
            const unmodeled = unmodeledKeyOf(uri, e);
            if (unmodeled !== undefined) return unmodeled;
            const mapped = mapAwsError(e);
            // Deleted between ListKeys and its describe: gone, not part of the account any more.
            if (mapped?.code === 'NotFound') return undefined;
            // A key whose own policy refuses these credentials DescribeKey or ListResourceTags
            // (anyone who may create a key can make one): listed as one keyport cannot describe,
            // so the listing of every other key goes on and an inventory reports it unchecked.
            if (mapped?.code === 'AccessDenied') return { uri, unmodeled: UNREADABLE_KEY };
            throw e;
          });
        }),
      );
      for (const entry of batch) if (entry !== undefined) yield entry;
    }
    Marker = nextMarker(page, markers);
  } while (Marker !== undefined);
}

/** The management calls AWS answers with nothing. */
type ManagementOp =
  | 'RotateKeyOnDemand'
  | 'EnableKeyRotation'
  | 'DisableKeyRotation'
  | 'EnableKey'
  | 'DisableKey'
  | 'ScheduleKeyDeletion'
  | 'CancelKeyDeletion';

/**
 * Runs a management call, then describes the key to return its new state. AWS refuses aliases
 * there, so an alias is resolved first and a key ARN is cut to its key id; the key described is
 * the one the call changed (that key id), whatever the alias names by then.
 */
async function thenDescribe<Op extends ManagementOp>(
  rpc: KmsRpc,
  ref: KeyRef,
  o: ProviderCallOptions,
  op: Op,
  input?: Omit<InputOf<Op>, 'KeyId'>,
): Promise<KeyInfo> {
  const key = await rpc.resolve(ref);
  const KeyId = bareKeyId(await rpc.keyIdOrArn(key, o.signal));
  await rpc.send(key, op, { ...input, KeyId } as InputOf<Op>, o.signal);
  return describePinned(rpc, key, KeyId, o.signal);
}

export const rotateKey: DriverOp<'rotateKey'> = (rpc, ref, o) =>
  thenDescribe(rpc, ref, o, 'RotateKeyOnDemand');
export const enableKey: DriverOp<'enableKey'> = (rpc, ref, o) => thenDescribe(rpc, ref, o, 'EnableKey');
export const disableKey: DriverOp<'disableKey'> = (rpc, ref, o) => thenDescribe(rpc, ref, o, 'DisableKey');
/** AWS leaves a key whose deletion was cancelled disabled; the returned state says so. */
export const cancelKeyDeletion: DriverOp<'cancelKeyDeletion'> = (rpc, ref, o) =>
  thenDescribe(rpc, ref, o, 'CancelKeyDeletion');

export const setRotationPolicy: DriverOp<'setRotationPolicy'> = async (rpc, ref, policy, o) => {
  const days = rotationPeriod(policy, 'policy');
  return days === undefined
    ? thenDescribe(rpc, ref, o, 'DisableKeyRotation')
    : thenDescribe(rpc, ref, o, 'EnableKeyRotation', { RotationPeriodInDays: days });
};

/** AWS waits 7 to 30 days (30 when not given); checked here because not every endpoint checks. */
export const scheduleKeyDeletion: DriverOp<'scheduleKeyDeletion'> = async (rpc, ref, req, o) => {
  const days = checkScheduleDeletion(req).days ?? 30;
  needs(Number.isInteger(days) && days >= 7 && days <= 30, 'AWS KMS deletion waits 7 to 30 days');
  return thenDescribe(rpc, ref, o, 'ScheduleKeyDeletion', { PendingWindowInDays: days });
};
