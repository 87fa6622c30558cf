/**
 * Grants as Vault policies + tokens. A grant is an ACL policy `keyport-grant-<key hash>-<id>`
 * allowing exactly the transit paths of the granted operations on one key, and an orphan token
 * carrying only that policy (and `default`) with the grant's TTL: expiry is Vault's own.
 * `contextEquals` is pinned with `required_parameters` + `allowed_parameters` on
 * `associated_data` (one exact string per context), and `batch_input` is denied because
 * parameters inside batch items escape policy checks. `contextSubset` cannot be expressed as an
 * exact parameter value and is refused. The grant's metadata rides in a comment line at the top
 * of the policy, so listing needs nothing but the policies.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  type EncryptionContext,
  type Grant,
  type GrantOperation,
  type GrantRequest,
  KeyportError,
  keyportError,
  type ProviderCallOptions,
} from '@keyport/core';
import { PROVIDER_NAME } from './errors.js';
import { statusOf, type VaultSession } from './rpc.js';
import { associatedData } from './specs.js';
import type { ResolvedKey } from './uri.js';

/** The server and the key a grant call is about. */
type Keyed = { readonly s: VaultSession; readonly key: ResolvedKey };

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

/**
 * The transit paths (after `<mount>/`, `*` for the key name) each operation needs; `ctx` marks
 * the paths whose context a grant pins. keyport reads the key before signing and verifying.
 */
const GRANT_PATHS: Readonly<Record<GrantOperation, readonly string[]>> = {
  encrypt: ['ctx encrypt/*'],
  decrypt: ['ctx decrypt/*'],
  generate_data_key: ['ctx datakey/plaintext/*', 'ctx datakey/wrapped/*'],
  re_encrypt: ['rewrap/*'],
  sign: ['sign/*', 'sign/*/*', 'read keys/*'],
  verify: ['verify/*', 'verify/*/*', 'read keys/*'],
  verify_mac: ['verify/*', 'verify/*/*', 'read keys/*'],
  mac: ['hmac/*', 'hmac/*/*', 'read keys/*'],
  describe: ['read keys/*'],
};

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
  const paths = new Map<string, string>();
  for (const op of meta.operations) {
    for (const entry of GRANT_PATHS[op]) {
      const [kind, path] = entry.includes(' ') ? (entry.split(' ') as [string, string]) : ['update', entry];
      const full = `${key.mount}/${path.replace('*', () => key.name)}`;
      if (!paths.has(full)) paths.set(full, kind);
    }
  }
  const blocks = [...paths].map(
    ([path, kind]) =>
      `path "${path}" {\n  capabilities = ["${kind === 'read' ? 'read' : 'update'}"]\n${kind === 'ctx' ? contextRules(meta.contextEquals) : ''}}\n`,
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
  return `keyport-grant-${createHash('sha256').update(`${key.mount}/${key.name}`).digest('hex').slice(0, 16)}-`;
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

export async function createGrant({ s, key }: Keyed, req: GrantRequest, { signal }: ProviderCallOptions) {
  const refuse = (why: string) => new KeyportError('InvalidArgument', why, { keyUri: key.uri });
  if (req.constraints?.contextSubset !== undefined) {
    const why = 'Vault policies pin exact parameter values: only contextEquals can be enforced';
    const capability = 'grantConstraints.contextSubset';
    throw keyportError('Unsupported', why, { provider: PROVIDER_NAME, keyUri: key.uri, capability });
  }
  const contextEquals = req.constraints?.contextEquals;
  if (associatedData(contextEquals) !== undefined && req.operations.includes('re_encrypt')) {
    throw refuse('transit rewrap cannot check a context: grant decrypt and encrypt instead of re_encrypt');
  }
  const ttl =
    req.expiresAt === undefined ? undefined : Math.ceil((req.expiresAt.getTime() - Date.now()) / 1000);
  if (ttl !== undefined && ttl <= 0) throw refuse('grant expiry is in the past');
  const id = randomBytes(8).toString('hex');
  const policyName = `${policyPrefix(key)}${id}`;
  // The token first (it may name a policy that does not exist yet), so the policy can carry
  // the token's accessor for revocation.
  const lifetime =
    ttl === undefined
      ? { renewable: true }
      : { ttl: `${ttl}s`, explicit_max_ttl: `${ttl}s`, renewable: false };
  const token = {
    policies: [policyName],
    display_name: 'keyport-grant',
    meta: { keyport_grant: id },
    ...lifetime,
  };
  type Created = { auth: { client_token: string; accessor: string } };
  const created = await s.write<Created>(signal, 'auth/token/create-orphan', token);
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
    await s.write(signal, `sys/policy/${policyName}`, { policy: grantPolicy(key, meta) });
  } catch (error) {
    // No policy, no grant: take the token back so nothing half-made is left.
    await s
      .write(AbortSignal.timeout(5_000), 'auth/token/revoke-accessor', { accessor: created.auth.accessor })
      .catch(() => undefined);
    throw error;
  }
  return toGrant(meta, created.auth.client_token);
}

async function readGrantPolicy(s: VaultSession, name: string, signal: AbortSignal) {
  const r = await s.read<{ rules?: string; data?: { rules?: string } }>(signal, `sys/policy/${name}`);
  return parseMeta(r.data?.rules ?? r.rules ?? '');
}

export async function* listGrants({ s, key }: Keyed, { signal }: ProviderCallOptions) {
  const r = await s.read<{ policies?: string[]; data?: { policies?: string[] } }>(signal, 'sys/policy');
  const prefix = policyPrefix(key);
  for (const name of r.data?.policies ?? r.policies ?? []) {
    if (!name.startsWith(prefix)) continue;
    const meta = await readGrantPolicy(s, name, signal);
    if (meta === undefined) continue;
    if (meta.expiresAt !== undefined && Date.parse(meta.expiresAt) <= Date.now()) {
      // Vault already revoked the token; drop the leftover policy.
      await s.remove(signal, `sys/policy/${name}`).catch(() => undefined);
      continue;
    }
    yield toGrant(meta);
  }
}

export async function revokeGrant({ s, key }: Keyed, grantId: string, { signal }: ProviderCallOptions) {
  const missing = () =>
    new KeyportError('NotFound', 'no such grant', { provider: PROVIDER_NAME, keyUri: key.uri });
  if (!/^[0-9a-f]{16}$/.test(grantId)) throw missing();
  const name = `${policyPrefix(key)}${grantId}`;
  const meta = await readGrantPolicy(s, name, signal).catch((error: unknown) => {
    throw statusOf(error) === 404 ? missing() : error;
  });
  if (meta === undefined) throw missing();
  try {
    await s.write(signal, 'auth/token/revoke-accessor', { accessor: meta.accessor });
  } catch (error) {
    // An expired token is already gone; anything else must surface.
    if (statusOf(error) !== 400 && statusOf(error) !== 404) throw error;
  }
  await s.remove(signal, `sys/policy/${name}`);
}
