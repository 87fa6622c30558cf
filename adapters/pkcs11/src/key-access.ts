/** What keys.ts, crypto.ts and import.ts need from the provider, and picking the version a call uses. */

import type { Capabilities, KeyRef } from '@keyport/core';
import { KeyportError, type KeyUsage } from '@keyport/core';
import type { OaepHash } from './capabilities.js';
import { isLiveVersion, primaryVersion, type ResolvedKey, type VersionObjects } from './key-store.js';
import type { Handle, Pkcs11 } from './p11.js';
import type { SessionPool } from './session-pool.js';

/** A parsed key reference: the key's label, its unpinned URI, and the pinned version if any. */
export interface Target {
  readonly name: string;
  readonly uri: string;
  readonly version?: number;
}

export interface KeyAccess {
  readonly name: string;
  readonly p11: Pkcs11;
  readonly pool: SessionPool;
  readonly capabilities: Capabilities;
  readonly oaepHashes: readonly OaepHash[];
  uriFor(name: string, version?: number): string;
  target(ref: KeyRef): Target;
  withKey<T>(
    ref: KeyRef,
    signal: AbortSignal | undefined,
    fn: (session: Handle, key: ResolvedKey, target: Target) => Promise<T>,
    fresh?: boolean,
  ): Promise<T>;
  exclusive<T>(name: string, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T>;
}

/** Errors about a version that a stale cached copy of the key could have caused. */
const versionErrors = new WeakSet<object>();

/** Whether `error` came from a version check that a fresh read of the key might pass. */
export function staleKeySuspect(error: unknown): boolean {
  return typeof error === 'object' && error !== null && versionErrors.has(error);
}

function versionError(error: KeyportError): KeyportError {
  versionErrors.add(error);
  return error;
}

/**
 * The version a call uses — the pinned one or the primary — and its objects. A key waiting for
 * import material, or a destroyed version, is a KeyStateConflict; a version that never existed
 * is NotFound, or InvalidCiphertext when it came from a ciphertext (`fromCiphertext`).
 */
export function usableVersion(
  key: ResolvedKey,
  target: Target,
  usage: KeyUsage,
  provider: string,
  fromCiphertext = false,
): { version: number; objects: VersionObjects } {
  const keyUri = target.uri;
  if (key.meta.usage !== usage) {
    throw new KeyportError('InvalidArgument', `this key is for ${key.meta.usage}, not ${usage}`, {
      provider,
      keyUri,
    });
  }
  if (key.meta.pendingImport === true) {
    throw new KeyportError('KeyStateConflict', 'the key is waiting for imported material', {
      provider,
      keyUri,
      retryable: false,
    });
  }
  const version = target.version ?? primaryVersion(key);
  if (version === undefined) {
    throw new KeyportError('KeyStateConflict', 'every version of the key was destroyed', {
      provider,
      keyUri,
      retryable: false,
    });
  }
  if (key.meta.versions[String(version)]?.destroyed === true) {
    throw new KeyportError('KeyStateConflict', `version ${version} was destroyed`, {
      provider,
      keyUri,
      retryable: false,
    });
  }
  // Objects of a version the metadata does not record are not the key's (see `isLiveVersion`).
  const objects = isLiveVersion(key, version) ? key.versions.get(version) : undefined;
  if (objects === undefined) {
    // A version above the highest known may have been made since the key was read; lower ones
    // that are missing were destroyed and stay so.
    const error = fromCiphertext
      ? new KeyportError('InvalidCiphertext', 'the ciphertext names a version this key does not have', {
          provider,
          keyUri,
        })
      : new KeyportError('NotFound', `the key has no version ${version}`, {
          provider,
          keyUri,
          retryable: false,
        });
    throw version > (primaryVersion(key) ?? 0) ? versionError(error) : error;
  }
  if (objects.refused !== undefined) {
    const remedy = 'destroy that version, or rotate the key';
    throw untrusted(`version ${version}`, objects.refused, remedy, provider, keyUri);
  }
  return { version, objects };
}

/**
 * A version (or import key pair) whose objects are not as keyport makes them (key-store.ts,
 * `provenanceProblem`): its material may be known outside the token, so nothing is sealed under
 * it, opened with it, signed or wrapped with it. Integrity: the key on the token is not the one
 * keyport made.
 */
export function untrusted(
  what: string,
  why: string,
  remedy: string,
  provider: string,
  keyUri: string,
): KeyportError {
  return new KeyportError(
    'Integrity',
    `keyport does not use ${what} of this key: its ${why}. keyport did not make it so: someone with the token's PIN put it under the key's label (${remedy})`,
    { provider, keyUri, retryable: false },
  );
}
