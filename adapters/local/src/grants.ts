/**
 * Grants: who other than the owner may use a key, for which operations, under which context
 * constraints and until when. Enforced here on every call of a non-owner principal.
 */
import {
  checkDate,
  contextContains,
  contextEquals,
  type EncryptionContext,
  GRANT_OPERATIONS,
  type Grant,
  type GrantOperation,
  type GrantRequest,
  type KeyUsage,
  optionalContext,
  quote,
} from '@keyport/core';
import { labelled, localError } from './errors.js';
import type { StoredGrant, StoredKey } from './model.js';

const OPERATIONS_BY_USAGE: Record<KeyUsage, readonly GrantOperation[]> = {
  encrypt_decrypt: ['encrypt', 'decrypt', 'generate_data_key', 're_encrypt', 'describe'],
  sign_verify: ['sign', 'verify', 'describe'],
  mac: ['mac', 'verify_mac', 'describe'],
};

/** Operations that carry an encryption context, the only ones context constraints can govern. */
const CONTEXT_OPERATIONS: readonly GrantOperation[] = [
  'encrypt',
  'decrypt',
  'generate_data_key',
  're_encrypt',
];

const PRINCIPAL = /^[\x21-\x7e]{1,256}$/;

export function checkPrincipal(principal: string, what: string): void {
  if (typeof principal !== 'string' || !PRINCIPAL.test(principal)) {
    throw localError('InvalidArgument', `${what} must be 1-256 printable ASCII characters without spaces`);
  }
}

/** Validates a grant request against the key and turns it into its stored form. */
export function newStoredGrant(
  key: StoredKey,
  req: GrantRequest,
  id: string,
  now: Date,
  uri: string,
): StoredGrant {
  const invalid = (why: string): never => {
    throw localError('InvalidArgument', `invalid grant: ${why}`, uri);
  };
  checkPrincipal(req.grantee, 'grantee');
  if (!Array.isArray(req.operations) || req.operations.length === 0) invalid('operations must not be empty');
  const allowed = OPERATIONS_BY_USAGE[key.usage];
  for (const op of req.operations) {
    if (!GRANT_OPERATIONS.includes(op)) invalid('unknown operation');
    if (!allowed.includes(op)) invalid(`operation ${op} does not apply to a ${key.usage} key`);
  }
  const constraints = req.constraints ?? {};
  // Plain string maps, prototype-free: `__proto__=x` is a constraint like any other, never dropped.
  const equals = labelled(uri, () => optionalContext(constraints.contextEquals, 'constraints.contextEquals'));
  const subset = labelled(uri, () => optionalContext(constraints.contextSubset, 'constraints.contextSubset'));
  if (equals !== undefined && subset !== undefined) invalid('use contextEquals or contextSubset, not both');
  const constrained = equals ?? subset;
  if (constrained !== undefined) {
    if (req.operations.some((op) => !CONTEXT_OPERATIONS.includes(op))) {
      invalid(`context constraints only apply to ${CONTEXT_OPERATIONS.join(', ')}`);
    }
  }
  const expiresAt =
    req.expiresAt === undefined ? undefined : labelled(uri, () => checkDate(req.expiresAt, 'req.expiresAt'));
  if (expiresAt !== undefined && expiresAt <= now) invalid('expiresAt is in the past');
  if (req.name !== undefined && (typeof req.name !== 'string' || req.name.length > 256)) {
    invalid('name must be a string of at most 256 characters');
  }
  return {
    id,
    grantee: req.grantee,
    operations: [...new Set(req.operations)],
    ...(equals !== undefined ? { contextEquals: { ...equals } } : {}),
    ...(subset !== undefined ? { contextSubset: { ...subset } } : {}),
    ...(expiresAt !== undefined ? { expiresAt: expiresAt.toISOString() } : {}),
    ...(req.name !== undefined ? { name: req.name } : {}),
    createdAt: now.toISOString(),
  };
}

export function toGrant(g: StoredGrant, keyUri: string): Grant {
  // Copies, as for `operations`: the stored maps belong to the cached body, so a caller editing
  // a returned grant's constraints changed what was enforced, and the next write persisted it.
  // A spread keeps `__proto__` an own key.
  const constraints = {
    ...(g.contextEquals !== undefined ? { contextEquals: { ...g.contextEquals } } : {}),
    ...(g.contextSubset !== undefined ? { contextSubset: { ...g.contextSubset } } : {}),
  };
  return {
    id: g.id,
    keyUri,
    grantee: g.grantee,
    operations: [...g.operations],
    ...(Object.keys(constraints).length > 0 ? { constraints } : {}),
    ...(g.expiresAt !== undefined ? { expiresAt: new Date(g.expiresAt) } : {}),
    ...(g.name !== undefined ? { name: g.name } : {}),
    createdAt: new Date(g.createdAt),
  };
}

function grantAllows(
  g: StoredGrant,
  principal: string,
  op: GrantOperation,
  context: EncryptionContext | undefined,
  now: Date,
): boolean {
  if (g.grantee !== principal || !g.operations.includes(op)) return false;
  if (g.expiresAt !== undefined && now >= new Date(g.expiresAt)) return false;
  if (g.contextEquals !== undefined && !contextEquals(context ?? {}, g.contextEquals)) return false;
  if (g.contextSubset !== undefined && !contextContains(context, g.contextSubset)) return false;
  return true;
}

/** Throws AccessDenied unless `principal` owns the keystore or a live grant allows `op`. */
export function authorize(
  owner: string,
  key: StoredKey,
  principal: string,
  op: GrantOperation,
  context: EncryptionContext | undefined,
  now: Date,
  uri: string,
): void {
  if (principal === owner) return;
  if (key.grants.some((g) => grantAllows(g, principal, op, context, now))) return;
  throw localError(
    'AccessDenied',
    `principal ${quote(principal)} holds no grant allowing ${op} on this key`,
    uri,
  );
}

/** Throws AccessDenied unless `principal` owns the keystore (key and grant management). */
export function requireOwner(owner: string, principal: string, what: string, uri?: string): void {
  if (principal !== owner) {
    throw localError(
      'AccessDenied',
      `only the keystore owner may ${what} (caller: ${quote(principal)})`,
      uri,
    );
  }
}
