// Key management routes: create, import, get, update, list, versions and soft delete.
// Reference pages: https://learn.microsoft.com/rest/api/keyvault/keys/<operation>/<operation>
import {
  deletedKeyBundle,
  deletedKeyItem,
  keyBundle,
  keyId,
  keyItem,
  latestVersion,
  type VaultContext,
} from './bundle.js';
import { badParameter } from './errors.js';
import { generateMaterial, importMaterial, type KeyMaterial } from './material.js';
import { type KeyVersion, newVersionId } from './store.js';
import { applyAttributes, attributesUpdate, type Body, checkName, keyOps, tags } from './validate.js';

function rejectReleasePolicy(body: Body): void {
  if (body.release_policy !== undefined && body.release_policy !== null) {
    throw badParameter('Secure key release is not supported by this vault.');
  }
}

function newVersion(ctx: VaultContext, material: KeyMaterial, body: Body, ops: unknown): KeyVersion {
  const now = ctx.clock.nowSeconds();
  const attributes = { enabled: true, created: now, updated: now };
  applyAttributes(attributes, attributesUpdate(body.attributes));
  return {
    version: newVersionId(),
    material,
    keyOps: keyOps(ops, material.family),
    attributes,
    tags: tags(body.tags) ?? {},
  };
}

export async function createKey(ctx: VaultContext, name: string, body: Body) {
  checkName(name);
  rejectReleasePolicy(body);
  if (body.kty === undefined) throw badParameter("Property 'kty' is required.");
  // Validate everything cheap before paying for key generation.
  attributesUpdate(body.attributes);
  tags(body.tags);
  const material = await generateMaterial(ctx.mode, { ...body, kty: body.kty });
  const version = newVersion(ctx, material, body, body.key_ops);
  const record = ctx.store.addVersion(name, version);
  return keyBundle(ctx, record, version);
}

export function importKey(ctx: VaultContext, name: string, body: Body) {
  checkName(name);
  rejectReleasePolicy(body);
  const jwk = body.key;
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) {
    throw badParameter("Property 'key' is required.");
  }
  if (body.Hsm !== undefined && typeof body.Hsm !== 'boolean') throw badParameter('Hsm must be a boolean.');
  const material = importMaterial(ctx.mode, jwk as Record<string, unknown>, body.Hsm === true);
  const version = newVersion(ctx, material, body, (jwk as Record<string, unknown>).key_ops);
  const record = ctx.store.addVersion(name, version);
  return keyBundle(ctx, record, version);
}

export function getKey(ctx: VaultContext, name: string, version: string | undefined) {
  const record = ctx.store.record(name);
  return keyBundle(ctx, record, ctx.store.version(name, version));
}

export function updateKey(ctx: VaultContext, name: string, version: string | undefined, body: Body) {
  rejectReleasePolicy(body);
  const record = ctx.store.record(name);
  const v = ctx.store.version(name, version);
  const update = attributesUpdate(body.attributes);
  const ops = body.key_ops === undefined ? undefined : keyOps(body.key_ops, v.material.family);
  const newTags = tags(body.tags);
  applyAttributes(v.attributes, update);
  if (ops) v.keyOps = ops;
  if (newTags) v.tags = newTags;
  v.attributes.updated = ctx.clock.nowSeconds();
  return keyBundle(ctx, record, v);
}

/** A listed item with the position it holds in its listing's order (unique, ascending). */
interface Entry<T> {
  readonly position: string;
  readonly item: T;
}

/**
 * One page of a listing. `nextLink` carries an opaque `$skiptoken` naming the position of the
 * next item, not an offset: the service's token is a continuation marker naming a key (recorded
 * tokens decode to `{"NextMarker":"2!…!<base64 of 'key/<NAME>!…'>"}`), so keys created or
 * deleted between two pages never make a client skip or repeat an item. Microsoft's sample that
 * empties a vault deletes each key while it walks the listing and relies on this.
 */
function page<T>(
  ctx: VaultContext,
  path: string,
  query: URLSearchParams,
  entries: readonly Entry<T>[],
): { value: T[]; nextLink: string | null } {
  const raw = query.get('maxresults');
  // maxresults is an int32 query parameter (Azure/azure-rest-api-specs keyvault): decimal digits
  // with an optional sign and surrounding blanks, as .NET's Int32 parsing takes them. Number()
  // also read `1e1`, `0x5`, `0b11` and `5.0` as page sizes; they are refused like any value
  // that is not an integer from 1 to 25.
  const max = raw === null ? 25 : /^[ \t]*[+-]?\d{1,10}[ \t]*$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isInteger(max) || max < 1 || max > 25) {
    throw badParameter('maxresults must be an integer between 1 and 25.');
  }
  const token = query.get('$skiptoken');
  let start = 0;
  if (token !== null) {
    const marker = Buffer.from(token, 'base64url').toString('utf8');
    if (!SKIP_MARKER.test(marker) || Buffer.from(marker).toString('base64url') !== token) {
      throw badParameter('Invalid $skiptoken.');
    }
    // The first item at or after the marker: the marked item itself may be gone by now.
    start = entries.findIndex((e) => e.position >= marker);
    if (start < 0) start = entries.length;
  }
  const value = entries.slice(start, start + max).map((e) => e.item);
  const following = entries[start + max];
  if (!following) return { value, nextLink: null };
  const next = new URLSearchParams();
  next.set('api-version', query.get('api-version') ?? '');
  next.set('$skiptoken', Buffer.from(following.position).toString('base64url'));
  next.set('maxresults', String(max));
  return { value, nextLink: `${ctx.vaultUrl}${path}?${next.toString()}` };
}

/** What a marker may hold: a case-folded key name, or a version's zero-padded position. */
const SKIP_MARKER = /^[0-9a-z-]{1,127}$/;

/** Ascending by position; keys take their case-folded name (key names are case-insensitive). */
const byPosition = <T extends Entry<unknown>>(a: T, b: T) => (a.position < b.position ? -1 : 1);

export function listKeys(ctx: VaultContext, query: URLSearchParams) {
  const entries = [...ctx.store.live.values()]
    .map((r) => ({ position: r.name.toLowerCase(), item: keyItem(ctx, r, latestVersion(r), false) }))
    .sort(byPosition);
  return page(ctx, '/keys', query, entries);
}

export function listVersions(ctx: VaultContext, name: string, query: URLSearchParams) {
  const r = ctx.store.record(name);
  // Versions are listed by creation and only ever appended, so their index is a stable position.
  const entries = r.versions.map((v, i) => ({
    position: String(i).padStart(9, '0'),
    item: keyItem(ctx, r, v, true),
  }));
  return page(ctx, `/keys/${r.name}/versions`, query, entries);
}

export function deleteKey(ctx: VaultContext, name: string) {
  return deletedKeyBundle(ctx, ctx.store.softDelete(name));
}

export function getDeletedKey(ctx: VaultContext, name: string) {
  return deletedKeyBundle(ctx, ctx.store.deletedRecord(name));
}

export function listDeletedKeys(ctx: VaultContext, query: URLSearchParams) {
  const entries = [...ctx.store.deleted.values()]
    .map((d) => ({ position: d.record.name.toLowerCase(), item: deletedKeyItem(ctx, d) }))
    .sort(byPosition);
  return page(ctx, '/deletedkeys', query, entries);
}

export function recoverDeletedKey(ctx: VaultContext, name: string) {
  const record = ctx.store.recover(name);
  return keyBundle(ctx, record, latestVersion(record));
}

export function purgeDeletedKey(ctx: VaultContext, name: string): void {
  ctx.store.purge(name);
}

export { keyId };
