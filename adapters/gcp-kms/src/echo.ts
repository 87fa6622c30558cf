/**
 * Service errors that quote the plaintext of the request they refuse. Cloud KMS itself names
 * resources only, but a proxy or a look-alike endpoint may quote the request in its error, and
 * the client puts that text in its error's message, which the KeyportError keeps as `cause`:
 * every log of the error would print the plaintext (or the data key, for emulated data keys).
 * Such an error is replaced by one that keeps what mapping reads (the gRPC or HTTP status, the
 * request id, and whether the text named a checksum or the message size limit) without the text.
 */

import { errorQuotesSecret, quotesSecret } from '@keyport/core';

type Fields = Record<string, unknown>;
const field = (value: unknown, key: string): unknown => {
  try {
    return typeof value === 'object' && value !== null ? (value as Fields)[key] : undefined;
  } catch {
    return undefined;
  }
};
const text = (value: unknown): string => (typeof value === 'string' ? value : '');

/** The request id headers errors.ts reads from the error's metadata. */
const REQUEST_IDS = ['x-request-id', 'request-id'];

function requestIds(error: unknown): string[] {
  const metadata = field(error, 'metadata') as { get?: (key: string) => unknown[] } | undefined;
  try {
    return REQUEST_IDS.map((k) => text(metadata?.get?.(k)?.[0]));
  } catch {
    return [];
  }
}

/** `error`, or when it quotes `secret` (the request's `what`) a copy without its text. */
export function withoutEcho(error: unknown, secret: Uint8Array, what: string): unknown {
  // The request ids errors.ts reads from the metadata are kept too.
  if (!errorQuotesSecret(error, [secret], requestIds(error))) return error;
  // What errors.ts reads in the text to tell a corrupted request or an oversized message apart.
  const said = `${text(field(error, 'message'))} ${text(field(error, 'details'))}`.toLowerCase();
  const named = [
    said.includes('crc32c') || said.includes('checksum') ? ' (it named a checksum)' : '',
    said.includes('message larger than max') ? ' (message larger than max)' : '',
  ].join('');
  const copy = new Error(`the service's message is withheld: it quotes the ${what} sent${named}`) as Error &
    Fields;
  copy.stack = `Error: ${copy.message}`;
  const code = field(error, 'code');
  if (typeof code === 'number' || (typeof code === 'string' && /^\d{1,3}$/.test(code))) copy.code = code;
  const status = field(error, 'httpStatusCode');
  if (typeof status === 'number') copy.httpStatusCode = status;
  const ids = new Map(
    REQUEST_IDS.map((k, i) => [k, requestIds(error)[i]] as const).filter(
      (entry): entry is readonly [string, string] =>
        entry[1] !== undefined && entry[1] !== '' && !quotesSecret(entry[1], secret),
    ),
  );
  copy.metadata = { get: (key: string) => (ids.has(key) ? [ids.get(key)] : []) };
  return copy;
}
