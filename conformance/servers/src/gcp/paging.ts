import { createHash } from 'node:crypto';
import { type Json, toJson } from './json.js';
import { parseFilter, parseOrderBy } from './list-query.js';
import { kmsRoot } from './proto.js';
import { invalid } from './rpc-error.js';

// List paging (AIP-158) with the filter and order_by of AIP-160/AIP-132 (see list-query.ts). The
// token is opaque and names the next item (and, as a fallback, its offset) in one listing: a
// token from another parent, or reused with a different filter or order, or forged, is
// INVALID_ARGUMENT. Naming the item, not counting, is what keeps a client that deletes keys
// (DeleteCryptoKey) or creates them while it pages from skipping or repeating any.
const DEFAULT_PAGE_SIZE = 100;
const MAX_PAGE_SIZE = 1000;

export interface ListRequest {
  pageSize?: number;
  pageToken?: string;
  filter?: string;
  orderBy?: string;
}

/**
 * One page of `items` (plain objects of message `typeName`, already in the default order),
 * filtered and ordered as the request asks.
 */
export function page<T extends object>(
  parent: string,
  typeName: string,
  items: readonly T[],
  req: ListRequest,
): { items: T[]; nextPageToken: string; totalSize: number } {
  const size = req.pageSize ?? 0;
  if (!Number.isInteger(size) || size < 0) throw invalid('page_size must not be negative.');
  const limit = size === 0 ? DEFAULT_PAGE_SIZE : Math.min(size, MAX_PAGE_SIZE);
  let selected: readonly T[] = items;
  if (req.filter || req.orderBy) {
    const type = kmsRoot().lookupType(typeName);
    const match = req.filter ? parseFilter(type, req.filter) : () => true;
    const order = req.orderBy ? parseOrderBy(type, req.orderBy) : undefined;
    let rows = items.map((item) => ({ item, json: toJson(type, item) as Json }));
    rows = rows.filter((r) => match(r.json));
    if (order) rows = rows.map((r, i) => ({ ...r, i })).sort((a, b) => order(a.json, b.json) || a.i - b.i);
    selected = rows.map((r) => r.item);
  }
  const scope = createHash('sha256')
    .update(`${parent}\n${req.filter ?? ''}\n${req.orderBy ?? ''}`)
    .digest('base64url')
    .slice(0, 16);
  let offset = 0;
  if (req.pageToken) {
    const decoded = Buffer.from(req.pageToken, 'base64url').toString('utf8');
    const m = /^(\d{1,9})\|([^|]{0,1000})\|([^|]*)$/.exec(decoded);
    if (!m || m[3] !== scope) throw invalid('Invalid page_token.');
    offset = resumeAt(selected, m[2] as string, Number(m[1]), !req.orderBy);
  }
  const slice = selected.slice(offset, offset + limit);
  const following = selected[offset + limit];
  const next =
    following === undefined
      ? ''
      : Buffer.from(`${offset + limit}|${nameOf(following)}|${scope}`).toString('base64url');
  return { items: slice, nextPageToken: next, totalSize: selected.length };
}

const nameOf = (item: object): string => String((item as { name?: unknown }).name ?? '');

/**
 * Where a page resumes: at the item the token names; if that item is gone, at the first one
 * after it in a listing ordered by name (every default order here but versions'), else at the
 * offset the token recorded.
 */
function resumeAt(items: readonly object[], name: string, offset: number, defaultOrder: boolean): number {
  if (name === '') return Math.min(offset, items.length); // a message without a name
  const at = items.findIndex((item) => nameOf(item) === name);
  if (at >= 0) return at;
  const byName =
    defaultOrder && items.every((item, i) => i === 0 || nameOf(items[i - 1] as object) < nameOf(item));
  if (!byName) return Math.min(offset, items.length);
  const after = items.findIndex((item) => nameOf(item) > name);
  return after < 0 ? items.length : after;
}
