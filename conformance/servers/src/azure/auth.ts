// Challenge authentication and access policies. A request without a bearer token gets 401 and
// the challenge the SDKs parse; a bearer token names a principal (opts.principals), and a
// principal without the permission an operation needs gets 403 ForbiddenByPolicy
// (https://learn.microsoft.com/azure/key-vault/general/authentication,
// https://learn.microsoft.com/azure/key-vault/general/rest-error-codes).
import { createHash } from 'node:crypto';
import { KeyVaultError } from './errors.js';
import type { ServerMode } from './material.js';
import { KEY_PERMISSIONS, type KeyPermission } from './router.js';

export type PrincipalAccess = readonly KeyPermission[] | 'all';

export interface Principal {
  /** An object id derived from the token, for messages: the token itself is never echoed. */
  readonly objectId: string;
  readonly permissions: ReadonlySet<KeyPermission>;
}

export function challengeHeader(mode: ServerMode, tenantId: string): string {
  const resource = mode === 'hsm' ? 'https://managedhsm.azure.net' : 'https://vault.azure.net';
  return `Bearer authorization="https://login.microsoftonline.com/${tenantId}", resource="${resource}"`;
}

export class AccessPolicies {
  private readonly byToken = new Map<string, Principal>();

  constructor(principals: Readonly<Record<string, PrincipalAccess>>) {
    for (const [token, access] of Object.entries(principals)) {
      const list = access === 'all' ? KEY_PERMISSIONS : access;
      for (const p of list) {
        if (!(KEY_PERMISSIONS as readonly string[]).includes(p)) {
          throw new Error(`unknown key permission '${p}'`);
        }
      }
      this.byToken.set(token, { objectId: objectIdOf(token), permissions: new Set(list) });
    }
  }

  /** The principal behind an Authorization header, or a 401 when there is no bearer token. */
  authenticate(header: string | undefined): Principal {
    const match = header ? /^Bearer\s+(\S+)$/i.exec(header.trim()) : null;
    if (!match?.[1]) {
      throw new KeyVaultError(401, 'Unauthorized', 'AKV10000: Request is missing a Bearer or PoP token.');
    }
    return this.byToken.get(match[1]) ?? { objectId: objectIdOf(match[1]), permissions: new Set() };
  }

  static authorize(p: Principal, permission: KeyPermission, vaultName: string): void {
    if (p.permissions.has(permission)) return;
    throw new KeyVaultError(
      403,
      'Forbidden',
      `The user, group or application 'oid=${p.objectId}' does not have keys ${permission} permission on key vault '${vaultName}'.`,
      'ForbiddenByPolicy',
    );
  }
}

function objectIdOf(token: string): string {
  const h = createHash('sha256').update(token).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}
