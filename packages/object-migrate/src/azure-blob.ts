/**
 * Azure Blob Storage through `@azure/storage-blob`, imported on first use. Credentials: a
 * connection string (`AZURE_STORAGE_CONNECTION_STRING`, also how Azurite is reached), or the
 * account URL with `DefaultAzureCredential` from `@azure/identity` (environment, workload
 * identity, managed identity, Azure CLI, ...). Writes are one Put Blob when the bytes fit a
 * block, else block uploads committed, each with `If-Match` on the ETag read or
 * `If-None-Match: *` for create-only; a commit whose staged blocks another writer's commit
 * discarded is `ObjectChangedError`, like a failed condition.
 */

import { randomUUID } from 'node:crypto';
import type {
  BlockBlobClient,
  ContainerClient,
  ContainerListBlobFlatSegmentResponse,
} from '@azure/storage-blob';
import { checkOptions, checkString, KeyportError } from '@keyport/core';
import {
  AZURE_ORDERS,
  checkEntityTag,
  checkPageSize,
  checkPartSize,
  checkPutOptions,
  ListingGuard,
  ObjectChangedError,
  type ObjectRead,
  type ObjectStore,
  optionalString,
  type PutOptions,
  partSizeFor,
  partsOf,
  stringMap,
  typedBody,
} from './store.js';
import { keyportErrorIn, providerError } from './throttle.js';

export interface AzureBlobStoreOptions {
  /** The storage account name (as in `azblob://account/container`). */
  readonly account: string;
  readonly container: string;
  /** Takes precedence over `accountUrl` + the default credential chain. */
  readonly connectionString?: string;
  /** Default `https://<account>.blob.core.windows.net`. */
  readonly accountUrl?: string;
  readonly blockSize?: number;
  readonly pageSize?: number;
}

type BlobModule = typeof import('@azure/storage-blob');

function mapError(e: unknown, key: string, what: string): never {
  const wrapped = keyportErrorIn(e);
  if (wrapped !== undefined) throw wrapped;
  const status = (e as { statusCode?: number })?.statusCode;
  const code = (e as { code?: string })?.code;
  // InvalidBlockList: the blocks this upload staged were discarded because another writer
  // committed the blob meanwhile (a commit drops every uncommitted block). Someone else wrote it.
  if (
    status === 412 ||
    code === 'ConditionNotMet' ||
    code === 'BlobAlreadyExists' ||
    code === 'InvalidBlockList'
  )
    throw new ObjectChangedError(key, { provider: 'azblob', cause: e });
  if (code === 'ContainerNotFound')
    throw new KeyportError('NotFound', `azblob ${what}: container not found`, {
      provider: 'azblob',
      cause: e,
    });
  if (status === 404 || code === 'BlobNotFound')
    throw new KeyportError('NotFound', `azblob ${what}: blob not found`, { provider: 'azblob', cause: e });
  throw providerError('azblob', what, status, code, e);
}

/**
 * The blob a key names, or InvalidArgument when the request URL would name another one: the
 * SDK puts the name in the URL path, where a `.` or `..` segment is resolved away (`p/a/../b`
 * reaches `p/b`, possibly outside the prefix) and Azure takes `\` for `/`. Such a key, met in a
 * listing, is failed typed instead of another blob being read and rewritten in its place.
 */
function blobName(key: string): string {
  if (key.includes('\\') || key.split('/').some((s) => s === '.' || s === '..'))
    throw new KeyportError(
      'InvalidArgument',
      `azblob: the blob name ${JSON.stringify(key).slice(0, 200)} has a "." or ".." segment or a backslash, which the request URL would rewrite to another blob`,
      { provider: 'azblob' },
    );
  return key;
}

const listFailure = (why: string, cause?: unknown): KeyportError =>
  new KeyportError('Internal', `azblob list: ${why}`, {
    provider: 'azblob',
    ...(cause !== undefined ? { cause } : {}),
  });

const XML_NAMED: Readonly<Record<string, string>> = { lt: '<', gt: '>', amp: '&', apos: "'", quot: '"' };

/**
 * XML character data as the service wrote it: the five predefined entities and character
 * references (`&#xD;`, `&#13;`) decoded in one pass, every other character kept as it is (a raw
 * CR too: no end-of-line folding, which would make it another name). A `&` that starts no
 * reference, or one to no character, is an answer that cannot be read.
 */
function xmlText(raw: string): string {
  return raw.replace(
    /&(?:#x([0-9A-Fa-f]{1,8})|#([0-9]{1,8})|(lt|gt|amp|apos|quot));|&/g,
    (_, hex: string | undefined, dec: string | undefined, named: string | undefined) => {
      if (named !== undefined) return XML_NAMED[named] as string;
      if (hex === undefined && dec === undefined)
        throw listFailure(
          'the service answered a blob name or marker with a "&" that starts no XML reference',
        );
      const point = hex !== undefined ? Number.parseInt(hex, 16) : Number(dec);
      if (point === 0 || point > 0x10ffff || (point >= 0xd800 && point <= 0xdfff))
        throw listFailure('the service answered a blob name or marker with a reference to no character');
      return String.fromCodePoint(point);
    },
  );
}

/** A `<Blob>`'s `<Name>` (its first child): attributes, then the character data. */
const BLOB_NAME = /<Blob(?:\s[^>]*)?>\s*<Name(\s[^>]*)?(?:\/>|>([^<]*)<\/Name\s*>)/g;
const NEXT_MARKER = /<NextMarker(?:\s[^>]*)?(?:\/>|>([^<]*)<\/NextMarker\s*>)/;
/** Azure percent-encodes a name holding characters XML cannot carry, and says so. */
const ENCODED = /\bEncoded\s*=\s*(["'])true\1/;
/** Raw text the SDK's parser reads otherwise than as written: a character reference, a CR. */
const READ_OTHERWISE = /&#|\r/;

/**
 * The blob names and next marker of one List Blobs answer, read from its XML as the service
 * wrote it, in the order of the SDK's entries (whose properties are used as they are). The SDK's
 * parser (fast-xml-parser through @azure/core-xml) keeps character references as text and reads
 * a raw CR as LF: Azurite writes a name's CR as `&#xD;`, so `k/cr\rx` came out `k/cr&#xD;x`,
 * which no blob is named (it was counted deleted, the run ok, the blob left under the source
 * key), and since Azurite's marker is the last name listed, a page ending there was followed by
 * one starting after `k/cr&#xD;x`: `k/cr x` and the other names between were never listed. Each
 * name the SDK reads as written must agree with the one read here, or the entries do not line up
 * and the listing ends typed.
 */
function asWritten(page: ContainerListBlobFlatSegmentResponse): {
  names: string[];
  marker: string | undefined;
} {
  const text: unknown = page._response?.bodyAsText;
  if (typeof text !== 'string' || text === '')
    throw listFailure('the answer has no text to read the blob names from');
  const items = page.segment.blobItems;
  const names: string[] = [];
  for (const m of text.matchAll(BLOB_NAME)) {
    const raw = m[2] ?? '';
    let name = xmlText(raw);
    if (ENCODED.test(m[1] ?? '')) {
      try {
        name = decodeURIComponent(name);
      } catch (e) {
        throw listFailure('the service listed an encoded blob name that does not decode', e);
      }
    }
    const i = names.length;
    if (i < items.length && !READ_OTHERWISE.test(raw) && items[i]?.name !== name)
      throw listFailure('the blob names of the answer do not line up with the entries the SDK read');
    names.push(name);
  }
  if (names.length !== items.length)
    throw listFailure(`the answer names ${names.length} blobs where the SDK read ${items.length}`);
  const m = NEXT_MARKER.exec(text);
  const raw = m === null ? undefined : (m[1] ?? '');
  const marker = raw === undefined ? undefined : xmlText(raw);
  if (raw !== undefined && !READ_OTHERWISE.test(raw) && marker !== (page.continuationToken ?? ''))
    throw listFailure('the next marker of the answer is not the one the SDK read');
  return { names, marker };
}

/** Listings give the ETag bare, downloads quoted; versions compare as the quoted form. */
const quoted = (etag: string): string => (etag.startsWith('"') ? etag : `"${etag}"`);

const AZURE_BLOB_STORE_OPTIONS = {
  account: true,
  container: true,
  connectionString: true,
  accountUrl: true,
  blockSize: true,
  pageSize: true,
} as const satisfies Record<keyof AzureBlobStoreOptions, true>;

/**
 * The options, checked when the store is made: a misspelt `connectionString` would fall back to
 * AZURE_STORAGE_CONNECTION_STRING or the default credential chain, another account's
 * credentials. Unknown options are refused naming them, never echoing a value (a connection
 * string holds the account key).
 */
function checkAzureBlobStoreOptions(value: unknown): AzureBlobStoreOptions {
  const o = checkOptions(value, 'options', AZURE_BLOB_STORE_OPTIONS);
  const connectionString =
    o.connectionString === undefined
      ? undefined
      : checkString(o.connectionString, 'options.connectionString', { max: 65_536 });
  const accountUrl = optionalString(o.accountUrl, 'options.accountUrl');
  const pageSize = checkPageSize(o.pageSize, 'options.pageSize', 5000);
  return {
    account: checkString(o.account, 'options.account', { min: 1, max: 255 }),
    container: checkString(o.container, 'options.container', { min: 1, max: 255 }),
    ...(connectionString !== undefined ? { connectionString } : {}),
    ...(accountUrl !== undefined ? { accountUrl } : {}),
    blockSize: checkPartSize(o.blockSize, 'azblob'),
    ...(pageSize !== undefined ? { pageSize } : {}),
  };
}

export function azureBlobStore(input: AzureBlobStoreOptions): ObjectStore {
  const options = checkAzureBlobStoreOptions(input);
  let container: Promise<ContainerClient> | undefined;
  const connect = () => {
    container ??= (async () => {
      const m: BlobModule = await import('@azure/storage-blob');
      const connectionString = options.connectionString ?? process.env.AZURE_STORAGE_CONNECTION_STRING;
      if (connectionString !== undefined && connectionString !== '') {
        return m.BlobServiceClient.fromConnectionString(connectionString).getContainerClient(
          options.container,
        );
      }
      const { DefaultAzureCredential } = await import('@azure/identity');
      const url = options.accountUrl ?? `https://${options.account}.blob.core.windows.net`;
      return new m.BlobServiceClient(url, new DefaultAzureCredential()).getContainerClient(options.container);
    })();
    return container;
  };
  const blockSize = options.blockSize as number;

  return {
    provider: 'azblob',
    location: `azblob://${options.account}/${options.container}`,

    async *list(prefix, signal, beforePage) {
      const c = await connect();
      const pageSize = options.pageSize ?? 1000;
      const guard = new ListingGuard('azblob', AZURE_ORDERS, pageSize);
      // Each page is asked with the marker read from the answer before it (see `asWritten`), not
      // the one the SDK's pager would follow; the guard checks it before it is followed.
      let marker: string | undefined;
      do {
        // The hook runs before each page is asked for, the first included.
        await beforePage?.();
        let page: ContainerListBlobFlatSegmentResponse;
        try {
          const next = await c
            .listBlobsFlat({ prefix, ...(signal !== undefined ? { abortSignal: signal } : {}) })
            .byPage({ maxPageSize: pageSize, ...(marker !== undefined ? { continuationToken: marker } : {}) })
            .next();
          if (next.done === true) throw listFailure('the SDK asked for no page');
          page = next.value;
        } catch (e) {
          mapError(e, prefix, 'list');
        }
        guard.page(page.segment.blobItems.length);
        const { names, marker: next } = asWritten(page);
        for (const [i, b] of page.segment.blobItems.entries()) {
          const key = names[i] as string;
          guard.key(key);
          yield { key, size: b.properties.contentLength ?? 0, version: quoted(b.properties.etag) };
        }
        marker = guard.next(next);
      } while (marker !== undefined);
    },

    async get(key, signal, beforeRequest): Promise<ObjectRead> {
      const c = await connect();
      const blob = c.getBlobClient(blobName(key));
      try {
        await beforeRequest?.();
        const out = await blob.download(0, undefined, signal !== undefined ? { abortSignal: signal } : {});
        const stream = out.readableStreamBody as
          | (NodeJS.ReadableStream & { destroy?: () => void })
          | undefined;
        const version = out.etag;
        if (version === undefined) {
          stream?.destroy?.();
          throw new KeyportError('Internal', 'azblob get: no ETag in the response');
        }
        // Tags of exactly the version read: Get Blob Tags takes If-Match. Set Blob Tags leaves
        // the ETag as it is, though, so tags set between this read and the write are replaced
        // by these (README, "Tags changed alone").
        const tagged = await (async () => {
          await beforeRequest?.();
          return blob.getTags({
            conditions: { ifMatch: version },
            ...(signal !== undefined ? { abortSignal: signal } : {}),
          });
        })().catch((e: unknown) => {
          // Nobody will read or cancel a body whose get failed: close its connection here.
          stream?.destroy?.();
          throw e;
        });
        // The access tier: Get Blob does not answer it, and a Put Blob or Put Block List without
        // one moved a Cool or Cold blob to the account's default tier (Hot, usually). Of exactly
        // the version read; Set Blob Tier leaves the ETag as it is, like Set Blob Tags.
        const properties = await (async () => {
          await beforeRequest?.();
          return blob.getProperties({
            conditions: { ifMatch: version },
            ...(signal !== undefined ? { abortSignal: signal } : {}),
          });
        })().catch((e: unknown) => {
          stream?.destroy?.();
          throw e;
        });
        // A tier Azure infers from the account is left to the account: it is no choice of the
        // blob's, and naming it would pin the blob there when the account's default changes.
        const tier =
          properties.accessTierInferred !== true && typeof properties.accessTier === 'string'
            ? properties.accessTier
            : undefined;
        return {
          key,
          version,
          size: out.contentLength ?? 0,
          contentType: out.contentType,
          contentEncoding: out.contentEncoding,
          contentDisposition: out.contentDisposition,
          contentLanguage: out.contentLanguage,
          cacheControl: out.cacheControl,
          storageClass: tier !== undefined && tier !== '' ? tier : undefined,
          metadata: stringMap(out.metadata),
          tags: stringMap(tagged.tags),
          body:
            stream === undefined
              ? (async function* () {})()
              : typedBody(stream as AsyncIterable<Uint8Array>, 'azblob', signal, (e) =>
                  mapError(e, key, 'get'),
                ),
          cancel: () => stream?.destroy?.(),
        };
      } catch (e) {
        mapError(e, key, 'get');
      }
    },

    async put(key, body, putOptions?: PutOptions) {
      const put = checkPutOptions(putOptions);
      const c = await connect();
      const target: BlockBlobClient = c.getBlockBlobClient(blobName(key));
      const a = put.attributes;
      const condition = put.condition;
      const conditions =
        condition === undefined
          ? {}
          : 'ifVersion' in condition
            ? { ifMatch: checkEntityTag(condition.ifVersion, 'azblob') }
            : { ifNoneMatch: '*' };
      const settings = {
        conditions,
        blobHTTPHeaders: {
          ...(a?.contentType !== undefined ? { blobContentType: a.contentType } : {}),
          ...(a?.contentEncoding !== undefined ? { blobContentEncoding: a.contentEncoding } : {}),
          ...(a?.contentDisposition !== undefined ? { blobContentDisposition: a.contentDisposition } : {}),
          ...(a?.contentLanguage !== undefined ? { blobContentLanguage: a.contentLanguage } : {}),
          ...(a?.cacheControl !== undefined ? { blobCacheControl: a.cacheControl } : {}),
        },
        ...(a !== undefined ? { metadata: { ...a.metadata } } : {}),
        ...(a !== undefined && Object.keys(a.tags).length > 0 ? { tags: { ...a.tags } } : {}),
        ...(a?.storageClass !== undefined ? { tier: a.storageClass } : {}),
        ...(put.signal !== undefined ? { abortSignal: put.signal } : {}),
      };
      const beforeRequest = async (): Promise<void> => put.beforeRequest?.();
      try {
        // A body that fits one block (a streamed one too: a migration streams every object) goes
        // in one Put Blob, one request: atomic, so a concurrent writer can neither discard its
        // staged blocks nor have them discarded (see InvalidBlockList above), no block is left
        // uncommitted when it fails, and uncommitted blocks someone else left (an interrupted
        // upload, whose block ids may be of another length, which Put Block then refuses with
        // 400 InvalidBlobOrBlock) are discarded rather than failing the object on every run.
        // Before, a streamed body was always staged and committed: two requests per object.
        // Before anything is sent: an object past 50,000 blocks failed only at the commit.
        const size = partSizeFor('azblob', blockSize, body instanceof Uint8Array ? body.length : put.maxSize);
        const parts = partsOf(body, size)[Symbol.asyncIterator]();
        const first = await parts.next();
        const second = first.done === true ? first : await parts.next();
        if (second.done === true) {
          const one = first.value ?? Buffer.alloc(0);
          await beforeRequest();
          const out = await target.upload(one, one.length, settings);
          return { version: out.etag ?? '' };
        }
        // Blocks staged one by one, then committed under the condition: each is a request of
        // its own that the rate limit waits for (the SDK's uploadStream sends them unseen). Block
        // ids are base64 of equal length, unique to this upload.
        const upload = randomUUID();
        const blocks: string[] = [];
        const stage = async (part: Buffer): Promise<void> => {
          const id = Buffer.from(`${upload}-${String(blocks.length).padStart(6, '0')}`).toString('base64');
          await beforeRequest();
          await target.stageBlock(id, part, part.length, {
            ...(put.signal !== undefined ? { abortSignal: put.signal } : {}),
          });
          blocks.push(id);
        };
        await stage(first.value as Buffer);
        await stage(second.value as Buffer);
        for (let p = await parts.next(); p.done !== true; p = await parts.next()) await stage(p.value);
        await beforeRequest();
        const out = await target.commitBlockList(blocks, settings);
        return { version: out.etag ?? '' };
      } catch (e) {
        mapError(e, key, 'put');
      }
    },

    async delete(key, signal, beforeRequest) {
      const c = await connect();
      try {
        await beforeRequest?.();
        await c.getBlobClient(blobName(key)).delete(signal !== undefined ? { abortSignal: signal } : {});
      } catch (e) {
        mapError(e, key, 'delete');
      }
    },
  };
}
