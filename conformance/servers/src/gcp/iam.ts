import { createHash, randomBytes } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { ownEntry } from '../shared/own.js';
import { compileCondition } from './iam-condition.js';
import { KNOWN_PERMISSIONS, ROLES } from './iam-roles.js';
import { keyRingOf } from './names.js';
import { invalid, RpcError } from './rpc-error.js';

// IAM policies on key rings, crypto keys and import jobs (google.iam.v1.IAMPolicy), with
// etags, conditions and policy versions, and the permission check that every call naming a
// principal goes through. Policies inherit downwards: project bindings (from options) → key
// ring → crypto key / import job.
export interface Binding {
  role: string;
  members: string[];
  condition?: { expression?: string; title?: string; description?: string; location?: string } | null;
}
export interface Policy {
  version?: number;
  bindings?: Binding[];
  etag?: Buffer;
}
export interface StoredPolicy {
  version: number;
  bindings: Array<Binding & { test?: ReturnType<typeof compileCondition> }>;
  etag: Buffer;
}

const MEMBER_RE =
  /^(user|serviceAccount|group|domain|principal|principalSet):.+$|^allUsers$|^allAuthenticatedUsers$/;
const MAX_CONDITION_DESCRIPTION = 256;
const EMPTY_ETAG = Buffer.from([0x00, 0x20, 0x01]); // what an untouched policy carries ("ACAB")

export class IamPolicies {
  private readonly policies = new Map<string, StoredPolicy>();
  private readonly project: StoredPolicy;

  constructor(projectBindings: readonly Binding[] = []) {
    this.project = { version: 1, bindings: projectBindings.map((b) => ({ ...b })), etag: EMPTY_ETAG };
  }

  get(resource: string, requestedVersion: number): Policy {
    if (![0, 1, 3].includes(requestedVersion)) throw invalid('Invalid requested_policy_version.');
    const stored = this.policies.get(resource);
    if (!stored) return { version: 1, bindings: [], etag: EMPTY_ETAG };
    const conditional = stored.bindings.some((b) => b.condition);
    // A caller that does not ask for version 3 sees conditional bindings under a marked role
    // name and without their condition, as IAM does for version-1 readers.
    const bindings = stored.bindings.map(({ test: _test, ...b }) => {
      if (!b.condition || requestedVersion === 3) return b;
      const tag = createHash('sha256')
        .update(b.condition.expression ?? '')
        .digest('hex')
        .slice(0, 8);
      return { role: `${b.role}_withcond_${tag}`, members: b.members };
    });
    return {
      version: conditional && requestedVersion === 3 ? 3 : conditional ? 1 : stored.version,
      bindings,
      etag: stored.etag,
    };
  }

  set(resource: string, policy: Policy | undefined): Policy {
    if (!policy) throw invalid('policy is required.');
    const current = this.policies.get(resource);
    const currentEtag = current?.etag ?? EMPTY_ETAG;
    if (policy.etag && policy.etag.length > 0 && !policy.etag.equals(currentEtag)) {
      throw new RpcError(
        status.ABORTED,
        'There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff.',
      );
    }
    const version = policy.version ?? 0;
    if (![0, 1, 3].includes(version)) throw invalid('Invalid policy version.');
    const bindings: StoredPolicy['bindings'] = [];
    for (const b of policy.bindings ?? []) {
      if (!Object.hasOwn(ROLES, b.role)) throw invalid(`Role ${b.role} is not supported for this resource.`);
      // A binding left without members is dropped, not refused: IAM removes it, and the usual way
      // to revoke (Google's own samples: read, take the member out of its binding, write back)
      // leaves exactly that when the member was the role's last.
      if (!b.members || b.members.length === 0) continue;
      for (const m of b.members) if (!MEMBER_RE.test(m)) throw invalid(`Invalid member: ${m.split(':')[0]}.`);
      if (!b.condition) {
        bindings.push({ role: b.role, members: [...b.members] });
        continue;
      }
      if (version !== 3) throw invalid('Policies with conditional role bindings must have version 3.');
      // IAM keeps at most 256 characters of a condition's description.
      if ([...(b.condition.description ?? '')].length > MAX_CONDITION_DESCRIPTION) {
        throw invalid(`Condition description exceeds ${MAX_CONDITION_DESCRIPTION} characters.`);
      }
      bindings.push({
        role: b.role,
        members: [...b.members],
        condition: b.condition,
        test: compileCondition(b.condition.expression ?? ''),
      });
    }
    const stored: StoredPolicy = { version: version === 0 ? 1 : version, bindings, etag: randomBytes(8) };
    this.policies.set(resource, stored);
    return this.get(resource, 3);
  }

  /** The stored policies, for a state file (compiled conditions are dropped by the codec). */
  snapshot(): ReadonlyMap<string, StoredPolicy> {
    return this.policies;
  }

  /** Loads policies saved by `snapshot`, compiling their conditions again. */
  restore(saved: ReadonlyMap<string, StoredPolicy>): void {
    for (const [resource, p] of saved) {
      const bindings = p.bindings.map((b) =>
        b.condition ? { ...b, test: compileCondition(b.condition.expression ?? '') } : b,
      );
      this.policies.set(resource, { ...p, bindings });
    }
  }

  /** Drops the policy of a deleted resource (a later resource of that name starts afresh). */
  forget(resource: string): void {
    this.policies.delete(resource);
  }

  /** The permissions from `asked` that `principal` holds on `resource` at `now`. */
  held(principal: string, resource: string, asked: readonly string[], now: Date): string[] {
    const chain = [this.policies.get(resource), this.policies.get(keyRingOf(resource) ?? ''), this.project];
    const granted = new Set<string>();
    for (const policy of chain) {
      for (const b of policy?.bindings ?? []) {
        if (!b.members.some((m) => m === principal || m === 'allUsers' || m === 'allAuthenticatedUsers'))
          continue;
        if (b.test && !b.test({ now, resourceName: resource })) continue;
        for (const p of ownEntry(ROLES, b.role) ?? []) granted.add(p);
      }
    }
    return asked.filter((p) => granted.has(p));
  }

  authorize(principal: string | undefined, resource: string, permission: string, now: Date): void {
    if (principal === undefined) return; // no principal named: the caller is the project owner
    if (this.held(principal, resource, [permission], now).length === 0) {
      throw new RpcError(
        status.PERMISSION_DENIED,
        `Permission '${permission}' denied on resource '${resource}' (or it may not exist).`,
      );
    }
  }

  testPermissions(
    principal: string | undefined,
    resource: string,
    permissions: readonly string[],
    now: Date,
  ): string[] {
    for (const p of permissions) {
      if (p.includes('*')) throw invalid('Permissions with wildcards are not allowed.');
      if (!KNOWN_PERMISSIONS.has(p) && !p.startsWith('cloudkms.')) {
        throw invalid(`Permission ${p} is not valid for this resource.`);
      }
    }
    if (principal === undefined) return [...permissions];
    return this.held(principal, resource, permissions, now);
  }
}
