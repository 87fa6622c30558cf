import { randomBytes, randomUUID } from 'node:crypto';
import { algorithmSpec, HSM_ONLY, PURPOSES, type Purpose, pqcUnavailable } from './algorithms.js';
import { attest } from './attestation.js';
import type { CallContext, Handler } from './context.js';
import { generateMaterial } from './key-material.js';
import type { CryptoKeyRecord, VersionRecord } from './model.js';
import {
  checkId,
  parseCryptoKey,
  parseKeyRing,
  parseLocation,
  parseRetiredResource,
  parseVersion,
} from './names.js';
import { type ListRequest, page } from './paging.js';
import { kmsRoot, LABELS_MESSAGE } from './proto.js';
import { alreadyExists, invalid, precondition, unimplemented } from './rpc-error.js';
import {
  cryptoKeyToProto,
  fromDuration,
  fromTimestamp,
  keyRingToProto,
  retiredToProto,
  type Timestamp,
  timestamp,
  versionToProto,
} from './wire.js';

// KeyRings, CryptoKeys and CryptoKeyVersions: create, get, list, update and the version
// state machine (ENABLED ⇄ DISABLED → DESTROY_SCHEDULED → DESTROYED, restore to DISABLED).
const DAY = 86_400;
const DEFAULT_DESTROY_SECONDS = 30 * DAY;
const PROTECTION_LEVELS = new Set(['SOFTWARE', 'HSM']);
const KNOWN_PURPOSES = new Set(
  Object.keys(kmsRoot().lookupEnum('google.cloud.kms.v1.CryptoKey.CryptoKeyPurpose').values),
);
const KNOWN_ALGORITHMS = new Set(
  Object.keys(kmsRoot().lookupEnum('google.cloud.kms.v1.CryptoKeyVersion.CryptoKeyVersionAlgorithm').values),
);
const KNOWN_PROTECTION_LEVELS = new Set(
  Object.keys(kmsRoot().lookupEnum('google.cloud.kms.v1.ProtectionLevel').values),
);
const LABEL_KEY = /^[a-z][a-z0-9_-]{0,62}$/;
const LABEL_VALUE = /^[a-z0-9_-]{0,63}$/;

interface KeyRingCreate {
  parent?: string;
  keyRingId?: string;
  keyRing?: object;
}
interface NameRequest {
  name?: string;
}
interface ParentList extends ListRequest {
  parent?: string;
}
interface CryptoKeyInput {
  purpose?: string;
  labels?: Record<string, string>;
  versionTemplate?: { algorithm?: string; protectionLevel?: string } | null;
  rotationPeriod?: Timestamp | null;
  nextRotationTime?: Timestamp | null;
  destroyScheduledDuration?: Timestamp | null;
  importOnly?: boolean;
  name?: string;
  cryptoKeyBackend?: string;
}
interface CryptoKeyCreate {
  parent?: string;
  cryptoKeyId?: string;
  cryptoKey?: CryptoKeyInput | null;
  skipInitialVersionCreation?: boolean;
}
interface FieldMask {
  paths?: string[];
}
interface CryptoKeyUpdate {
  cryptoKey?: CryptoKeyInput | null;
  updateMask?: FieldMask | null;
}
interface VersionUpdate {
  cryptoKeyVersion?: { name?: string; state?: string } | null;
  updateMask?: FieldMask | null;
}
interface PrimaryUpdate {
  name?: string;
  cryptoKeyVersionId?: string;
}

function checkLabels(labels: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  const entries = Object.entries(labels ?? {});
  if (entries.length > 64) throw invalid('A resource may have at most 64 labels.');
  for (const [k, v] of entries) {
    if (!LABEL_KEY.test(k) || !LABEL_VALUE.test(v)) throw invalid(LABELS_MESSAGE);
    out[k] = v;
  }
  return out;
}

function checkTemplate(
  purpose: Purpose,
  input: CryptoKeyInput['versionTemplate'],
): { algorithm: string; protectionLevel: string } {
  const protectionLevel =
    !input?.protectionLevel || input.protectionLevel === 'PROTECTION_LEVEL_UNSPECIFIED'
      ? 'SOFTWARE'
      : input.protectionLevel;
  if (typeof protectionLevel !== 'string' || !KNOWN_PROTECTION_LEVELS.has(protectionLevel))
    throw invalid(`Invalid value for version_template.protection_level: ${JSON.stringify(protectionLevel)}.`);
  if (!PROTECTION_LEVELS.has(protectionLevel)) throw unimplemented(`Protection level ${protectionLevel}`);
  let algorithm = input?.algorithm;
  if (!algorithm || algorithm === 'CRYPTO_KEY_VERSION_ALGORITHM_UNSPECIFIED') {
    // Only ENCRYPT_DECRYPT keys have a default algorithm; the others must name one.
    if (purpose !== 'ENCRYPT_DECRYPT')
      throw invalid('version_template.algorithm must be specified for this purpose.');
    algorithm = 'GOOGLE_SYMMETRIC_ENCRYPTION';
  }
  if (typeof algorithm !== 'string' || !KNOWN_ALGORITHMS.has(algorithm))
    throw invalid(`Invalid value for version_template.algorithm: ${JSON.stringify(algorithm)}.`);
  const spec = algorithmSpec(String(algorithm));
  if (!spec) throw unimplemented(`Algorithm ${algorithm}`);
  const missing = pqcUnavailable(spec);
  if (missing !== undefined) throw unimplemented(`Algorithm ${algorithm} (${missing})`);
  if (spec.purpose !== purpose)
    throw invalid(`Algorithm ${algorithm} is not compatible with purpose ${purpose}.`);
  if (HSM_ONLY.has(String(algorithm)) && protectionLevel !== 'HSM') {
    throw invalid(`Algorithm ${algorithm} requires protection level HSM.`);
  }
  return { algorithm: String(algorithm), protectionLevel };
}

function checkRotation(purpose: Purpose, input: CryptoKeyInput, now: Date): { period?: number; next?: Date } {
  const out: { period?: number; next?: Date } = {};
  if (input.rotationPeriod) {
    if (purpose !== 'ENCRYPT_DECRYPT') throw invalid('Only ENCRYPT_DECRYPT keys support automatic rotation.');
    const period = fromDuration('rotation_period', input.rotationPeriod);
    if (period < DAY || period > 876_000 * 3600)
      throw invalid('rotation_period must be between 24 hours and 876,000 hours.');
    if (!input.nextRotationTime) throw invalid('next_rotation_time must be set when rotation_period is set.');
    out.period = period;
  }
  if (input.nextRotationTime) {
    if (purpose !== 'ENCRYPT_DECRYPT') throw invalid('Only ENCRYPT_DECRYPT keys support automatic rotation.');
    const next = fromTimestamp('next_rotation_time', input.nextRotationTime);
    if (next < now) throw invalid('next_rotation_time must be in the future.');
    out.next = next;
  }
  return out;
}

/** Makes a new version of `key` (material generated now) and stores it. */
export async function addVersion(ctx: CallContext, key: CryptoKeyRecord): Promise<VersionRecord> {
  const spec = algorithmSpec(key.algorithm)!;
  const material = await generateMaterial(spec);
  return storeVersion(key, ctx.now, { state: 'ENABLED', material, generateTime: ctx.now });
}

export function storeVersion(key: CryptoKeyRecord, now: Date, fields: Partial<VersionRecord>): VersionRecord {
  const id = key.nextVersionId++;
  const version: VersionRecord = {
    id,
    name: `${key.name}/cryptoKeyVersions/${id}`,
    state: 'ENABLED',
    algorithm: key.algorithm,
    protectionLevel: key.protectionLevel,
    createTime: now,
    ...fields,
  };
  if (version.protectionLevel === 'HSM' && version.material) {
    version.attestation = attest(version.name, version.algorithm, version.material, now);
  }
  key.versions.set(id, version);
  return version;
}

/** Automatic rotation (symmetric keys only): a new ENABLED version becomes primary. */
export function rotateSymmetric(key: CryptoKeyRecord, at: Date): void {
  const v = storeVersion(key, at, {
    state: 'ENABLED',
    material: { kind: 'secret', key: randomBytes(32) },
    generateTime: at,
  });
  key.primaryId = v.id;
}

// Over gRPC a FieldMask's paths are the proto field names as sent: "rotation_period", never
// "rotationPeriod" nor "labels,rotation_period" (the lowerCamel, comma-joined form is the JSON
// encoding only, google/protobuf/field_mask.proto "JSON Encoding of Field Masks"; the REST layer
// converts it). Anything else is not a field of the resource: INVALID_ARGUMENT.
function maskPaths(mask: FieldMask | null | undefined): string[] {
  const paths = mask?.paths ?? [];
  if (paths.length === 0) throw invalid('update_mask must name at least one field.');
  return paths;
}

export const keyHandlers: Record<string, Handler> = {
  CreateKeyRing(request, ctx) {
    const req = request as KeyRingCreate;
    const parent = parseLocation('parent', req.parent);
    const id = checkId('key_ring_id', req.keyRingId);
    ctx.authorize(parent, 'cloudkms.keyRings.create');
    const name = `${parent}/keyRings/${id}`;
    if (ctx.state.keyRings.has(name)) throw alreadyExists(`KeyRing ${name}`);
    const ring = { name, createTime: ctx.now };
    ctx.state.keyRings.set(name, ring);
    return keyRingToProto(ring);
  },

  GetKeyRing(request, ctx) {
    const name = parseKeyRing('name', (request as NameRequest).name);
    ctx.authorize(name, 'cloudkms.keyRings.get');
    return keyRingToProto(ctx.state.keyRing(name));
  },

  ListKeyRings(request, ctx) {
    const req = request as ParentList;
    const parent = parseLocation('parent', req.parent);
    ctx.authorize(parent, 'cloudkms.keyRings.list');
    const rings = [...ctx.state.keyRings.values()]
      .filter((r) => r.name.startsWith(`${parent}/`))
      .sort(byName);
    const p = page(parent, 'google.cloud.kms.v1.KeyRing', rings.map(keyRingToProto), req);
    return { keyRings: p.items, nextPageToken: p.nextPageToken, totalSize: p.totalSize };
  },

  async CreateCryptoKey(request, ctx) {
    const req = request as CryptoKeyCreate;
    const parent = parseKeyRing('parent', req.parent);
    const id = checkId('crypto_key_id', req.cryptoKeyId);
    ctx.authorize(parent, 'cloudkms.cryptoKeys.create');
    const input = req.cryptoKey;
    if (!input) throw invalid('crypto_key is required.');
    ctx.state.keyRing(parent);
    const name = `${parent}/cryptoKeys/${id}`;
    if (ctx.state.cryptoKeys.has(name)) throw alreadyExists(`CryptoKey ${name}`);
    const purpose = input.purpose as Purpose;
    if (!input.purpose || input.purpose === 'CRYPTO_KEY_PURPOSE_UNSPECIFIED')
      throw invalid('crypto_key.purpose must be specified.');
    // A number here is a value the enum does not define (the decoder keeps unknown values as
    // numbers): the service answers INVALID_ARGUMENT. Defined purposes this server lacks are
    // UNIMPLEMENTED.
    if (typeof input.purpose !== 'string' || !KNOWN_PURPOSES.has(input.purpose))
      throw invalid(`Invalid value for crypto_key.purpose: ${JSON.stringify(input.purpose)}.`);
    if (!PURPOSES.includes(purpose)) throw unimplemented(`Purpose ${input.purpose}`);
    if (ctx.state.retiredNames.has(name)) {
      throw alreadyExists(`CryptoKey ${name} (deleted; the name is retired)`);
    }
    if (input.cryptoKeyBackend) throw unimplemented('crypto_key_backend');
    const template = checkTemplate(purpose, input.versionTemplate);
    const rotation = checkRotation(purpose, input, ctx.now);
    let destroySeconds = DEFAULT_DESTROY_SECONDS;
    if (input.destroyScheduledDuration) {
      destroySeconds = fromDuration('destroy_scheduled_duration', input.destroyScheduledDuration);
      if (destroySeconds < DAY || destroySeconds > 120 * DAY) {
        throw invalid('destroy_scheduled_duration must be between 24 hours and 120 days.');
      }
    }
    const importOnly = input.importOnly === true;
    if (importOnly && !req.skipInitialVersionCreation) {
      throw invalid('skip_initial_version_creation must be true for import_only keys.');
    }
    const key: CryptoKeyRecord = {
      name,
      keyRing: parent,
      purpose,
      createTime: ctx.now,
      labels: checkLabels(input.labels),
      algorithm: template.algorithm,
      protectionLevel: template.protectionLevel,
      destroyScheduledDurationSeconds: destroySeconds,
      importOnly,
      versions: new Map(),
      nextVersionId: 1,
      ...(rotation.period !== undefined && { rotationPeriodSeconds: rotation.period }),
      ...(rotation.next && { nextRotationTime: rotation.next }),
    };
    if (!req.skipInitialVersionCreation) {
      const v = await addVersion(ctx, key);
      if (purpose === 'ENCRYPT_DECRYPT') key.primaryId = v.id;
    }
    // Stored only after generation succeeded, so a failed create leaves nothing behind.
    if (ctx.state.cryptoKeys.has(name)) throw alreadyExists(`CryptoKey ${name}`);
    ctx.state.cryptoKeys.set(name, key);
    return cryptoKeyToProto(key);
  },

  GetCryptoKey(request, ctx) {
    const { key } = parseCryptoKey('name', (request as NameRequest).name);
    ctx.authorize(key, 'cloudkms.cryptoKeys.get');
    return cryptoKeyToProto(ctx.state.cryptoKey(key));
  },

  ListCryptoKeys(request, ctx) {
    const req = request as ParentList;
    const parent = parseKeyRing('parent', req.parent);
    ctx.authorize(parent, 'cloudkms.cryptoKeys.list');
    ctx.state.keyRing(parent);
    const keys = [...ctx.state.cryptoKeys.values()].filter((k) => k.keyRing === parent).sort(byName);
    // The primary's attestation is only in the FULL view (CryptoKeyVersionView).
    const full = (req as { versionView?: string }).versionView === 'FULL';
    const protos = keys
      .map(cryptoKeyToProto)
      .map((k) => (full || !k.primary ? k : { ...k, primary: withoutAttestation(k.primary) }));
    const p = page(parent, 'google.cloud.kms.v1.CryptoKey', protos, req);
    return {
      cryptoKeys: p.items,
      nextPageToken: p.nextPageToken,
      totalSize: p.totalSize,
    };
  },

  UpdateCryptoKey(request, ctx) {
    const req = request as CryptoKeyUpdate;
    const input = req.cryptoKey;
    if (!input) throw invalid('crypto_key is required.');
    const { key: name } = parseCryptoKey('crypto_key.name', input.name);
    ctx.authorize(name, 'cloudkms.cryptoKeys.update');
    const key = ctx.state.cryptoKey(name);
    const paths = maskPaths(req.updateMask);
    const next = { ...key };
    for (const path of paths) {
      switch (path) {
        case 'labels':
          next.labels = checkLabels(input.labels);
          break;
        case 'rotation_period':
        case 'next_rotation_time':
          break; // reconciled together below
        case 'version_template':
        case 'version_template.algorithm': {
          const t = checkTemplate(key.purpose, {
            algorithm: input.versionTemplate?.algorithm ?? '',
            protectionLevel: input.versionTemplate?.protectionLevel || key.protectionLevel,
          });
          if (t.protectionLevel !== key.protectionLevel)
            throw invalid('version_template.protection_level cannot be changed.');
          next.algorithm = t.algorithm;
          break;
        }
        case 'purpose':
        case 'import_only':
        case 'destroy_scheduled_duration':
        case 'crypto_key_backend':
          throw invalid(`${path} is immutable.`);
        default:
          throw invalid(`update_mask path ${path} is not a mutable field of CryptoKey.`);
      }
    }
    if (paths.includes('rotation_period') || paths.includes('next_rotation_time')) {
      const rotation = checkRotation(
        key.purpose,
        {
          rotationPeriod: paths.includes('rotation_period')
            ? (input.rotationPeriod ?? null)
            : key.rotationPeriodSeconds === undefined
              ? null
              : { seconds: key.rotationPeriodSeconds },
          nextRotationTime: paths.includes('next_rotation_time')
            ? (input.nextRotationTime ?? null)
            : key.nextRotationTime
              ? timestamp(key.nextRotationTime)
              : null,
        },
        ctx.now,
      );
      delete next.rotationPeriodSeconds;
      delete next.nextRotationTime;
      if (rotation.period !== undefined) next.rotationPeriodSeconds = rotation.period;
      if (rotation.next) next.nextRotationTime = rotation.next;
    }
    // Applied only once every path validated: a rejected update changes nothing.
    ctx.state.cryptoKeys.set(name, next);
    return cryptoKeyToProto(next);
  },

  async CreateCryptoKeyVersion(request, ctx) {
    const req = request as { parent?: string; cryptoKeyVersion?: { state?: string } | null };
    const { key: name } = parseCryptoKey('parent', req.parent);
    ctx.authorize(name, 'cloudkms.cryptoKeyVersions.create');
    const key = ctx.state.cryptoKey(name);
    if (key.importOnly)
      throw precondition('New versions of import_only keys can only be made by ImportCryptoKeyVersion.');
    const state = req.cryptoKeyVersion?.state;
    if (
      state &&
      state !== 'CRYPTO_KEY_VERSION_STATE_UNSPECIFIED' &&
      state !== 'ENABLED' &&
      state !== 'DISABLED'
    ) {
      throw invalid('crypto_key_version.state may only be ENABLED or DISABLED.');
    }
    const v = await addVersion(ctx, key);
    if (state === 'DISABLED') v.state = 'DISABLED';
    return versionToProto(v);
  },

  GetCryptoKeyVersion(request, ctx) {
    const { key, versionId } = parseVersion('name', (request as NameRequest).name);
    ctx.authorize(key, 'cloudkms.cryptoKeyVersions.get');
    return versionToProto(ctx.state.version(key, versionId).version);
  },

  ListCryptoKeyVersions(request, ctx) {
    const req = request as ParentList;
    const { key: name } = parseCryptoKey('parent', req.parent);
    ctx.authorize(name, 'cloudkms.cryptoKeyVersions.list');
    const key = ctx.state.cryptoKey(name);
    const full = (req as { view?: string }).view === 'FULL';
    const versions = [...key.versions.values()]
      .map(versionToProto)
      .map((v) => (full ? v : withoutAttestation(v)));
    const p = page(name, 'google.cloud.kms.v1.CryptoKeyVersion', versions, req);
    return {
      cryptoKeyVersions: p.items,
      nextPageToken: p.nextPageToken,
      totalSize: p.totalSize,
    };
  },

  UpdateCryptoKeyVersion(request, ctx) {
    const req = request as VersionUpdate;
    const input = req.cryptoKeyVersion;
    if (!input) throw invalid('crypto_key_version is required.');
    const { key, versionId } = parseVersion('crypto_key_version.name', input.name);
    ctx.authorize(key, 'cloudkms.cryptoKeyVersions.update');
    const { version } = ctx.state.version(key, versionId);
    for (const path of maskPaths(req.updateMask)) {
      if (path !== 'state')
        throw invalid(`update_mask path ${path} is not a mutable field of CryptoKeyVersion.`);
    }
    if (input.state !== 'ENABLED' && input.state !== 'DISABLED') {
      throw invalid('crypto_key_version.state may only be changed to ENABLED or DISABLED.');
    }
    if (version.state !== 'ENABLED' && version.state !== 'DISABLED') {
      throw precondition(
        `The request cannot be fulfilled: CryptoKeyVersion ${version.name} is in state ${version.state}.`,
      );
    }
    version.state = input.state;
    return versionToProto(version);
  },

  UpdateCryptoKeyPrimaryVersion(request, ctx) {
    const req = request as PrimaryUpdate;
    const { key: name } = parseCryptoKey('name', req.name);
    ctx.authorize(name, 'cloudkms.cryptoKeys.update');
    const key = ctx.state.cryptoKey(name);
    if (!req.cryptoKeyVersionId) throw invalid('crypto_key_version_id is required.');
    if (key.purpose !== 'ENCRYPT_DECRYPT')
      throw precondition('Only ENCRYPT_DECRYPT keys have a primary version.');
    const { version } = ctx.state.version(name, req.cryptoKeyVersionId);
    if (version.state !== 'ENABLED') {
      throw precondition(
        `CryptoKeyVersion ${version.name} is not enabled and cannot become the primary version.`,
      );
    }
    key.primaryId = version.id;
    return cryptoKeyToProto(key);
  },

  DestroyCryptoKeyVersion(request, ctx) {
    const { key: name, versionId } = parseVersion('name', (request as NameRequest).name);
    ctx.authorize(name, 'cloudkms.cryptoKeyVersions.destroy');
    const { key, version } = ctx.state.version(name, versionId);
    if (version.state !== 'ENABLED' && version.state !== 'DISABLED' && version.state !== 'IMPORT_FAILED') {
      throw precondition(
        `CryptoKeyVersion ${version.name} is in state ${version.state} and cannot be destroyed.`,
      );
    }
    version.state = 'DESTROY_SCHEDULED';
    version.destroyTime = new Date(ctx.now.getTime() + key.destroyScheduledDurationSeconds * 1000);
    return versionToProto(version);
  },

  // DeleteCryptoKey / DeleteCryptoKeyVersion are long-running operations; the server finishes
  // them before answering, so the Operation comes back `done` (GetOperation returns it again).
  DeleteCryptoKey(request, ctx) {
    const { key: name } = parseCryptoKey('name', (request as NameRequest).name);
    ctx.authorize(name, 'cloudkms.cryptoKeys.delete');
    const key = ctx.state.cryptoKey(name);
    if (key.versions.size > 0) {
      throw precondition(
        `CryptoKey ${name} still has ${key.versions.size} CryptoKeyVersion(s); delete every version first.`,
      );
    }
    const location = name.replace(/\/keyRings\/.*$/, '');
    const retired = {
      name: `${location}/retiredResources/${randomUUID()}`,
      originalResource: name,
      resourceType: 'cloudkms.googleapis.com/CryptoKey',
      deleteTime: ctx.now,
    };
    ctx.state.cryptoKeys.delete(name);
    ctx.iam.forget(name);
    ctx.state.retired.set(retired.name, retired);
    ctx.state.retiredNames.add(name);
    return ctx.state.finishOperation(location, 'google.cloud.kms.v1.DeleteCryptoKeyMetadata', {
      retiredResource: retired.name,
    });
  },

  DeleteCryptoKeyVersion(request, ctx) {
    const { key: name, versionId } = parseVersion('name', (request as NameRequest).name);
    ctx.authorize(name, 'cloudkms.cryptoKeyVersions.delete');
    const { key, version } = ctx.state.version(name, versionId);
    if (version.importJob !== undefined && version.state !== 'IMPORT_FAILED') {
      throw precondition(
        `CryptoKeyVersion ${version.name} was imported; imported versions cannot be deleted.`,
      );
    }
    if (version.state !== 'DESTROYED' && version.state !== 'IMPORT_FAILED') {
      throw precondition(
        `CryptoKeyVersion ${version.name} is in state ${version.state}; only DESTROYED, IMPORT_FAILED or GENERATION_FAILED versions can be deleted.`,
      );
    }
    key.versions.delete(version.id);
    if (key.primaryId === version.id) delete key.primaryId;
    const location = name.replace(/\/keyRings\/.*$/, '');
    return ctx.state.finishOperation(location, 'google.cloud.kms.v1.DeleteCryptoKeyVersionMetadata', {});
  },

  ListRetiredResources(request, ctx) {
    const req = request as ListRequest & { parent?: string };
    const parent = parseLocation('parent', req.parent);
    ctx.authorize(parent, 'cloudkms.retiredResources.list');
    const rows = [...ctx.state.retired.values()].filter((r) => r.name.startsWith(`${parent}/`)).sort(byName);
    // This request has no filter or order_by fields; the page is the listing in name order.
    const p = page(parent, 'google.cloud.kms.v1.RetiredResource', rows.map(retiredToProto), {
      ...(req.pageSize !== undefined && { pageSize: req.pageSize }),
      ...(req.pageToken !== undefined && { pageToken: req.pageToken }),
    });
    return { retiredResources: p.items, nextPageToken: p.nextPageToken, totalSize: p.totalSize };
  },

  GetRetiredResource(request, ctx) {
    const name = (request as NameRequest).name;
    const { location } = parseRetiredResource('name', name);
    ctx.authorize(location, 'cloudkms.retiredResources.get');
    return retiredToProto(ctx.state.retiredResource(name!));
  },

  RestoreCryptoKeyVersion(request, ctx) {
    const { key: name, versionId } = parseVersion('name', (request as NameRequest).name);
    ctx.authorize(name, 'cloudkms.cryptoKeyVersions.restore');
    const { version } = ctx.state.version(name, versionId);
    if (version.state !== 'DESTROY_SCHEDULED') {
      throw precondition(
        `CryptoKeyVersion ${version.name} is in state ${version.state}; only DESTROY_SCHEDULED versions can be restored.`,
      );
    }
    version.state = 'DISABLED';
    delete version.destroyTime;
    return versionToProto(version);
  },
};

/** A version as the BASIC view (the lists' default) shows it: without the attestation. */
function withoutAttestation<T extends { attestation?: unknown }>(v: T): Omit<T, 'attestation'> {
  const { attestation: _attestation, ...rest } = v;
  return rest;
}

const byName = (a: { name: string }, b: { name: string }): number =>
  a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
