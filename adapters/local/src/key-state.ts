/**
 * The key state machine: what each state allows, and the transitions that fall due with
 * time (scheduled deletion, automatic rotation). Time always comes from the injected clock.
 */
import type { KeyInfo, KeyState, KeyVersionInfo } from '@keyport/core';
import { localError } from './errors.js';
import { MAX_VERSION, type StoredKey, type StoredVersion } from './model.js';

const DAY_MS = 24 * 60 * 60 * 1000;

export function addDays(date: Date, days: number): Date {
  return new Date(date.getTime() + days * DAY_MS);
}

export function deletionDue(key: StoredKey, now: Date): boolean {
  return (
    key.state === 'pending_deletion' && key.deletionDate !== undefined && now >= new Date(key.deletionDate)
  );
}

export function rotationDue(key: StoredKey, now: Date): boolean {
  return (
    key.state === 'enabled' &&
    lastVersion(key) < MAX_VERSION &&
    key.origin === 'provider' &&
    key.nextRotationAt !== undefined &&
    now >= new Date(key.nextRotationAt)
  );
}

/** The state as of `now`: a key past its deletion date is destroyed even before it is purged. */
export function effectiveState(key: StoredKey, now: Date): KeyState {
  return deletionDue(key, now) ? 'destroyed' : key.state;
}

/** Makes a due deletion effective: every version's material is erased. */
export function applyDeletion(key: StoredKey, now: Date): void {
  key.state = 'destroyed';
  key.primaryVersion = 0;
  for (const v of key.versions) destroyVersion(v, now);
  delete key.importJob;
  delete key.nextRotationAt;
}

export function destroyVersion(v: StoredVersion, now: Date): void {
  if (v.state !== 'destroyed') v.destroyedAt = now.toISOString();
  v.state = 'destroyed';
  delete v.material;
}

function lastVersion(key: StoredKey): number {
  return key.versions.reduce((max, v) => Math.max(max, v.version), 0);
}

/**
 * Adds a version holding `material` (base64) and makes it primary. A key already at version
 * MAX_VERSION (only a hand-edited file gets there) is KeyStateConflict: version 2^32 was written,
 * and every later open refused the whole keystore (Integrity), every key in it out of reach.
 */
export function addPrimaryVersion(key: StoredKey, material: string, now: Date, uri?: string): StoredVersion {
  const next = lastVersion(key) + 1;
  if (next > MAX_VERSION) {
    throw localError('KeyStateConflict', `the key has used its last version number (${MAX_VERSION})`, uri);
  }
  const version: StoredVersion = { version: next, state: 'enabled', createdAt: now.toISOString(), material };
  key.versions.push(version);
  key.primaryVersion = next;
  return version;
}

/**
 * Moves the next automatic rotation past `now`, to the first due date of the schedule after it:
 * computed in O(1) (a loop of one period per step took 15 s from a date at the start of time).
 */
export function advanceRotation(key: StoredKey, now: Date): void {
  if (key.rotationPeriodDays === undefined || key.nextRotationAt === undefined) return;
  const period = key.rotationPeriodDays * DAY_MS;
  const due = new Date(key.nextRotationAt).getTime();
  if (due > now.getTime()) return;
  const periods = Math.floor((now.getTime() - due) / period) + 1;
  key.nextRotationAt = new Date(due + periods * period).toISOString();
}

/** Throws KeyStateConflict unless the key is in one of `allowed` (as of `now`). */
export function requireState(
  key: StoredKey,
  now: Date,
  allowed: readonly KeyState[],
  uri: string,
  op: string,
): void {
  const state = effectiveState(key, now);
  if (!allowed.includes(state)) {
    throw localError('KeyStateConflict', `${op} is not allowed while the key is ${state}`, uri);
  }
}

/** The version an operation uses: the pinned one or the primary; it must hold material. */
export function usableVersion(key: StoredKey, pinned: number | undefined, uri: string): StoredVersion {
  const number = pinned ?? key.primaryVersion;
  const version = key.versions.find((v) => v.version === number);
  if (version === undefined) throw localError('NotFound', `key version ${number} does not exist`, uri);
  if (version.state !== 'enabled' || version.material === undefined) {
    throw localError('KeyStateConflict', `key version ${number} is ${version.state}`, uri);
  }
  return version;
}

export function toKeyInfo(key: StoredKey, uri: string, now: Date): KeyInfo {
  const state = effectiveState(key, now);
  const destroyed = state === 'destroyed';
  const versions: KeyVersionInfo[] = key.versions.map((v) => ({
    version: String(v.version),
    state: destroyed ? 'destroyed' : v.state,
    createdAt: new Date(v.createdAt),
    ...(v.destroyedAt !== undefined ? { destroyAt: new Date(v.destroyedAt) } : {}),
  }));
  return {
    uri,
    spec: key.spec,
    usage: key.usage,
    state,
    createdAt: new Date(key.createdAt),
    ...(key.primaryVersion > 0 && !destroyed ? { primaryVersion: String(key.primaryVersion) } : {}),
    versions,
    labels: { ...key.labels },
    ...(key.rotationPeriodDays !== undefined
      ? {
          rotation: {
            periodDays: key.rotationPeriodDays,
            ...(key.nextRotationAt !== undefined ? { nextRotationAt: new Date(key.nextRotationAt) } : {}),
          },
        }
      : {}),
    ...(key.deletionDate !== undefined && (state === 'pending_deletion' || destroyed)
      ? { deletionDate: new Date(key.deletionDate) }
      : {}),
    ...(key.description !== undefined ? { description: key.description } : {}),
    origin: key.origin,
  };
}
