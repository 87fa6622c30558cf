/**
 * The REST transport's answer-size limit. google-gax's fallback reads each answer whole
 * (`response.arrayBuffer()`), with no limit of its own, through `auth.fetch(url, init)` of the
 * client's GoogleAuth, and gaxios under it accepts a per-request `adapter` wrapping its own fetch.
 * keyport gives every such request an adapter that refuses a declared Content-Length over the
 * limit before reading anything, and cuts a body (chunked, or decompressed) off at the limit;
 * either way the body is destroyed, which closes the connection.
 */
import { Readable } from 'node:stream';
import { KeyportError } from '@keyport/core';
import type { GoogleAuth, gaxios } from 'google-auth-library';

type Adapter = NonNullable<gaxios.GaxiosOptions['adapter']>;
type Prepared = Parameters<Adapter>[0];
type DefaultAdapter = Parameters<Adapter>[1];
type Fetch = GoogleAuth['fetch'];
/** A response body as gaxios's fetch gives it: a Node stream (node-fetch) or a web stream. */
type Body = Readable | ReadableStream<Uint8Array>;
type Chunk = Uint8Array | string;

/** The errors this module raises (recognised by mapGcpError under the client's wrapping). */
const tooLarge = new WeakSet<KeyportError>();

/** The answer-size error within `error`'s cause chain (gaxios and gax each wrap it once). */
export function answerTooLarge(error: unknown): KeyportError | undefined {
  let e: unknown = error;
  for (let depth = 0; depth < 8 && typeof e === 'object' && e !== null; depth++) {
    if (e instanceof KeyportError && tooLarge.has(e)) return e;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

function overLimit(max: number, declared?: number): KeyportError {
  const size = declared === undefined ? 'more than' : `${declared} bytes, over`;
  const why = `Cloud KMS answered ${size} the REST transport's limit of ${max} bytes; the answer was not read`;
  // The same request would get the same answer: not retried.
  const error = new KeyportError('Internal', why, { retryable: false });
  tooLarge.add(error);
  return error;
}

const isWebStream = (body: Body): body is ReadableStream<Uint8Array> =>
  typeof (body as ReadableStream).getReader === 'function';

/** Drops the body unread: destroying the stream closes the connection it came on. */
function discard(body: Body | null | undefined): void {
  if (!body) return;
  if (isWebStream(body)) body.cancel().catch(() => undefined);
  else body.destroy();
}

/**
 * The body's chunks until `max` bytes have passed; past that it throws, and leaving the loop
 * destroys (Node) or cancels (web) the stream under it.
 */
async function* limited(body: Body, max: number): AsyncGenerator<Buffer> {
  let total = 0;
  for await (const chunk of body as AsyncIterable<Chunk>) {
    const bytes =
      typeof chunk === 'string'
        ? Buffer.from(chunk)
        : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    total += bytes.byteLength;
    if (total > max) {
      discard(body);
      throw overLimit(max);
    }
    yield bytes;
  }
}

/**
 * The answer with its body bounded: the readers gax uses (`arrayBuffer`, and the others for
 * completeness) and the stream gaxios drains for a 401/403 (`data`) all read at most `max` bytes.
 */
async function bounded(config: Prepared, next: DefaultAdapter, max: number) {
  const res = await next(config);
  const body = (res as { body?: Body | null }).body;
  const declared = Number(res.headers?.get('content-length') ?? Number.NaN);
  if (Number.isSafeInteger(declared) && declared > max) {
    discard(body);
    throw overLimit(max, declared);
  }
  if (!body) return res;
  // One stream over the bounded chunks, read by whichever reader comes first (it starts reading
  // only when asked to); its error is the size error, and the body under it is then destroyed.
  const stream = Readable.from(limited(body, max), { objectMode: false });
  const bytes = async () => {
    const parts: Buffer[] = [];
    for await (const part of stream as AsyncIterable<Buffer>) parts.push(part);
    return Buffer.concat(parts);
  };
  const text = async () => (await bytes()).toString('utf8');
  const arrayBuffer = async () => {
    const b = await bytes();
    return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
  };
  const value = (v: unknown) => ({ value: v, configurable: true, enumerable: true, writable: true });
  Object.defineProperties(res, {
    body: value(stream),
    data: value(stream),
    arrayBuffer: value(arrayBuffer),
    text: value(text),
    json: value(async () => JSON.parse(await text())),
    blob: value(async () => new Blob([await bytes()])),
  });
  return res;
}

/**
 * Bounds every answer the client fetches through `auth` (a GoogleAuth keyport's client owns,
 * never the caller's object). gax's fallback calls `auth.fetch(url, init)`; the request goes out
 * as it would have, with the adapter added (the auth client's own transporter adapter, if it has
 * one, still makes the request: the bound wraps it). Other forms of call pass through unchanged.
 */
export function boundRestAnswers(auth: GoogleAuth, max: number): void {
  const fetch: Fetch = auth.fetch.bind(auth);
  const limitedFetch = async (...args: Parameters<Fetch>) => {
    const [input, init] = args as [unknown, gaxios.GaxiosOptions | undefined];
    if (typeof input !== 'string' && !(input instanceof URL)) return fetch(...args);
    const client = await auth.getClient();
    const own = init?.adapter ?? (client as { transporter?: gaxios.Gaxios }).transporter?.defaults?.adapter;
    const adapter = ((config: Prepared, next: DefaultAdapter) =>
      bounded(config, own ? (c) => own(c, next) : next, max)) as Adapter;
    return fetch({ ...init, url: input, adapter });
  };
  Object.defineProperty(auth, 'fetch', { value: limitedFetch, configurable: true, writable: true });
}
