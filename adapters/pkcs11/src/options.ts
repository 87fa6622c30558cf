/**
 * Provider options and the user PIN. The PIN comes from an environment variable, a file or a
 * callback — never from a key URI (core refuses `pin-value`), and it is read only at login time,
 * never stored on the provider or put in an error.
 */
import { constants } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { describeType, KeyportError, MAX_TIMER_MS, quote } from '@keyport/core';
import { PROVIDER_NAME } from './errors.js';

export type PinSource = (
  | { readonly env: string }
  | { readonly file: string }
  | { readonly callback: () => string | Promise<string> }
) & {
  /**
   * How long the PIN source may take to answer, in ms (default 30000): then the login fails with
   * Unavailable and the next call asks the source again.
   */
  readonly timeoutMs?: number;
};

/**
 * How long a PIN source may take by default: core's default per-attempt timeout. A secret store
 * answers in far less; a callback that prompts a person to type the PIN needs seconds, not ten.
 */
export const DEFAULT_PIN_TIMEOUT_MS = 30_000;

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
  // A misspelt option (`maxSession`, `keyCacheMS`) would leave its default in force unnoticed.
  const unknown = unknownField(options, OPTION_FIELDS);
  if (unknown !== undefined)
    throw badOption(quote(unknown), `not a pkcs11 option (known: ${[...OPTION_FIELDS].join(', ')})`);
  if (!nonEmptyString(o.modulePath)) throw badOption('modulePath', 'expected the path of a PKCS#11 module');
  if (!isObject(o.token)) throw badOption('token', 'expected { label } or { serial }');
  const unknownInToken = unknownField(o.token, TOKEN_FIELDS);
  if (unknownInToken !== undefined)
    throw badOption('token', `${quote(unknownInToken)} is not a token field (known: label, serial)`);
  for (const field of ['label', 'serial'] as const) {
    const v = o.token[field];
    if (v !== undefined && typeof v !== 'string') throw badOption(`token.${field}`, 'expected a string');
  }
  const pin = checkPinSource(o.pin);
  if (o.maxSessions !== undefined && !(Number.isInteger(o.maxSessions) && (o.maxSessions as number) >= 1))
    throw badOption('maxSessions', 'expected an integer of at least 1');
  // Infinity ("cache forever") is refused like NaN: a key another process disabled, rotated or
  // re-labelled would be described from the cache for the life of the process.
  if (o.keyCacheMs !== undefined && !isIntegerIn(o.keyCacheMs, 0, MAX_TIMER_MS))
    throw badOption('keyCacheMs', `expected an integer of milliseconds from 0 to ${MAX_TIMER_MS}`);
  if (
    o.oaepHashes !== undefined &&
    !(Array.isArray(o.oaepHashes) && o.oaepHashes.every((h) => h === 'sha1' || h === 'sha256'))
  )
    throw badOption('oaepHashes', "expected an array of 'sha1' and 'sha256'");
  if (o.name !== undefined && !nonEmptyString(o.name)) throw badOption('name', 'expected a non-empty string');
  return { ...(options as unknown as Pkcs11ProviderOptions), pin };
}

const OPTION_FIELDS = new Set<string>([
  'modulePath',
  'token',
  'pin',
  'maxSessions',
  'keyCacheMs',
  'oaepHashes',
  'name',
] satisfies Array<keyof Pkcs11ProviderOptions>);
const TOKEN_FIELDS = new Set(['label', 'serial']);

/** The first own key of `value` not in `known` (a throwing getter or proxy trap is an invalid option). */
function unknownField(value: object, known: ReadonlySet<string>): string | undefined {
  try {
    return Reflect.ownKeys(value)
      .find((k) => typeof k !== 'string' || !known.has(k))
      ?.toString();
  } catch {
    throw badOption('options', 'reading them threw (a getter or proxy that fails)');
  }
}

const isIntegerIn = (v: unknown, min: number, max: number): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;

const PIN_FIELDS = new Set(['env', 'file', 'callback', 'timeoutMs']);

/**
 * The PIN source, copied: a caller who changes the object later (or whose getter answers
 * differently each time) does not change where the PIN comes from. Unknown fields are refused,
 * so a misspelt `timeoutMs` does not leave the default in force unnoticed.
 */
function checkPinSource(pin: unknown): PinSource {
  if (!isObject(pin)) throw badOption('pin', 'expected exactly one of { env }, { file } or { callback }');
  let fields: Record<string, unknown>;
  let unknown: string | undefined;
  try {
    fields = Object.fromEntries([...PIN_FIELDS].map((k) => [k, pin[k]]));
    unknown = Object.keys(pin).find((k) => !PIN_FIELDS.has(k));
  } catch {
    throw badOption('pin', 'reading it threw (a getter or proxy that fails)');
  }
  // The field is not named: a PIN pasted as a key ({ '123456': true }) must not reach a message.
  if (unknown !== undefined)
    throw badOption('pin', 'an unknown field is given (known: env, file, callback, timeoutMs)');
  const shapes = (['env', 'file', 'callback'] as const).filter((k) => fields[k] !== undefined);
  if (shapes.length !== 1)
    throw badOption('pin', 'expected exactly one of { env }, { file } or { callback }');
  const shape = shapes[0] as 'env' | 'file' | 'callback';
  const value = fields[shape];
  if (shape === 'callback' ? typeof value !== 'function' : !nonEmptyString(value))
    throw badOption(
      `pin.${shape}`,
      shape === 'callback' ? 'expected a function' : 'expected a non-empty string',
    );
  const timeoutMs = fields.timeoutMs;
  if (timeoutMs !== undefined && !isIntegerIn(timeoutMs, 1, MAX_TIMER_MS))
    throw badOption('pin.timeoutMs', `expected an integer of milliseconds from 1 to ${MAX_TIMER_MS}`);
  const timeout = timeoutMs === undefined ? {} : { timeoutMs };
  if (shape === 'callback') {
    const callback = value as (this: unknown) => string | Promise<string>;
    return { callback: () => callback.call(pin), ...timeout }; // a method keeps its `this`
  }
  return shape === 'env' ? { env: value as string, ...timeout } : { file: value as string, ...timeout };
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
 * token counts every wrong PIN toward locking the user out). Symbolic links are followed (secret
 * mounts such as Kubernetes' are links), but what is opened must be a regular file: a FIFO put in
 * its place is opened without waiting for a writer (O_NONBLOCK) and refused, rather than blocking
 * one of libuv's few worker threads — which pkcs11js's *Async calls need — for good.
 */
async function readPinFile(path: string): Promise<string> {
  let file: FileHandle;
  try {
    file = await open(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch {
    throw pinError('the PIN file cannot be read');
  }
  const buffer = Buffer.alloc(MAX_PIN_FILE_BYTES + 1);
  try {
    if (!(await file.stat()).isFile())
      throw pinError('the PIN file is not a regular file (a FIFO, a device or a directory)');
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

/** Which kind of source the PIN comes from, for messages ("the PIN callback did not answer"). */
export function pinSourceKind(source: PinSource): 'environment variable' | 'file' | 'callback' {
  return 'env' in source ? 'environment variable' : 'file' in source ? 'file' : 'callback';
}

/**
 * What the PIN source answered, not yet checked (a callback may answer anything: see `pinFrom`).
 * Messages name the source, never its content.
 */
export async function readPinSource(source: PinSource): Promise<unknown> {
  if ('env' in source) {
    const value = process.env[source.env];
    if (value === undefined || value === '') throw pinError(`environment variable ${source.env} is not set`);
    return value;
  }
  if ('file' in source) return (await readPinFile(source.file)).replace(/\r?\n$/, '');
  try {
    // A callback that throws synchronously lands here too (`await` of its call).
    return await source.callback();
  } catch {
    // The callback's own error is dropped, not kept as the cause: it is the application's
    // code, and its message may hold the PIN (or the secret store's answer).
    throw pinError('the PIN callback threw or rejected');
  }
}

/** A value that may look like a PIN, for messages: its type only, never its content. */
function kindOf(value: unknown): string {
  try {
    return describeType(value);
  } catch {
    return 'object'; // a proxy whose getPrototypeOf trap throws
  }
}

/** Zeroes a PIN answer keyport holds but does not use (bytes can be wiped; a string cannot). */
export function dropPin(answer: unknown): void {
  try {
    if (answer instanceof Uint8Array) answer.fill(0);
  } catch {
    // a proxy: nothing of ours to wipe
  }
}

/**
 * The PIN in a source's answer: a non-empty string. Anything else is refused by its type (a
 * number, a Buffer: PINs are strings here), and bytes given are wiped — keyport does not use them.
 */
export function pinFrom(answer: unknown): string {
  if (typeof answer === 'string') {
    if (answer === '') throw pinError('the PIN source gave an empty PIN');
    return answer;
  }
  dropPin(answer);
  throw pinError(`the PIN source's answer is not a string (got ${kindOf(answer)})`);
}

/** Reads the PIN from its source and checks it. */
export async function resolvePin(source: PinSource): Promise<string> {
  return pinFrom(await readPinSource(source));
}
