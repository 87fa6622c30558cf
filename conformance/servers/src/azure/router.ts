// Maps a method and path to the access-policy permission it needs and the handler that serves it.
// Paths keep empty segments: the SDKs send `/keys/{name}/` and `/keys/{name}//encrypt` when no
// version is given, and the service reads an empty version as the latest one. Go's azkeys joins its
// paths with path.Join, which drops the empty segment: `/keys/{name}/encrypt` (also the latest).

import { ownEntry } from '../shared/own.js';
import { backupKey, restoreKey } from './backup.js';
import type { VaultContext } from './bundle.js';
import { badParameter } from './errors.js';
import { getRotationPolicy, rotateKey, setRotationPolicy } from './rotation.js';
import {
  keyAttestation,
  keyOperation,
  OPERATION_PATHS,
  randomBytesRoute,
  releaseKey,
} from './routes-crypto.js';
import * as keys from './routes-keys.js';
import type { Body } from './validate.js';

/** Key permissions of a Key Vault access policy, plus `rng` for a Managed HSM's random bytes. */
export const KEY_PERMISSIONS = [
  'get',
  'list',
  'update',
  'create',
  'import',
  'delete',
  'recover',
  'backup',
  'restore',
  'decrypt',
  'encrypt',
  'unwrapKey',
  'wrapKey',
  'verify',
  'sign',
  'purge',
  'rotate',
  'getrotationpolicy',
  'setrotationpolicy',
  'release',
  'rng',
] as const;
export type KeyPermission = (typeof KEY_PERMISSIONS)[number];

export interface Route {
  readonly permission: KeyPermission;
  readonly status?: number;
  run(): unknown;
}

const unknownRoute = (method: string, path: string) =>
  badParameter(`The request ${method} ${path} does not match any operation of this vault.`);

export function route(
  ctx: VaultContext,
  method: string,
  segments: readonly string[],
  query: URLSearchParams,
  body: Body,
): Route {
  const path = `/${segments.join('/')}`;
  const fail = (): never => {
    throw unknownRoute(method, path);
  };
  const [root, name = '', third, fourth, ...rest] = segments;
  if (rest.length > 0) fail();
  const r = (permission: KeyPermission, run: () => unknown, status?: number): Route =>
    status === undefined ? { permission, run } : { permission, run, status };

  if (root === 'rng' && segments.length === 1 && method === 'POST') {
    return r('rng', () => randomBytesRoute(ctx, body));
  }
  if (root === 'deletedkeys') {
    if (segments.length === 1 && method === 'GET') return r('list', () => keys.listDeletedKeys(ctx, query));
    if (segments.length === 2 && method === 'GET') return r('get', () => keys.getDeletedKey(ctx, name));
    if (segments.length === 2 && method === 'DELETE') {
      return r('purge', () => keys.purgeDeletedKey(ctx, name), 204);
    }
    if (segments.length === 3 && third === 'recover' && method === 'POST') {
      return r('recover', () => keys.recoverDeletedKey(ctx, name));
    }
    return fail();
  }
  if (root !== 'keys') return fail();
  if (segments.length === 1) return method === 'GET' ? r('list', () => keys.listKeys(ctx, query)) : fail();
  if (segments.length === 2) {
    if (name === 'restore' && method === 'POST') return r('restore', () => restoreKey(ctx, body));
    if (method === 'GET') return r('get', () => keys.getKey(ctx, name, undefined));
    if (method === 'PUT') return r('import', () => keys.importKey(ctx, name, body));
    if (method === 'DELETE') return r('delete', () => keys.deleteKey(ctx, name));
    // PATCH /keys/{name} (no version segment at all) updates the latest version, as the service does.
    if (method === 'PATCH') return r('update', () => keys.updateKey(ctx, name, undefined, body));
    return fail();
  }
  if (segments.length === 3) {
    const sub = third ?? '';
    if (method === 'POST') {
      if (sub === 'create') return r('create', () => keys.createKey(ctx, name, body));
      if (sub === 'backup') return r('backup', () => backupKey(ctx, name));
      if (sub === 'rotate') return r('rotate', () => rotateKey(ctx, name));
      if (sub === 'release') return r('release', () => releaseKey(ctx, name, undefined, body));
      const op = ownEntry(OPERATION_PATHS, sub);
      if (op) return r(op, () => keyOperation(ctx, name, undefined, op, body));
      return fail();
    }
    if (sub === 'rotationpolicy') {
      if (method === 'GET') return r('getrotationpolicy', () => getRotationPolicy(ctx, name));
      if (method === 'PUT') return r('setrotationpolicy', () => setRotationPolicy(ctx, name, body));
      return fail();
    }
    if (sub === 'attestation' && method === 'GET')
      return r('get', () => keyAttestation(ctx, name, undefined));
    if (sub === 'versions' && method === 'GET') return r('list', () => keys.listVersions(ctx, name, query));
    if (method === 'GET') return r('get', () => keys.getKey(ctx, name, sub));
    if (method === 'PATCH') return r('update', () => keys.updateKey(ctx, name, sub, body));
    return fail();
  }
  const version = third || undefined;
  const action = fourth ?? '';
  const op = ownEntry(OPERATION_PATHS, action);
  if (op && method === 'POST') return r(op, () => keyOperation(ctx, name, version, op, body));
  if (action === 'release' && method === 'POST') {
    return r('release', () => releaseKey(ctx, name, version, body));
  }
  if (action === 'attestation' && method === 'GET') {
    return r('get', () => keyAttestation(ctx, name, version));
  }
  return fail();
}
