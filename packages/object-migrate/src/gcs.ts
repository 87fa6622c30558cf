/**
 * Google Cloud Storage through `@google-cloud/storage`, imported on first use, with
 * Application Default Credentials. `apiEndpoint` points it at an emulator (no auth is sent
 * to a custom endpoint). The version is the object's generation and metageneration; the object
 * is read at that generation and written with `ifGenerationMatch` and `ifMetagenerationMatch`
 * (`ifGenerationMatch: 0` for create-only). Objects past the part
 * size go up as resumable uploads.
 */

import { EventEmitter } from 'node:events';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Bucket, Storage } from '@google-cloud/storage';
import { checkOptions, checkString, KeyportError } from '@keyport/core';
import {
  type BeforeRequest,
  checkGeneration,
  checkPageSize,
  checkPartSize,
  checkPutOptions,
  gcsVersion,
  ListingGuard,
  ObjectChangedError,
  type ObjectRead,
  type ObjectStore,
  optionalString,
  type PutOptions,
  stringMap,
  UTF8_ORDER,
  untilAborted,
} from './store.js';
import { keyportErrorIn, providerError } from './throttle.js';

export interface GcsStoreOptions {
  readonly bucket: string;
  readonly projectId?: string;
  /** An emulator endpoint such as `http://127.0.0.1:4443`. */
  readonly apiEndpoint?: string;
  /** Objects larger than this are uploaded resumably, in chunks of this size. */
  readonly partSize?: number;
  readonly pageSize?: number;
}

function mapError(e: unknown, key: string, what: string): never {
  const wrapped = keyportErrorIn(e);
  if (wrapped !== undefined) throw wrapped;
  const status = (e as { code?: unknown })?.code;
  const n = typeof status === 'number' ? status : undefined;
  const reason = (e as { errors?: { reason?: string }[] })?.errors?.[0]?.reason;
  if (n === 412 || reason === 'conditionNotMet')
    throw new ObjectChangedError(key, { provider: 'gs', cause: e });
  if (n === 404)
    // A listing names no object: its 404 is the bucket's.
    throw new KeyportError('NotFound', `gs ${what}: ${what === 'list' ? 'bucket' : 'object'} not found`, {
      provider: 'gs',
      cause: e,
    });
  throw providerError('gs', what, n, reason, e);
}

/**
 * The object a key names, or InvalidArgument when the request URL would name something else: the
 * SDK puts the name, escaped but for its dots, in the URL path, where URL parsing resolves a
 * bare `.` or `..` away (`/b/bucket/o/..` becomes `/b/bucket/`, the bucket's own URL, so a delete
 * would be sent to the bucket). Cloud Storage allows neither name: one a listing gives is failed
 * typed.
 */
function objectName(key: string): string {
  if (key === '.' || key === '..')
    throw new KeyportError(
      'InvalidArgument',
      `gs: the object name ${JSON.stringify(key)} is not allowed; the request URL would name the bucket instead`,
      { provider: 'gs' },
    );
  return key;
}

const GCS_STORE_OPTIONS = {
  bucket: true,
  projectId: true,
  apiEndpoint: true,
  partSize: true,
  pageSize: true,
} as const satisfies Record<keyof GcsStoreOptions, true>;

/**
 * The options, checked when the store is made: a misspelt `apiEndpoint` would send every call,
 * with Application Default Credentials, to Google instead of the emulator meant. Unknown options
 * are refused naming them (never their values).
 */
function checkGcsStoreOptions(value: unknown): GcsStoreOptions {
  const o = checkOptions(value, 'options', GCS_STORE_OPTIONS);
  const projectId = optionalString(o.projectId, 'options.projectId');
  const apiEndpoint = optionalString(o.apiEndpoint, 'options.apiEndpoint');
  const pageSize = checkPageSize(o.pageSize, 'options.pageSize', 1000);
  return {
    bucket: checkString(o.bucket, 'options.bucket', { min: 1, max: 255 }),
    ...(projectId !== undefined ? { projectId } : {}),
    ...(apiEndpoint !== undefined ? { apiEndpoint } : {}),
    partSize: checkPartSize(o.partSize, 'gs'),
    ...(pageSize !== undefined ? { pageSize } : {}),
  };
}

export function gcsStore(input: GcsStoreOptions): ObjectStore {
  const options = checkGcsStoreOptions(input);
  let bucket: Promise<Bucket> | undefined;
  const connect = () => {
    bucket ??= import('@google-cloud/storage').then((m) => {
      const storage = new m.Storage({
        ...(options.projectId !== undefined ? { projectId: options.projectId } : {}),
        ...(options.apiEndpoint !== undefined ? { apiEndpoint: options.apiEndpoint } : {}),
      });
      // The SDK sends its JSON-API calls through one keep-alive agent shared by the whole
      // process, and a read stream that ends early (a cancel after the header, a failed read)
      // destroys that agent: every other download and upload in flight dies with "aborted".
      // A migration cancels reads all the time, so a large object read slowly while its upload
      // runs never got through. Without `forever` the calls use Node's global keep-alive agent
      // and the SDK leaves it alone; a cancelled read closes only its own connection.
      storage.interceptors.push({
        request: (reqOpts) => {
          reqOpts.forever = false;
          // The SDK hands each interceptor the request it decorated and types it loosely.
          return reqOpts as ReturnType<Storage['interceptors'][number]['request']>;
        },
      });
      return storage.bucket(options.bucket);
    });
    return bucket;
  };
  const partSize = options.partSize as number;

  return {
    provider: 'gs',
    location: `gs://${options.bucket}`,

    async *list(prefix, signal, beforePage) {
      const b = await connect();
      // Cloud Storage lists in UTF-8 byte order.
      const pageSize = options.pageSize ?? 1000;
      const guard = new ListingGuard('gs', UTF8_ORDER, pageSize);
      let pageToken: string | undefined;
      do {
        await beforePage?.();
        signal?.throwIfAborted();
        let files: import('@google-cloud/storage').File[];
        let next: { pageToken?: string } | null | undefined;
        try {
          [files, next] = (await untilAborted(
            b.getFiles({
              prefix,
              autoPaginate: false,
              maxResults: pageSize,
              ...(pageToken !== undefined ? { pageToken } : {}),
            }),
            signal,
            'gs list',
          )) as unknown as [import('@google-cloud/storage').File[], { pageToken?: string } | null];
        } catch (e) {
          mapError(e, prefix, 'list');
        }
        guard.page(files.length);
        for (const f of files) {
          guard.key(f.name);
          yield {
            key: f.name,
            size: Number(f.metadata.size ?? 0),
            version: gcsVersion(f.metadata.generation, f.metadata.metageneration),
          };
        }
        pageToken = guard.next(next?.pageToken ?? undefined);
      } while (pageToken !== undefined);
    },

    async get(key, signal, beforeRequest): Promise<ObjectRead> {
      const b = await connect();
      try {
        signal?.throwIfAborted();
        await beforeRequest?.();
        const [md] = await untilAborted(b.file(objectName(key)).getMetadata(), signal, 'gs get');
        const generation = String(md.generation ?? '');
        if (generation === '') throw new KeyportError('Internal', 'gs get: no generation in the metadata');
        // The read is a request of its own (sent when the body is first read).
        await beforeRequest?.();
        // Read exactly the generation whose metadata was taken.
        // As stored: an object with `Content-Encoding: gzip` would otherwise be decompressed
        // (by the service's transcoding or the SDK) and written back decompressed under the same
        // `Content-Encoding: gzip`, which no reader could open.
        const stream = b.file(key, { generation }).createReadStream({ validation: false, decompress: false });
        // The response body gets about a dozen listeners from the SDK's layered pipelines, a
        // fixed number per read (not a leak): raise its limit before Node warns on each read.
        stream.once('response', (res: unknown) => {
          if (res instanceof EventEmitter) res.setMaxListeners(Math.max(res.getMaxListeners(), 32));
        });
        const destroy = destroyWhenSafe(stream);
        const onAbort = () => destroy(new KeyportError('Aborted', 'gs get: aborted'));
        signal?.addEventListener('abort', onAbort, { once: true });
        stream.once('close', () => signal?.removeEventListener('abort', onAbort));
        return {
          key,
          // The metageneration too: a write conditioned on the generation alone would replace
          // metadata changed since this read (a change that keeps the generation).
          version: gcsVersion(generation, md.metageneration),
          size: Number(md.size ?? 0),
          contentType: md.contentType,
          contentEncoding: md.contentEncoding,
          contentDisposition: md.contentDisposition,
          contentLanguage: md.contentLanguage,
          cacheControl: md.cacheControl,
          storageClass:
            typeof md.storageClass === 'string' && md.storageClass !== '' ? md.storageClass : undefined,
          metadata: stringMap(md.metadata),
          tags: Object.create(null),
          body: mapStream(stream, key),
          cancel: () => destroy(),
        };
      } catch (e) {
        mapError(e, key, 'get');
      }
    },

    async put(key, body, putOptions?: PutOptions) {
      const put = checkPutOptions(putOptions);
      const b = await connect();
      const a = put.attributes;
      const condition = put.condition;
      const size = body instanceof Uint8Array ? body.length : undefined;
      const resumable = size === undefined || size > partSize;
      const version =
        condition !== undefined && 'ifVersion' in condition
          ? checkGeneration(condition.ifVersion)
          : undefined;
      const preconditionOpts =
        condition === undefined
          ? undefined
          : version === undefined
            ? { ifGenerationMatch: 0 }
            : {
                ifGenerationMatch: version.generation,
                ...(version.metageneration !== undefined
                  ? { ifMetagenerationMatch: version.metageneration }
                  : {}),
              };
      const file = b.file(objectName(key));
      const w = file.createWriteStream({
        resumable,
        chunkSize: partSize,
        validation: 'crc32c',
        metadata: {
          ...(a?.contentType !== undefined ? { contentType: a.contentType } : {}),
          ...(a?.contentEncoding !== undefined ? { contentEncoding: a.contentEncoding } : {}),
          ...(a?.contentDisposition !== undefined ? { contentDisposition: a.contentDisposition } : {}),
          ...(a?.contentLanguage !== undefined ? { contentLanguage: a.contentLanguage } : {}),
          ...(a?.cacheControl !== undefined ? { cacheControl: a.cacheControl } : {}),
          // Without it the object takes the bucket's default class, whatever class it was read from.
          ...(a?.storageClass !== undefined ? { storageClass: a.storageClass } : {}),
          ...(a !== undefined ? { metadata: { ...a.metadata } } : {}),
        },
        ...(preconditionOpts !== undefined ? { preconditionOpts } : {}),
      });
      try {
        const chunks = body instanceof Uint8Array ? [Buffer.from(body)] : body;
        const before = put.beforeRequest;
        // A simple upload is one request; a resumable one is its session's creation, then one
        // request per chunk, sent by the SDK: paced here as the chunks' bytes go in.
        if (before !== undefined && !resumable) await before();
        const source = Readable.from(
          before !== undefined && resumable ? pacedByChunks(chunks, partSize, before) : chunks,
        );
        await pipeline(source, w, ...(put.signal !== undefined ? [{ signal: put.signal }] : []));
        return { version: gcsVersion(file.metadata.generation, file.metadata.metageneration) };
      } catch (e) {
        mapError(e, key, 'put');
      }
    },

    async delete(key, signal, beforeRequest) {
      const b = await connect();
      signal?.throwIfAborted();
      try {
        await beforeRequest?.();
        await untilAborted(b.file(objectName(key)).delete(), signal, 'gs delete');
      } catch (e) {
        mapError(e, key, 'delete');
      }
    },
  };
}

/**
 * `source` as it is, with `beforeRequest` awaited for each request of a resumable upload in
 * chunks of `chunkSize`: the session's creation first, then one as each chunk's first byte goes
 * in (the SDK sends a chunk per request, the last one smaller, and an empty body as one).
 */
async function* pacedByChunks(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  chunkSize: number,
  beforeRequest: BeforeRequest,
): AsyncGenerator<Uint8Array> {
  await beforeRequest();
  let bytes = 0;
  let requests = 0;
  for await (const c of source) {
    bytes += c.byteLength;
    for (; requests < Math.ceil(bytes / chunkSize); requests++) await beforeRequest();
    yield c;
  }
  if (requests === 0) await beforeRequest();
}

/**
 * The body of the generation `get` took the metadata of. A 404 here means that generation is
 * gone — the object was overwritten or deleted in between (a bucket without versioning keeps only
 * the live generation) — which is a change, as a failed `ifGenerationMatch` is: the caller reads
 * again and finds the new object, or that it is now missing.
 */
async function* mapStream(stream: AsyncIterable<Uint8Array>, key: string): AsyncGenerator<Uint8Array> {
  try {
    yield* stream;
  } catch (e) {
    if ((e as { code?: unknown })?.code === 404)
      throw new ObjectChangedError(key, { provider: 'gs', cause: e });
    mapError(e, key, 'get');
  }
}

/** How long a read that was asked to stop waits for its response before it is destroyed anyway. */
const DESTROY_GRACE_MS = 5_000;

/**
 * Destroys a Cloud Storage read stream without tripping the SDK: once the request is out and
 * before its response, destroying the stream makes the SDK pipe the response into a destroyed
 * stream inside its own callback, an unhandled rejection (ERR_STREAM_UNABLE_TO_PIPE). Between
 * those two points the stream is destroyed just after the response arrives (or after
 * DESTROY_GRACE_MS, for a server that never answers); before the request or after the response,
 * at once.
 */
function destroyWhenSafe(stream: Readable): (error?: Error) => void {
  let phase: 'idle' | 'requested' | 'answered' = 'idle';
  stream.once('reading', () => {
    if (phase === 'idle') phase = 'requested';
  });
  stream.once('response', () => {
    phase = 'answered';
  });
  return (error) => {
    const now = () => stream.destroy(error);
    if (phase !== 'requested') return now();
    const timer = setTimeout(now, DESTROY_GRACE_MS);
    timer.unref();
    stream.once('response', () => {
      clearTimeout(timer);
      setImmediate(now);
    });
  };
}
