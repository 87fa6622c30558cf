/**
 * The object-store surface migration needs, the same for S3, Azure Blob Storage and Cloud
 * Storage: a paged listing, a streaming read that returns the version it read, and a write
 * that succeeds only if the object is still at that version (or still absent). Provider
 * details live in the three implementations; nothing here names an SDK.
 */
import {
  checkInteger,
  checkOptions,
  checkSignal,
  checkString,
  describeType,
  invalidArgument,
  KeyportError,
  type KeyportErrorOptions,
  PageTokens,
  settleOrAbort,
} from '@keyport/core';

export type StoreProvider = 's3' | 'azblob' | 'gs';

/**
 * One listed object. `version` is the S3/Blob ETag, or the GCS generation and metageneration
 * (`<generation>#<metageneration>`), as a string.
 */
export interface ObjectEntry {
  readonly key: string;
  readonly size: number;
  readonly version: string;
}

/** What is kept across a rewrite: content type, the standard headers, user metadata, tags. */
export interface ObjectAttributes {
  readonly contentType?: string | undefined;
  readonly contentEncoding?: string | undefined;
  readonly contentDisposition?: string | undefined;
  readonly contentLanguage?: string | undefined;
  readonly cacheControl?: string | undefined;
  /** User metadata (`x-amz-meta-*`, Blob metadata, GCS custom metadata). */
  readonly metadata: Readonly<Record<string, string>>;
  /** S3 object tags and Blob index tags; Cloud Storage has none (always empty there). */
  readonly tags: Readonly<Record<string, string>>;
  /**
   * The S3 storage class, the Cloud Storage storage class, or the Azure access tier set on the
   * blob itself. Undefined is the service's default (S3 `STANDARD`, the bucket's default class,
   * a tier Azure infers from the account). A rewrite without it moved a Glacier IR, Coldline or
   * Cool object to the default class: the bill changed without a word.
   */
  readonly storageClass?: string | undefined;
}

export interface ObjectRead extends ObjectAttributes {
  readonly key: string;
  readonly version: string;
  readonly size: number;
  /** The body, streamed; a consumer that stops early must call `cancel`. */
  readonly body: AsyncIterable<Uint8Array>;
  cancel(): void;
}

/** The write condition: the version read, or "absent" (create only). */
export type WriteCondition = { readonly ifVersion: string } | { readonly ifAbsent: true } | undefined;

export interface PutOptions {
  readonly condition?: WriteCondition;
  readonly attributes?: ObjectAttributes;
  readonly signal?: AbortSignal | undefined;
  /** Awaited before each request the upload sends (see `BeforeRequest`). */
  readonly beforeRequest?: BeforeRequest | undefined;
  /**
   * At most this many bytes will be written, when known (a rewrap's size is the source's give or
   * take its header). An upload of that many bytes past the service's part count (S3 10,000
   * parts, Azure 50,000 blocks) is made in larger parts, and one no part size fits is refused
   * before anything is sent.
   */
  readonly maxSize?: number | undefined;
}

/**
 * Awaited by a store before each request it sends the service, the first included: a rate limit
 * counts and paces the real requests by it. A read is two on S3 (the object, then its tags) and
 * three on Azure (then its access tier too), an upload one per part or block besides its start and end. An SDK's own retries of a
 * request are not seen.
 */
export type BeforeRequest = () => Promise<void>;

export interface ObjectStore {
  readonly provider: StoreProvider;
  /** `s3://bucket`, `azblob://account/container`, `gs://bucket`: where the keys live. */
  readonly location: string;
  /**
   * Objects whose key starts with `prefix`, page by page as the provider returns them.
   * `beforePage`, when given, is awaited before each page is requested (the first included): a
   * rate limit counts listing calls by it, however few entries each page holds.
   */
  list(prefix: string, signal?: AbortSignal, beforePage?: () => Promise<void>): AsyncIterable<ObjectEntry>;
  /** Throws `KeyportError('NotFound')` when absent. */
  get(key: string, signal?: AbortSignal, beforeRequest?: BeforeRequest): Promise<ObjectRead>;
  /**
   * Writes `body` (streamed; multipart / block upload past the part size, so memory stays
   * bounded). A failed condition throws `ObjectChangedError`; nothing is written then.
   */
  put(
    key: string,
    body: AsyncIterable<Uint8Array> | Uint8Array,
    options?: PutOptions,
  ): Promise<{ version: string }>;
  delete(key: string, signal?: AbortSignal, beforeRequest?: BeforeRequest): Promise<void>;
}

/** The object is not at the version the write was conditioned on: someone else wrote it. */
export class ObjectChangedError extends KeyportError {
  override readonly name = 'ObjectChangedError';
  constructor(
    readonly key: string,
    options: KeyportErrorOptions = {},
  ) {
    super('AlreadyExists', `object ${JSON.stringify(key).slice(0, 200)} changed since it was read`, options);
  }
}

/**
 * `call`'s answer, or `Aborted` as soon as `signal` fires: for SDK calls that take no signal of
 * their own (Cloud Storage metadata and listing calls), so a service that never answers cannot
 * hold an aborted run. The call itself is left to the SDK's own timeout; its answer is dropped.
 */
export function untilAborted<T>(call: Promise<T>, signal: AbortSignal | undefined, what: string): Promise<T> {
  if (signal === undefined) return call;
  return settleOrAbort(
    call,
    signal,
    () => new KeyportError('Aborted', `${what}: aborted`, { cause: signal.reason }),
  );
}

/**
 * A read's body with its failures typed as the store's other calls are: a connection lost while
 * the body streams in came out untyped (S3: `Error: aborted`, ECONNRESET; Azure: an
 * `AbortError`, its SDK's word for a response cut short) and the object failed at once as
 * `Internal`, or as `Aborted` though nobody had aborted, instead of being read again. `map`
 * is the store's error mapping; an `AbortError` while `signal` has not fired is the connection,
 * `Unavailable`.
 */
export async function* typedBody(
  body: AsyncIterable<Uint8Array>,
  provider: StoreProvider,
  signal: AbortSignal | undefined,
  map: (e: unknown) => never,
): AsyncGenerator<Uint8Array> {
  try {
    yield* body;
  } catch (e) {
    if (signal?.aborted !== true && (e as { name?: unknown })?.name === 'AbortError')
      throw new KeyportError(
        'Unavailable',
        `${provider} get: the connection was lost while the body was read`,
        {
          provider,
          cause: e,
        },
      );
    map(e);
  }
}

/** Reads of one object that may each be ended by an overwrite before one completes. */
const CHANGED_READS = 5;

/**
 * Runs `read` (a get and the reading of its body) again when the object changed while it was
 * read: GCS reads the generation its metadata named, and an overwrite in between ends that read
 * with `ObjectChangedError`. Undefined when the object is gone (deleted since it was listed).
 * After `CHANGED_READS` changes in a row the last `ObjectChangedError` is thrown: the object is
 * being rewritten faster than it can be read.
 */
export async function readUnchanged<T>(read: () => Promise<T>): Promise<T | undefined> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await read();
    } catch (e) {
      if (e instanceof KeyportError && e.code === 'NotFound') return undefined;
      if (!(e instanceof ObjectChangedError) || attempt >= CHANGED_READS) throw e;
    }
  }
}

/** Default part / block size: 8 MiB, which also bounds the memory one upload holds. */
export const DEFAULT_PART_SIZE = 8 * 1024 * 1024;

const MiB = 1024 * 1024;
/**
 * Each service's bounds on one part of an upload: S3 multipart parts are 5 MiB to 5 GiB, a GCS
 * resumable chunk is a multiple of 256 KiB, an Azure block at most 4000 MiB. A size outside
 * them failed late (a 0 looped forever cutting parts, NaN buffered the whole object).
 */
const PART_BOUNDS = {
  s3: { min: 5 * MiB, max: 5 * 1024 * MiB, multiple: 1 },
  gs: { min: 256 * 1024, max: 5 * 1024 * MiB, multiple: 256 * 1024 },
  azblob: { min: 1, max: 4000 * MiB, multiple: 1 },
} as const;

/** `size` (the store's part or block size option), or DEFAULT_PART_SIZE; InvalidArgument out of bounds. */
export function checkPartSize(size: unknown, store: keyof typeof PART_BOUNDS): number {
  if (size === undefined) return DEFAULT_PART_SIZE;
  const { min, max, multiple } = PART_BOUNDS[store];
  if (
    typeof size !== 'number' ||
    !Number.isSafeInteger(size) ||
    size < min ||
    size > max ||
    size % multiple !== 0
  ) {
    throw new KeyportError(
      'InvalidArgument',
      `${store} part size: expected a whole number of bytes from ${min} to ${max}${multiple > 1 ? `, a multiple of ${multiple}` : ''}`,
    );
  }
  return size;
}

/**
 * Most parts (blocks) one upload may have: S3 10,000 parts, Azure 50,000 committed blocks.
 * Cloud Storage's resumable upload has no such count.
 */
export const MAX_PARTS = { s3: 10_000, azblob: 50_000 } as const;

/**
 * The part size an upload of at most `maxSize` bytes is cut in: `partSize`, or, where that many
 * bytes would take more parts than the service allows, the smallest size that fits them (memory
 * per upload grows with it: about two parts). With the default 8 MiB an S3 object past 78 GiB
 * (Azure 390 GiB) failed only after uploading that much, at the 10,001st part or the commit.
 * `InvalidArgument`, before anything is sent, when even the service's largest part does not fit.
 */
export function partSizeFor(
  store: keyof typeof MAX_PARTS,
  partSize: number,
  maxSize: number | undefined,
): number {
  if (maxSize === undefined) return partSize;
  const most = MAX_PARTS[store];
  const needed = Math.ceil(maxSize / most);
  if (needed <= partSize) return partSize;
  const { max } = PART_BOUNDS[store];
  if (needed > max)
    throw new KeyportError(
      'InvalidArgument',
      `${store} put: an object of ${maxSize} bytes does not fit one upload (at most ${most} parts of ${max} bytes)`,
      { provider: store },
    );
  return needed;
}

/**
 * Reads up to `size` bytes from an async iterator into parts: each part is exactly `size` except
 * the last, which is never empty unless the whole body is.
 */
export async function* partsOf(
  source: AsyncIterable<Uint8Array> | Uint8Array,
  size: number,
): AsyncGenerator<Buffer> {
  if (source instanceof Uint8Array) {
    for (let at = 0; at < source.length || at === 0; at += size) {
      yield Buffer.from(source.buffer, source.byteOffset + at, Math.min(size, source.length - at));
      if (source.length === 0) return;
    }
    return;
  }
  let pending: Buffer[] = [];
  let have = 0;
  let yielded = false;
  for await (const chunk of source) {
    let c = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    while (have + c.length >= size) {
      const take = size - have;
      pending.push(c.subarray(0, take));
      yielded = true;
      yield Buffer.concat(pending, size);
      pending = [];
      have = 0;
      c = c.subarray(take);
    }
    if (c.length > 0) {
      // Copy: the producer may reuse its buffer once we ask for the next chunk.
      pending.push(Buffer.from(c));
      have += c.length;
    }
  }
  // No empty part after full ones: a body of exactly the part size was sent as a multipart
  // upload of two parts, the second empty (four requests, not one PUT), and one of exactly n
  // parts with an empty n+1th. Only an empty body is one empty part.
  if (have > 0 || !yielded) yield Buffer.concat(pending, have);
}

/** Keeps only own string entries, prototype-free (provider responses are plain JSON-ish maps). */
export function stringMap(input: unknown): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  if (input === null || typeof input !== 'object') return out;
  for (const [k, v] of Object.entries(input)) if (typeof v === 'string') out[k] = v;
  return out;
}

/**
 * User metadata from the response's own headers (`x-amz-meta-*`), in a prototype-free map. The
 * S3 SDK collects them into a plain object, where a `__proto__` name is silently dropped: a
 * rewrite from its map would lose that piece of the object's metadata.
 */
export function metadataFromHeaders(
  headers: Iterable<readonly [string, unknown]>,
  prefix: string,
): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  for (const [name, value] of headers) {
    const lower = name.toLowerCase();
    if (lower.startsWith(prefix) && typeof value === 'string') out[lower.slice(prefix.length)] = value;
  }
  return out;
}

const PUT_OPTIONS = {
  condition: true,
  attributes: true,
  signal: true,
  beforeRequest: true,
  maxSize: true,
} as const satisfies Record<keyof PutOptions, true>;

/**
 * A store's `put` options, checked before anything is sent: a misspelt `condition` (or
 * `ifVersion`) would make the conditional write an unconditional one, overwriting a concurrent
 * writer. `attributes` is an object read for its known fields (an `ObjectRead` may be passed as
 * it is), with `metadata` and `tags` string maps.
 */
export function checkPutOptions(value: unknown): PutOptions {
  const o = checkOptions(value, 'options', PUT_OPTIONS);
  let condition: WriteCondition;
  if (o.condition !== undefined) {
    const c = checkOptions(o.condition, 'options.condition', { ifVersion: true, ifAbsent: true });
    if ((c.ifVersion === undefined) === (c.ifAbsent === undefined))
      throw invalidArgument('options.condition', 'expected { ifVersion } or { ifAbsent: true }');
    if (c.ifAbsent !== undefined && c.ifAbsent !== true)
      throw invalidArgument('options.condition.ifAbsent', `expected true, got ${describeType(c.ifAbsent)}`);
    condition =
      c.ifVersion !== undefined
        ? { ifVersion: checkString(c.ifVersion, 'options.condition.ifVersion', { min: 1 }) }
        : { ifAbsent: true };
  }
  const a = o.attributes;
  if (a !== undefined) {
    if (typeof a !== 'object' || a === null)
      throw invalidArgument('options.attributes', `expected an object, got ${describeType(a)}`);
    for (const field of ['metadata', 'tags'] as const) {
      const m = (a as Partial<ObjectAttributes>)[field];
      if (typeof m !== 'object' || m === null)
        throw invalidArgument(`options.attributes.${field}`, `expected a string map, got ${describeType(m)}`);
    }
    const storageClass = (a as Partial<ObjectAttributes>).storageClass;
    if (storageClass !== undefined)
      checkString(storageClass, 'options.attributes.storageClass', { min: 1, max: 64 });
  }
  if (o.beforeRequest !== undefined && typeof o.beforeRequest !== 'function')
    throw invalidArgument(
      'options.beforeRequest',
      `expected a function, got ${describeType(o.beforeRequest)}`,
    );
  if (o.maxSize !== undefined) checkInteger(o.maxSize, 'options.maxSize', 0, Number.MAX_SAFE_INTEGER);
  return {
    ...(condition !== undefined ? { condition } : {}),
    ...(a !== undefined ? { attributes: a as ObjectAttributes } : {}),
    ...(o.maxSize !== undefined ? { maxSize: o.maxSize as number } : {}),
    ...(o.signal !== undefined ? { signal: checkSignal(o.signal, 'options.signal') } : {}),
    ...(o.beforeRequest !== undefined ? { beforeRequest: o.beforeRequest as BeforeRequest } : {}),
  };
}

/**
 * An order a service may list keys in: by their UTF-8 bytes or their UTF-16 code units, and
 * either as plain strings or path by path (`/` before every other character, which is how a
 * listing that walks a directory tree depth-first comes out: `a`, `a/x`, `a-b`).
 */
export interface KeyOrder {
  readonly units: 'utf8' | 'utf16';
  readonly slashFirst: boolean;
}

/** S3 and Cloud Storage: UTF-8 binary order, documented. */
export const UTF8_ORDER: readonly KeyOrder[] = [{ units: 'utf8', slashFirst: false }];

/**
 * Azure Blob Storage documents "alphabetical order, upper-case letters first" (ordinal) without
 * naming the code units; Azurite compares UTF-16 code units (`p/😀` before `p/！`), as real
 * flat-namespace accounts were measured to. Accounts with a hierarchical namespace (ADLS Gen2)
 * list depth-first, path by path, which that documentation does not cover. Any of the four is
 * taken, and the listing is then held to those it has kept to.
 */
export const AZURE_ORDERS: readonly KeyOrder[] = [
  { units: 'utf16', slashFirst: false },
  { units: 'utf8', slashFirst: false },
  { units: 'utf16', slashFirst: true },
  { units: 'utf8', slashFirst: true },
];

/** Negative, zero or positive as `a` comes before, with or after `b` (bytes or code units). */
function compareUnits(a: Buffer | string, b: Buffer | string, slashFirst: boolean): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = typeof a === 'string' ? a.charCodeAt(i) : (a[i] as number);
    const y = typeof b === 'string' ? b.charCodeAt(i) : (b[i] as number);
    if (x === y) continue;
    // `/` is 0x2F in both encodings and never part of a multi-byte UTF-8 sequence.
    if (slashFirst && x === 0x2f) return -1;
    if (slashFirst && y === 0x2f) return 1;
    return x - y;
  }
  return a.length - b.length;
}

/**
 * Consecutive empty pages, each with a new token, after which a listing is ended. Cloud Storage
 * and Azure may answer fewer entries than asked, none included, with a token to go on, so an
 * empty page alone is no fault; ten thousand in a row (many minutes of listing nothing at a real
 * service's latency) is a server or proxy that hands out fresh tokens forever.
 */
export const MAX_EMPTY_PAGES = 10_000;

/**
 * The most entries a page may hold when `asked` were asked for: twice that, and never less than
 * `asked` + 1000 (an S3-compatible store may ignore a small page size and answer its own 1000).
 * A page past it is refused unprocessed.
 */
export const maxPageEntries = (asked: number): number => asked + Math.max(asked, 1000);

/**
 * What a listing is checked against as it is read, page by page. A page token (S3 continuation
 * token, GCS page token, Azure marker) the listing already followed would have it loop forever,
 * migrating the same objects again; a key equal to or before the one listed last, in the
 * service's order, is a repeat or a cycle under fresh tokens; a run of `MAX_EMPTY_PAGES` empty
 * pages is fresh tokens handed out forever; a page of more than `maxPageEntries` entries is a
 * server answering far more than asked (the SDK has parsed it by then; nothing of it is kept).
 * Each ends the listing with `Internal`, never a silent end or restart.
 *
 * Where a service may use one of several orders (Azure), every key must come after the last in
 * at least one of them, and the orders it does not follow are dropped: the listing so far is
 * strictly increasing in each order still held, so no key can come twice, whichever order the
 * service uses. Tokens are kept as digests (a server may send large ones), only those since the
 * last key (an older one would repeat a key), so memory stays bounded by a run of empty pages.
 */
export class ListingGuard {
  private tokens = this.followedTokens();
  private last: { text: string; utf8: Buffer } | undefined;
  private readonly orders: Set<KeyOrder>;
  private keyed = false;
  private empty = 0;

  constructor(
    private readonly provider: StoreProvider,
    orders: readonly KeyOrder[],
    /** The page size the listing asks for. */
    private readonly pageSize: number,
  ) {
    this.orders = new Set(orders);
  }

  private failure(why: string): KeyportError {
    return new KeyportError('Internal', `${this.provider} list: ${why}`, { provider: this.provider });
  }

  private fail(why: string): never {
    throw this.failure(why);
  }

  /** Core's rule for page tokens (a token given again ends the listing), kept since the last key. */
  private followedTokens(): PageTokens {
    return new PageTokens(() =>
      this.failure('the service answered a page token it had already given (an endless listing)'),
    );
  }

  /** Each page's entry count, before any of its entries is processed. */
  page(entries: number): void {
    const most = maxPageEntries(this.pageSize);
    if (entries > most)
      this.fail(
        `the service answered a page of ${entries} entries when asked for at most ${this.pageSize} (more than ${most} is refused before any is processed)`,
      );
  }

  /** Each listed key, in the order listed. */
  key(key: string): void {
    const next = { text: key, utf8: Buffer.from(key, 'utf8') };
    const last = this.last;
    if (last !== undefined) {
      for (const o of this.orders) {
        const c =
          o.units === 'utf8'
            ? compareUnits(last.utf8, next.utf8, o.slashFirst)
            : compareUnits(last.text, next.text, o.slashFirst);
        if (c >= 0) this.orders.delete(o);
      }
      if (this.orders.size === 0)
        this.fail(
          'the service listed a key again or out of order (a repeated or cycling page), which would migrate an object twice',
        );
    }
    this.last = next;
    this.keyed = true;
  }

  /**
   * The token that leads to the next page, after the page's keys; undefined or empty ends the
   * listing. Returns the token to follow.
   */
  next(token: string | undefined): string | undefined {
    if (this.keyed) {
      this.tokens = this.followedTokens();
      this.empty = 0;
    } else this.empty++;
    this.keyed = false;
    if (token === undefined || token === '') return undefined;
    if (this.empty >= MAX_EMPTY_PAGES)
      this.fail(
        `the service answered ${this.empty} empty pages in a row, each with a new page token (an endless listing)`,
      );
    return this.tokens.next(token);
  }
}

/** RFC 9110 entity-tag characters: what S3 and Azure ETags are made of, quoted. */
const STRONG_ETAG = /^"[\x21\x23-\x7e]*"$/;

/**
 * `version` as an `If-Match` value, or `InvalidArgument`: `*` (matches any version), a list
 * (`"a", "b"`), a weak tag or an unquoted value would make the conditional write match what it
 * should not, or let a server ignore it; an answer like that read back from a store is refused
 * before anything is written.
 */
export function checkEntityTag(version: string, provider: StoreProvider): string {
  if (!STRONG_ETAG.test(version))
    throw new KeyportError(
      'InvalidArgument',
      `${provider}: the version ${JSON.stringify(version).slice(0, 80)} is not one strong entity tag, so a write conditioned on it would not be conditional`,
      { provider },
    );
  return version;
}

/**
 * A Cloud Storage object's version as this package writes it: `<generation>#<metageneration>`.
 * A change of the metadata alone keeps the generation and counts up the metageneration, so a
 * write conditioned on the generation alone replaced metadata set since the read with the
 * metadata read. Without a metageneration (an answer that has none) it is the generation alone.
 */
export function gcsVersion(generation: unknown, metageneration: unknown): string {
  const g = String(generation ?? '');
  const m = String(metageneration ?? '');
  return g === '' || m === '' ? g : `${g}#${m}`;
}

/**
 * A Cloud Storage version (`gcsVersion`, or a bare generation) as `ifGenerationMatch` and
 * `ifMetagenerationMatch` take it, or `InvalidArgument`: a value that is not a whole number
 * (NaN), or past 2^53 (rounded to another generation), would not condition the write on the
 * generation read. `0` means "absent" and is not a version.
 */
export function checkGeneration(version: string): { generation: number; metageneration?: number } {
  const m = /^([1-9][0-9]*)(?:#([1-9][0-9]*))?$/.exec(version);
  const generation = m !== null ? Number(m[1]) : Number.NaN;
  const metageneration = m?.[2] !== undefined ? Number(m[2]) : undefined;
  if (
    !Number.isSafeInteger(generation) ||
    (metageneration !== undefined && !Number.isSafeInteger(metageneration))
  )
    throw new KeyportError(
      'InvalidArgument',
      `gs: the version ${JSON.stringify(version).slice(0, 80)} is not a generation, so a write conditioned on it would not be conditional`,
      { provider: 'gs' },
    );
  return metageneration !== undefined ? { generation, metageneration } : { generation };
}

/** A listing page size: an integer from 1 to what the service answers in one page. */
export function checkPageSize(value: unknown, option: string, max: number): number | undefined {
  return value === undefined ? undefined : checkInteger(value, option, 1, max);
}

/** An optional string option (a region, an endpoint, a project), not empty. */
export function optionalString(value: unknown, option: string): string | undefined {
  return value === undefined ? undefined : checkString(value, option, { min: 1 });
}
