/**
 * Vault / OpenBao errors -> KeyportError codes. Vault answers errors as
 * `{ "errors": ["<message>"] }` with an HTTP status; transit reports most client mistakes as
 * 400 with a message, so the table matches on (status, message pattern) first and on the
 * status alone second. The README's error table is this table.
 *
 * Messages are keyport's own: the server's text is kept only in `cause`, and Vault's messages
 * never echo plaintext or context values.
 */
import { type ErrorCode, KeyportError } from '@keyport/core';

export const PROVIDER_NAME = 'hcvault';

/** One row of the mapping: first match wins. */
export interface ErrorRule {
  readonly status?: number | readonly number[];
  readonly message?: RegExp;
  readonly code: ErrorCode;
  readonly description: string;
}

export const ERROR_RULES: readonly ErrorRule[] = [
  {
    status: 400,
    message: /encryption key not found|no existing key named|key not found|signing key not found/i,
    code: 'NotFound',
    description: 'transit key does not exist',
  },
  {
    status: 400,
    message:
      /message authentication failed|invalid ciphertext|ciphertext.*too short|unable to decrypt|decryption error|invalid (padding|input)/i,
    code: 'InvalidCiphertext',
    description: 'tampered ciphertext, wrong key or context mismatch',
  },
  {
    status: 400,
    message:
      /soft-deleted|disallowed by policy|less than the minimum|deletion is not allowed|not allowed for imported|rotation.*not allowed|version .*(trimmed|archived)/i,
    code: 'KeyStateConflict',
    description: 'key disabled (soft-deleted), version below min_decryption_version, or deletion not allowed',
  },
  {
    // Transit answers these import mistakes with 500, so they are matched before 5xx.
    status: [400, 500],
    message: /already exists|cannot be used with an existing key/i,
    code: 'AlreadyExists',
    description: 'import target already exists',
  },
  {
    status: 500,
    message: /can only be used with an imported key/i,
    code: 'InvalidArgument',
    description: 'import_version on a key that was not imported',
  },
  {
    status: 400,
    message: /not supported for key type|does not support|non-AEAD|unsupported/i,
    code: 'InvalidArgument',
    description: 'operation not valid for the key type',
  },
  {
    status: 400,
    message:
      /must be subset of parent|permission denied|invalid role or secret id|invalid secret id|login failed/i,
    code: 'AccessDenied',
    description: 'failed login, or no sudo to mint a grant token with other policies',
  },
  { status: [401, 403], code: 'AccessDenied', description: 'permission denied / missing or bad token' },
  { status: 404, code: 'NotFound', description: 'key, policy or path not found' },
  { status: 405, code: 'Unsupported', description: 'method not supported on this path' },
  { status: 412, code: 'Unavailable', description: 'consistency not yet reached (retryable)' },
  { status: 429, code: 'Throttled', description: 'rate limited (quota)' },
  {
    status: 500,
    message: /decryption error|ciphertext is too short|failed to unwrap|key ?wrap/i,
    code: 'InvalidCiphertext',
    description: 'wrapped import material does not unwrap under the wrapping key',
  },
  { status: 503, message: /sealed/i, code: 'Unavailable', description: 'Vault is sealed' },
  { status: [500, 502, 503, 504], code: 'Unavailable', description: 'server error, standby or sealed' },
  { status: 400, code: 'InvalidArgument', description: 'any other bad request' },
];

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
]);

interface VaultErrorShape {
  readonly statusCode: number;
  readonly message: string;
  readonly requestId: string | undefined;
}

function asRecord(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : undefined;
}

/** The status and first error message of a node-vault ApiResponseError, if it is one. */
export function vaultErrorShape(error: unknown): VaultErrorShape | undefined {
  const response = asRecord(asRecord(error)?.response);
  const statusCode = response?.statusCode;
  if (typeof statusCode !== 'number') return undefined;
  const body = asRecord(response?.body);
  const errors = body?.errors;
  const first = Array.isArray(errors) && typeof errors[0] === 'string' ? errors[0] : '';
  const requestId = typeof body?.request_id === 'string' ? body.request_id : undefined;
  return { statusCode, message: first, requestId };
}

function statusMatches(rule: ErrorRule, status: number): boolean {
  if (rule.status === undefined) return true;
  return typeof rule.status === 'number' ? rule.status === status : rule.status.includes(status);
}

/** The rule a status + message falls under (exported for the table test). */
export function ruleFor(status: number, message: string): ErrorRule | undefined {
  return ERROR_RULES.find(
    (r) => statusMatches(r, status) && (r.message === undefined || r.message.test(message)),
  );
}

/**
 * Maps a raw error from node-vault or the transport. KeyportErrors pass through; anything
 * unknown returns undefined so core wraps it as Internal.
 */
export function mapVaultError(error: unknown, keyUri?: string): KeyportError | undefined {
  if (error instanceof KeyportError) return error;
  const base = { provider: PROVIDER_NAME, keyUri, cause: error };
  if (error instanceof Error && error.name === 'AbortError') {
    return new KeyportError('Aborted', 'the Vault request was aborted', base);
  }
  const shape = vaultErrorShape(error);
  if (shape !== undefined) {
    const rule = ruleFor(shape.statusCode, shape.message);
    if (rule === undefined) {
      return new KeyportError('Internal', `unexpected Vault response (HTTP ${shape.statusCode})`, {
        ...base,
        requestId: shape.requestId,
      });
    }
    return new KeyportError(rule.code, `Vault: ${rule.description} (HTTP ${shape.statusCode})`, {
      ...base,
      requestId: shape.requestId,
    });
  }
  const code = asRecord(error)?.code;
  if (typeof code === 'string' && NETWORK_CODES.has(code)) {
    return new KeyportError(
      code === 'ETIMEDOUT' ? 'Timeout' : 'Unavailable',
      `Vault unreachable (${code})`,
      base,
    );
  }
  return undefined;
}
