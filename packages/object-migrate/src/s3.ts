/**
 * Amazon S3 through `@aws-sdk/client-s3`, imported on first use. Credentials, region and
 * retries come from the SDK's own chain (environment, profile, SSO, IMDS, ...); `endpoint`
 * points it at an emulator (path-style addressing then). Conditional writes use `If-Match`
 * on PutObject and CompleteMultipartUpload and `If-None-Match: *` for create-only.
 */
import type { S3Client, StorageClass } from '@aws-sdk/client-s3';
import { checkOptions, checkString, KeyportError } from '@keyport/core';
import {
  checkEntityTag,
  checkPageSize,
  checkPartSize,
  checkPutOptions,
  ListingGuard,
  metadataFromHeaders,
  ObjectChangedError,
  type ObjectEntry,
  type ObjectRead,
  type ObjectStore,
  optionalString,
  type PutOptions,
  partSizeFor,
  partsOf,
  typedBody,
  UTF8_ORDER,
} from './store.js';
import { keyportErrorIn, providerError } from './throttle.js';

export interface S3StoreOptions {
  readonly bucket: string;
  readonly region?: string;
  /** An emulator or S3-compatible endpoint; path-style addressing is used with it. */
  readonly endpoint?: string;
  readonly partSize?: number;
  /** Page size of ListObjectsV2 (at most 1000). */
  readonly pageSize?: number;
}

type S3Module = typeof import('@aws-sdk/client-s3');
let sdk: Promise<S3Module> | undefined;
const loadSdk = (): Promise<S3Module> => {
  sdk ??= import('@aws-sdk/client-s3');
  return sdk;
};

/** How long the AbortMultipartUpload of a failed or aborted upload may take. */
export const ABORT_UPLOAD_MS = 5_000;

const status = (e: unknown): number | undefined =>
  (e as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;

function mapError(e: unknown, key: string, what: string): never {
  const wrapped = keyportErrorIn(e);
  if (wrapped !== undefined) throw wrapped;
  const code = status(e);
  const name = (e as { name?: string })?.name;
  if (
    code === 412 ||
    name === 'PreconditionFailed' ||
    (code === 409 && name === 'ConditionalRequestConflict')
  )
    throw new ObjectChangedError(key, { provider: 's3', cause: e });
  // A missing bucket is not a missing object: said so, rather than "object not found" for a listing.
  if (name === 'NoSuchBucket')
    throw new KeyportError('NotFound', `s3 ${what}: bucket not found`, { provider: 's3', cause: e });
  if (code === 404 || name === 'NoSuchKey' || name === 'NotFound')
    throw new KeyportError('NotFound', `s3 ${what}: object not found`, { provider: 's3', cause: e });
  throw providerError('s3', what, code, name, e);
}

/**
 * A key of a listing asked with `encoding-type=url`: S3 percent-encodes it and writes a space as
 * `+` (a `+` of the key as `%2B`). A key that does not decode is a listing that cannot be trusted.
 */
function decodeListedKey(encoded: string): string {
  try {
    return decodeURIComponent(encoded.replace(/\+/g, ' '));
  } catch (e) {
    throw new KeyportError('Internal', 's3 list: the service listed a key that is not URL-encoded as asked', {
      provider: 's3',
      cause: e,
    });
  }
}

const S3_STORE_OPTIONS = {
  bucket: true,
  region: true,
  endpoint: true,
  partSize: true,
  pageSize: true,
} as const satisfies Record<keyof S3StoreOptions, true>;

/**
 * The options, checked when the store is made: a misspelt `endpoint` would send every call to
 * AWS instead of the emulator or S3-compatible store meant, a page size of the wrong type would
 * fail each listing. Unknown options are refused, naming them (never their values).
 */
function checkS3StoreOptions(value: unknown): S3StoreOptions {
  const o = checkOptions(value, 'options', S3_STORE_OPTIONS);
  const region = optionalString(o.region, 'options.region');
  const endpoint = optionalString(o.endpoint, 'options.endpoint');
  const pageSize = checkPageSize(o.pageSize, 'options.pageSize', 1000);
  return {
    bucket: checkString(o.bucket, 'options.bucket', { min: 1, max: 255 }),
    ...(region !== undefined ? { region } : {}),
    ...(endpoint !== undefined ? { endpoint } : {}),
    partSize: checkPartSize(o.partSize, 's3'),
    ...(pageSize !== undefined ? { pageSize } : {}),
  };
}

export function s3Store(input: S3StoreOptions): ObjectStore {
  const options = checkS3StoreOptions(input);
  const bucket = options.bucket;
  const partSize = options.partSize as number;
  let client: Promise<{ s3: S3Client; m: S3Module }> | undefined;
  const connect = () => {
    client ??= loadSdk().then((m) => ({
      m,
      s3: new m.S3Client({
        ...(options.region !== undefined ? { region: options.region } : {}),
        ...(options.endpoint !== undefined ? { endpoint: options.endpoint, forcePathStyle: true } : {}),
      }),
    }));
    return client;
  };
  const opts = (signal: AbortSignal | undefined) => (signal !== undefined ? { abortSignal: signal } : {});

  return {
    provider: 's3',
    location: `s3://${bucket}`,

    async *list(prefix, signal, beforePage) {
      const { s3, m } = await connect();
      // General purpose buckets list in UTF-8 byte order (directory buckets are refused).
      const pageSize = options.pageSize ?? 1000;
      const guard = new ListingGuard('s3', UTF8_ORDER, pageSize);
      let token: string | undefined;
      do {
        let page: import('@aws-sdk/client-s3').ListObjectsV2CommandOutput;
        await beforePage?.();
        try {
          page = await s3.send(
            new m.ListObjectsV2Command({
              Bucket: bucket,
              Prefix: prefix,
              MaxKeys: pageSize,
              // Keys come back URL-encoded: XML text cannot carry every key as it is (a CR reads
              // back as LF, so `a\rb` was listed as `a\nb`, found missing and skipped as deleted,
              // its object never migrated).
              EncodingType: 'url',
              ...(token !== undefined ? { ContinuationToken: token } : {}),
            }),
            opts(signal),
          );
        } catch (e) {
          mapError(e, prefix, 'list');
        }
        const contents = page.Contents ?? [];
        guard.page(contents.length);
        for (const o of contents) {
          // An entry without a key names no object: skipping it would report the run finished
          // with an object never looked at. The ETag is not needed here (each object's own read
          // gives the version its write is conditioned on).
          if (o.Key === undefined)
            throw new KeyportError('Internal', 's3 list: the service listed an object without a key', {
              provider: 's3',
            });
          // A store that ignores `encoding-type` answers the keys as they are, without saying so.
          const key = page.EncodingType === 'url' ? decodeListedKey(o.Key) : o.Key;
          guard.key(key);
          yield { key, size: o.Size ?? 0, version: o.ETag ?? '' } satisfies ObjectEntry;
        }
        // Truncated without a token to go on: following nothing would restart from the first
        // page, stopping would report a partial listing as complete.
        if (page.IsTruncated === true && !page.NextContinuationToken)
          throw new KeyportError(
            'Internal',
            's3 list: the service said the listing is truncated but gave no continuation token',
            { provider: 's3' },
          );
        token = guard.next(page.IsTruncated === true ? page.NextContinuationToken : undefined);
      } while (token !== undefined);
    },

    async get(key, signal, beforeRequest): Promise<ObjectRead> {
      const { s3, m } = await connect();
      try {
        const command = new m.GetObjectCommand({ Bucket: bucket, Key: key });
        let headers: Record<string, unknown> = {};
        command.middlewareStack.add(
          (next) => async (args) => {
            const result = await next(args);
            headers = (result.response as { headers?: Record<string, unknown> }).headers ?? {};
            return result;
          },
          { step: 'deserialize', name: 'keyportRawHeaders' },
        );
        await beforeRequest?.();
        const out = await s3.send(command, opts(signal));
        const body = out.Body as
          | (AsyncIterable<Uint8Array> & {
              destroy?: () => void;
              on?: (event: 'error', listener: () => void) => unknown;
            })
          | undefined;
        // The SDK's checksum stream around the body fails by itself (a mismatch, a connection
        // lost) even when nobody reads it any more: an unheard 'error' event would crash the
        // process. Readers still get the error through the iterator.
        body?.on?.('error', () => undefined);
        const version = out.ETag;
        if (version === undefined) {
          body?.destroy?.();
          throw new KeyportError('Internal', 's3 get: no ETag in the response');
        }
        // Tags read right after the object: GetObjectTagging takes no If-Match, and
        // PutObjectTagging leaves the ETag as it is, so the write conditioned on the ETag does not
        // catch a change of the tags alone: tags set between this read and the write are
        // replaced by these (README, "Tags changed alone").
        const tagging = await (async () => {
          await beforeRequest?.();
          return s3.send(new m.GetObjectTaggingCommand({ Bucket: bucket, Key: key }), opts(signal));
        })().catch((e: unknown) => {
          // Nobody will read or cancel a body whose get failed: close its connection here.
          body?.destroy?.();
          throw e;
        });
        const tags: Record<string, string> = Object.create(null);
        for (const t of tagging.TagSet ?? [])
          if (t.Key !== undefined && t.Value !== undefined) tags[t.Key] = t.Value;
        return {
          key,
          version,
          size: out.ContentLength ?? 0,
          contentType: out.ContentType,
          contentEncoding: out.ContentEncoding,
          contentDisposition: out.ContentDisposition,
          contentLanguage: out.ContentLanguage,
          cacheControl: out.CacheControl,
          // Absent for STANDARD: S3 sends `x-amz-storage-class` only for the other classes.
          storageClass: out.StorageClass,
          metadata: metadataFromHeaders(Object.entries(headers), 'x-amz-meta-'),
          tags,
          body:
            body === undefined
              ? (async function* () {})()
              : typedBody(body, 's3', signal, (e) => mapError(e, key, 'get')),
          cancel: () => body?.destroy?.(),
        };
      } catch (e) {
        mapError(e, key, 'get');
      }
    },

    async put(key, body, putOptions?: PutOptions) {
      const put = checkPutOptions(putOptions);
      const { s3, m } = await connect();
      const beforeRequest = async (): Promise<void> => put.beforeRequest?.();
      const a = put.attributes;
      const condition = put.condition;
      const cond =
        condition === undefined
          ? {}
          : 'ifVersion' in condition
            ? { IfMatch: checkEntityTag(condition.ifVersion, 's3') }
            : { IfNoneMatch: '*' };
      const tagging =
        a !== undefined && Object.keys(a.tags).length > 0
          ? new URLSearchParams(Object.entries(a.tags)).toString()
          : undefined;
      const attrs = {
        ...(a?.contentType !== undefined ? { ContentType: a.contentType } : {}),
        ...(a?.contentEncoding !== undefined ? { ContentEncoding: a.contentEncoding } : {}),
        ...(a?.contentDisposition !== undefined ? { ContentDisposition: a.contentDisposition } : {}),
        ...(a?.contentLanguage !== undefined ? { ContentLanguage: a.contentLanguage } : {}),
        ...(a?.cacheControl !== undefined ? { CacheControl: a.cacheControl } : {}),
        // Without it the object is written as STANDARD, whatever class it was read from.
        ...(a?.storageClass !== undefined ? { StorageClass: a.storageClass as StorageClass } : {}),
        ...(a !== undefined ? { Metadata: { ...a.metadata } } : {}),
        ...(tagging !== undefined ? { Tagging: tagging } : {}),
      };
      // S3 answers a write conditioned on an ETag with 404 NoSuchKey when the object is gone
      // (deleted since it was read): its version is not the one read, a failed condition like a
      // 412, so the caller reads again and finds it missing rather than failing the object.
      function putError(e: unknown): never {
        const name = (e as { name?: string })?.name;
        if (
          condition !== undefined &&
          'ifVersion' in condition &&
          !(e instanceof KeyportError) &&
          (name === 'NoSuchKey' || (status(e) === 404 && name !== 'NoSuchBucket'))
        )
          throw new ObjectChangedError(key, { provider: 's3', cause: e });
        mapError(e, key, 'put');
      }
      // Before anything is sent: an object past 10,000 parts failed only at the 10,001st.
      const size = partSizeFor('s3', partSize, body instanceof Uint8Array ? body.length : put.maxSize);
      const parts = partsOf(body, size)[Symbol.asyncIterator]();
      const first = await parts.next();
      const second = first.done === true ? first : await parts.next();
      if (second.done === true) {
        try {
          await beforeRequest();
          const out = await s3.send(
            new m.PutObjectCommand({
              Bucket: bucket,
              Key: key,
              Body: first.value ?? Buffer.alloc(0),
              ...attrs,
              ...cond,
            }),
            opts(put.signal),
          );
          return { version: out.ETag ?? '' };
        } catch (e) {
          putError(e);
        }
      }
      let uploadId: string | undefined;
      try {
        await beforeRequest();
        const created = await s3.send(
          new m.CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ...attrs }),
          opts(put.signal),
        );
        uploadId = created.UploadId;
        const done: { ETag: string; PartNumber: number }[] = [];
        let n = 0;
        const send = async (part: Buffer) => {
          n++;
          await beforeRequest();
          const out = await s3.send(
            new m.UploadPartCommand({
              Bucket: bucket,
              Key: key,
              UploadId: uploadId,
              PartNumber: n,
              Body: part,
            }),
            opts(put.signal),
          );
          done.push({ ETag: out.ETag ?? '', PartNumber: n });
        };
        await send(first.value as Buffer);
        await send(second.value as Buffer);
        for (let p = await parts.next(); p.done !== true; p = await parts.next()) await send(p.value);
        // The same condition checked once more just before completing: S3 enforces If-Match on
        // CompleteMultipartUpload itself, some S3-compatible stores (moto 5.2) do not, and
        // there this narrows the window to one round trip.
        if (condition !== undefined) {
          await beforeRequest();
          const now = await s3
            .send(new m.HeadObjectCommand({ Bucket: bucket, Key: key }), opts(put.signal))
            .then(
              (h) => h.ETag,
              (e: unknown) => {
                if (status(e) === 404) return undefined;
                throw e;
              },
            );
          if ('ifAbsent' in condition ? now !== undefined : now !== condition.ifVersion)
            throw new ObjectChangedError(key, { provider: 's3' });
        }
        await beforeRequest();
        const out = await s3.send(
          new m.CompleteMultipartUploadCommand({
            Bucket: bucket,
            Key: key,
            UploadId: uploadId,
            MultipartUpload: { Parts: done },
            ...cond,
          }),
          opts(put.signal),
        );
        uploadId = undefined;
        return { version: out.ETag ?? '' };
      } catch (e) {
        putError(e);
      } finally {
        if (uploadId !== undefined) {
          // Sent even when the wait for it fails (an aborted run): the parts would be left behind.
          // Not on the caller's signal (it may have fired), but with a deadline of its own: the
          // SDK has none, and a service that stopped answering held an aborted run here for
          // ever. Unanswered, the parts are left to the bucket's lifecycle rule (README).
          await beforeRequest().catch(() => undefined);
          await s3
            .send(new m.AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }), {
              abortSignal: AbortSignal.timeout(ABORT_UPLOAD_MS),
            })
            .catch(() => undefined);
        }
      }
    },

    async delete(key, signal, beforeRequest) {
      const { s3, m } = await connect();
      try {
        await beforeRequest?.();
        await s3.send(new m.DeleteObjectCommand({ Bucket: bucket, Key: key }), opts(signal));
      } catch (e) {
        mapError(e, key, 'delete');
      }
    },
  };
}
