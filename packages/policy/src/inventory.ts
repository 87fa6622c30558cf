/**
 * The cross-provider inventory: every key of every source, through the public Keyport client
 * only (listKeys, describeKey, listGrants, capabilities), so every call runs under the client's
 * call policy (deadline, retries, abort) and is audited like any other. Each source is listed
 * page by page; the per-key reads run at most `concurrency` at a time per source, and sources
 * run side by side.
 */
import {
  type CallOptions,
  type Capabilities,
  type Grant,
  type KeyInfo,
  type KeyOperations,
  KeyportError,
  keyUriScheme,
  toKeyportError,
} from '@keyport/core';
import { type AuditLastUse, type AuditLogSource, readAuditLastUse } from './audit-last-use.js';
import {
  type Inventory,
  type InventoryFieldError,
  type InventoryGrant,
  type InventoryGrants,
  type InventoryKey,
  type InventoryRotation,
  type InventorySource,
  type Known,
  type Protection,
  UNKNOWN,
} from './inventory-types.js';
import { mapBounded, merge } from './pool.js';
import { keyBitsOf, protectionOf } from './protection.js';

/** The part of the Keyport client the inventory reads. */
export type InventoryClient = Pick<KeyOperations, 'capabilities' | 'listKeys' | 'describeKey' | 'listGrants'>;

export interface InventoryOptions extends CallOptions {
  /** Provider schemes (or instance names) to list, e.g. ['local', 'aws-kms']. */
  readonly sources: readonly string[];
  /** Per-key reads in flight per source; default 8. */
  readonly concurrency?: number;
  /** Page size asked of each listing. */
  readonly pageSize?: number;
  /** A keyport audit log to take last use from; without it last use is unknown. */
  readonly auditLog?: AuditLogSource;
  /** Protection a source's keys have where the provider cannot say (e.g. `{ 'gcp-kms': 'hsm' }`). */
  readonly protection?: Readonly<Record<string, Protection>>;
  /**
   * Keeps only the listed keys it accepts, before any per-key call (describe, grants): an
   * inventory of one team's keys in a shared account costs one listing, not a read of every key.
   */
  readonly filter?: (key: KeyInfo) => boolean;
  /** Clock for `generatedAt`. */
  readonly now?: () => Date;
}

/** One item of the streaming inventory: a key, or the end of a source (with its count or error). */
export type InventoryItem =
  | { readonly kind: 'key'; readonly key: InventoryKey }
  | { readonly kind: 'source'; readonly source: InventorySource };

const iso = (d: Date | undefined): Known<string> => (d === undefined ? UNKNOWN : d.toISOString());

function fieldError(field: string, e: unknown): InventoryFieldError {
  const k = e instanceof KeyportError ? e : toKeyportError(e);
  return { field, code: k.code, message: k.message };
}

function checkOptions(o: InventoryOptions): { concurrency: number } {
  if (typeof o !== 'object' || o === null || !Array.isArray(o.sources)) {
    throw new KeyportError('InvalidArgument', 'inventory options need `sources`, a list of provider names');
  }
  for (const s of o.sources) {
    if (typeof s !== 'string' || s.length === 0) {
      throw new KeyportError('InvalidArgument', 'each inventory source is a non-empty provider name');
    }
  }
  if (new Set(o.sources).size !== o.sources.length) {
    throw new KeyportError('InvalidArgument', 'an inventory source is listed twice');
  }
  if (o.filter !== undefined && typeof o.filter !== 'function') {
    throw new KeyportError('InvalidArgument', 'the inventory filter must be a function');
  }
  const concurrency = o.concurrency ?? 8;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256) {
    throw new KeyportError('InvalidArgument', 'inventory concurrency must be an integer from 1 to 256');
  }
  return { concurrency };
}

/**
 * `described`: the key was read with describeKey, whose contract reports a rotation schedule when
 * there is one, so an absent one is off. A listing may leave it out (AWS), so there it is unknown.
 */
function rotationOf(info: KeyInfo, caps: Capabilities, described: boolean): InventoryRotation {
  const r = info.rotation;
  if (r === undefined && !described && caps.autoRotation) {
    return { enabled: UNKNOWN, periodDays: UNKNOWN, nextRotationAt: UNKNOWN };
  }
  if (r?.periodDays === undefined) return { enabled: false, periodDays: null, nextRotationAt: null };
  return {
    enabled: true,
    periodDays: r.periodDays,
    nextRotationAt: r.nextRotationAt === undefined ? UNKNOWN : r.nextRotationAt.toISOString(),
  };
}

function lastRotatedOf(info: KeyInfo): Known<string> {
  const dated = (info.versions ?? []).filter((v) => v.createdAt !== undefined);
  if (info.versions === undefined || dated.length === 0) {
    // Without versions, only a key that never rotated is known: its material is its creation.
    return UNKNOWN;
  }
  const primary = info.versions.find((v) => v.version === info.primaryVersion);
  if (primary?.createdAt !== undefined) return primary.createdAt.toISOString();
  const newest = dated.reduce((a, b) => ((a.createdAt as Date) >= (b.createdAt as Date) ? a : b));
  return (newest.createdAt as Date).toISOString();
}

function grantOf(g: Grant): InventoryGrant {
  const c = g.constraints;
  const constrained =
    c !== undefined &&
    ((c.contextEquals !== undefined && Object.keys(c.contextEquals).length > 0) ||
      (c.contextSubset !== undefined && Object.keys(c.contextSubset).length > 0));
  return {
    id: g.id,
    grantee: g.grantee,
    operations: [...g.operations],
    createdAt: iso(g.createdAt),
    expiresAt: g.expiresAt === undefined ? null : g.expiresAt.toISOString(),
    constrained,
  };
}

const UNKNOWN_GRANTS: InventoryGrants = {
  count: UNKNOWN,
  earliestExpiry: UNKNOWN,
  latestExpiry: UNKNOWN,
  items: UNKNOWN,
};

function grantsOf(items: readonly InventoryGrant[]): InventoryGrants {
  const expiries = items
    .map((g) => g.expiresAt)
    .filter((e): e is string => e !== null)
    .sort();
  return {
    count: items.length,
    earliestExpiry: expiries[0] ?? null,
    // A grant that never expires makes the latest expiry "never" (null), not the latest date.
    latestExpiry: items.some((g) => g.expiresAt === null) ? null : (expiries.at(-1) ?? null),
    items,
  };
}

interface SourceContext {
  readonly client: InventoryClient;
  readonly source: string;
  readonly caps: Capabilities;
  readonly call: CallOptions;
  readonly declared: Protection | undefined;
  readonly audit: AuditLastUse | undefined;
}

async function inventoryKey(ctx: SourceContext, listed: KeyInfo): Promise<InventoryKey> {
  const errors: InventoryFieldError[] = [];
  let info = listed;
  let described = false;
  // Listings may leave out what a describe reports: AWS leaves the rotation status to
  // DescribeKey, Cloud KMS lists a symmetric key with its primary version but not the others.
  const missing = [
    ...(listed.rotation === undefined && ctx.caps.autoRotation ? ['rotation'] : []),
    ...(listed.versions === undefined && ctx.caps.rotation === 'versioned' ? ['versions'] : []),
  ];
  if (missing.length > 0) {
    try {
      info = await ctx.client.describeKey(listed.uri, ctx.call);
      described = true;
    } catch (e) {
      for (const field of missing) errors.push(fieldError(field, e));
    }
  }
  let grants: InventoryGrants = UNKNOWN_GRANTS;
  if (ctx.caps.grants !== 'none') {
    try {
      const items: InventoryGrant[] = [];
      for await (const g of ctx.client.listGrants(info.uri, ctx.call)) items.push(grantOf(g));
      grants = grantsOf(items);
    } catch (e) {
      errors.push(fieldError('grants', e));
    }
  }
  const pendingDeletionAt: Known<string | null> =
    info.state === 'pending_deletion' ? iso(info.deletionDate) : null;
  return {
    uri: info.uri,
    provider: ctx.source,
    algorithm: info.spec,
    keyBits: keyBitsOf(info.spec),
    purpose: info.usage,
    protection: info.protection ?? protectionOf(keyUriScheme(info.uri), ctx.declared),
    state: info.state,
    createdAt: iso(info.createdAt),
    lastRotatedAt: lastRotatedOf(info),
    rotation: rotationOf(info, ctx.caps, described),
    versions: info.versions === undefined ? UNKNOWN : info.versions.length,
    pendingDeletionAt,
    grants,
    labels: Object.assign(Object.create(null) as Record<string, string>, info.labels),
    origin: info.origin ?? UNKNOWN,
    lastUsedAt: ctx.audit === undefined ? UNKNOWN : (ctx.audit.lastUse.get(info.uri) ?? null),
    errors,
  };
}

async function* inventorySource(
  client: InventoryClient,
  source: string,
  o: InventoryOptions,
  concurrency: number,
  audit: AuditLastUse | undefined,
): AsyncIterable<InventoryItem> {
  const call: CallOptions = {
    ...(o.signal !== undefined ? { signal: o.signal } : {}),
    ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
  };
  let keys = 0;
  try {
    const caps = client.capabilities(source);
    const ctx: SourceContext = {
      client,
      source,
      caps,
      call,
      declared:
        o.protection !== undefined && Object.hasOwn(o.protection, source) ? o.protection[source] : undefined,
      audit,
    };
    const listing = client.listKeys(source, {
      ...call,
      ...(o.pageSize !== undefined ? { pageSize: o.pageSize } : {}),
    });
    const filter = o.filter;
    const kept = filter === undefined ? listing : keep(listing, filter);
    for await (const key of mapBounded(kept, concurrency, (k) => inventoryKey(ctx, k))) {
      keys++;
      yield { kind: 'key', key };
    }
    yield { kind: 'source', source: { source, keys } };
  } catch (e) {
    if (o.signal?.aborted) throw e;
    yield { kind: 'source', source: { source, keys, error: fieldError('listKeys', e) } };
  }
}

async function* keep(
  listing: AsyncIterable<KeyInfo>,
  filter: (key: KeyInfo) => boolean,
): AsyncIterable<KeyInfo> {
  for await (const k of listing) if (filter(k)) yield k;
}

/**
 * Streams the inventory: keys as they are read, and one `source` item as each source ends. A
 * source whose listing fails ends with its error (the others go on); an abort stops everything.
 */
export async function* streamInventory(
  client: InventoryClient,
  o: InventoryOptions,
): AsyncIterable<InventoryItem> {
  const { concurrency } = checkOptions(o);
  const audit = o.auditLog === undefined ? undefined : await readAuditLastUse(o.auditLog);
  yield* merge(o.sources.map((s) => inventorySource(client, s, o, concurrency, audit)));
}

/** The whole inventory in memory, keys sorted by provider then URI (stable across runs). */
export async function collectInventory(client: InventoryClient, o: InventoryOptions): Promise<Inventory> {
  const { concurrency } = checkOptions(o);
  const now = (o.now ?? (() => new Date()))();
  const keys: InventoryKey[] = [];
  const sources: InventorySource[] = [];
  const audit = o.auditLog === undefined ? undefined : await readAuditLastUse(o.auditLog);
  for await (const item of merge(o.sources.map((s) => inventorySource(client, s, o, concurrency, audit)))) {
    if (item.kind === 'key') keys.push(item.key);
    else sources.push(item.source);
  }
  keys.sort((a, b) => (a.provider === b.provider ? cmp(a.uri, b.uri) : cmp(a.provider, b.provider)));
  sources.sort((a, b) => cmp(a.source, b.source));
  const listed = new Set(keys.map((k) => k.uri));
  const auditUnmatched =
    audit === undefined ? [] : [...audit.lastUse.keys()].filter((u) => !listed.has(u)).sort();
  return {
    generatedAt: now.toISOString(),
    sources,
    auditLogSince: audit === undefined ? UNKNOWN : audit.since,
    ...(audit !== undefined ? { auditUnmatched } : {}),
    keys,
  };
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
