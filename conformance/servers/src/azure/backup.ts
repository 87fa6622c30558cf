// Backup and restore (https://learn.microsoft.com/rest/api/keyvault/keys/backup-key/backup-key,
// .../restore-key/restore-key). The blob is the key with all its versions, sealed with AES-256-GCM
// under the server's backup key: private material never leaves in the clear, and only a server
// holding the same backup key can restore it (as only the same subscription and geography can).
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { keyBundle, latestVersion, type VaultContext } from './bundle.js';
import { badParameter, conflict } from './errors.js';
import { deserializeMaterial, type SerializedMaterial, serializeMaterial } from './material.js';
import type { KeyAttributes, KeyRecord, KeyVersion, RotationPolicy } from './store.js';
import { type Body, bytesField } from './validate.js';

const MAGIC = Buffer.from('KPKVBAK1');

interface SerializedVersion {
  version: string;
  material: SerializedMaterial;
  keyOps: string[];
  attributes: KeyAttributes;
  tags: Record<string, string>;
}

interface BackupContents {
  mode: string;
  name: string;
  versions: SerializedVersion[];
  rotationPolicy?: RotationPolicy;
}

export function backupKey(ctx: VaultContext, name: string): { value: string } {
  const r = ctx.store.record(name);
  const contents: BackupContents = {
    mode: ctx.mode,
    name: r.name,
    versions: r.versions.map((v) => ({
      version: v.version,
      material: serializeMaterial(v.material),
      keyOps: v.keyOps,
      attributes: v.attributes,
      tags: v.tags,
    })),
  };
  if (r.rotationPolicy) contents.rotationPolicy = r.rotationPolicy;
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', ctx.backupKey, iv);
  cipher.setAAD(MAGIC);
  const sealed = Buffer.concat([cipher.update(JSON.stringify(contents)), cipher.final()]);
  const blob = Buffer.concat([MAGIC, iv, cipher.getAuthTag(), sealed]);
  return { value: blob.toString('base64url') };
}

function open(ctx: VaultContext, blob: Buffer): BackupContents {
  const invalid = badParameter('Backup blob contains invalid or corrupt version.');
  if (blob.length < MAGIC.length + 28 || !blob.subarray(0, MAGIC.length).equals(MAGIC)) throw invalid;
  const iv = blob.subarray(MAGIC.length, MAGIC.length + 12);
  const tag = blob.subarray(MAGIC.length + 12, MAGIC.length + 28);
  try {
    const decipher = createDecipheriv('aes-256-gcm', ctx.backupKey, iv);
    decipher.setAAD(MAGIC);
    decipher.setAuthTag(tag);
    const plain = Buffer.concat([decipher.update(blob.subarray(MAGIC.length + 28)), decipher.final()]);
    return JSON.parse(plain.toString('utf8')) as BackupContents;
  } catch {
    throw invalid;
  }
}

export function restoreKey(ctx: VaultContext, body: Body) {
  const contents = open(ctx, bytesField(body, 'value', true));
  if (contents.mode !== ctx.mode) {
    throw badParameter('The backup was taken from a different kind of vault and cannot be restored here.');
  }
  const id = contents.name.toLowerCase();
  if (ctx.store.live.has(id) || ctx.store.deleted.has(id)) {
    throw conflict(
      `There was a conflict restoring the key '${contents.name}': a key with this name already exists.`,
    );
  }
  const versions: KeyVersion[] = contents.versions.map((v) => ({
    version: v.version,
    material: deserializeMaterial(v.material),
    keyOps: v.keyOps,
    attributes: v.attributes,
    tags: v.tags,
  }));
  const record: KeyRecord = { name: contents.name, versions };
  if (contents.rotationPolicy) record.rotationPolicy = contents.rotationPolicy;
  ctx.store.live.set(id, record);
  return keyBundle(ctx, record, latestVersion(record));
}
