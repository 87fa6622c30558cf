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
  type KeyRef,
  parseKeyUri,
} from '@keyport/core';
import { labelled, localError, throwIfAborted } from './errors.js';
import { authorize, requireOwner } from './grants.js';
import { generateMaterial } from './key-material.js';
import { addPrimaryVersion, advanceRotation, applyDeletion, deletionDue, rotationDue } from './key-state.js';
import type { KeystoreFile } from './keystore-file.js';
import { findKey, type KeystoreBody, type StoredKey } from './model.js';

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
  readonly #uriPath: string;
  readonly #clock: () => Date;

  constructor(file: KeystoreFile, principal: string, uriPath: string, clock: () => Date) {
    this.file = file;
    this.principal = principal;
    this.#uriPath = uriPath;
    this.#clock = clock;
  }

  now(): Date {
    return new Date(this.#clock().getTime());
  }

  uriOf(name: string, version?: number): string {
    return formatKeyUri({
      scheme: 'local',
      path: this.#uriPath,
      name,
      ...(version !== undefined ? { version: String(version) } : {}),
    });
  }

  /** Parses a key URI of this keystore; a URI of another keystore file is NotFound. */
  resolve(ref: KeyRef): ResolvedRef {
    const parsed = labelled(ref.uri, () => parseKeyUri(ref.uri));
    if (parsed.scheme !== 'local') {
      throw localError('InvalidArgument', `not a local key URI (scheme ${parsed.scheme})`, ref.uri);
    }
    if (resolvePath(parsed.path) !== resolvePath(this.#uriPath)) {
      throw localError('NotFound', 'the key URI names a different keystore file', ref.uri);
    }
    if (ref.version !== undefined && !/^[1-9][0-9]{0,9}$/.test(ref.version)) {
      throw localError('InvalidArgument', 'key versions are positive integers', ref.uri);
    }
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
    if (key === undefined) throw localError('NotFound', `no key named ${ref.name} in this keystore`, ref.uri);
    const now = this.now();
    authorize(body.owner, key, this.principal, op, context, now, ref.uri);
    if (deletionDue(key, now) || rotationDue(key, now)) {
      return { key: await this.#applyDue(ref, key, signal), ref, now: this.now() };
    }
    return { key, ref, now };
  }

  /** Rotates or deletes a key whose time has come, under the lock. */
  async #applyDue(ref: ResolvedRef, seen: StoredKey, signal: AbortSignal | undefined): Promise<StoredKey> {
    // Generated before locking: an RSA key pair can take seconds, other writers should not wait.
    const material = rotationDue(seen, this.now()) ? await generateMaterial(seen.spec) : undefined;
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
    if (key === undefined) throw localError('NotFound', `no key named ${ref.name} in this keystore`, ref.uri);
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
