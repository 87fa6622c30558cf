/**
 * Keys and their lifecycle on Key Vault: create (refusing an existing name, which Key Vault
 * would turn into a new version), describe, list, rotate and the rotation policy, enable/disable
 * (every version), soft delete as scheduled deletion and recovery as its cancellation.
 */
import type { DeletedKey, KeyProperties, KeyRotationLifetimeAction, KeyVaultKey } from '@azure/keyvault-keys';
import {
  type CreateKeyRequest,
  type KeyInfo,
  KeyportError,
  type KeyRef,
  type KeyVersionInfo,
  type ListOptions,
  type ProviderCallOptions,
  type RotationPolicy,
  type ScheduleDeletionRequest,
  UnsupportedError,
} from '@keyport/core';
import { PROVIDER_NAME, statusOf } from './errors.js';
import type { AzureRuntime } from './runtime.js';
import { shapeFor, specOf, usageOf } from './specs.js';
import type { ResolvedKey, Vault } from './vaults.js';

/** Key Vault has no key description: keyport keeps it in this tag (and hides it from labels). */
export const DESCRIPTION_TAG = 'keyport-description';

const invalid = (message: string): KeyportError =>
  new KeyportError('InvalidArgument', message, { provider: PROVIDER_NAME });

function labelsOf(tags: Readonly<Record<string, string>> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(tags ?? {})) if (k !== DESCRIPTION_TAG) out[k] = v;
  return out;
}

function versionInfo(p: KeyProperties): KeyVersionInfo {
  return {
    version: p.version ?? '',
    state: p.enabled === false ? 'disabled' : 'enabled',
    ...(p.createdOn !== undefined ? { createdAt: p.createdOn } : {}),
  };
}

export function keyInfoOf(
  rt: AzureRuntime,
  vault: Vault,
  key: KeyVaultKey | DeletedKey,
  extra: { versions?: KeyVersionInfo[]; rotation?: RotationPolicy; deletionDate?: Date } = {},
): KeyInfo {
  const spec = specOf(key.key);
  rt.rememberSpec(vault, key.name, spec);
  const p = key.properties;
  const description = p.tags?.[DESCRIPTION_TAG];
  const state =
    extra.deletionDate !== undefined ? 'pending_deletion' : p.enabled === false ? 'disabled' : 'enabled';
  return {
    uri: rt.vaults.uriOf(vault, key.name),
    spec,
    usage: usageOf(spec, key.keyOperations),
    state,
    labels: labelsOf(p.tags),
    ...(p.createdOn !== undefined ? { createdAt: p.createdOn } : {}),
    ...(p.version !== undefined ? { primaryVersion: p.version } : {}),
    ...(extra.versions !== undefined ? { versions: extra.versions } : {}),
    ...(extra.rotation !== undefined ? { rotation: extra.rotation } : {}),
    ...(extra.deletionDate !== undefined ? { deletionDate: extra.deletionDate } : {}),
    ...(description !== undefined ? { description } : {}),
  };
}

/** Rotation period from a policy's Rotate action (`timeAfterCreate: P<n>D`). */
export function periodDaysOf(actions: readonly KeyRotationLifetimeAction[] | undefined): number | undefined {
  const rotate = actions?.find((a) => a.action.toLowerCase() === 'rotate' && a.timeAfterCreate !== undefined);
  const m = rotate?.timeAfterCreate === undefined ? null : /^P(\d+)D$/i.exec(rotate.timeAfterCreate);
  return m?.[1] === undefined ? undefined : Number(m[1]);
}

async function rotationOf(vault: Vault, name: string, latest: KeyVaultKey, o: ProviderCallOptions) {
  try {
    const policy = await (await vault.keys()).getKeyRotationPolicy(name, { abortSignal: o.signal });
    const periodDays = periodDaysOf(policy.lifetimeActions);
    if (periodDays === undefined) return undefined;
    const created = latest.properties.createdOn;
    return created === undefined
      ? { periodDays }
      : { periodDays, nextRotationAt: new Date(created.getTime() + periodDays * 86_400_000) };
  } catch (e) {
    // Reading the policy needs its own permission (getrotationpolicy); without it the rest still describes the key.
    if (statusOf(e) === 403) return undefined;
    throw e;
  }
}

async function versionsOf(vault: Vault, name: string, o: ProviderCallOptions): Promise<KeyProperties[]> {
  const out: KeyProperties[] = [];
  for await (const p of (await vault.keys()).listPropertiesOfKeyVersions(name, { abortSignal: o.signal }))
    out.push(p);
  return out;
}

/** Runs a management call; a 404 is explained (soft-deleted -> KeyStateConflict, else NotFound). */
async function onKey<T>(rt: AzureRuntime, key: ResolvedKey, o: ProviderCallOptions, run: () => Promise<T>) {
  try {
    return await run();
  } catch (e) {
    if (statusOf(e) === 404) return rt.explainMissing(key, e, false, o);
    throw e;
  }
}

export async function createKey(
  rt: AzureRuntime,
  req: CreateKeyRequest,
  o: ProviderCallOptions,
): Promise<KeyInfo> {
  if (req.external === true) {
    throw new UnsupportedError(
      'import',
      'Key Vault BYOK (key-exchange key) is not supported; use importJwk',
      {
        provider: PROVIDER_NAME,
      },
    );
  }
  const { vault, name } = rt.vaults.forNewKey(req.name);
  const { shape } = shapeFor(rt.capabilities, rt.vaults.kind, req.spec, req.usage);
  checkPeriod(req.rotation?.periodDays);
  // Key Vault answers "create" on an existing name with a new version; keyport's createKey refuses.
  try {
    await (await vault.keys()).getKey(name, { abortSignal: o.signal });
    throw new KeyportError('AlreadyExists', 'a key with this name exists (rotateKey adds a version)', {
      provider: PROVIDER_NAME,
      keyUri: rt.vaults.uriOf(vault, name),
    });
  } catch (e) {
    if (statusOf(e) !== 404) throw e;
  }
  const tags = {
    ...req.labels,
    ...(req.description !== undefined ? { [DESCRIPTION_TAG]: req.description } : {}),
  };
  rt.forgetSpec(vault, name);
  const created = await (await vault.keys()).createKey(name, shape.kty, {
    keyOps: shape.keyOps,
    ...(shape.keySize !== undefined ? { keySize: shape.keySize } : {}),
    ...(shape.curve !== undefined ? { curve: shape.curve } : {}),
    ...(Object.keys(tags).length > 0 ? { tags } : {}),
    abortSignal: o.signal,
  });
  let rotation: RotationPolicy | undefined;
  if (req.rotation?.periodDays !== undefined) {
    await writeRotationPolicy(vault, name, req.rotation.periodDays, o);
    rotation = { periodDays: req.rotation.periodDays };
  }
  return keyInfoOf(rt, vault, created, {
    versions: [versionInfo(created.properties)],
    ...(rotation !== undefined ? { rotation } : {}),
  });
}

export async function describeKey(rt: AzureRuntime, ref: KeyRef, o: ProviderCallOptions): Promise<KeyInfo> {
  const key = rt.vaults.resolve(ref);
  const { vault, name } = key;
  let latest: KeyVaultKey;
  try {
    latest = await (await vault.keys()).getKey(name, { abortSignal: o.signal });
  } catch (e) {
    if (statusOf(e) !== 404) throw e;
    const deleted = await deletedKey(vault, name, o);
    if (deleted === undefined) return rt.explainMissing(key, e, false, o);
    return keyInfoOf(rt, vault, deleted, pendingDeletion(deleted));
  }
  const [versions, rotation] = await Promise.all([
    versionsOf(vault, name, o),
    rotationOf(vault, name, latest, o),
  ]);
  if (key.version !== undefined && !versions.some((v) => v.version === key.version)) {
    throw new KeyportError('NotFound', 'the key has no such version', { provider: PROVIDER_NAME });
  }
  return keyInfoOf(rt, vault, latest, {
    versions: versions.map(versionInfo),
    ...(rotation !== undefined ? { rotation } : {}),
  });
}

async function deletedKey(
  vault: Vault,
  name: string,
  o: ProviderCallOptions,
): Promise<DeletedKey | undefined> {
  try {
    return await (await vault.keys()).getDeletedKey(name, { abortSignal: o.signal });
  } catch (e) {
    if (statusOf(e) === 404) return undefined;
    throw e;
  }
}

function pendingDeletion(d: DeletedKey): { deletionDate: Date } {
  return { deletionDate: d.properties.scheduledPurgeDate ?? d.properties.deletedOn ?? new Date() };
}

/**
 * Every key of every configured vault. Key Vault lists names and attributes only, so each key is
 * fetched for its type (in parallel per page). Keys with no keyport spec (EC P-521, P-256K, RSA of
 * other sizes) are left out of the listing.
 */
export async function* listKeys(rt: AzureRuntime, o: ListOptions): AsyncIterable<KeyInfo> {
  const maxPageSize = Math.min(25, Math.max(1, o.pageSize ?? 25));
  for (const vault of rt.vaults.all()) {
    const pages = (await vault.keys())
      .listPropertiesOfKeys({ abortSignal: o.signal })
      .byPage({ maxPageSize });
    for await (const page of pages) {
      const infos = await Promise.all(
        page.map(async (p) => {
          try {
            return keyInfoOf(rt, vault, await (await vault.keys()).getKey(p.name, { abortSignal: o.signal }));
          } catch (e) {
            if (e instanceof UnsupportedError || statusOf(e) === 404) return undefined; // unrepresentable, or deleted meanwhile
            throw e;
          }
        }),
      );
      for (const info of infos) if (info !== undefined) yield info;
    }
  }
}

export async function rotateKey(rt: AzureRuntime, ref: KeyRef, o: ProviderCallOptions): Promise<KeyInfo> {
  const key = rt.vaults.resolve(ref);
  await onKey(rt, key, o, async () =>
    (await key.vault.keys()).rotateKey(key.name, { abortSignal: o.signal }),
  );
  return describeKey(rt, { uri: rt.vaults.uriOf(key.vault, key.name) }, o);
}

function checkPeriod(days: number | undefined): void {
  if (days !== undefined && (!Number.isInteger(days) || days < 1)) {
    throw invalid('rotation periodDays must be a whole number of days >= 1 (Key Vault needs >= 7)');
  }
}

/** Replaces the policy's Rotate action, keeping its Notify actions and expiry. */
async function writeRotationPolicy(
  vault: Vault,
  name: string,
  periodDays: number | undefined,
  o: ProviderCallOptions,
) {
  const current = await (await vault.keys()).getKeyRotationPolicy(name, { abortSignal: o.signal });
  const kept = (current.lifetimeActions ?? []).filter((a) => a.action.toLowerCase() !== 'rotate');
  const rotate: KeyRotationLifetimeAction[] =
    periodDays === undefined ? [] : [{ action: 'Rotate', timeAfterCreate: `P${periodDays}D` }];
  await (await vault.keys()).updateKeyRotationPolicy(
    name,
    {
      lifetimeActions: [...rotate, ...kept],
      ...(current.expiresIn !== undefined ? { expiresIn: current.expiresIn } : {}),
    },
    { abortSignal: o.signal },
  );
}

export async function setRotationPolicy(
  rt: AzureRuntime,
  ref: KeyRef,
  policy: RotationPolicy,
  o: ProviderCallOptions,
): Promise<KeyInfo> {
  checkPeriod(policy.periodDays);
  const key = rt.vaults.resolve(ref);
  await onKey(rt, key, o, () => writeRotationPolicy(key.vault, key.name, policy.periodDays, o));
  return describeKey(rt, { uri: rt.vaults.uriOf(key.vault, key.name) }, o);
}

/** Enabled is a per-version attribute: keyport's key state covers the whole key, so every version changes. */
export async function setEnabled(
  rt: AzureRuntime,
  ref: KeyRef,
  enabled: boolean,
  o: ProviderCallOptions,
): Promise<KeyInfo> {
  const key = rt.vaults.resolve(ref);
  const versions = await onKey(rt, key, o, () => versionsOf(key.vault, key.name, o));
  await Promise.all(
    versions.map(async (v) =>
      (await key.vault.keys()).updateKeyProperties(key.name, v.version ?? '', {
        enabled,
        abortSignal: o.signal,
      }),
    ),
  );
  return describeKey(rt, { uri: rt.vaults.uriOf(key.vault, key.name) }, o);
}

/**
 * Soft delete. The waiting period is the vault's soft-delete retention (7-90 days, a vault
 * setting): `days` must lie in that range but cannot change it; the answer's deletionDate is the
 * vault's scheduled purge date.
 */
export async function scheduleKeyDeletion(
  rt: AzureRuntime,
  ref: KeyRef,
  req: ScheduleDeletionRequest,
  o: ProviderCallOptions,
): Promise<KeyInfo> {
  if (req.days !== undefined && (!Number.isInteger(req.days) || req.days < 7 || req.days > 90)) {
    throw invalid('Key Vault keeps deleted keys 7 to 90 days (the vault retention setting)');
  }
  const key = rt.vaults.resolve(ref);
  const poller = await onKey(rt, key, o, async () =>
    (await key.vault.keys()).beginDeleteKey(key.name, { abortSignal: o.signal, ...rt.pollOptions }),
  );
  const deleted = await poller.pollUntilDone({ abortSignal: o.signal });
  return keyInfoOf(rt, key.vault, deleted, pendingDeletion(deleted));
}

/**
 * Recovers a soft-deleted key (all versions, as they were). The SDK's recover poller counts a live
 * key as recovered, so keyport first checks that the key is deleted.
 */
export async function cancelKeyDeletion(
  rt: AzureRuntime,
  ref: KeyRef,
  o: ProviderCallOptions,
): Promise<KeyInfo> {
  const key = rt.vaults.resolve(ref);
  if ((await deletedKey(key.vault, key.name, o)) === undefined) {
    // Not deleted: a live key is a state conflict, a missing one NotFound (the getKey 404).
    await (await key.vault.keys()).getKey(key.name, { abortSignal: o.signal });
    throw new KeyportError('KeyStateConflict', 'the key is not pending deletion', {
      provider: PROVIDER_NAME,
    });
  }
  const poller = await (await key.vault.keys()).beginRecoverDeletedKey(key.name, {
    abortSignal: o.signal,
    ...rt.pollOptions,
  });
  await poller.pollUntilDone({ abortSignal: o.signal });
  return describeKey(rt, { uri: rt.vaults.uriOf(key.vault, key.name) }, o);
}

/** Purges a soft-deleted key now: irreversible. */
export async function purgeDeletedKey(rt: AzureRuntime, ref: KeyRef, o: ProviderCallOptions): Promise<void> {
  const key = rt.vaults.resolve(ref);
  await (await key.vault.keys()).purgeDeletedKey(key.name, { abortSignal: o.signal });
  rt.forgetSpec(key.vault, key.name);
}
