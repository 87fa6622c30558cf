/**
 * Provider options and the user PIN. The PIN comes from an environment variable, a file or a
 * callback — never from a key URI (core refuses `pin-value`), and it is read only at login time,
 * never stored on the provider or put in an error.
 */
import { constants } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { checkedFor, checkOptions, describeType, KeyportError, MAX_TIMER_MS } from '@keyport/core';
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
  /**
   * Upper bound of logged-in sessions kept open (default 4, or the sessions the token has free
   * when fewer); more than the token's ulMaxSessionCount is refused at construction.
   */
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
  /**
   * Directory of the lock file that serialises key-metadata writes (create, rotate, enable,
   * disable, destroy a version, import) of processes on this host sharing the token. Default: a
   * per-user directory under os.tmpdir(), created mode 0700. Give every process sharing a token
   * the same directory.
   */
  readonly lockDirectory?: string;
}

/** The options of `pkcs11(options)`. */
export type Pkcs11Options = Pkcs11ProviderOptions;

function badOption(option: string, why: string): KeyportError {
  return new KeyportError('InvalidArgument', `pkcs11 option ${option}: ${why}`, { provider: PROVIDER_NAME });
}

const nonEmptyString = (v: unknown): v is string => typeof v === 'string' && v !== '';

/**
 * The most sessions the pool may keep. pkcs11js runs its *Async calls on libuv's worker threads,
 * of which there are at most 1024 (UV_THREADPOOL_SIZE's cap), so more sessions than that can
 * never be busy at once; real tokens allow far fewer (a YubiHSM 2 has 16). A larger number is a
 * typo (or a unit mix-up), not a plan: it is refused rather than left to fail at the token.
 */
export const MAX_SESSIONS = 1024;

/** The pool's size when `maxSessions` is not given (and the token allows it). */
export const DEFAULT_MAX_SESSIONS = 4;

/** The session counts of CK_TOKEN_INFO, as pkcs11js's C_GetTokenInfo answers them. */
export interface TokenSessionCounts {
  readonly maxSessionCount: number;
  readonly sessionCount: number;
  readonly maxRwSessionCount: number;
  readonly rwSessionCount: number;
}

/**
 * A CK_TOKEN_INFO count, or undefined for CK_UNAVAILABLE_INFORMATION: all ones in a CK_ULONG,
 * which pkcs11js 2.1.7 answers as 2^32 − 1 even where CK_ULONG has 64 bits (seen with SoftHSM2
 * 2.6.1), so anything from 2^32 − 1 up is "not known", as is a value that is no count at all.
 */
function tokenCount(value: number): number | undefined {
  return Number.isSafeInteger(value) && value >= 0 && value < 0xffff_ffff ? value : undefined;
}

/**
 * Sessions left under one of the token's limits: undefined when it states none (0 is
 * CK_EFFECTIVELY_INFINITE; all ones CK_UNAVAILABLE_INFORMATION). An unknown count is read as 0.
 */
function room(max: number, open: number): { max: number; free: number } | undefined {
  const limit = tokenCount(max);
  if (limit === undefined || limit === 0) return undefined;
  return { max: limit, free: Math.max(0, limit - (tokenCount(open) ?? 0)) };
}

/**
 * The pool's size, from the `maxSessions` option and the token's limits (C_GetTokenInfo): the
 * pool opens R/W sessions, so both ulMaxSessionCount and ulMaxRwSessionCount bound it. A
 * `maxSessions` above the token's maximum could never be reached — the token answers
 * CKR_SESSION_COUNT deep inside some later call — so it is refused here, naming both numbers.
 * One at or below the maximum is kept even when other sessions are open now (ulSessionCount):
 * those come and go, and a C_OpenSession refused meanwhile waits for a pooled session. The
 * default (4) is no one's requirement: it is clamped to what is free now, but at least 1.
 */
export function poolSize(given: number | undefined, token: TokenSessionCounts): number {
  const limits = [
    room(token.maxSessionCount, token.sessionCount),
    room(token.maxRwSessionCount, token.rwSessionCount),
  ].filter((r) => r !== undefined);
  if (limits.length === 0) return given ?? DEFAULT_MAX_SESSIONS;
  const max = Math.min(...limits.map((r) => r.max));
  if (given !== undefined) {
    if (given > max)
      throw badOption(
        'maxSessions',
        `${given} is more sessions than the token allows (${max}, its ulMaxSessionCount or ulMaxRwSessionCount)`,
      );
    return given;
  }
  return Math.max(1, Math.min(DEFAULT_MAX_SESSIONS, ...limits.map((r) => r.free)));
}

/** Every option of `Pkcs11ProviderOptions` (the compiler keeps this list complete). */
const OPTION_FIELDS = {
  modulePath: true,
  token: true,
  pin: true,
  maxSessions: true,
  keyCacheMs: true,
  oaepHashes: true,
  name: true,
  lockDirectory: true,
} as const satisfies Record<keyof Pkcs11ProviderOptions, true>;
const TOKEN_FIELDS = { label: true, serial: true } as const satisfies Record<
  keyof Pkcs11ProviderOptions['token'],
  true
>;
const PIN_FIELDS = { env: true, file: true, callback: true, timeoutMs: true } as const;

/**
 * Core's `checkOptions`, with this provider's name on its error (core's `checkedFor`): a plain
 * object (no class instance, whose prototype could supply a field we never see), own data
 * properties only (a getter would run caller code and could answer differently each time), no
 * symbol keys, every key known. Returns a prototype-free copy, so later changes to the caller's
 * object change nothing.
 */
function checkedFields(
  value: unknown,
  option: string,
  allowed: Readonly<Record<string, true>>,
): Record<string, unknown> {
  return checkedFor(PROVIDER_NAME, undefined, () => checkOptions(value, option, allowed));
}

/**
 * Checks the options before anything is loaded: a mistyped number must not become a pool that
 * never opens a session (`maxSessions` 0 or NaN: every call waited forever), and a PIN source
 * must be one of the three shapes. Messages name the option, never a PIN.
 */
export function checkProviderOptions(options: unknown): Pkcs11ProviderOptions {
  if (options === undefined) throw badOption('options', 'expected { modulePath, token, pin, ... }');
  // A misspelt option (`maxSession`, `keyCacheMS`) would leave its default in force unnoticed.
  const o = checkedFields(options, 'pkcs11 options', OPTION_FIELDS);
  if (!nonEmptyString(o.modulePath)) throw badOption('modulePath', 'expected the path of a PKCS#11 module');
  if (o.token === undefined) throw badOption('token', 'expected { label } or { serial }');
  const token = checkedFields(o.token, 'pkcs11 option token', TOKEN_FIELDS);
  for (const field of ['label', 'serial'] as const) {
    const v = token[field];
    if (v !== undefined && typeof v !== 'string') throw badOption(`token.${field}`, 'expected a string');
  }
  const pin = checkPinSource(o.pin);
  if (o.maxSessions !== undefined && !isIntegerIn(o.maxSessions, 1, MAX_SESSIONS))
    throw badOption('maxSessions', `expected an integer from 1 to ${MAX_SESSIONS}`);
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
  if (o.lockDirectory !== undefined && !nonEmptyString(o.lockDirectory))
    throw badOption('lockDirectory', 'expected the path of a directory');
  return { ...(o as unknown as Pkcs11ProviderOptions), token: token as Pkcs11ProviderOptions['token'], pin };
}

const isIntegerIn = (v: unknown, min: number, max: number): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;

const PIN_SHAPE = 'expected exactly one of { env }, { file } or { callback }';

/**
 * The PIN source, copied: a caller who changes the object later does not change where the PIN
 * comes from (and getters, which could answer differently each time, are refused). Unknown
 * fields are refused, so a misspelt `timeoutMs` does not leave the default in force unnoticed.
 */
function checkPinSource(pin: unknown): PinSource {
  if (pin === undefined) throw badOption('pin', PIN_SHAPE);
  // Prototype-free: a key named __proto__ lands here as an ordinary field.
  const unknown: Record<string, unknown> = Object.create(null);
  let fields: Record<string, unknown>;
  try {
    // Unknown keys are collected, not refused by core: its message would name the key.
    fields = checkOptions(pin, 'pin', PIN_FIELDS, unknown);
  } catch {
    // Core's message may name a key (`pin.<key>: accessor properties are not allowed`), and
    // a PIN pasted as a key ({ get '123456'() {} }) must not reach a message: none is named.
    throw badOption(
      'pin',
      `${PIN_SHAPE} as a plain object of data properties (no getter, symbol key, class instance or failing proxy)`,
    );
  }
  // The field is not named: a PIN pasted as a key ({ '123456': true }) must not reach a message.
  if (Object.keys(unknown).length > 0)
    throw badOption('pin', 'an unknown field is given (known: env, file, callback, timeoutMs)');
  const shapes = (['env', 'file', 'callback'] as const).filter((k) => fields[k] !== undefined);
  if (shapes.length !== 1) throw badOption('pin', PIN_SHAPE);
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
    // The variable is not named: a PIN pasted as the name (`{ env: '1234' }` meant as
    // `{ env: 'HSM_PIN' }`) would be shown, and no pattern tells a name from a PIN (`hunter2`
    // fits both). The caller's own configuration names the variable.
    if (value === undefined || value === '')
      throw pinError('the environment variable named in pin.env is not set (or is empty)');
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
