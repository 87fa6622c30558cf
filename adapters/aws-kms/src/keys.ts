/**
 * Keys and their lifecycle. A keyport key name is an AWS alias (`alias/<name>`), created right
 * after the key; labels are tags; rotation status is read with GetKeyRotationStatus. AWS answers
 * most lifecycle calls with nothing, so those re-describe the key to return its new state.
 */
import type { KeyMetadata, Tag } from '@aws-sdk/client-kms';
import {
  type CreateKeyRequest,
  isKeyportError,
  type KeyInfo,
  type KeyRef,
  type ListOptions,
  needs,
  type ProviderCallOptions,
  parseKeyUri,
  type RotationPolicy,
  type ScheduleDeletionRequest,
  supportsSpec,
  UnsupportedError,
  USAGES_BY_SPEC,
} from '@keyport/core';
import { AWS_KMS_CAPABILITIES } from './capabilities.js';
import type { ResolvedKey } from './clients.js';
import { answered, mapAwsError, PROVIDER_NAME } from './errors.js';
import { labelsFromTags, tagsFromLabels, toKeyInfo } from './key-info.js';
import type { KmsRuntime } from './runtime.js';
import { kmsSdk } from './sdk.js';
import { AWS_KEY_SPEC, AWS_KEY_USAGE, keyportKeySpec } from './specs.js';

const ALIAS = /^alias\/[a-zA-Z0-9/_-]{1,250}$/;
const LIST_CONCURRENCY = 8;

/** `name` is a bare alias name or an `aws-kms://alias/<name>[?region=&endpoint=]` URI. */
async function aliasTarget(rt: KmsRuntime, name: string): Promise<ResolvedKey> {
  if (name.startsWith('aws-kms://')) {
    const key = await rt.clients.resolve(name);
    needs(ALIAS.test(key.keyId), 'a new key is named by an alias: aws-kms://alias/<name>');
    return key;
  }
  const alias = `alias/${name}`;
  needs(ALIAS.test(alias), 'AWS alias names are letters, digits, "/", "_" and "-"');
  const uri = `aws-kms://${alias}`;
  return {
    client: await rt.clients.primary(),
    uri,
    keyId: alias,
    parsed: parseKeyUri(uri) as ResolvedKey['parsed'],
  };
}

function checkRotationPeriod(days: number): void {
  needs(Number.isInteger(days) && days >= 90 && days <= 2560, 'AWS rotation periods are 90 to 2560 days');
}

export async function createKey(
  rt: KmsRuntime,
  req: CreateKeyRequest,
  o: ProviderCallOptions,
): Promise<KeyInfo> {
  const usage = req.usage ?? AWS_KMS_CAPABILITIES.keySpecs[req.spec]?.[0];
  needs(
    usage === undefined || USAGES_BY_SPEC[req.spec]?.includes(usage) === true,
    `${req.spec} keys cannot be used for ${String(usage)}`,
  );
  if (usage === undefined || !supportsSpec(AWS_KMS_CAPABILITIES, req.spec, usage)) {
    throw new UnsupportedError('keySpec', `AWS KMS does not offer ${req.spec} keys for ${String(usage)}`, {
      provider: PROVIDER_NAME,
    });
  }
  if (req.rotation?.periodDays !== undefined) checkRotationPeriod(req.rotation.periodDays);
  const target = await aliasTarget(rt, req.name);
  const send = { abortSignal: o.signal };
  const tags = tagsFromLabels(req.labels);
  const created = await target.client.send(
    new (kmsSdk().CreateKeyCommand)({
      KeySpec: AWS_KEY_SPEC[req.spec],
      KeyUsage: AWS_KEY_USAGE[usage],
      ...(req.external === true ? { Origin: 'EXTERNAL' } : {}),
      ...(req.description !== undefined ? { Description: req.description } : {}),
      ...(tags !== undefined ? { Tags: tags } : {}),
    }),
    send,
  );
  const meta = answered(created.KeyMetadata, 'key metadata');
  const keyId = answered(meta.KeyId, 'a key id');
  try {
    await target.client.send(
      new (kmsSdk().CreateAliasCommand)({ AliasName: target.keyId, TargetKeyId: keyId }),
      send,
    );
    if (req.rotation?.periodDays !== undefined) {
      await target.client.send(
        new (kmsSdk().EnableKeyRotationCommand)({
          KeyId: keyId,
          RotationPeriodInDays: req.rotation.periodDays,
        }),
        send,
      );
    }
  } catch (e) {
    // the key is useless without its name: schedule it away (best effort) and report the failure
    await target.client
      .send(new (kmsSdk().ScheduleKeyDeletionCommand)({ KeyId: keyId, PendingWindowInDays: 7 }))
      .catch(() => undefined);
    throw e;
  }
  const info = toKeyInfo(meta, {
    labels: { ...req.labels },
    via: target.parsed,
    ...(req.rotation?.periodDays !== undefined ? { rotation: { periodDays: req.rotation.periodDays } } : {}),
  });
  rt.remember(info.uri, info.spec);
  rt.remember(target.uri, info.spec);
  return info;
}

async function tagsOf(key: ResolvedKey, keyId: string, signal: AbortSignal): Promise<Tag[]> {
  const tags: Tag[] = [];
  let marker: string | undefined;
  do {
    const out = await key.client.send(
      new (kmsSdk().ListResourceTagsCommand)({
        KeyId: keyId,
        ...(marker !== undefined ? { Marker: marker } : {}),
      }),
      { abortSignal: signal },
    );
    tags.push(...(out.Tags ?? []));
    marker = out.Truncated === true ? out.NextMarker : undefined;
  } while (marker !== undefined);
  return tags;
}

/** Rotation applies to symmetric keys with AWS-generated material; other keys have none to report. */
async function rotationOf(
  key: ResolvedKey,
  meta: KeyMetadata,
  signal: AbortSignal,
): Promise<RotationPolicy | undefined> {
  if (keyportKeySpec(meta.KeySpec) !== 'AES_256' || meta.Origin !== 'AWS_KMS') return undefined;
  try {
    const out = await key.client.send(new (kmsSdk().GetKeyRotationStatusCommand)({ KeyId: meta.KeyId }), {
      abortSignal: signal,
    });
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

async function describeResolved(
  rt: KmsRuntime,
  key: ResolvedKey,
  signal: AbortSignal,
  withRotation: boolean,
): Promise<KeyInfo> {
  const out = await key.client.send(new (kmsSdk().DescribeKeyCommand)({ KeyId: key.keyId, ...rt.tokens() }), {
    abortSignal: signal,
  });
  const meta = answered(out.KeyMetadata, 'key metadata');
  const keyId = answered(meta.KeyId, 'a key id');
  const [tags, rotation] = await Promise.all([
    tagsOf(key, keyId, signal),
    withRotation ? rotationOf(key, meta, signal) : Promise.resolve(undefined),
  ]);
  const info = toKeyInfo(meta, {
    labels: labelsFromTags(tags),
    via: key.parsed,
    ...(rotation !== undefined ? { rotation } : {}),
  });
  rt.remember(key.uri, info.spec);
  return info;
}

export async function describeKey(rt: KmsRuntime, ref: KeyRef, o: ProviderCallOptions): Promise<KeyInfo> {
  return describeResolved(rt, await rt.clients.resolve(ref), o.signal, true);
}

/**
 * Every key the credentials can list, described (tags included, rotation left to describeKey).
 * Keys whose spec keyport does not model (SM2, ECC_SECG_P256K1, HMAC_384...) are left out.
 */
export async function* listKeys(rt: KmsRuntime, o: ListOptions): AsyncIterable<KeyInfo> {
  const client = await rt.clients.primary();
  const limit = Math.min(Math.max(o.pageSize ?? 100, 1), 1000);
  let marker: string | undefined;
  do {
    const page = await client.send(
      new (kmsSdk().ListKeysCommand)({ Limit: limit, ...(marker !== undefined ? { Marker: marker } : {}) }),
      { abortSignal: o.signal },
    );
    const arns = (page.Keys ?? []).map((k) => k.KeyArn).filter((a): a is string => a !== undefined);
    for (let i = 0; i < arns.length; i += LIST_CONCURRENCY) {
      const batch = await Promise.all(
        arns.slice(i, i + LIST_CONCURRENCY).map(async (arn) => {
          const uri = `aws-kms://${arn}`;
          const key: ResolvedKey = {
            client,
            uri,
            keyId: arn,
            parsed: parseKeyUri(uri) as ResolvedKey['parsed'],
          };
          try {
            return await describeResolved(rt, key, o.signal, false);
          } catch (e) {
            if (e instanceof UnsupportedError && e.capability === 'keySpec') return undefined;
            throw e;
          }
        }),
      );
      for (const info of batch) if (info !== undefined) yield info;
    }
    marker = page.Truncated === true ? page.NextMarker : undefined;
  } while (marker !== undefined);
}

/**
 * The KeyId for key-management calls. AWS refuses aliases there (they work only for crypto and
 * DescribeKey), so an alias is resolved first; a key ARN is cut to its key id, which is equivalent
 * because management calls cannot cross accounts (and moto accepts only the bare id).
 */
async function managedKeyId(rt: KmsRuntime, key: ResolvedKey, signal: AbortSignal): Promise<string> {
  const id = await rt.keyIdOrArn(key, signal);
  return /^arn:[^:]+:kms:[^:]+:[0-9]{12}:key\/(.+)$/.exec(id)?.[1] ?? id;
}

/** Runs a management call AWS answers with nothing, then describes the key. */
async function thenDescribe(
  rt: KmsRuntime,
  ref: KeyRef,
  o: ProviderCallOptions,
  call: (client: ResolvedKey['client'], keyId: string) => Promise<unknown>,
): Promise<KeyInfo> {
  const key = await rt.clients.resolve(ref);
  await call(key.client, await managedKeyId(rt, key, o.signal));
  return describeResolved(rt, key, o.signal, true);
}

export function rotateKey(rt: KmsRuntime, ref: KeyRef, o: ProviderCallOptions): Promise<KeyInfo> {
  return thenDescribe(rt, ref, o, (client, KeyId) =>
    client.send(new (kmsSdk().RotateKeyOnDemandCommand)({ KeyId }), { abortSignal: o.signal }),
  );
}

export async function setRotationPolicy(
  rt: KmsRuntime,
  ref: KeyRef,
  policy: RotationPolicy,
  o: ProviderCallOptions,
): Promise<KeyInfo> {
  const days = policy.periodDays;
  if (days !== undefined) checkRotationPeriod(days);
  return thenDescribe(rt, ref, o, (client, KeyId) =>
    client.send(
      days === undefined
        ? new (kmsSdk().DisableKeyRotationCommand)({ KeyId })
        : new (kmsSdk().EnableKeyRotationCommand)({ KeyId, RotationPeriodInDays: days }),
      { abortSignal: o.signal },
    ),
  );
}

export function enableKey(rt: KmsRuntime, ref: KeyRef, o: ProviderCallOptions): Promise<KeyInfo> {
  return thenDescribe(rt, ref, o, (client, KeyId) =>
    client.send(new (kmsSdk().EnableKeyCommand)({ KeyId }), { abortSignal: o.signal }),
  );
}

export function disableKey(rt: KmsRuntime, ref: KeyRef, o: ProviderCallOptions): Promise<KeyInfo> {
  return thenDescribe(rt, ref, o, (client, KeyId) =>
    client.send(new (kmsSdk().DisableKeyCommand)({ KeyId }), { abortSignal: o.signal }),
  );
}

/** AWS waits 7 to 30 days (30 when not given); checked here because not every endpoint checks. */
export async function scheduleKeyDeletion(
  rt: KmsRuntime,
  ref: KeyRef,
  req: ScheduleDeletionRequest,
  o: ProviderCallOptions,
): Promise<KeyInfo> {
  const days = req.days ?? 30;
  needs(Number.isInteger(days) && days >= 7 && days <= 30, 'AWS KMS deletion waits 7 to 30 days');
  return thenDescribe(rt, ref, o, (client, KeyId) =>
    client.send(new (kmsSdk().ScheduleKeyDeletionCommand)({ KeyId, PendingWindowInDays: days }), {
      abortSignal: o.signal,
    }),
  );
}

/** AWS leaves a key whose deletion was cancelled disabled; the returned state says so. */
export function cancelKeyDeletion(rt: KmsRuntime, ref: KeyRef, o: ProviderCallOptions): Promise<KeyInfo> {
  return thenDescribe(rt, ref, o, (client, KeyId) =>
    client.send(new (kmsSdk().CancelKeyDeletionCommand)({ KeyId }), { abortSignal: o.signal }),
  );
}
