import { crc32c } from './crc32c.js';
import type {
  CryptoKeyRecord,
  ImportJobRecord,
  KeyRingRecord,
  RetiredRecord,
  VersionRecord,
} from './model.js';
import { invalid } from './rpc-error.js';

// Conversions between records and the plain objects @grpc/proto-loader reads and writes
// (camelCase fields, enums as names, int64 as numbers, bytes as Buffers).
export interface Timestamp {
  seconds?: number | string;
  nanos?: number;
}
export interface Int64Value {
  value?: number | string;
}

export const timestamp = (d: Date): Timestamp => ({
  seconds: Math.floor(d.getTime() / 1000),
  nanos: (d.getTime() % 1000) * 1e6,
});

// The ranges google/protobuf/timestamp.proto and duration.proto define: a Timestamp lies in
// 0001-01-01T00:00:00Z..9999-12-31T23:59:59.999999999Z, a Duration within ±315,576,000,000 s, with
// integer nanos below 1e9 of the same sign. Anything else is not a valid value of the type and
// the service refuses it: kept, it would make a Date past JavaScript's range (an Invalid Date that
// breaks every later --state write) or a time no client can read back over REST.
const MIN_TIMESTAMP_SECONDS = -62_135_596_800;
const MAX_TIMESTAMP_SECONDS = 253_402_300_799;
const MAX_DURATION_SECONDS = 315_576_000_000;

export function fromTimestamp(field: string, t: Timestamp): Date {
  const seconds = Number(t.seconds ?? 0);
  const nanos = t.nanos ?? 0;
  if (
    !Number.isInteger(seconds) ||
    seconds < MIN_TIMESTAMP_SECONDS ||
    seconds > MAX_TIMESTAMP_SECONDS ||
    !Number.isInteger(nanos) ||
    nanos < 0 ||
    nanos >= 1e9
  )
    throw invalid(
      `${field} is not a valid timestamp: it must lie between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999999Z.`,
    );
  return new Date(seconds * 1000 + Math.floor(nanos / 1e6));
}

/** Duration in seconds (fractions kept). */
export function fromDuration(field: string, d: Timestamp): number {
  const seconds = Number(d.seconds ?? 0);
  const nanos = d.nanos ?? 0;
  if (
    !Number.isInteger(seconds) ||
    Math.abs(seconds) > MAX_DURATION_SECONDS ||
    !Number.isInteger(nanos) ||
    Math.abs(nanos) >= 1e9 ||
    (seconds > 0 && nanos < 0) ||
    (seconds < 0 && nanos > 0)
  )
    throw invalid(`${field} is not a valid duration.`);
  return seconds + nanos / 1e9;
}

export const duration = (seconds: number): Timestamp => ({
  seconds: Math.floor(seconds),
  nanos: Math.round((seconds % 1) * 1e9),
});

export const checksum = (data: Uint8Array): Int64Value => ({ value: crc32c(data) });

/**
 * Verifies an optional request checksum. Returns whether one was given (the `verified_*`
 * response flag); a mismatch is INVALID_ARGUMENT, as the data-integrity guidelines say.
 */
export function verifyChecksum(
  field: string,
  dataField: string,
  data: Uint8Array,
  sum: Int64Value | null | undefined,
): boolean {
  if (sum === undefined || sum === null) return false;
  if (Number(sum.value ?? 0) !== crc32c(data)) {
    throw invalid(`The checksum in field ${field} did not match the data in field ${dataField}.`);
  }
  return true;
}

export const keyRingToProto = (r: KeyRingRecord) => ({ name: r.name, createTime: timestamp(r.createTime) });

export function versionToProto(v: VersionRecord) {
  return {
    name: v.name,
    state: v.state,
    protectionLevel: v.protectionLevel,
    algorithm: v.algorithm,
    createTime: timestamp(v.createTime),
    ...(v.generateTime && { generateTime: timestamp(v.generateTime) }),
    ...(v.destroyTime && { destroyTime: timestamp(v.destroyTime) }),
    ...(v.destroyEventTime && { destroyEventTime: timestamp(v.destroyEventTime) }),
    ...(v.importJob !== undefined && { importJob: v.importJob }),
    ...(v.importTime && { importTime: timestamp(v.importTime) }),
    ...(v.importJob !== undefined && { reimportEligible: true }),
    ...(v.attestation && v.state !== 'DESTROYED' && { attestation: v.attestation }),
  };
}

export function cryptoKeyToProto(k: CryptoKeyRecord) {
  const primary = k.primaryId === undefined ? undefined : k.versions.get(k.primaryId);
  return {
    name: k.name,
    purpose: k.purpose,
    createTime: timestamp(k.createTime),
    labels: k.labels,
    versionTemplate: { algorithm: k.algorithm, protectionLevel: k.protectionLevel },
    importOnly: k.importOnly,
    destroyScheduledDuration: duration(k.destroyScheduledDurationSeconds),
    ...(primary && { primary: versionToProto(primary) }),
    ...(k.rotationPeriodSeconds !== undefined && { rotationPeriod: duration(k.rotationPeriodSeconds) }),
    ...(k.nextRotationTime && { nextRotationTime: timestamp(k.nextRotationTime) }),
  };
}

export function importJobToProto(j: ImportJobRecord) {
  return {
    name: j.name,
    importMethod: j.importMethod,
    protectionLevel: j.protectionLevel,
    createTime: timestamp(j.createTime),
    expireTime: timestamp(j.expireTime),
    state: j.state,
    ...(j.generateTime && { generateTime: timestamp(j.generateTime) }),
    ...(j.expireEventTime && { expireEventTime: timestamp(j.expireEventTime) }),
    ...(j.publicKeyPem !== undefined && { publicKey: { pem: j.publicKeyPem } }),
    ...(j.publicKeyPem !== undefined && { publicKeyFormat: 'PEM' }),
    ...(j.attestation && j.state === 'ACTIVE' && { attestation: j.attestation }),
  };
}

export const retiredToProto = (r: RetiredRecord) => ({
  name: r.name,
  originalResource: r.originalResource,
  resourceType: r.resourceType,
  deleteTime: timestamp(r.deleteTime),
});
