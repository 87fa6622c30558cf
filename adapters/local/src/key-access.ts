/**
 * How every operation reaches a key: resolve the URI to a key of this keystore, read the
 * freshest body, check the caller (owner or grant), and make due transitions (deletion,
 * automatic rotation) effective before the key is used. Mutations run under the file lock.
 */
import { resolve as resolvePath } from 'node:path';
import {
  type EncryptionContext,
  formatKeyUri,
  type GrantOperation,
  isKeyportError,
  type KeyRef,
  MAX_DATE_MS,
  MIN_DATE_MS,
  parseKeyUri,
  quote,
} from '@keyport/core';
import { keyRefArg } from './arguments.js';
import { labelled, localError, throwIfAborted } from './errors.js';
import { authorize, requireOwner } from './grants.js';
import { generateMaterial } from './key-material.js';
import { addPrimaryVersion, advanceRotation, applyDeletion, deletionDue, rotationDue } from './key-state.js';
import type { KeystoreFile } from './keystore-file.js';
import { findKey, KEY_NAME, type KeystoreBody, MAX_VERSION, type StoredKey } from './model.js';

export interface ResolvedRef {
  readonly name: string;
  /** The key's URI without a version. */
  readonly uri: string;
  /** The pinned version (from `ref.version` or the URI's `?version=`). */
  readonly version: number | undefined;
}

export interface KeyInUse {
  readonly key: StoredKey;
  readonly ref: ResolvedRef;
  readonly now: Date;
}

export class KeystoreAccess {
  readonly file: KeystoreFile;
  /** The principal this keystore was opened as. */
  readonly principal: string;
  /** The keystore path as given: what key URIs carry. */
  readonly #uriPath: string;
  /** The working directory when the provider was made: a URI's relative path resolves against it. */
  readonly #base: string;
  readonly #clock: () => Date;

  constructor(file: KeystoreFile, principal: string, uriPath: string, base: string, clock: () => Date) {
    this.file = file;
    this.principal = principal;
    this.#uriPath = uriPath;
    this.#base = base;
    this.#clock = clock;
  }

  /** The injected clock's time, checked: a clock answering garbage is InvalidArgument, not a crash later. */
  now(): Date {
    let t: unknown;
    try {
      t = this.#clock();
    } catch (error) {
      // The application's callback: its error is kept as the cause, its message is not ours to show.
      throw localError('InvalidArgument', 'clock: the clock function threw', undefined, error);
    }
    const ms = t instanceof Date ? t.getTime() : Number.NaN;
    if (!(ms >= MIN_DATE_MS && ms <= MAX_DATE_MS)) {
      throw localError('InvalidArgument', 'clock: expected it to return a valid Date between 1970 and 9999');
    }
    return new Date(ms);
  }

  /** A key version as a number: a decimal integer from 1 to 2^32−1 (ciphertexts carry it as u32). */
  versionNumber(version: unknown, uri?: string): number {
    if (typeof version !== 'string' || !/^[1-9][0-9]{0,9}$/.test(version) || Number(version) > MAX_VERSION) {
      throw localError('InvalidArgument', `key versions are integers from 1 to ${MAX_VERSION}`, uri);
    }
    return Number(version);
  }

  uriOf(name: string, version?: number): string {
    if (typeof name !== 'string' || !KEY_NAME.test(name)) {
      throw localError(
        'InvalidArgument',
        `key names are 1-256 letters, digits, "_", "-" or "."; got ${quote(name)}`,
      );
    }
    return formatKeyUri({
      scheme: 'local',
      path: this.#uriPath,
      name,
      ...(version !== undefined ? { version: String(version) } : {}),
    });
  }

  /** Parses a key URI of this keystore; a URI of another keystore file is NotFound. */
  resolve(given: KeyRef): ResolvedRef {
    const ref = keyRefArg(given);
    const parsed = labelled(ref.uri, () => parseKeyUri(ref.uri));
    if (parsed.scheme !== 'local') {
      throw localError('InvalidArgument', `not a local key URI (scheme ${parsed.scheme})`, ref.uri);
    }
    if (resolvePath(this.#base, parsed.path) !== this.file.path) {
      throw localError('NotFound', 'the key URI names a different keystore file', ref.uri);
    }
    if (ref.version !== undefined) this.versionNumber(ref.version, ref.uri);
    if (parsed.version !== undefined) this.versionNumber(parsed.version, ref.uri);
    if (ref.version !== undefined && parsed.version !== undefined && ref.version !== parsed.version) {
      throw localError('InvalidArgument', 'the ref and its URI pin different versions', ref.uri);
    }
    const pinned = ref.version ?? parsed.version;
    return {
      name: parsed.name,
      uri: this.uriOf(parsed.name),
      version: pinned === undefined ? undefined : Number(pinned),
    };
  }

  /** Reads the key for `op` by the caller, after making due transitions effective. */
  async useKey(
    keyRef: KeyRef,
    signal: AbortSignal | undefined,
    op: GrantOperation,
    context?: EncryptionContext,
  ): Promise<KeyInUse> {
    throwIfAborted(signal, keyRef.uri);
    const ref = this.resolve(keyRef);
    const body = await this.file.read(signal);
    const key = findKey(body, ref.name);
    if (key === undefined)
      throw localError('NotFound', `no key named ${quote(ref.name)} in this keystore`, ref.uri);
    const now = this.now();
    authorize(body.owner, key, this.principal, op, context, now, ref.uri);
    if (deletionDue(key, now) || rotationDue(key, now)) {
      try {
        return { key: await this.#applyDue(ref, key, signal), ref, now: this.now() };
      } catch (error) {
        // Housekeeping is not the call's work: a keystore mounted read-only (Unavailable) or a
        // writer holding the lock (Timeout) made every encrypt and decrypt fail once a rotation
        // fell due. The key as read still serves (a due deletion already reads as destroyed);
        // the next use tries again. The caller's own abort or deadline is still its failure.
        if (signal?.aborted === true || !isKeyportError(error)) throw error;
        if (error.code !== 'Unavailable' && error.code !== 'Timeout') throw error;
      }
    }
    return { key, ref, now };
  }

  /** Rotates or deletes a key whose time has come, under the lock. */
  async #applyDue(ref: ResolvedRef, seen: StoredKey, signal: AbortSignal | undefined): Promise<StoredKey> {
    // Generated before locking: an RSA key pair can take seconds, other writers should not wait.
    const material = rotationDue(seen, this.now()) ? await generateMaterial(seen.spec, signal) : undefined;
    try {
      return await this.file.mutate(signal, (body) => {
        const now = this.now();
        sweep(body, now);
        const key = this.#keyIn(body, ref);
        if (rotationDue(key, now) && material !== undefined) {
          addPrimaryVersion(key, material.toString('base64'), now);
          advanceRotation(key, now);
        }
        return structuredClone(key);
      });
    } finally {
      material?.fill(0);
    }
  }

  /** The owner's view of the body (for checks before a mutation is attempted). */
  async readAsOwner(signal: AbortSignal | undefined, what: string, uri?: string): Promise<KeystoreBody> {
    throwIfAborted(signal, uri);
    const body = await this.file.read(signal);
    requireOwner(body.owner, this.principal, what, uri);
    return body;
  }

  /**
   * Applies `change` to the named key under the lock, as the owner. Every mutation also
   * makes due deletions effective and drops expired grants, across the whole keystore.
   */
  mutateKey<T>(
    ref: ResolvedRef,
    signal: AbortSignal | undefined,
    what: string,
    change: (key: StoredKey, now: Date, body: KeystoreBody) => T,
  ): Promise<T> {
    return this.mutate(signal, what, (body, now) => change(this.#keyIn(body, ref), now, body), ref.uri);
  }

  mutate<T>(
    signal: AbortSignal | undefined,
    what: string,
    change: (body: KeystoreBody, now: Date) => T,
    uri?: string,
  ): Promise<T> {
    throwIfAborted(signal, uri);
    return this.file.mutate(signal, (body) => {
      requireOwner(body.owner, this.principal, what, uri);
      const now = this.now();
      sweep(body, now);
      return change(body, now);
    });
  }

  #keyIn(body: KeystoreBody, ref: ResolvedRef): StoredKey {
    const key = findKey(body, ref.name);
    if (key === undefined)
      throw localError('NotFound', `no key named ${quote(ref.name)} in this keystore`, ref.uri);
    return key;
  }
}

/** Housekeeping done on every write: due deletions erase material, expired grants go. */
function sweep(body: KeystoreBody, now: Date): void {
  for (const key of body.keys) {
    if (deletionDue(key, now)) applyDeletion(key, now);
    key.grants = key.grants.filter((g) => g.expiresAt === undefined || now < new Date(g.expiresAt));
  }
}
