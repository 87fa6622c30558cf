/** Key URIs ↔ Cloud KMS resource names, and protobuf time values ↔ Date. */
import { gcpResourceName, KeyportError, type KeyRef, parseKeyUri } from '@keyport/core';

export interface KeyTarget {
  /** The key URI without a version: what KeyInfo.uri carries. */
  readonly uri: string;
  /** `projects/…/cryptoKeys/<k>` */
  readonly keyName: string;
  /** `projects/…/keyRings/<r>` */
  readonly keyRing: string;
  /** The pinned version id, if any. */
  readonly version?: string;
}

export function targetOf(ref: KeyRef): KeyTarget {
  const parsed = parseKeyUri(ref.uri);
  if (parsed.scheme !== 'gcp-kms') {
    throw new KeyportError('InvalidArgument', 'not a gcp-kms:// key URI', { keyUri: ref.uri });
  }
  const keyName = gcpResourceName(parsed);
  const version = ref.version ?? parsed.version;
  if (version !== undefined && !/^[1-9][0-9]*$/.test(version)) {
    throw new KeyportError('InvalidArgument', 'Cloud KMS key versions are positive integers', {
      keyUri: ref.uri,
    });
  }
  return {
    uri: `gcp-kms://${keyName}`,
    keyName,
    keyRing: keyName.slice(0, keyName.indexOf('/cryptoKeys/')),
    ...(version !== undefined ? { version } : {}),
  };
}

export const versionName = (keyName: string, version: string): string =>
  `${keyName}/cryptoKeyVersions/${version}`;

/** The version id at the end of a CryptoKeyVersion name; undefined for a CryptoKey name. */
export function versionIdOf(name: string | null | undefined): string | undefined {
  const m = /\/cryptoKeyVersions\/([0-9]+)$/.exec(name ?? '');
  return m?.[1];
}

export const keyUriOf = (keyName: string): string => `gcp-kms://${keyName}`;

type Long = { toString(): string };
export interface TimestampLike {
  seconds?: number | string | Long | null;
  nanos?: number | null;
}

export function toDate(t: TimestampLike | null | undefined): Date | undefined {
  if (t === null || t === undefined || t.seconds === null || t.seconds === undefined) return undefined;
  const seconds = Number(String(t.seconds));
  return new Date(seconds * 1000 + Math.floor((t.nanos ?? 0) / 1e6));
}

export function toTimestamp(d: Date): { seconds: number; nanos: number } {
  const ms = d.getTime();
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
}

export function durationSeconds(d: TimestampLike | null | undefined): number | undefined {
  if (d === null || d === undefined || d.seconds === null || d.seconds === undefined) return undefined;
  return Number(String(d.seconds));
}
