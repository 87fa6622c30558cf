/**
 * Grants as Vault policies + tokens.
 *
 * A grant is an ACL policy `keyport-grant-<key hash>-<id>` allowing exactly the transit paths
 * of the granted operations on one key, plus an orphan token carrying only that policy (and
 * `default`), with the grant's TTL: expiry is Vault's own. `contextEquals` is pinned with
 * `required_parameters` + `allowed_parameters` on `associated_data` (base64 of the canonical
 * context encoding — one exact string per context), and `batch_input` is denied because
 * parameters inside batch items escape policy checks. `contextSubset` cannot be expressed as
 * an exact parameter value and is refused. The grant's metadata rides in a comment line at
 * the top of the policy, so listing needs nothing but the policies.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  type EncryptionContext,
  type Grant,
  type GrantOperation,
  type GrantRequest,
  KeyportError,
  UnsupportedError,
} from '@keyport/core';
import { associatedData } from './codec.js';
import type { ResolvedKey } from './locate.js';
import type { VaultSession } from './session.js';

const HEADER = '# keyport-grant v1 ';

interface GrantMeta {
  readonly id: string;
  readonly keyUri: string;
  readonly grantee: string;
  readonly operations: readonly GrantOperation[];
  readonly contextEquals?: EncryptionContext;
  readonly expiresAt?: string;
  readonly name?: string;
  readonly createdAt: string;
  readonly accessor: string;
}

/** Path suffixes (after `<mount>/`) each operation needs, and whether the context applies. */
function pathsFor(op: GrantOperation, name: string): Array<{ path: string; caps: string; context: boolean }> {
  const u = (path: string, context = false): { path: string; caps: string; context: boolean } => ({
    path,
    caps: 'update',
    context,
  });
  const readKey = { path: `keys/${name}`, caps: 'read', context: false };
  switch (op) {
    case 'encrypt':
      return [u(`encrypt/${name}`, true)];
    case 'decrypt':
      return [u(`decrypt/${name}`, true)];
    case 'generate_data_key':
      return [u(`datakey/plaintext/${name}`, true), u(`datakey/wrapped/${name}`, true)];
    case 're_encrypt':
      return [u(`rewrap/${name}`)];
    // keyport reads the key type before signing and the live versions before verifying.
    case 'sign':
      return [u(`sign/${name}`), u(`sign/${name}/*`), readKey];
    case 'verify':
    case 'verify_mac':
      return [u(`verify/${name}`), u(`verify/${name}/*`), readKey];
    case 'mac':
      return [u(`hmac/${name}`), u(`hmac/${name}/*`), readKey];
    case 'describe':
      return [readKey];
  }
}

function contextRules(contextEquals: EncryptionContext | undefined): string {
  if (contextEquals === undefined) return '';
  const aad = associatedData(contextEquals);
  if (aad === undefined) {
    return '  denied_parameters = {\n    "associated_data" = []\n    "context" = []\n    "batch_input" = []\n  }\n';
  }
  return (
    '  required_parameters = ["associated_data"]\n' +
    `  allowed_parameters = {\n    "associated_data" = ["${aad}"]\n    "*" = []\n  }\n` +
    '  denied_parameters = {\n    "batch_input" = []\n  }\n'
  );
}

/** The HCL policy for a grant (exported for tests and for the README example). */
export function grantPolicy(key: ResolvedKey, meta: GrantMeta): string {
  const header = `${HEADER}${Buffer.from(JSON.stringify(meta)).toString('base64url')}\n`;
  const seen = new Map<string, { caps: string; context: boolean }>();
  for (const op of meta.operations) {
    for (const p of pathsFor(op, key.name)) {
      if (!seen.has(p.path)) seen.set(p.path, { caps: p.caps, context: p.context });
    }
  }
  const blocks = [...seen].map(
    ([path, { caps, context }]) =>
      `path "${key.mount}/${path}" {\n  capabilities = ["${caps}"]\n${context ? contextRules(meta.contextEquals) : ''}}\n`,
  );
  return header + blocks.join('');
}

function parseMeta(rules: string): GrantMeta | undefined {
  const first = rules.split('\n', 1)[0] ?? '';
  if (!first.startsWith(HEADER)) return undefined;
  try {
    return JSON.parse(Buffer.from(first.slice(HEADER.length), 'base64url').toString('utf8')) as GrantMeta;
  } catch {
    return undefined;
  }
}

function policyPrefix(key: ResolvedKey): string {
  const h = createHash('sha256').update(`${key.mount}/${key.name}`).digest('hex').slice(0, 16);
  return `keyport-grant-${h}-`;
}

function toGrant(meta: GrantMeta, token?: string): Grant {
  return {
    id: meta.id,
    keyUri: meta.keyUri,
    grantee: meta.grantee,
    operations: meta.operations,
    ...(meta.contextEquals !== undefined ? { constraints: { contextEquals: meta.contextEquals } } : {}),
    ...(meta.expiresAt !== undefined ? { expiresAt: new Date(meta.expiresAt) } : {}),
    ...(meta.name !== undefined ? { name: meta.name } : {}),
    createdAt: new Date(meta.createdAt),
    ...(token !== undefined ? { token } : {}),
  };
}

export async function createGrant(
  session: VaultSession,
  key: ResolvedKey,
  req: GrantRequest,
  signal: AbortSignal,
): Promise<Grant> {
  if (req.constraints?.contextSubset !== undefined) {
    throw new UnsupportedError(
      'grantConstraints.contextSubset',
      'Vault policies pin exact parameter values: only contextEquals can be enforced',
      { provider: 'hcvault', keyUri: key.uri },
    );
  }
  if (req.operations.length === 0)
    throw new KeyportError('InvalidArgument', 'a grant needs at least one operation');
  const contextEquals = req.constraints?.contextEquals;
  if (
    contextEquals !== undefined &&
    associatedData(contextEquals) !== undefined &&
    req.operations.includes('re_encrypt')
  ) {
    throw new KeyportError(
      'InvalidArgument',
      'transit rewrap cannot check a context: grant decrypt and encrypt instead of re_encrypt',
      { keyUri: key.uri },
    );
  }
  let ttlSeconds: number | undefined;
  if (req.expiresAt !== undefined) {
    ttlSeconds = Math.ceil((req.expiresAt.getTime() - Date.now()) / 1000);
    if (ttlSeconds <= 0) throw new KeyportError('InvalidArgument', 'grant expiry is in the past');
  }
  const id = randomBytes(8).toString('hex');
  const policyName = `${policyPrefix(key)}${id}`;
  // The token first (it may name a policy that does not exist yet), so the policy can carry
  // the token's accessor for revocation.
  const created = (await session.call(signal, (o, vault) =>
    vault.write(
      'auth/token/create-orphan',
      {
        policies: [policyName],
        display_name: 'keyport-grant',
        meta: { keyport_grant: id },
        ...(ttlSeconds !== undefined
          ? { ttl: `${ttlSeconds}s`, explicit_max_ttl: `${ttlSeconds}s`, renewable: false }
          : { renewable: true }),
      },
      o,
    ),
  )) as { auth: { client_token: string; accessor: string } };
  const meta: GrantMeta = {
    id,
    keyUri: key.uri,
    grantee: req.grantee,
    operations: [...req.operations],
    ...(contextEquals !== undefined ? { contextEquals } : {}),
    ...(req.expiresAt !== undefined ? { expiresAt: req.expiresAt.toISOString() } : {}),
    ...(req.name !== undefined ? { name: req.name } : {}),
    createdAt: new Date().toISOString(),
    accessor: created.auth.accessor,
  };
  try {
    await session.call(signal, (o, vault) =>
      vault.write(`sys/policy/${policyName}`, { policy: grantPolicy(key, meta) }, o),
    );
  } catch (error) {
    // No policy, no grant: take the token back so nothing half-made is left.
    await session
      .call(AbortSignal.timeout(5_000), (o, vault) =>
        vault.write('auth/token/revoke-accessor', { accessor: created.auth.accessor }, o),
      )
      .catch(() => undefined);
    throw error;
  }
  return toGrant(meta, created.auth.client_token);
}

async function readGrantPolicy(
  session: VaultSession,
  name: string,
  signal: AbortSignal,
): Promise<GrantMeta | undefined> {
  const r = (await session.call(signal, (o, vault) => vault.read(`sys/policy/${name}`, o))) as {
    rules?: string;
    data?: { rules?: string };
  };
  return parseMeta(r.data?.rules ?? r.rules ?? '');
}

export async function* listGrants(
  session: VaultSession,
  key: ResolvedKey,
  signal: AbortSignal,
): AsyncIterable<Grant> {
  const r = (await session.call(signal, (o, vault) => vault.read('sys/policy', o))) as {
    policies?: string[];
    data?: { policies?: string[] };
  };
  const prefix = policyPrefix(key);
  for (const name of r.data?.policies ?? r.policies ?? []) {
    if (!name.startsWith(prefix)) continue;
    const meta = await readGrantPolicy(session, name, signal);
    if (meta === undefined) continue;
    if (meta.expiresAt !== undefined && Date.parse(meta.expiresAt) <= Date.now()) {
      // Vault already revoked the token; drop the leftover policy.
      await session.call(signal, (o, vault) => vault.delete(`sys/policy/${name}`, o)).catch(() => undefined);
      continue;
    }
    yield toGrant(meta);
  }
}

export async function revokeGrant(
  session: VaultSession,
  key: ResolvedKey,
  grantId: string,
  signal: AbortSignal,
): Promise<void> {
  if (!/^[0-9a-f]{16}$/.test(grantId))
    throw new KeyportError('NotFound', 'no such grant', { keyUri: key.uri });
  const name = `${policyPrefix(key)}${grantId}`;
  let meta: GrantMeta | undefined;
  try {
    meta = await readGrantPolicy(session, name, signal);
  } catch (error) {
    if ((error as { response?: { statusCode?: number } }).response?.statusCode === 404) {
      throw new KeyportError('NotFound', 'no such grant', { provider: 'hcvault', keyUri: key.uri });
    }
    throw error;
  }
  if (meta === undefined)
    throw new KeyportError('NotFound', 'no such grant', { provider: 'hcvault', keyUri: key.uri });
  try {
    await session.call(signal, (o, vault) =>
      vault.write('auth/token/revoke-accessor', { accessor: meta.accessor }, o),
    );
  } catch (error) {
    // An expired token is already gone; anything else must surface.
    const status = (error as { response?: { statusCode?: number } }).response?.statusCode;
    if (status !== 400 && status !== 404) throw error;
  }
  await session.call(signal, (o, vault) => vault.delete(`sys/policy/${name}`, o));
}
