/** `gcp-kms://` key URIs ↔ Cloud KMS resource names (core owns the grammar). */
import {
  formatBuiltInUri,
  gcpResourceName,
  KeyportError,
  type KeyRef,
  parseBuiltInUri,
  parseKeyUri,
} from '@keyport/core';

export const parseUri = (uri: string): KeyRef => parseBuiltInUri('gcp-kms', uri);
export const formatUri = (ref: KeyRef): string => formatBuiltInUri(ref);

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

const VERSION_ID = /^[1-9][0-9]*$/;
const MAX_CACHED = 1000;
/** Parsed URIs by text: every call on a key parses the same URI, and parsing shows in the bench. */
const parsed = new Map<string, KeyTarget>();

function parse(uri: string): KeyTarget {
  let t = parsed.get(uri);
  if (t !== undefined) return t;
  const p = parseKeyUri(uri);
  if (p.scheme !== 'gcp-kms')
    throw new KeyportError('InvalidArgument', 'not a gcp-kms:// key URI', { keyUri: uri });
  const keyName = gcpResourceName(p);
  const keyRing = keyName.slice(0, keyName.indexOf('/cryptoKeys/'));
  t = {
    uri: keyUriOf(keyName),
    keyName,
    keyRing,
    ...(p.version !== undefined ? { version: p.version } : {}),
  };
  if (parsed.size >= MAX_CACHED) parsed.clear();
  parsed.set(uri, t);
  return t;
}

export function targetOf(ref: KeyRef): KeyTarget {
  const t = parse(ref.uri);
  const version = ref.version;
  if (version === undefined || version === t.version) return checkVersion(t, ref.uri);
  return checkVersion({ uri: t.uri, keyName: t.keyName, keyRing: t.keyRing, version }, ref.uri);
}

function checkVersion(t: KeyTarget, uri: string): KeyTarget {
  if (t.version !== undefined && !VERSION_ID.test(t.version)) {
    throw new KeyportError('InvalidArgument', 'Cloud KMS key versions are positive integers', {
      keyUri: uri,
    });
  }
  return t;
}

export const versionName = (keyName: string, version: string): string =>
  `${keyName}/cryptoKeyVersions/${version}`;

/** The version id at the end of a CryptoKeyVersion name; undefined for a CryptoKey name. */
export function versionIdOf(name: string | null | undefined): string | undefined {
  return /\/cryptoKeyVersions\/([0-9]+)$/.exec(name ?? '')?.[1];
}

export const keyUriOf = (keyName: string): string => `gcp-kms://${keyName}`;
