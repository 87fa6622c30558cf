/**
 * Keys and their lifecycle. A keyport key name is an AWS alias (`alias/<name>`), created right
 * after the key; labels are tags; rotation status is read with GetKeyRotationStatus. AWS answers
 * most lifecycle calls with nothing, so those re-describe the key to return its new state.
 */
import type { KeyMetadata, Tag } from '@aws-sdk/client-kms';
import {
  checkCreateKeyRequest,
  checkInteger,
  checkRotationPolicy,
  checkScheduleDeletion,
  isKeyportError,
  type KeyInfo,
  type KeyRef,
  type KeyUsage,
  keyportError,
  type ListOptions,
  needs,
  type ProviderCallOptions,
  type RotationPolicy,
  USAGES_BY_SPEC,
} from '@keyport/core';
import { answered, mapAwsError, PROVIDER_NAME } from './errors.js';
import { type DriverOp, type InputOf, type KmsRpc, type ResolvedKey, resolvedKey } from './rpc.js';
import { AWS_KEY_SPEC, AWS_KEY_USAGE, KEYPORT_KEY_STATE, keyportSpecOf } from './specs.js';
import { bareKeyId, keyUriFor, parseAwsUri } from './uri.js';

const ALIAS = /^alias\/[a-zA-Z0-9/_-]{1,250}$/;
const LIST_CONCURRENCY = 8;
/** How long createKey's clean-up of a key it could not name may take. */
const CLEANUP_MS = 10_000;

interface KeyInfoExtras {
  readonly labels?: Readonly<Record<string, string>>;
  readonly rotation?: RotationPolicy;
  readonly via?: ResolvedKey['parsed'];
}

function toKeyInfo(meta: KeyMetadata, extras: KeyInfoExtras = {}): KeyInfo {
  const uri = keyUriFor(answered(meta.Arn, 'a key ARN'), extras.via);
  const { spec, usage } = keyportSpecOf(meta, uri);
  const state = meta.KeyState !== undefined ? KEYPORT_KEY_STATE[meta.KeyState] : undefined;
  return {
    uri,
    spec,
    usage,
    state: state ?? (meta.Enabled === true ? 'enabled' : 'disabled'),
    labels: extras.labels ?? {},
    origin: meta.Origin === 'EXTERNAL' ? 'external' : 'provider',
    ...(meta.CreationDate !== undefined ? { createdAt: meta.CreationDate } : {}),
    ...(meta.DeletionDate !== undefined ? { deletionDate: meta.DeletionDate } : {}),
    ...(meta.Description !== undefined && meta.Description !== '' ? { description: meta.Description } : {}),
    ...(extras.rotation !== undefined ? { rotation: extras.rotation } : {}),
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

/** Best effort, never throws: schedules the key away, then drops the alias if it names that key. */
async function cleanUpUnnamedKey(rpc: KmsRpc, target: ResolvedKey, KeyId: string, aliasMayExist: boolean) {
  const signal = AbortSignal.timeout(CLEANUP_MS);
  await rpc
    .send(target, 'ScheduleKeyDeletion', { KeyId, PendingWindowInDays: 7 }, signal)
    .catch(() => undefined);
  if (!aliasMayExist) return;
  try {
    const named = await rpc.send(target, 'DescribeKey', { KeyId: target.keyId }, signal);
    // never another key's alias: a name already taken answers AlreadyExists, but check anyway
    if (named.KeyMetadata?.KeyId === KeyId)
      await rpc.send(target, 'DeleteAlias', { AliasName: target.keyId }, signal);
  } catch {
    // NotFound: the alias was never made
  }
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
  const created = await rpc.send(
    target,
    'CreateKey',
    {
      KeySpec: AWS_KEY_SPEC[req.spec],
      KeyUsage: AWS_KEY_USAGE[usage],
      ...(req.external === true ? { Origin: 'EXTERNAL' } : {}),
      ...(req.description !== undefined ? { Description: req.description } : {}),
      ...(tags.length > 0 ? { Tags: tags } : {}),
    },
    o.signal,
  );
  const meta = answered(created.KeyMetadata, 'key metadata');
  const KeyId = answered(meta.KeyId, 'a key id');
  let aliasSent = false;
  try {
    // the alias last: once it exists, the name is taken, so nothing may fail after it
    if (days !== undefined)
      await rpc.send(target, 'EnableKeyRotation', { KeyId, RotationPeriodInDays: days }, o.signal);
    aliasSent = true;
    await rpc.send(target, 'CreateAlias', { AliasName: target.keyId, TargetKeyId: KeyId }, o.signal);
  } catch (e) {
    // The key is useless without its name: schedule it away (best effort) and report the failure.
    // A CreateAlias cut off before AWS answered (abort, timeout, lost connection, 5xx) may have
    // made the alias: it would name a key pending deletion, so it goes too if it names ours.
    // The clean-up outlives the caller's signal (an aborted call still cleans up) but not
    // CLEANUP_MS, and a caller that aborted is answered at once rather than after it.
    const cleanup = cleanUpUnnamedKey(rpc, target, KeyId, aliasSent && !refusedByAws(e));
    if (!o.signal.aborted) await cleanup;
    throw e;
  }
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
  do {
    const out = await rpc.send(key, 'ListResourceTags', { KeyId, Marker }, signal);
    tags.push(...(out.Tags ?? []));
    Marker = out.Truncated === true ? out.NextMarker : undefined;
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

async function describeResolved(rpc: KmsRpc, key: ResolvedKey, signal: AbortSignal, withRotation: boolean) {
  const meta = answered(
    (await rpc.send(key, 'DescribeKey', { KeyId: key.keyId }, signal)).KeyMetadata,
    'key metadata',
  );
  const [labels, rotation] = await Promise.all([
    labelsOf(rpc, key, answered(meta.KeyId, 'a key id'), signal),
    withRotation ? rotationOf(rpc, key, meta, signal) : undefined,
  ]);
  const info = toKeyInfo(meta, { labels, via: key.parsed, ...(rotation !== undefined ? { rotation } : {}) });
  rpc.remember(key.parsed, info.spec);
  return info;
}

export const describeKey: DriverOp<'describeKey'> = async (rpc, ref, o) =>
  describeResolved(rpc, await rpc.resolve(ref), o.signal, true);

/**
 * Every key the credentials can list, described (tags included, rotation left to describeKey).
 * Keys whose spec keyport does not model (SM2, ECC_SECG_P256K1, HMAC_384...) are left out.
 */
export async function* listKeys(rpc: KmsRpc, o: ListOptions): AsyncIterable<KeyInfo> {
  const route = await rpc.primary();
  const Limit = pageLimit(o.pageSize, 1000);
  let Marker: string | undefined;
  do {
    const page = await rpc.send({ route }, 'ListKeys', { Limit, Marker }, o.signal);
    const arns = (page.Keys ?? []).flatMap((k) => (k.KeyArn !== undefined ? [k.KeyArn] : []));
    for (let i = 0; i < arns.length; i += LIST_CONCURRENCY) {
      const batch = await Promise.all(
        arns.slice(i, i + LIST_CONCURRENCY).map((arn) => {
          const uri = `aws-kms://${arn}`;
          const key = resolvedKey(route, uri, parseAwsUri(uri));
          return describeResolved(rpc, key, o.signal, false).catch((e: unknown) => {
            if (isKeyportError(e, 'Unsupported')) return undefined; // a spec keyport does not model
            throw e;
          });
        }),
      );
      for (const info of batch) if (info !== undefined) yield info;
    }
    Marker = page.Truncated === true ? page.NextMarker : undefined;
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
 * there, so an alias is resolved first and a key ARN is cut to its key id.
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
  return describeResolved(rpc, key, o.signal, true);
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
