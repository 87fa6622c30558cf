/** `gcp-kms://` key URIs ↔ Cloud KMS resource names (core owns the grammar). */
import {
  formatBuiltInUri,
  gcpResourceName,
  KeyportError,
  type KeyRef,
  parseBuiltInUri,
  parseKeyUri,
} from '@keyport/core';
import { defined, remember } from './rpc.js';

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
/** Parsed URIs by text: every call on a key parses the same URI, and parsing shows in the bench. */
const parsed = new Map<string, KeyTarget>();

function parse(uri: string): KeyTarget {
  const cached = parsed.get(uri);
  if (cached !== undefined) return cached;
  const p = parseKeyUri(uri);
  if (p.scheme !== 'gcp-kms') throw invalid('not a gcp-kms:// key URI', uri);
  const keyName = gcpResourceName(p);
  const keyRing = keyName.slice(0, keyName.indexOf('/cryptoKeys/'));
  return remember(parsed, uri, {
    uri: keyUriOf(keyName),
    keyName,
    keyRing,
    ...defined({ version: p.version }),
  });
}

const invalid = (why: string, keyUri: string) => new KeyportError('InvalidArgument', why, { keyUri });

export function targetOf(ref: KeyRef): KeyTarget {
  const t = parse(ref.uri);
  const version = ref.version ?? t.version;
  if (version !== undefined && !VERSION_ID.test(version)) {
    throw invalid('Cloud KMS key versions are positive integers', ref.uri);
  }
  return version === t.version
    ? t
    : { uri: t.uri, keyName: t.keyName, keyRing: t.keyRing, ...defined({ version }) };
}

export const versionName = (keyName: string, version: string): string =>
  `${keyName}/cryptoKeyVersions/${version}`;

/** The version id at the end of a CryptoKeyVersion name; undefined for a CryptoKey name. */
export function versionIdOf(name: string | null | undefined): string | undefined {
  return /\/cryptoKeyVersions\/([0-9]+)$/.exec(name ?? '')?.[1];
}

export const keyUriOf = (keyName: string): string => `gcp-kms://${keyName}`;
