/**
 * Vault / OpenBao answers -> KeyportError codes. Vault answers errors as `{ "errors": ["<msg>"] }`
 * with an HTTP status, and transit reports most client mistakes as 400 with a message, so a row's
 * key is `"<status> <kind>"` (the message sorted into a kind below) or the bare status. The README's
 * error table is this table.
 *
 * Messages are keyport's own: the server's text is kept only in `cause` (it could echo input).
 */
import {
  type ErrorTable,
  errorFromTable,
  KeyportError,
  networkErrorCode,
  redactSecrets,
  tlsErrorCode,
} from '@keyport/core';

export const PROVIDER_NAME = 'hcvault';

/** Transit's messages for the mistakes keyport tells apart, in the order they are tried. */
export const VAULT_MESSAGE_KINDS: ReadonlyArray<readonly [kind: string, pattern: RegExp]> = [
  ['key not found', /encryption key not found|no existing key named|key not found|signing key not found/i],
  [
    'bad ciphertext',
    /message authentication failed|invalid ciphertext|ciphertext.*too short|unable to decrypt|decryption error|invalid (padding|input)/i,
  ],
  [
    'key state',
    /soft-deleted|disallowed by policy|less than the minimum|deletion is not allowed|not allowed for imported|rotation.*not allowed|version .*(trimmed|archived)/i,
  ],
  ['exists', /already exists|cannot be used with an existing key/i],
  ['not imported', /can only be used with an imported key/i],
  ['wrong key type', /not supported for key type|does not support|non-AEAD|unsupported/i],
  [
    'denied',
    /must be subset of parent|permission denied|invalid role or secret id|invalid secret id|login failed/i,
  ],
  // OpenBao's AES-KWP: "kwp: unwrap failed integrity check" (material changed, or wrapped for another key).
  ['unwrap failed', /decryption error|ciphertext is too short|failed to unwrap|unwrap failed|key ?wrap/i],
];

export const VAULT_ERROR_TABLE: ErrorTable = {
  '400 key not found': { code: 'NotFound' },
  '400 bad ciphertext': { code: 'InvalidCiphertext' }, // tampering, wrong key, context mismatch
  '400 key state': { code: 'KeyStateConflict' }, // soft-deleted, below min_decryption_version
  '400 exists': { code: 'AlreadyExists' },
  '500 exists': { code: 'AlreadyExists' }, // transit answers import mistakes with 500
  '500 not imported': { code: 'InvalidArgument' }, // import_version on a generated key
  '400 wrong key type': { code: 'InvalidArgument' },
  '400 denied': { code: 'AccessDenied' }, // failed login, no sudo to mint a grant token
  '500 unwrap failed': { code: 'InvalidCiphertext' }, // import material that does not unwrap
  '400': { code: 'InvalidArgument' },
  '401': { code: 'AccessDenied' },
  '403': { code: 'AccessDenied' },
  '404': { code: 'NotFound' },
  '405': { code: 'Unsupported', capability: 'operation' },
  '412': { code: 'Unavailable' }, // consistency not reached yet
  '413': { code: 'InvalidArgument' }, // body over the listener's max_request_size (32 MiB default)
  '429': { code: 'Throttled' },
  '500': { code: 'Unavailable' },
  '502': { code: 'Unavailable' },
  '503': { code: 'Unavailable' }, // sealed, standby
  '504': { code: 'Unavailable' },
};

/**
 * A successful answer out of Vault's contract (a server, or a proxy in front of it, that is not
 * quite Vault): `Internal`, never retried, saying what was wrong (`what` follows "Vault answered")
 * and never echoing the answer, which may carry a plaintext or a token.
 */
export function malformedAnswer(what: string, keyUri?: string): KeyportError {
  return new KeyportError('Internal', `Vault answered ${what}`, {
    provider: PROVIDER_NAME,
    ...(keyUri !== undefined ? { keyUri } : {}),
    retryable: false,
  });
}

/** Longest server text kept in an error (core keeps 2048 chars of a cause's message). */
const MAX_KEPT_CHARS = 4096;

/**
 * `text` (cut to MAX_KEPT_CHARS: a hostile server's megabyte message costs no regex time) with
 * every one of `secrets` (the longest first) masked, and what core masks in any provider's text
 * (named secrets, token- and JWT-shaped strings). Only keyport knows the configured secrets, so
 * they are masked here, where the answer arrives.
 */
export function maskTokens(text: string, secrets: readonly string[] = []): string {
  let masked = text.length > MAX_KEPT_CHARS ? `${text.slice(0, MAX_KEPT_CHARS)}…` : text;
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) {
    if (secret !== '') masked = masked.split(secret).join('<redacted>');
  }
  return redactSecrets(masked);
}

/**
 * Masks, in place, the text a failed request's error carries from the answer: node-vault makes
 * its message of the answer's `errors[0]`, and a proxy (or a server) may echo the request's
 * token there. That message is what `cause` keeps and logs print, and the stack repeats it; the
 * body's `errors` are masked too (the error table reads them). KeyportErrors are keyport's own.
 */
export function maskErrorTokens(error: unknown, secrets: readonly string[]): void {
  if (!(error instanceof Error) || error instanceof KeyportError) return;
  try {
    error.message = maskTokens(error.message, secrets);
    if (typeof error.stack === 'string') {
      const frames = error.stack.split('\n').filter((line) => /^\s+at /.test(line));
      error.stack = [`${error.name}: ${error.message}`, ...frames].join('\n');
    }
    const body = (error as { response?: { body?: unknown } }).response?.body;
    const errors = (body as { errors?: unknown } | null | undefined)?.errors;
    if (Array.isArray(errors)) {
      // The first is the one read; a few more for whoever looks, never a hostile million.
      for (let i = 0; i < Math.min(errors.length, 16); i++) {
        if (typeof errors[i] === 'string') errors[i] = maskTokens(errors[i], secrets);
      }
    }
  } catch {
    // A frozen or exotic error is left as it is; core reduces and redacts the cause it keeps.
  }
}

/** Vault's and OpenBao's request ids are UUIDs. */
const VAULT_REQUEST_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Replaces, in place, the server's text a failed request's error carries (node-vault makes its
 * message of the answer's `errors[0]`) with the HTTP status alone, for requests whose body or
 * answer carries a plaintext (encrypt, decrypt, data keys): a proxy echoing the request, or a
 * server not quite Vault, would otherwise put the plaintext's base64 into `cause`, and so into
 * logs. Masking the known value would miss an echo escaped, cut or re-encoded on the way. The
 * body is left for the error table (`vaultAnswer` reads it; core drops it from the cause it keeps),
 * but for a `request_id` that is not Vault's (a UUID): the error's `requestId` is copied from it,
 * and it is server text like any other.
 */
export function withholdServerText(error: unknown): void {
  if (!(error instanceof Error) || error instanceof KeyportError) return;
  const status = vaultAnswer(error)?.status;
  if (status === undefined) return;
  try {
    const body = (error as { response?: { body?: unknown } }).response?.body;
    if (typeof body === 'object' && body !== null && Object.hasOwn(body, 'request_id')) {
      const id = (body as { request_id?: unknown }).request_id;
      if (typeof id !== 'string' || !VAULT_REQUEST_ID.test(id))
        delete (body as { request_id?: unknown }).request_id;
    }
    error.message = `Status ${status} (Vault's text withheld: the request or its answer carries a plaintext)`;
    if (typeof error.stack === 'string') {
      const frames = error.stack.split('\n').filter((line) => /^\s+at /.test(line));
      error.stack = [`${error.name}: ${error.message}`, ...frames].join('\n');
    }
  } catch {
    // A frozen error keeps its text; nothing keyport builds is frozen.
  }
}

/** The table row an answer falls under: the first kind with a row for the status, else the status. */
export function vaultErrorKey(status: number, message: string): string | undefined {
  // Only the head is matched: a hostile server's megabyte message must not cost regex time.
  const head = message.slice(0, 2048);
  for (const [kind, pattern] of VAULT_MESSAGE_KINDS) {
    const key = `${status} ${kind}`;
    if (Object.hasOwn(VAULT_ERROR_TABLE, key) && pattern.test(head)) return key;
  }
  return Object.hasOwn(VAULT_ERROR_TABLE, String(status)) ? String(status) : undefined;
}

/** The HTTP status, first error message and request id of a node-vault ApiResponseError. */
export function vaultAnswer(
  error: unknown,
): { status: number; message: string; requestId?: string } | undefined {
  const response = (error as { response?: { statusCode?: unknown; body?: unknown } } | null)?.response;
  if (typeof response?.statusCode !== 'number') return undefined;
  type Body = { errors?: unknown; request_id?: unknown } | null;
  const body = (typeof response.body === 'object' ? response.body : {}) as Body;
  const first = Array.isArray(body?.errors) && typeof body.errors[0] === 'string' ? body.errors[0] : '';
  const requestId = typeof body?.request_id === 'string' ? { requestId: body.request_id } : {};
  return { status: response.statusCode, message: first, ...requestId };
}

/**
 * Maps a raw error from node-vault or the transport. KeyportErrors pass through; anything
 * unknown returns undefined so core wraps it as Internal.
 */
export function mapVaultError(error: unknown, keyUri?: string): KeyportError | undefined {
  if (error instanceof KeyportError) return error;
  const base = { provider: PROVIDER_NAME, ...(keyUri !== undefined ? { keyUri } : {}), cause: error };
  if (error instanceof Error && error.name === 'AbortError') {
    return new KeyportError('Aborted', 'the Vault request was aborted', base);
  }
  const answer = vaultAnswer(error);
  if (answer !== undefined) {
    const key = vaultErrorKey(answer.status, answer.message);
    const options = { ...base, ...(answer.requestId !== undefined ? { requestId: answer.requestId } : {}) };
    return (
      errorFromTable(VAULT_ERROR_TABLE, key, `Vault answered HTTP ${key ?? answer.status}`, options) ??
      new KeyportError('Internal', `unexpected Vault response (HTTP ${answer.status})`, options)
    );
  }
  const tls = tlsErrorCode(error);
  if (tls !== undefined) {
    return new KeyportError('Unavailable', `the Vault server's TLS certificate was refused (${tls})`, {
      ...base,
      retryable: false,
    });
  }
  const network = networkErrorCode(error);
  if (network === undefined) return undefined;
  const code = network === 'ETIMEDOUT' ? 'Timeout' : 'Unavailable';
  return new KeyportError(code, `Vault unreachable (${network})`, base);
}
