/**
 * Grants as Vault policies + tokens. A grant is an ACL policy `keyport-grant-<key hash>-<id>`
 * allowing exactly the transit paths of the granted operations on one key, and an orphan token
 * carrying only that policy (and `default`) with the grant's TTL, or without one the longest the
 * token mount allows: expiry is Vault's own, and every grant reports it.
 * `contextEquals` is pinned with `required_parameters` + `allowed_parameters` on
 * `associated_data` (one exact string per context), and `batch_input` is denied because
 * parameters inside batch items escape policy checks. `contextSubset` cannot be expressed as an
 * exact parameter value and is refused. The grant's metadata rides in a comment line at the top
 * of the policy, so listing needs nothing but the policies (and, for grants made before the
 * policy recorded the token's expiry, a lookup of the token).
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  type EncryptionContext,
  GRANT_OPERATIONS,
  type Grant,
  type GrantOperation,
  type GrantRequest,
  KeyportError,
  keyportError,
  type ProviderCallOptions,
  toEncryptionContext,
} from '@keyport/core';
import { malformedAnswer, mapVaultError, PROVIDER_NAME } from './errors.js';
import { abortError, raceAbort, statusOf, type VaultSession } from './rpc.js';
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

const GRANT_ID = /^[0-9a-f]{16}$/;
const isDate = (v: unknown): v is string => typeof v === 'string' && !Number.isNaN(Date.parse(v));

/**
 * The grant a policy's header describes, or undefined when it is not one keyport wrote: anyone
 * who may write `sys/policy` can put any text there, so every field is checked, the id must be
 * the one in the policy's name, and the context is rebuilt prototype-free (JSON.parse keeps a
 * `__proto__` key as an own property of an ordinary object).
 */
function parseMeta(rules: unknown, id: string): GrantMeta | undefined {
  if (typeof rules !== 'string') return undefined;
  const first = rules.slice(0, rules.indexOf('\n') >>> 0);
  if (!first.startsWith(HEADER)) return undefined;
  try {
    const m: unknown = JSON.parse(Buffer.from(first.slice(HEADER.length), 'base64url').toString('utf8'));
    if (typeof m !== 'object' || m === null || Array.isArray(m)) return undefined;
    const o = m as Record<string, unknown>;
    const ops = o.operations;
    const known = GRANT_OPERATIONS as readonly unknown[];
    if (
      o.id !== id ||
      typeof o.keyUri !== 'string' ||
      typeof o.grantee !== 'string' ||
      !Array.isArray(ops) ||
      !ops.every((op) => known.includes(op)) ||
      (o.expiresAt !== undefined && !isDate(o.expiresAt)) ||
      (o.name !== undefined && typeof o.name !== 'string') ||
      !isDate(o.createdAt) ||
      typeof o.accessor !== 'string' ||
      o.accessor === ''
    ) {
      return undefined;
    }
    const contextEquals = o.contextEquals === undefined ? undefined : toEncryptionContext(o.contextEquals);
    return {
      id,
      keyUri: o.keyUri,
      grantee: o.grantee,
      operations: ops as GrantOperation[],
      ...(contextEquals !== undefined ? { contextEquals } : {}),
      ...(o.expiresAt !== undefined ? { expiresAt: o.expiresAt as string } : {}),
      ...(o.name !== undefined ? { name: o.name as string } : {}),
      createdAt: o.createdAt,
      accessor: o.accessor,
    };
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
  // the token's accessor for revocation. Without an expiry the token asks for more than any
  // Vault allows: Vault caps it at the token mount's max TTL, so it gets the longest life it can
  // have, and not renewable, that life ends at a date known now (no non-root token lives forever).
  const lifetime =
    ttl === undefined
      ? { ttl: LONGEST_TTL, renewable: false }
      : { ttl: `${ttl}s`, explicit_max_ttl: `${ttl}s`, renewable: false };
  const token = {
    policies: [policyName],
    display_name: 'keyport-grant',
    meta: { keyport_grant: id },
    ...lifetime,
  };
  // Before the request: the token's life counts from a moment after this, so an expiry counted
  // from here is never later than the token's.
  const asked = Date.now();
  const created = await mintToken(s, token, signal);
  const { clientToken, accessor } = tokenOf(created);
  if (clientToken === '' || accessor === '') {
    // Without both, keyport could neither hand the token over nor revoke it later.
    const left = await cleanUp(s, clientToken, accessor);
    throw malformedAnswer(`the grant's token creation without a token and its accessor${left}`, key.uri);
  }
  // Vault caps a TTL beyond the token mount's (or the system's) max TTL without failing, with
  // only a warning: the grant would claim an expiry its token does not have, and a grantee
  // would lose access before the date it was promised. The lease Vault granted is the truth.
  const granted = (created as { auth?: { lease_duration?: unknown } } | null)?.auth?.lease_duration;
  if (typeof granted !== 'number' || !Number.isSafeInteger(granted) || granted <= 0 || granted > LONGEST_S) {
    const left = await cleanUp(s, clientToken, accessor);
    throw malformedAnswer(`the grant's token creation without a valid lease duration${left}`, key.uri);
  }
  if (ttl !== undefined && granted < ttl) {
    const left = await cleanUp(s, clientToken, accessor);
    const options = { provider: PROVIDER_NAME, keyUri: key.uri, retryable: false };
    const why =
      `grant expiry is beyond what this Vault allows: the token mount's max TTL is ${granted}s ` +
      `(${describeSeconds(granted)}) and the expiry asked for is ${ttl}s away; ask for an earlier ` +
      `expiresAt, or raise the max TTL of auth/token${left}`;
    throw new KeyportError('InvalidArgument', why, options);
  }
  const meta: GrantMeta = {
    id,
    keyUri: key.uri,
    grantee: req.grantee,
    operations: [...req.operations],
    ...(contextEquals !== undefined ? { contextEquals } : {}),
    // Without an expiry asked for, the token's own: the grant stops working then all the same.
    expiresAt: (req.expiresAt ?? new Date(asked + granted * 1000)).toISOString(),
    ...(req.name !== undefined ? { name: req.name } : {}),
    createdAt: new Date().toISOString(),
    accessor,
  };
  try {
    await s.write(signal, `sys/policy/${policyName}`, { policy: grantPolicy(key, meta) });
  } catch (error) {
    // No policy, no grant: take the token back so nothing half-made is left.
    const left = await cleanUp(s, clientToken, accessor);
    if (left === '') throw error;
    const mapped = mapVaultError(error, key.uri);
    if (mapped === undefined) {
      throw new KeyportError('Internal', `the grant's policy could not be written${left}`, {
        provider: PROVIDER_NAME,
        keyUri: key.uri,
        cause: error,
      });
    }
    throw new KeyportError(mapped.code, `${mapped.message}${left}`, {
      provider: PROVIDER_NAME,
      keyUri: key.uri,
      requestId: mapped.requestId,
      retryable: mapped.retryable,
      retryAfterMs: mapped.retryAfterMs,
      cause: error,
    });
  }
  return toGrant(meta, clientToken);
}

/** A TTL beyond any max TTL (100 years): Vault caps it at the token mount's max TTL. */
const LONGEST_TTL = '876000h';
const LONGEST_S = 876_000 * 3600;
const CLEANUP_MS = 5_000;
/** How long a grant token's creation may run once the caller stopped waiting for it. */
const MINT_MS = 30_000;

function tokenOf(created: unknown): { clientToken: string; accessor: string } {
  const auth = (created as { auth?: { client_token?: unknown; accessor?: unknown } } | null)?.auth;
  return {
    clientToken: typeof auth?.client_token === 'string' ? auth.client_token : '',
    accessor: typeof auth?.accessor === 'string' ? auth.accessor : '',
  };
}

/** `86400` → `24h`, `90` → `1m30s`: the max TTL as Vault's own settings write it. */
function describeSeconds(total: number): string {
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const sec = total % 60;
  return `${h > 0 ? `${h}h` : ''}${m > 0 ? `${m}m` : ''}${sec > 0 || total === 0 ? `${sec}s` : ''}`;
}

/**
 * Creates the grant's token. The request itself does not carry the caller's signal: once sent,
 * Vault may make the token whether or not the answer is awaited, and a caller that aborted (or
 * timed out) would leave a live token nobody knows of. The caller stops waiting at once; the
 * request runs on to its answer (within MINT_MS) and a token it made is revoked.
 */
async function mintToken(s: VaultSession, body: object, signal: AbortSignal): Promise<unknown> {
  if (signal.aborted) throw abortError(signal);
  const pending = s.write<unknown>(AbortSignal.timeout(MINT_MS), 'auth/token/create-orphan', body);
  try {
    return await raceAbort(pending, signal);
  } catch (error) {
    if (signal.aborted) {
      void pending.then(
        (created) => {
          const { clientToken, accessor } = tokenOf(created);
          return cleanUp(s, clientToken, accessor);
        },
        () => undefined,
      );
    }
    throw error;
  }
}

/**
 * Revokes a grant token that will not be handed out: by accessor (the caller's permission), else
 * with `revoke-self` as the token itself (Vault's `default` policy, which every grant token
 * carries, allows it: no permission of the caller is needed). Runs on a deadline of its own, so a
 * caller that gave up still gets its token taken back. Answers '' when the token is gone, else a
 * sentence for the error saying a token may be left, naming its accessor (never the token).
 */
async function cleanUp(s: VaultSession, token: string, accessor: string): Promise<string> {
  if (accessor !== '') {
    const byAccessor = await s
      .write(AbortSignal.timeout(CLEANUP_MS), 'auth/token/revoke-accessor', { accessor })
      .then(
        () => true,
        () => false,
      );
    if (byAccessor) return '';
  }
  if (token !== '') {
    const bySelf = await s.writeAs(token, AbortSignal.timeout(CLEANUP_MS), 'auth/token/revoke-self').then(
      () => true,
      () => false,
    );
    if (bySelf) return '';
  }
  return accessor === ''
    ? '; a grant token may be left on the server and could not be revoked (Vault named no accessor)'
    : `; a grant token may be left on the server and could not be revoked: revoke accessor ${JSON.stringify(accessor)} (auth/token/revoke-accessor)`;
}

async function readGrantPolicy(s: VaultSession, prefix: string, id: string, signal: AbortSignal) {
  type Answer = { rules?: unknown; data?: { rules?: unknown } } | null | undefined;
  const r = await s.read<Answer>(signal, `sys/policy/${prefix}${id}`);
  return parseMeta(r?.data?.rules ?? r?.rules, id);
}

/**
 * The current expiry of a grant token, for grants made before keyport recorded one in the
 * policy (their tokens were renewable, up to the max TTL): looked up by accessor. A token the
 * caller may not look up, or that is gone, leaves it unknown, as before.
 */
async function tokenExpiry(s: VaultSession, accessor: string, signal: AbortSignal) {
  type Answer = { data?: { expire_time?: unknown } } | null | undefined;
  try {
    const r = await s.write<Answer>(signal, 'auth/token/lookup-accessor', { accessor });
    const at = r?.data?.expire_time;
    return isDate(at) ? new Date(at).toISOString() : undefined;
  } catch (error) {
    if (signal.aborted) throw error;
    return undefined;
  }
}

export async function* listGrants({ s, key }: Keyed, { signal }: ProviderCallOptions) {
  type Answer = { policies?: unknown; data?: { policies?: unknown } } | null | undefined;
  const r = await s.read<Answer>(signal, 'sys/policy');
  const prefix = policyPrefix(key);
  const names = r?.data?.policies ?? r?.policies;
  // An answer that is not a list of policy names may be hiding grants: refused, never read as
  // "no grants" (an audit of who may use the key would come back clean).
  const malformed = (why: string) => malformedAnswer(`the policy listing ${why}`, key.uri);
  if (!Array.isArray(names)) throw malformed('without a list of policy names');
  for (const name of names) {
    if (typeof name !== 'string') throw malformed('with an entry that is not a policy name');
    // Only names keyport could have made.
    if (!name.startsWith(prefix)) continue;
    const id = name.slice(prefix.length);
    if (!GRANT_ID.test(id)) continue;
    const read = await readGrantPolicy(s, prefix, id, signal);
    if (read === undefined) continue;
    const expiresAt = read.expiresAt ?? (await tokenExpiry(s, read.accessor, signal));
    const meta = expiresAt === undefined ? read : { ...read, expiresAt };
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
  if (!GRANT_ID.test(grantId)) throw missing();
  const prefix = policyPrefix(key);
  const name = `${prefix}${grantId}`;
  const meta = await readGrantPolicy(s, prefix, grantId, signal).catch((error: unknown) => {
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
