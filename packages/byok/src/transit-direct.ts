/**
 * Vault/OpenBao transit's import protocol, spoken directly over HTTP for one reason: the caller
 * must choose `hash_function`. Transit accepts the ephemeral AES key wrapped with RSA-OAEP over
 * SHA-1 as well as SHA-256, and an HSM such as SoftHSM2 2.6.1 can only wrap with OAEP SHA-1
 * (C_WrapKey answers CKR_ARGUMENTS_BAD to SHA-256 parameters; proven in test/softhsm-facts).
 * `@keyport/vault-transit` sends SHA256 only, so this module does the two calls it needs:
 *
 *   GET  /v1/<mount>/wrapping_key             -> RSA-4096 public key (PEM)
 *   POST /v1/<mount>/keys/<name>/import       { ciphertext, hash_function, type: aes256-gcm96 }
 *
 * `ciphertext` = base64( OAEP(ephemeral AES-256 key) || AES-KWP(ephemeral, target key) ).
 * The key is created by the import itself (transit has no key without material), exportable
 * false. The token is sent as X-Vault-Token and never appears in an error.
 */
import { createPublicKey } from 'node:crypto';
import { type ErrorCode, KeyportError, parseKeyUri } from '@keyport/core';
import type { TransitDirectOptions } from './types.js';

const PROVIDER = 'byok:transit-direct';

export interface TransitKeyPath {
  readonly uri: string;
  readonly mount: string;
  readonly name: string;
}

export function transitKeyPath(uri: string): TransitKeyPath {
  const parsed = parseKeyUri(uri);
  if (parsed.scheme !== 'hcvault') {
    throw new KeyportError('InvalidArgument', 'not an hcvault:// key URI', {
      provider: PROVIDER,
      keyUri: uri,
    });
  }
  return { uri, mount: parsed.mount, name: parsed.name };
}

function codeFor(status: number): ErrorCode {
  if (status === 400) return 'InvalidArgument';
  if (status === 401 || status === 403) return 'AccessDenied';
  if (status === 404) return 'NotFound';
  if (status === 429) return 'Throttled';
  if (status >= 500) return 'Unavailable';
  return 'Internal';
}

async function call(
  options: TransitDirectOptions,
  key: TransitKeyPath,
  method: 'GET' | 'POST',
  path: string,
  body: Record<string, unknown> | undefined,
  signal: AbortSignal | undefined,
): Promise<{ status: number; json: Record<string, unknown> | undefined }> {
  const headers: Record<string, string> = { 'X-Vault-Token': options.token };
  if (options.namespace !== undefined) headers['X-Vault-Namespace'] = options.namespace;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response: Response;
  try {
    response = await fetch(`${options.endpoint.replace(/\/+$/, '')}/v1/${path}`, {
      method,
      headers,
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      ...(signal !== undefined ? { signal } : {}),
    });
  } catch (e) {
    const aborted = e instanceof Error && e.name === 'AbortError';
    throw new KeyportError(aborted ? 'Aborted' : 'Unavailable', `transit ${method} ${path} failed`, {
      provider: PROVIDER,
      keyUri: key.uri,
      cause: e,
    });
  }
  const text = await response.text();
  let json: Record<string, unknown> | undefined;
  try {
    json = text === '' ? undefined : (JSON.parse(text) as Record<string, unknown>);
  } catch {
    json = undefined;
  }
  return { status: response.status, json };
}

function failure(key: TransitKeyPath, what: string, status: number, json: unknown): KeyportError {
  // Transit's error strings describe the request, never the key material; keep them as the cause.
  const errors = (json as { errors?: unknown } | undefined)?.errors;
  const said = Array.isArray(errors) ? errors.join('; ') : '';
  // Transit answers 500 to material that does not unwrap (wrong key, wrong hash, tampered bytes).
  const code = /decrypt|unwrap|ciphertext/i.test(said) ? 'InvalidCiphertext' : codeFor(status);
  return new KeyportError(code, `transit ${what} answered ${status}`, {
    provider: PROVIDER,
    keyUri: key.uri,
    cause: said === '' ? undefined : new Error(said),
  });
}

/** Refuses a key name that already exists: an import would otherwise add a version or fail late. */
export async function assertTransitKeyAbsent(
  options: TransitDirectOptions,
  key: TransitKeyPath,
  signal?: AbortSignal,
): Promise<void> {
  const r = await call(options, key, 'GET', `${key.mount}/keys/${key.name}`, undefined, signal);
  if (r.status === 404) return;
  if (r.status === 200) {
    throw new KeyportError('AlreadyExists', 'the transit key already exists; BYOK imports create it', {
      provider: PROVIDER,
      keyUri: key.uri,
    });
  }
  throw failure(key, 'key read', r.status, r.json);
}

/** The transit mount's import wrapping key, SPKI DER. */
export async function transitWrappingKey(
  options: TransitDirectOptions,
  key: TransitKeyPath,
  signal?: AbortSignal,
): Promise<Uint8Array> {
  const r = await call(options, key, 'GET', `${key.mount}/wrapping_key`, undefined, signal);
  const pem = (r.json?.data as { public_key?: unknown } | undefined)?.public_key;
  if (r.status !== 200 || typeof pem !== 'string') throw failure(key, 'wrapping_key', r.status, r.json);
  return new Uint8Array(createPublicKey(pem).export({ type: 'spki', format: 'der' }));
}

export async function transitImport(
  options: TransitDirectOptions,
  key: TransitKeyPath,
  wrapped: Uint8Array,
  hash: 'sha1' | 'sha256',
  signal?: AbortSignal,
): Promise<void> {
  const r = await call(
    options,
    key,
    'POST',
    `${key.mount}/keys/${key.name}/import`,
    {
      ciphertext: Buffer.from(wrapped).toString('base64'),
      hash_function: hash === 'sha1' ? 'SHA1' : 'SHA256',
      type: 'aes256-gcm96',
      exportable: false,
      allow_plaintext_backup: false,
      allow_rotation: false,
    },
    signal,
  );
  if (r.status !== 200 && r.status !== 204) throw failure(key, 'import', r.status, r.json);
}

/** The latest version of a transit key (1 right after an import). */
export async function transitLatestVersion(
  options: TransitDirectOptions,
  key: TransitKeyPath,
  signal?: AbortSignal,
): Promise<string> {
  const r = await call(options, key, 'GET', `${key.mount}/keys/${key.name}`, undefined, signal);
  const latest = (r.json?.data as { latest_version?: unknown } | undefined)?.latest_version;
  if (r.status !== 200 || typeof latest !== 'number') throw failure(key, 'key read', r.status, r.json);
  return String(latest);
}
