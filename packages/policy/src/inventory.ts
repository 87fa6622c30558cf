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
  checkCallOptions,
  checkEnum,
  checkFunction,
  checkInteger,
  checkOptions,
  type Grant,
  invalidArgument,
  isValidDate,
  type KeyInfo,
  type KeyOperations,
  KeyportError,
  keyUriScheme,
  quote,
  toKeyportError,
} from '@keyport/core';
import {
  type AuditLastUse,
  type AuditLogSource,
  checkAuditLogSource,
  readAuditLastUse,
} from './audit-last-use.js';
import {
  type Inventory,
  type InventoryFieldError,
  type InventoryGrant,
  type InventoryGrants,
  type InventoryKey,
  type InventoryRotation,
  type InventorySource,
  type InventoryUnmodeledKey,
  type Known,
  PROTECTION_LEVELS,
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
  /**
   * Keeps only the keys keyport has no spec for that it accepts (they have no KeyInfo for
   * `filter` to judge). Default: every one, so a scoped inventory still says what it could not
   * judge; give it with `filter` (by URI, say) to scope both.
   */
  readonly filterUnmodeled?: (key: InventoryUnmodeledKey) => boolean;
  /** Clock for `generatedAt`. */
  readonly now?: () => Date;
}

/** One item of the streaming inventory: a key, or the end of a source (with its count or error). */
export type InventoryItem =
  | { readonly kind: 'key'; readonly key: InventoryKey }
  | { readonly kind: 'source'; readonly source: InventorySource };

const badDate = (field: string): InventoryFieldError => ({
  field,
  code: 'Internal',
  message: 'the provider reported a date that is not a valid date',
});

/**
 * A provider's date as ISO text. An invalid one (`new Date(NaN)`, not a Date at all) has no ISO
 * form: it is unknown, and `errors` says why, so one odd field of one key neither fails the
 * listing of every key of the source (toISOString throws) nor reads as a date.
 */
function isoOf(d: unknown, field: string, errors: InventoryFieldError[]): Known<string> {
  if (d === undefined) return UNKNOWN;
  if (isValidDate(d)) return d.toISOString();
  errors.push(badDate(field));
  return UNKNOWN;
}

function fieldError(field: string, e: unknown): InventoryFieldError {
  const k = e instanceof KeyportError ? e : toKeyportError(e);
  return { field, code: k.code, message: k.message };
}

/** The options besides the call options (`signal`, `timeoutMs`, checked by core's rule). */
const INVENTORY_OPTIONS = {
  sources: true,
  concurrency: true,
  pageSize: true,
  auditLog: true,
  protection: true,
  filter: true,
  filterUnmodeled: true,
  now: true,
} as const satisfies Record<Exclude<keyof InventoryOptions, keyof CallOptions>, true>;

/** The options as checked: a prototype-free copy, read once. */
interface CheckedInventoryOptions {
  readonly sources: readonly string[];
  readonly concurrency: number;
  readonly call: CallOptions;
  readonly pageSize?: number;
  readonly auditLog?: AuditLogSource;
  readonly protection?: Readonly<Record<string, Protection>>;
  readonly filter?: (key: KeyInfo) => boolean;
  readonly filterUnmodeled?: (key: InventoryUnmodeledKey) => boolean;
  readonly now?: () => Date;
}

/**
 * Every option checked before the first call: an unknown (misspelt) option is refused, naming
 * it, rather than left at its default (`concurency`, `timeout`); a page size, deadline or signal
 * of the wrong type would otherwise reach each listing and come back as that source's listing
 * error, an inventory that looks merely incomplete.
 */
function checkInventoryOptions(value: unknown): CheckedInventoryOptions {
  const { call, rest: o } = checkCallOptions(value, 'options', INVENTORY_OPTIONS);
  if (value === undefined || !Array.isArray(o.sources)) {
    throw new KeyportError('InvalidArgument', 'inventory options need `sources`, a list of provider names');
  }
  const sources = [...(o.sources as unknown[])];
  for (const s of sources) {
    if (typeof s !== 'string' || s.length === 0) {
      throw new KeyportError('InvalidArgument', 'each inventory source is a non-empty provider name');
    }
  }
  if (new Set(sources).size !== sources.length) {
    throw new KeyportError('InvalidArgument', 'an inventory source is listed twice');
  }
  if (o.filter !== undefined && typeof o.filter !== 'function') {
    throw new KeyportError('InvalidArgument', 'the inventory filter must be a function');
  }
  const concurrency = o.concurrency ?? 8;
  if (!Number.isInteger(concurrency) || (concurrency as number) < 1 || (concurrency as number) > 256) {
    throw new KeyportError('InvalidArgument', 'inventory concurrency must be an integer from 1 to 256');
  }
  let protection: Record<string, Protection> | undefined;
  if (o.protection !== undefined) {
    // Any source name is a key here; each value must be a protection level.
    const declared = Object.create(null) as Record<string, unknown>;
    checkOptions(o.protection, 'options.protection', {}, declared);
    protection = Object.create(null) as Record<string, Protection>;
    for (const [source, level] of Object.entries(declared))
      protection[source] = checkEnum(level, `options.protection[${quote(source)}]`, PROTECTION_LEVELS);
  }
  return {
    sources: sources as string[],
    concurrency: concurrency as number,
    call,
    ...(o.pageSize !== undefined
      ? { pageSize: checkInteger(o.pageSize, 'options.pageSize', 1, 10_000) }
      : {}),
    ...(o.auditLog !== undefined ? { auditLog: checkAuditLogSource(o.auditLog, 'options.auditLog') } : {}),
    ...(protection !== undefined ? { protection } : {}),
    ...(o.filter !== undefined ? { filter: o.filter as (key: KeyInfo) => boolean } : {}),
    ...(o.filterUnmodeled !== undefined
      ? {
          filterUnmodeled: checkFunction(o.filterUnmodeled, 'options.filterUnmodeled') as (
            key: InventoryUnmodeledKey,
          ) => boolean,
        }
      : {}),
    ...(o.now !== undefined ? { now: checkFunction(o.now, 'options.now') as () => Date } : {}),
  };
}

/** The inventory's clock, whose answer must be a valid Date (an invalid one has no ISO form). */
function generatedAt(now: (() => Date) | undefined): string {
  const d: unknown = (now ?? (() => new Date()))();
  if (!(d instanceof Date) || Number.isNaN(d.getTime()))
    throw invalidArgument('options.now', 'expected a function returning a valid Date');
  return d.toISOString();
}

/**
 * `described`: the key was read with describeKey, whose contract reports a rotation schedule when
 * there is one, so an absent one is off. A listing may leave it out (AWS), so there it is unknown.
 */
function rotationOf(
  info: KeyInfo,
  caps: Capabilities,
  described: boolean,
  errors: InventoryFieldError[],
): InventoryRotation {
  const r = info.rotation;
  if (r === undefined && !described && caps.autoRotation) {
    return { enabled: UNKNOWN, periodDays: UNKNOWN, nextRotationAt: UNKNOWN };
  }
  if (r?.periodDays === undefined) return { enabled: false, periodDays: null, nextRotationAt: null };
  const period: unknown = r.periodDays;
  if (typeof period !== 'number' || !Number.isFinite(period) || period <= 0) {
    // A period of -5, 0 or NaN days is no schedule: compared with a limit, -5 and 0 passed as
    // "within it" (and NaN is `null` in JSON). Whether the key rotates at all is not known.
    errors.push({
      field: 'rotation',
      code: 'Internal',
      message: 'the provider reported a rotation period that is not a positive number of days',
    });
    return { enabled: UNKNOWN, periodDays: UNKNOWN, nextRotationAt: UNKNOWN };
  }
  return {
    enabled: true,
    periodDays: r.periodDays,
    nextRotationAt: isoOf(r.nextRotationAt, 'rotation', errors),
  };
}

/**
 * When the current material was made: the primary version's creation, else the provider's own
 * word where versions are not addressable (AWS KMS: its newest rotation, or the creation of a key
 * that never rotated). Never the key's creation by default: a key made years ago whose rotation
 * was only just switched on still holds its first material.
 */
function lastRotatedOf(info: KeyInfo, errors: InventoryFieldError[]): Known<string> {
  const versions = info.versions ?? [];
  const given = versions.filter((v) => v.createdAt !== undefined);
  if (info.versions === undefined || given.length === 0)
    return isoOf(info.materialCreatedAt, 'lastRotatedAt', errors);
  const primary = versions.find((v) => v.version === info.primaryVersion);
  if (primary?.createdAt !== undefined) return isoOf(primary.createdAt, 'lastRotatedAt', errors);
  // No primary to go by: the newest version, which an undatable one might be.
  if (given.some((v) => !isValidDate(v.createdAt))) {
    errors.push(badDate('lastRotatedAt'));
    return UNKNOWN;
  }
  const newest = given.reduce((a, b) => ((a.createdAt as Date) >= (b.createdAt as Date) ? a : b));
  return (newest.createdAt as Date).toISOString();
}

function grantOf(g: Grant, errors: InventoryFieldError[]): InventoryGrant {
  // No expiry is "never expires": an expiry that is no date must not read as that, nor as a date.
  if (g.expiresAt !== undefined && !isValidDate(g.expiresAt))
    throw new KeyportError('Internal', 'the provider reported a grant expiry that is not a valid date');
  const c = g.constraints;
  const constrained =
    c !== undefined &&
    ((c.contextEquals !== undefined && Object.keys(c.contextEquals).length > 0) ||
      (c.contextSubset !== undefined && Object.keys(c.contextSubset).length > 0));
  return {
    id: g.id,
    grantee: g.grantee,
    operations: [...g.operations],
    ...(g.unmodeledOperations !== undefined && g.unmodeledOperations.length > 0
      ? { unmodeledOperations: [...g.unmodeledOperations] }
      : {}),
    ...(g.unmodeledConditions !== undefined && g.unmodeledConditions.length > 0
      ? { unmodeledConditions: [...g.unmodeledConditions] }
      : {}),
    createdAt: isoOf(g.createdAt, 'grants', errors),
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
      for await (const g of ctx.client.listGrants(info.uri, ctx.call)) items.push(grantOf(g, errors));
      grants = grantsOf(items);
    } catch (e) {
      errors.push(fieldError('grants', e));
    }
  }
  const pendingDeletionAt: Known<string | null> =
    info.state === 'pending_deletion' ? isoOf(info.deletionDate, 'pendingDeletionAt', errors) : null;
  return {
    uri: info.uri,
    provider: ctx.source,
    algorithm: info.spec,
    keyBits: keyBitsOf(info.spec),
    purpose: info.usage,
    protection: info.protection ?? protectionOf(keyUriScheme(info.uri), ctx.declared),
    state: info.state,
    createdAt: isoOf(info.createdAt, 'createdAt', errors),
    lastRotatedAt: lastRotatedOf(info, errors),
    rotation: rotationOf(info, ctx.caps, described, errors),
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
  o: CheckedInventoryOptions,
  audit: AuditLastUse | undefined,
): AsyncIterable<InventoryItem> {
  const { call, concurrency } = o;
  let keys = 0;
  // `filter` cannot judge these (no KeyInfo): only `filterUnmodeled` leaves one out.
  const unmodeled: InventoryUnmodeledKey[] = [];
  const summary = (): InventorySource =>
    unmodeled.length === 0 ? { source, keys } : { source, keys, unmodeled: [...unmodeled] };
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
      onUnmodeledKey: (k) => {
        const key = { uri: k.uri, reason: k.unmodeled };
        if (o.filterUnmodeled === undefined || o.filterUnmodeled(key)) unmodeled.push(key);
      },
    });
    const filter = o.filter;
    const kept = filter === undefined ? listing : keep(listing, filter);
    for await (const key of mapBounded(kept, concurrency, (k) => inventoryKey(ctx, k))) {
      keys++;
      yield { kind: 'key', key };
    }
    yield { kind: 'source', source: summary() };
  } catch (e) {
    if (call.signal?.aborted) throw e;
    yield { kind: 'source', source: { ...summary(), error: fieldError('listKeys', e) } };
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
  const checked = checkInventoryOptions(o);
  const audit = checked.auditLog === undefined ? undefined : await readAuditLastUse(checked.auditLog);
  yield* merge(checked.sources.map((s) => inventorySource(client, s, checked, audit)));
}

/** The whole inventory in memory, keys sorted by provider then URI (stable across runs). */
export async function collectInventory(client: InventoryClient, o: InventoryOptions): Promise<Inventory> {
  const checked = checkInventoryOptions(o);
  const at = generatedAt(checked.now);
  const keys: InventoryKey[] = [];
  const sources: InventorySource[] = [];
  const audit = checked.auditLog === undefined ? undefined : await readAuditLastUse(checked.auditLog);
  for await (const item of merge(checked.sources.map((s) => inventorySource(client, s, checked, audit)))) {
    if (item.kind === 'key') keys.push(item.key);
    else sources.push(item.source);
  }
  keys.sort((a, b) => (a.provider === b.provider ? cmp(a.uri, b.uri) : cmp(a.provider, b.provider)));
  sources.sort((a, b) => cmp(a.source, b.source));
  const listed = new Set(keys.map((k) => k.uri));
  const auditUnmatched =
    audit === undefined ? [] : [...audit.lastUse.keys()].filter((u) => !listed.has(u)).sort();
  return {
    generatedAt: at,
    sources,
    auditLogSince: audit === undefined ? UNKNOWN : audit.since,
    ...(audit !== undefined ? { auditUnmatched } : {}),
    keys,
  };
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
