/**
 * Provider options and the user PIN. The PIN comes from an environment variable, a file or a
 * callback — never from a key URI (core refuses `pin-value`), and it is read only at login time,
 * never stored on the provider or put in an error.
 */
import { type FileHandle, open } from 'node:fs/promises';
import { KeyportError } from '@keyport/core';
import { PROVIDER_NAME } from './errors.js';

export type PinSource =
  | { readonly env: string }
  | { readonly file: string }
  | { readonly callback: () => string | Promise<string> };

export interface Pkcs11ProviderOptions {
  /** Path of the PKCS#11 module (e.g. /usr/lib/softhsm/libsofthsm2.so). */
  readonly modulePath: string;
  /** The token: by label (CK_TOKEN_INFO.label) or serial number; at least one. */
  readonly token: { readonly label?: string; readonly serial?: string };
  /** Where the user PIN comes from. */
  readonly pin: PinSource;
  /** Upper bound of logged-in sessions kept open (default 4). */
  readonly maxSessions?: number;
  /** How long a resolved key (its versions and object handles) is reused, in ms (default 1000; 0 = never). */
  readonly keyCacheMs?: number;
  /**
   * OAEP hashes the module accepts. Probed at start when omitted (SoftHSM2 2.6: SHA-1 only);
   * give it to skip the probe on modules where generating a throwaway key pair is costly.
   */
  readonly oaepHashes?: ReadonlyArray<'sha1' | 'sha256'>;
  /** Provider name in audit events and errors (default 'pkcs11'). */
  readonly name?: string;
}

/** The options of `pkcs11(options)`. */
export type Pkcs11Options = Pkcs11ProviderOptions;

function badOption(option: string, why: string): KeyportError {
  return new KeyportError('InvalidArgument', `pkcs11 option ${option}: ${why}`, { provider: PROVIDER_NAME });
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
const nonEmptyString = (v: unknown): v is string => typeof v === 'string' && v !== '';

/**
 * Checks the options before anything is loaded: a mistyped number must not become a pool that
 * never opens a session (`maxSessions` 0 or NaN: every call waited forever), and a PIN source
 * must be one of the three shapes. Messages name the option, never a PIN.
 */
export function checkProviderOptions(options: unknown): Pkcs11ProviderOptions {
  if (!isObject(options)) throw badOption('options', 'expected { modulePath, token, pin, ... }');
  const o = options as Partial<Record<keyof Pkcs11ProviderOptions, unknown>>;
  if (!nonEmptyString(o.modulePath)) throw badOption('modulePath', 'expected the path of a PKCS#11 module');
  if (!isObject(o.token)) throw badOption('token', 'expected { label } or { serial }');
  for (const field of ['label', 'serial'] as const) {
    const v = o.token[field];
    if (v !== undefined && typeof v !== 'string') throw badOption(`token.${field}`, 'expected a string');
  }
  const pin = o.pin;
  const shapes = isObject(pin)
    ? (['env', 'file', 'callback'] as const).filter((k) => pin[k] !== undefined)
    : [];
  if (!isObject(pin) || shapes.length !== 1)
    throw badOption('pin', 'expected exactly one of { env }, { file } or { callback }');
  if (
    shapes[0] === 'callback' ? typeof pin.callback !== 'function' : !nonEmptyString(pin[shapes[0] as string])
  )
    throw badOption(
      `pin.${shapes[0]}`,
      shapes[0] === 'callback' ? 'expected a function' : 'expected a non-empty string',
    );
  if (o.maxSessions !== undefined && !(Number.isInteger(o.maxSessions) && (o.maxSessions as number) >= 1))
    throw badOption('maxSessions', 'expected an integer of at least 1');
  if (o.keyCacheMs !== undefined && !(typeof o.keyCacheMs === 'number' && o.keyCacheMs >= 0))
    throw badOption('keyCacheMs', 'expected a number of milliseconds, 0 or more');
  if (
    o.oaepHashes !== undefined &&
    !(Array.isArray(o.oaepHashes) && o.oaepHashes.every((h) => h === 'sha1' || h === 'sha256'))
  )
    throw badOption('oaepHashes', "expected an array of 'sha1' and 'sha256'");
  if (o.name !== undefined && !nonEmptyString(o.name)) throw badOption('name', 'expected a non-empty string');
  return options as unknown as Pkcs11ProviderOptions;
}

function pinError(why: string): KeyportError {
  return new KeyportError('AccessDenied', `the PKCS#11 user PIN is not available: ${why}`, {
    provider: PROVIDER_NAME,
  });
}

/** A PIN file is read up to this many bytes: PINs are short, and a wrong path may be anything. */
export const MAX_PIN_FILE_BYTES = 4096;

/**
 * The PIN file's text, read with a bound: a path that names a large file (or /dev/zero) by
 * mistake is refused without reading it all, and its content is never sent to the token (a real
 * token counts every wrong PIN toward locking the user out).
 */
async function readPinFile(path: string): Promise<string> {
  let file: FileHandle;
  try {
    file = await open(path, 'r');
  } catch {
    throw pinError('the PIN file cannot be read');
  }
  const buffer = Buffer.alloc(MAX_PIN_FILE_BYTES + 1);
  try {
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await file.read(buffer, length, buffer.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > MAX_PIN_FILE_BYTES)
      throw pinError(`the PIN file is longer than ${MAX_PIN_FILE_BYTES} bytes (is it the right file?)`);
    return buffer.toString('utf8', 0, length);
  } catch (e) {
    throw e instanceof KeyportError ? e : pinError('the PIN file cannot be read');
  } finally {
    buffer.fill(0);
    await file.close().catch(() => undefined);
  }
}

/** Reads the PIN from its source. Messages name the source, never its content. */
export async function resolvePin(source: PinSource): Promise<string> {
  let pin: string;
  if ('env' in source) {
    const value = process.env[source.env];
    if (value === undefined || value === '') throw pinError(`environment variable ${source.env} is not set`);
    pin = value;
  } else if ('file' in source) {
    pin = (await readPinFile(source.file)).replace(/\r?\n$/, '');
  } else {
    try {
      pin = await source.callback();
    } catch {
      // The callback's own error is dropped, not kept as the cause: it is the application's
      // code, and its message may hold the PIN (or the secret store's answer).
      throw pinError('the PIN callback threw or rejected');
    }
  }
  if (typeof pin !== 'string' || pin === '') throw pinError('the PIN source gave an empty PIN');
  return pin;
}
