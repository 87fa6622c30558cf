/** Cloud KMS CryptoKey / CryptoKeyVersion messages → keyport's KeyInfo. */
import type { protos } from '@google-cloud/kms';
import type { KeyInfo, KeyState, KeyVersionInfo, KeyVersionState } from '@keyport/core';
import { ALGORITHM_NAMES, enumName, PURPOSE_NAMES, VERSION_STATE_NAMES } from './enums.js';
import { durationSeconds, keyUriOf, toDate, versionIdOf } from './names.js';
import { describeAlgorithm } from './specs.js';

export type CryptoKey = protos.google.cloud.kms.v1.ICryptoKey;
export type CryptoKeyVersion = protos.google.cloud.kms.v1.ICryptoKeyVersion;
/** The algorithm enum as the client's request types spell it. */
export type AlgorithmField = NonNullable<protos.google.cloud.kms.v1.ICryptoKeyVersion['algorithm']>;
export type ImportMethodField = NonNullable<protos.google.cloud.kms.v1.IImportJob['importMethod']>;

const VERSION_STATES: Readonly<Record<string, KeyVersionState>> = {
  ENABLED: 'enabled',
  DISABLED: 'disabled',
  PENDING_IMPORT: 'pending_import',
  DESTROY_SCHEDULED: 'destroy_scheduled',
  DESTROYED: 'destroyed',
  // Not usable yet / never usable: keyport has no finer states for these.
  PENDING_GENERATION: 'disabled',
  IMPORT_FAILED: 'destroyed',
  GENERATION_FAILED: 'destroyed',
  PENDING_EXTERNAL_DESTRUCTION: 'destroy_scheduled',
  EXTERNAL_DESTRUCTION_FAILED: 'destroyed',
};

const KEY_STATE_BY_VERSION: Readonly<Record<KeyVersionState, KeyState>> = {
  enabled: 'enabled',
  disabled: 'disabled',
  pending_import: 'pending_import',
  destroy_scheduled: 'pending_deletion',
  destroyed: 'destroyed',
};

export function versionState(v: CryptoKeyVersion): KeyVersionState {
  return VERSION_STATES[enumName(v.state, VERSION_STATE_NAMES)] ?? 'disabled';
}

export function toVersionInfo(v: CryptoKeyVersion): KeyVersionInfo {
  const createdAt = toDate(v.createTime);
  const destroyAt = toDate(v.destroyTime);
  return {
    version: versionIdOf(v.name) ?? '',
    state: versionState(v),
    ...(createdAt !== undefined ? { createdAt } : {}),
    ...(destroyAt !== undefined ? { destroyAt } : {}),
  };
}

/**
 * The version keyport uses for a key without a pinned version. ENCRYPT_DECRYPT keys have a
 * primary; other purposes have none in Cloud KMS, so keyport takes the newest version that is
 * not destroyed (or scheduled for destruction) — rotateKey makes a new one, which then leads.
 */
export function currentVersion(versions: readonly CryptoKeyVersion[]): CryptoKeyVersion | undefined {
  const sorted = [...versions].sort(
    (a, b) => Number(versionIdOf(b.name) ?? 0) - Number(versionIdOf(a.name) ?? 0),
  );
  const live = sorted.find((v) => {
    const s = versionState(v);
    return s === 'enabled' || s === 'disabled' || s === 'pending_import';
  });
  return live ?? sorted[0];
}

export function purposeOf(key: CryptoKey): string {
  return enumName(key.purpose, PURPOSE_NAMES);
}

/** KeyInfo for a key; `versions` (when listed) fills the version list and non-symmetric state. */
export function toKeyInfo(key: CryptoKey, versions?: readonly CryptoKeyVersion[]): KeyInfo {
  const name = key.name ?? '';
  const symmetric = purposeOf(key) === 'ENCRYPT_DECRYPT';
  const algorithm = enumName(key.primary?.algorithm ?? key.versionTemplate?.algorithm, ALGORITHM_NAMES);
  const { spec, usage } = describeAlgorithm(algorithm);
  const leading = symmetric ? (key.primary ?? undefined) : versions && currentVersion(versions);
  const state: KeyState =
    leading !== undefined && leading !== null
      ? KEY_STATE_BY_VERSION[versionState(leading)]
      : key.importOnly
        ? 'pending_import'
        : 'disabled';
  const periodSeconds = durationSeconds(key.rotationPeriod);
  const nextRotationAt = toDate(key.nextRotationTime);
  const createdAt = toDate(key.createTime);
  const primaryVersion = versionIdOf(leading?.name);
  return {
    uri: keyUriOf(name),
    spec,
    usage,
    state,
    labels: { ...(key.labels ?? {}) },
    origin: key.importOnly ? 'external' : 'provider',
    ...(createdAt !== undefined ? { createdAt } : {}),
    ...(primaryVersion !== undefined ? { primaryVersion } : {}),
    ...(versions !== undefined ? { versions: versions.map((v) => toVersionInfo(v)) } : {}),
    ...(periodSeconds !== undefined || nextRotationAt !== undefined
      ? {
          rotation: {
            ...(periodSeconds !== undefined ? { periodDays: periodSeconds / 86_400 } : {}),
            ...(nextRotationAt !== undefined ? { nextRotationAt } : {}),
          },
        }
      : {}),
  };
}
