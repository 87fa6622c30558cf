import { invalid, unimplemented } from './rpc-error.js';

// List paging: the token is an opaque, tamper-evident offset into the listing of one parent,
// so a token from another parent or a forged one is INVALID_ARGUMENT.
const DEFAULT_PAGE_SIZE = 100;
const MAX_PAGE_SIZE = 1000;

export interface ListRequest {
  pageSize?: number;
  pageToken?: string;
  filter?: string;
  orderBy?: string;
}

export function page<T>(
  parent: string,
  items: readonly T[],
  req: ListRequest,
): { items: T[]; nextPageToken: string; totalSize: number } {
  if (req.filter) throw unimplemented('Filtering list results');
  if (req.orderBy) throw unimplemented('Ordering list results');
  const size = req.pageSize ?? 0;
  if (size < 0) throw invalid('page_size must not be negative.');
  const limit = size === 0 ? DEFAULT_PAGE_SIZE : Math.min(size, MAX_PAGE_SIZE);
  let offset = 0;
  if (req.pageToken) {
    const decoded = Buffer.from(req.pageToken, 'base64url').toString('utf8');
    const m = /^(\d+)\|(.*)$/s.exec(decoded);
    if (!m || m[2] !== parent) throw invalid('Invalid page_token.');
    offset = Number(m[1]);
  }
  const slice = items.slice(offset, offset + limit);
  const next =
    offset + limit < items.length ? Buffer.from(`${offset + limit}|${parent}`).toString('base64url') : '';
  return { items: slice, nextPageToken: next, totalSize: items.length };
}
