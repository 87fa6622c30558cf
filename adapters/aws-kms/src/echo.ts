/**
 * Endpoint errors that quote the plaintext of the request they refuse. local-kms quotes a refused
 * plaintext whole ("Value '…' at 'plaintext' failed to satisfy constraint"), and a proxy or a
 * look-alike endpoint may quote the request in its answer; the SDK puts the answer's message (and
 * `__type`, `code`) on its error, which the KeyportError keeps as `cause`: every log of the
 * error would print the plaintext. Such an error is replaced by one that keeps what mapping and
 * retries read (exception name, HTTP status, request id, fault and retry flags) without the text.
 */

import { errorQuotesSecret, quotesSecret } from '@keyport/core';

type Record_ = Record<string, unknown>;
const field = (value: unknown, key: string): unknown => {
  try {
    return typeof value === 'object' && value !== null ? (value as Record_)[key] : undefined;
  } catch {
    return undefined;
  }
};

/** `error`, or when it quotes `secret` (the request's `what`) a copy without its text. */
export function withoutEcho(error: unknown, secret: Uint8Array, what: string): unknown {
  if (!errorQuotesSecret(error, [secret])) return error;
  const clean = (value: unknown) =>
    typeof value === 'string' && !quotesSecret(value, secret) ? value : undefined;
  const name = clean(field(error, 'name'));
  const metadata = field(error, '$metadata');
  const copy = new Error(`the endpoint's message is withheld: it quotes the ${what} sent`) as Error & Record_;
  copy.name = name ?? 'Error';
  copy.stack = `${copy.name}: ${copy.message}`;
  copy.$metadata = {
    httpStatusCode: field(metadata, 'httpStatusCode'),
    requestId: clean(field(metadata, 'requestId')),
  };
  for (const key of ['$fault', '$retryable'])
    if (field(error, key) !== undefined) copy[key] = field(error, key);
  return copy;
}
