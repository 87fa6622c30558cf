// The JSON shapes the service returns: KeyBundle, KeyItem, DeletedKeyBundle, DeletedKeyItem
// (https://learn.microsoft.com/rest/api/keyvault/keys/get-key/get-key#keybundle).
import type { TestClock } from './clock.js';
import type { ServerMode } from './material.js';
import { publicJwk } from './material.js';
import type { DeletedRecord, KeyAttributes, KeyRecord, KeyStore, KeyVersion } from './store.js';

export interface VaultContext {
  readonly mode: ServerMode;
  readonly vaultUrl: string;
  readonly clock: TestClock;
  readonly store: KeyStore;
  /** Encrypts backup blobs; only a server holding it can restore them. */
  readonly backupKey: Buffer;
}

export const keyId = (ctx: VaultContext, name: string, version?: string): string =>
  `${ctx.vaultUrl}/keys/${name}${version ? `/${version}` : ''}`;

function attributesJson(ctx: VaultContext, a: KeyAttributes): Record<string, unknown> {
  const out: Record<string, unknown> = { enabled: a.enabled };
  if (a.nbf !== undefined) out.nbf = a.nbf;
  if (a.exp !== undefined) out.exp = a.exp;
  out.created = a.created;
  out.updated = a.updated;
  // A retention shorter than the 90-day default is reported as a customized level.
  out.recoveryLevel =
    ctx.store.recoverableDays === 90 ? 'Recoverable+Purgeable' : 'CustomizedRecoverable+Purgeable';
  out.recoverableDays = ctx.store.recoverableDays;
  out.exportable = false;
  return out;
}

const withTags = (out: Record<string, unknown>, tags: Record<string, string>) => {
  if (Object.keys(tags).length > 0) out.tags = { ...tags };
  return out;
};

export function keyBundle(ctx: VaultContext, r: KeyRecord, v: KeyVersion): Record<string, unknown> {
  return withTags(
    {
      key: publicJwk(v.material, keyId(ctx, r.name, v.version), v.keyOps),
      attributes: attributesJson(ctx, v.attributes),
    },
    v.tags,
  );
}

export function keyItem(ctx: VaultContext, r: KeyRecord, v: KeyVersion, withVersion: boolean) {
  return withTags(
    {
      kid: keyId(ctx, r.name, withVersion ? v.version : undefined),
      attributes: attributesJson(ctx, v.attributes),
    },
    v.tags,
  );
}

const deletedFields = (ctx: VaultContext, d: DeletedRecord) => ({
  recoveryId: `${ctx.vaultUrl}/deletedkeys/${d.record.name}`,
  deletedDate: d.deletedDate,
  scheduledPurgeDate: d.scheduledPurgeDate,
});

export function deletedKeyBundle(ctx: VaultContext, d: DeletedRecord): Record<string, unknown> {
  const latest = latestVersion(d.record);
  return { ...keyBundle(ctx, d.record, latest), ...deletedFields(ctx, d) };
}

export function deletedKeyItem(ctx: VaultContext, d: DeletedRecord): Record<string, unknown> {
  const latest = latestVersion(d.record);
  return { ...keyItem(ctx, d.record, latest, false), ...deletedFields(ctx, d) };
}

export function latestVersion(r: KeyRecord): KeyVersion {
  const v = r.versions[r.versions.length - 1];
  if (!v) throw new Error('a key record always has a version');
  return v;
}

export type { KeyStore };
