/**
 * Grants are IAM policy bindings on the crypto key. One grant = one binding per role it needs,
 * all carrying the same IAM condition: its title is the grant id, its description records the
 * grant (name, operations), and its expression limits it to this key and, with an expiry, to
 * `request.time < timestamp(...)` — Cloud KMS enforces expiry itself. IAM conditions cannot see a
 * request's additional authenticated data, so context constraints are refused.
 */
import { randomBytes } from 'node:crypto';
import type { KeyManagementServiceClient } from '@google-cloud/kms';
import {
  checkGrantRequest,
  GRANT_OPERATIONS,
  type Grant,
  type GrantOperation,
  type GrantRequest,
  KeyportError,
  type KeyRef,
  keyportError,
  type ProviderCallOptions as Opts,
} from '@keyport/core';
import { ABORTED } from './errors.js';
import { defined, type Runtime } from './rpc.js';
import { type KeyTarget, targetOf } from './uri.js';

// The client types IAM requests as protobuf classes; plain objects are what it actually takes.
type GetPolicyRequest = Parameters<KeyManagementServiceClient['getIamPolicy']>[0];
type SetPolicyRequest = Parameters<KeyManagementServiceClient['setIamPolicy']>[0];

/** The predefined role each operation needs (least privilege; see the README). */
export const ROLES_BY_OPERATION: Readonly<Record<GrantOperation, readonly string[]>> = {
  encrypt: ['roles/cloudkms.cryptoKeyEncrypter'],
  // Data keys are drawn locally and wrapped with Encrypt: the same permission as encrypt.
  generate_data_key: ['roles/cloudkms.cryptoKeyEncrypter'],
  decrypt: ['roles/cloudkms.cryptoKeyDecrypter'],
  re_encrypt: ['roles/cloudkms.cryptoKeyEncrypter', 'roles/cloudkms.cryptoKeyDecrypter'],
  // Signing and MAC name a version: keyport finds it (ListCryptoKeyVersions, or GetCryptoKeyVersion
  // when pinned), which no narrower predefined role than the viewer allows.
  sign: ['roles/cloudkms.signer', 'roles/cloudkms.viewer'],
  // Signatures are verified locally: the public key is what the grantee needs (and MacVerify).
  verify: ['roles/cloudkms.verifier', 'roles/cloudkms.viewer'],
  mac: ['roles/cloudkms.signer', 'roles/cloudkms.viewer'],
  verify_mac: ['roles/cloudkms.verifier', 'roles/cloudkms.viewer'],
  describe: ['roles/cloudkms.viewer'],
};

const GRANT_MARK = 'keyport-grant';
const ID_PREFIX = 'kpg-';
const MAX_ATTEMPTS = 3;

type Condition = { title?: string | null; description?: string | null; expression?: string | null };
type Binding = { role?: string | null; members?: string[] | null; condition?: Condition | null };
type Policy = { bindings?: Binding[] | null; etag?: Uint8Array | string | null };
/** What a binding's condition description records: mark, name, operations, expiry, creation. */
type GrantRecord = { k: string; n?: string; o: GrantOperation[]; e?: string; c?: string };

/** An ISO timestamp as keyport writes it (`Date#toISOString`), or absent. */
const isoOrAbsent = (v: unknown): boolean =>
  v === undefined ||
  (typeof v === 'string' && !Number.isNaN(Date.parse(v)) && new Date(v).toISOString() === v);

/**
 * The grant a condition description records, or undefined when it is not one keyport wrote: the
 * mark, known operations, a string name and exact ISO dates. Anyone who can set the key's IAM
 * policy can write a look-alike; a malformed one is not listed as a grant (it would carry
 * unknown operations or Invalid Dates to the caller).
 */
function parseRecord(description: string | null | undefined): GrantRecord | undefined {
  let r: unknown;
  try {
    r = JSON.parse(description ?? '');
  } catch {
    return undefined;
  }
  if (typeof r !== 'object' || r === null) return undefined;
  const { k, n, o, e, c } = r as Record<string, unknown>;
  const ops = GRANT_OPERATIONS as readonly unknown[];
  const valid =
    k === GRANT_MARK &&
    Array.isArray(o) &&
    o.length > 0 &&
    o.every((op) => ops.includes(op)) &&
    (n === undefined || typeof n === 'string') &&
    isoOrAbsent(e) &&
    isoOrAbsent(c);
  return valid ? (r as GrantRecord) : undefined;
}

async function getPolicy(rt: Runtime, t: KeyTarget, o: Opts): Promise<Policy> {
  const request = { resource: t.keyName, options: { requestedPolicyVersion: 3 } } as GetPolicyRequest;
  return rt.rpc.call(o, (co, kms) => kms.getIamPolicy(request, co), t.uri);
}

/**
 * The etag the policy was read with, which the write must carry. Without one SetIamPolicy writes
 * unconditionally: a binding another writer added after our read (a grant made at the same time)
 * would be overwritten and lost, and a revoked one could come back. Cloud IAM always answers an
 * etag; an answer without one (a proxy or an emulator that drops it) is refused before any write.
 */
function etagOf(rt: Runtime, t: KeyTarget, policy: Policy): Uint8Array | string {
  const etag = policy.etag;
  if (etag === undefined || etag === null || etag.length === 0) {
    const why =
      "Cloud KMS answered the key's IAM policy without an etag: keyport writes the policy only " +
      'conditionally on the etag it read (without one, a concurrent change would be overwritten), ' +
      'so nothing was written';
    throw new KeyportError('Internal', why, {
      keyUri: t.uri,
      provider: rt.rpc.providerName,
      retryable: false,
    });
  }
  return etag;
}

/**
 * Read-modify-write of the key's policy; a concurrent writer (ABORTED on the etag) means read
 * again. When every attempt meets one, nothing was written: the error says so as Throttled (core
 * then retries even createGrant, which it must not repeat after a failure that may have landed).
 */
async function updatePolicy(rt: Runtime, t: KeyTarget, o: Opts, change: (b: Binding[]) => Binding[]) {
  for (let attempt = 1; ; attempt++) {
    const policy = await getPolicy(rt, t, o);
    const etag = etagOf(rt, t, policy);
    const bindings = change([...(policy.bindings ?? [])]);
    const request = { resource: t.keyName, policy: { version: 3, bindings, etag } };
    try {
      await rt.rpc.call(o, (co, kms) => kms.setIamPolicy(request as unknown as SetPolicyRequest, co), t.uri);
      return;
    } catch (e) {
      const cause = e instanceof KeyportError ? (e.cause as { code?: unknown } | undefined) : undefined;
      if (cause?.code !== ABORTED) throw e;
      if (attempt >= MAX_ATTEMPTS) throw contended(e as KeyportError, t);
    }
  }
}

/** The last of MAX_ATTEMPTS etag conflicts in a row: refused without effect, worth retrying later. */
function contended(e: KeyportError, t: KeyTarget): KeyportError {
  const why = `the key's IAM policy was changed by concurrent writers ${MAX_ATTEMPTS} times in a row (ABORTED on its etag); nothing was written`;
  const { provider, requestId } = e;
  return new KeyportError('Throttled', why, {
    provider,
    keyUri: t.uri,
    requestId,
    retryable: true,
    cause: e,
  });
}

/** The longest condition description IAM accepts. */
export const MAX_DESCRIPTION = 256;

/**
 * The condition description recording the grant, refused when IAM would not hold it: measured in
 * UTF-8 bytes, which is never less than its length in characters, however IAM counts.
 */
function describeGrant(record: GrantRecord, t: KeyTarget): string {
  const description = JSON.stringify(record);
  const size = Buffer.byteLength(description, 'utf8');
  if (size > MAX_DESCRIPTION) {
    const why = `the grant record (name, operations, dates) is ${size} bytes and an IAM condition description holds ${MAX_DESCRIPTION}: shorten the grant name or name fewer operations`;
    throw new KeyportError('InvalidArgument', why, { keyUri: t.uri });
  }
  return description;
}

/** IAM's members for everyone (anonymous or any Google account). */
const PUBLIC_MEMBERS: ReadonlySet<string> = new Set(['allUsers', 'allAuthenticatedUsers']);

export async function createGrant(rt: Runtime, ref: KeyRef, raw: GrantRequest, o: Opts): Promise<Grant> {
  // Checked here too for direct callers (a Keyport has checked it already): an invalid Date, a
  // string of operations or an unknown operation is InvalidArgument, never a TypeError/RangeError.
  const checked = checkGrantRequest(raw, 'req', 'extensions');
  // Each operation once: repeating one grants nothing more and only lengthens the record.
  const req = { ...checked, operations: [...new Set(checked.operations)] };
  const t = targetOf(ref);
  const c = req.constraints;
  if (c?.contextEquals !== undefined || c?.contextSubset !== undefined) {
    const why = 'IAM conditions cannot constrain the encryption context';
    throw keyportError('Unsupported', why, { keyUri: t.uri, capability: 'grantConstraints' });
  }
  if (PUBLIC_MEMBERS.has(req.grantee)) {
    // A key anyone may use protects nothing (CIS GCP Foundations: no anonymous or public access
    // to Cloud KMS keys); a grant is to one principal or group, never to everyone.
    throw new KeyportError(
      'InvalidArgument',
      `a grant to ${req.grantee} would let anyone use the key: name a user, group, service account or domain`,
    );
  }
  if (!/^[A-Za-z]+:.+$/.test(req.grantee)) {
    throw new KeyportError(
      'InvalidArgument',
      'a Cloud KMS grantee is an IAM member such as user:alice@example.com',
    );
  }
  if (req.name !== undefined && req.name.length > 64) {
    throw new KeyportError('InvalidArgument', 'grant names are at most 64 characters');
  }
  const roles = [...new Set(req.operations.flatMap((op) => ROLES_BY_OPERATION[op] ?? []))];
  const id = `${ID_PREFIX}${randomBytes(8).toString('hex')}`;
  const createdAt = new Date();
  const expiry = req.expiresAt?.toISOString();
  const record: GrantRecord = {
    k: GRANT_MARK,
    o: [...req.operations],
    c: createdAt.toISOString(),
    ...defined({ n: req.name, e: expiry }),
  };
  const description = describeGrant(record, t); // before any IAM call
  const condition = { title: id, description, expression: expressionFor(t, expiry) };
  await updatePolicy(rt, t, o, (bindings) => [
    ...bindings,
    ...roles.map((role) => ({ role, members: [req.grantee], condition })),
  ]);
  const { grantee, operations, name, expiresAt } = req;
  return {
    id,
    keyUri: t.uri,
    grantee,
    operations: [...operations],
    createdAt,
    ...defined({ name, expiresAt }),
  };
}

/** The condition expression createGrant writes for this key and expiry. */
function expressionFor(t: KeyTarget, expiry: string | undefined): string {
  const scope = `resource.name.startsWith(${JSON.stringify(t.keyName)})`;
  return expiry === undefined ? scope : `${scope} && request.time < timestamp("${expiry}")`;
}

/**
 * What a binding's expression says, read only in the two forms createGrant writes for this key:
 * the bare scope (no expiry) or the scope with a time limit (its date). Anything else, a resource
 * or request restriction added, an expiry written another way, another key's scope, is foreign:
 * keyport cannot say when or where it applies.
 */
type Reading = { expiry: Date | undefined } | { foreign: string };

function readCondition(t: KeyTarget, expression: string | null | undefined): Reading {
  if (expression === expressionFor(t, undefined)) return { expiry: undefined };
  const prefix = `${expressionFor(t, undefined)} && request.time < timestamp("`;
  if (expression?.startsWith(prefix) && expression.endsWith('")')) {
    const iso = expression.slice(prefix.length, -2);
    if (isoOrAbsent(iso) && expressionFor(t, iso) === expression) return { expiry: new Date(iso) };
  }
  return { foreign: expression ?? '' };
}

/**
 * The grant as its bindings have it. The record is only what keyport wrote when it made the
 * grant; anyone who can set the key's IAM policy can since have changed a binding's role or
 * condition (or written a record that claims less), and IAM enforces the bindings, not the
 * record. So an operation is listed only while every role it needs is bound, a bound role that no
 * listed operation needs is an unmodeled operation (in IAM's words), and the expiry is the latest
 * any binding's condition gives: none when one has no date or one keyport cannot read.
 *
 * A condition keyport cannot read is not only "no expiry": the grant would then look like plain,
 * unconditional access, hiding that IAM applies it under terms keyport does not model. Each
 * foreign expression is listed in `unmodeledConditions`, in IAM's words (an empty expression as
 * ''), for an audit to see and judge; the operations stay listed (the roles are bound) and the
 * expiry stays absent (it may never end).
 */
function grantOf(t: KeyTarget, id: string, record: GrantRecord, grantee: string, bindings: Binding[]): Grant {
  const roles = new Set(bindings.map((b) => b.role ?? ''));
  const operations = record.o.filter((op) => ROLES_BY_OPERATION[op].every((role) => roles.has(role)));
  const needed = new Set(operations.flatMap((op) => ROLES_BY_OPERATION[op]));
  const readings = bindings.map((b) => readCondition(t, b.condition?.expression));
  const foreign = new Set(readings.flatMap((r) => ('foreign' in r ? [r.foreign] : [])));
  const unmodeled = [...roles].filter((role) => !needed.has(role)).sort();
  const conditions = [...foreign].sort();
  const expiries = readings.map((r) => ('expiry' in r ? r.expiry : undefined));
  const open = expiries.some((e) => e === undefined);
  const latest = Math.max(...expiries.map((e) => e?.getTime() ?? Number.NEGATIVE_INFINITY));
  return {
    id,
    keyUri: t.uri,
    grantee,
    operations,
    ...(unmodeled.length > 0 && { unmodeledOperations: unmodeled }),
    ...(conditions.length > 0 && { unmodeledConditions: conditions }),
    ...defined({
      name: record.n,
      expiresAt: open ? undefined : new Date(latest),
      createdAt: record.c === undefined ? undefined : new Date(record.c),
    }),
  };
}

/**
 * The grants keyport made on this key: bindings under a kpg- condition title, one of which carries
 * a grant record, reported as the bindings of that title allow (grantOf). Every member bound under
 * the title is listed, each as a grant of that id: a member added to keyport's binding (allUsers,
 * say) holds the grant's roles as much as the grantee does, and revoking the id removes it too.
 */
export async function* listGrants(rt: Runtime, ref: KeyRef, o: Opts): AsyncIterable<Grant> {
  const t = targetOf(ref);
  const byId = new Map<string, Binding[]>();
  for (const b of (await getPolicy(rt, t, o)).bindings ?? []) {
    const id = b.condition?.title ?? '';
    if (id.startsWith(ID_PREFIX)) byId.set(id, [...(byId.get(id) ?? []), b]);
  }
  for (const [id, bindings] of byId) {
    const record = bindings.map((b) => parseRecord(b.condition?.description)).find((r) => r !== undefined);
    if (record === undefined) continue;
    const members = new Set(bindings.flatMap((b) => b.members ?? []));
    for (const member of members) {
      const held = bindings.filter((b) => b.members?.includes(member) === true);
      yield grantOf(t, id, record, member, held);
    }
  }
}

export async function revokeGrant(rt: Runtime, ref: KeyRef, grantId: string, o: Opts): Promise<void> {
  const t = targetOf(ref);
  await updatePolicy(rt, t, o, (bindings) => {
    // Only a grant keyport made (a kpg- title, and a grant record under it): an id that happens to
    // equal the title of someone else's conditional binding must not remove it. Once it is ours,
    // every binding under the title goes: one whose record was edited away still grants its role
    // (listGrants counts it), and leaving it would report a revocation that did not happen.
    const titled = (b: Binding) => grantId.startsWith(ID_PREFIX) && b.condition?.title === grantId;
    const ours = bindings.some((b) => titled(b) && parseRecord(b.condition?.description) !== undefined);
    if (!ours) throw new KeyportError('NotFound', 'no grant with this id on the key', { keyUri: t.uri });
    const kept = bindings.filter((b) => !titled(b));
    return kept;
  });
}
