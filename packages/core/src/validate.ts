/**
 * Argument checks at the boundary of every public function. Each failure is one
 * `InvalidArgument` naming the option (`options.timeoutMs`, `req.rotation.nextRotationAt`...),
 * so a wrong type, NaN, an infinity, an out-of-range number, an unknown option or a malformed
 * context never reaches a provider to come back as `Internal` or a raw `TypeError`.
 *
 * Values are never echoed: a message says what was expected and what type was given.
 */
import type { AuditSink } from './audit.js';
import type { KeyportOptions } from './client.js';
import { describeType, KeyportError, quote } from './errors.js';
import { nullRecord } from './null-record.js';
import type { RetryPolicy } from './policy.js';
import type { KmsProvider } from './provider.js';
import {
  type CallOptions,
  type CreateKeyRequest,
  type EncryptionContext,
  GRANT_OPERATIONS,
  type GrantConstraint,
  type GrantRequest,
  IMPORT_WRAPPING_ALGORITHMS,
  type ImportKeyMaterialRequest,
  type ImportParametersRequest,
  KEY_SPECS,
  KEY_USAGES,
  type KeyRef,
  type RotationPolicy,
  type ScheduleDeletionRequest,
  SIGNING_ALGORITHMS,
  type SignRequest,
} from './types.js';

/** The longest delay a Node timer honours (larger values fire at once). */
export const MAX_TIMER_MS = 2 ** 31 - 1;
/** Bounds on `retry.maxAttempts`. */
export const MAX_ATTEMPTS = 100;
/**
 * Dates keyport accepts anywhere (rotation, expiry, import): 1970-01-01 to 9999-12-31. Far
 * enough for any key's life, and every date in range has a 4-digit ISO year that providers parse.
 */
export const MIN_DATE_MS = 0;
export const MAX_DATE_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
/**
 * Longest context key or value, in UTF-16 code units, and most pairs per context: the limits of
 * the AWS Encryption SDK's header (u16 lengths and count), so any ESDK message's context fits.
 */
export const MAX_CONTEXT_STRING = 65_535;
export const MAX_CONTEXT_PAIRS = 65_535;

/** A context as callers may give it: a plain object or a Map of strings. */
export type ContextInput = EncryptionContext | ReadonlyMap<string, string>;

export function invalidArgument(option: string, why: string): KeyportError {
  return new KeyportError('InvalidArgument', `${option}: ${why}`, { retryable: false });
}

/**
 * A caller's object that threw while we read it — a Proxy trap (`getPrototypeOf`, `ownKeys`,
 * `getOwnPropertyDescriptor`, `get`) or a Map whose iteration fails — is a bad argument like
 * any other: InvalidArgument naming the option, never the caller's own exception.
 */
function trapFailure(e: unknown, option: string): KeyportError {
  if (e instanceof KeyportError) return e;
  return invalidArgument(option, 'reading it threw (a getter or proxy that fails)');
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Lone surrogates cannot be encoded as UTF-8: two contexts would encode alike. */
export function isWellFormedString(s: string): boolean {
  // Native since Node 20 (keyport needs 22.12): no character loop in JavaScript per string.
  return (s as unknown as { isWellFormed(): boolean }).isWellFormed();
}

/**
 * Own data properties of a plain object, refusing symbol keys and accessors (a getter would
 * run caller code while we read, and could answer differently each time).
 */
function ownEntries(value: Record<string, unknown>, option: string): Array<[string, unknown]> {
  if (Object.getOwnPropertySymbols(value).length > 0)
    throw invalidArgument(option, 'symbol keys are not allowed');
  const out: Array<[string, unknown]> = [];
  for (const key of Object.getOwnPropertyNames(value)) {
    const d = Object.getOwnPropertyDescriptor(value, key) as PropertyDescriptor;
    if (!('value' in d)) throw invalidArgument(`${option}.${key}`, 'accessor properties are not allowed');
    if (!d.enumerable) throw invalidArgument(`${option}.${key}`, 'non-enumerable properties are not allowed');
    out.push([key, d.value]);
  }
  return out;
}

/** The own entries of an options object (a plain object, else InvalidArgument naming `option`). */
function optionEntries(value: unknown, option: string): Array<[string, unknown]> {
  try {
    if (!isPlainObject(value))
      throw invalidArgument(option, `expected an object, got ${describeType(value)}`);
    return ownEntries(value, option);
  } catch (e) {
    throw trapFailure(e, option);
  }
}

/**
 * An options object: undefined (→ empty) or a plain object whose keys are all in `allowed`.
 * Returns a prototype-free copy of the defined entries, so later reads see no inherited value.
 * With `extensions`, keys outside `allowed` are collected there instead of refused: request
 * objects may carry a provider's own fields (`exportable` for PKCS#11), which that provider checks.
 */
export function checkOptions(
  value: unknown,
  option: string,
  allowed: Readonly<Record<string, true>>,
  extensions?: Record<string, unknown>,
): Record<string, unknown> {
  const out = nullRecord<unknown>();
  if (value === undefined) return out;
  for (const [key, v] of optionEntries(value, option)) {
    if (extensions !== undefined && !Object.hasOwn(allowed, key)) {
      extensions[key] = v;
      continue;
    }
    if (!Object.hasOwn(allowed, key)) throw unknownOption(option, key, allowed);
    if (v !== undefined) out[key] = v;
  }
  return out;
}

function unknownOption(option: string, key: string, allowed: Readonly<Record<string, true>>): KeyportError {
  return invalidArgument(
    option,
    `unknown option ${quote(key)} (known: ${Object.keys(allowed).join(', ') || 'none'})`,
  );
}

export function checkInteger(value: unknown, option: string, min: number, max: number): number {
  if (typeof value !== 'number')
    throw invalidArgument(option, `expected an integer, got ${describeType(value)}`);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw invalidArgument(option, `expected an integer from ${min} to ${max}, got ${describeNumber(value)}`);
  }
  return value;
}

function describeNumber(n: number): string {
  return Number.isFinite(n) ? String(n).slice(0, 32) : String(n);
}

/** A deadline in milliseconds: an integer from 1 to 2^31−1 (what a Node timer can wait). */
export function checkDeadlineMs(value: unknown, option: string): number {
  return checkInteger(value, option, 1, MAX_TIMER_MS);
}

export function checkBoolean(value: unknown, option: string): boolean {
  if (typeof value !== 'boolean')
    throw invalidArgument(option, `expected a boolean, got ${describeType(value)}`);
  return value;
}

export function checkString(
  value: unknown,
  option: string,
  limits: { readonly min?: number; readonly max?: number } = {},
): string {
  if (typeof value !== 'string')
    throw invalidArgument(option, `expected a string, got ${describeType(value)}`);
  const min = limits.min ?? 0;
  const max = limits.max ?? 4096;
  if (value.length < min || value.length > max) {
    throw invalidArgument(option, `expected ${min}-${max} characters, got ${value.length}`);
  }
  if (!isWellFormedString(value)) throw invalidArgument(option, 'not well-formed Unicode (lone surrogate)');
  return value;
}

export function checkEnum<T extends string>(value: unknown, option: string, values: readonly T[]): T {
  if (typeof value !== 'string' || !values.includes(value as T)) {
    const got = typeof value === 'string' ? quote(value) : describeType(value);
    throw invalidArgument(option, `expected one of ${values.join(', ')}, got ${got}`);
  }
  return value as T;
}

export function checkBytes(value: unknown, option: string): Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw invalidArgument(option, `expected a Uint8Array, got ${describeType(value)}`);
  }
  return value;
}

export function checkFunction(value: unknown, option: string): (...args: never[]) => unknown {
  if (typeof value !== 'function')
    throw invalidArgument(option, `expected a function, got ${describeType(value)}`);
  return value as (...args: never[]) => unknown;
}

/** A Date that names an instant (`new Date(NaN)` does not): for dates a provider answers with. */
export const isValidDate = (value: unknown): value is Date =>
  value instanceof Date && !Number.isNaN(value.getTime());

/** A Date within 1970..9999, checked in O(1). */
export function checkDate(value: unknown, option: string): Date {
  if (!(value instanceof Date)) throw invalidArgument(option, `expected a Date, got ${describeType(value)}`);
  const t = value.getTime();
  if (Number.isNaN(t)) throw invalidArgument(option, 'an invalid Date');
  if (t < MIN_DATE_MS || t > MAX_DATE_MS) {
    throw invalidArgument(option, 'dates must lie between 1970-01-01 and 9999-12-31');
  }
  return new Date(t);
}

export function checkSignal(value: unknown, option: string): AbortSignal {
  if (!(value instanceof AbortSignal)) {
    throw invalidArgument(option, `expected an AbortSignal, got ${describeType(value)}`);
  }
  return value;
}

function checkContextString(
  value: unknown,
  option: string,
  what: 'key' | 'value',
  mayBeEmpty = false,
): string {
  if (typeof value !== 'string')
    throw invalidArgument(option, `context ${what}s must be strings, got ${describeType(value)}`);
  if (what === 'key' && !mayBeEmpty && value.length === 0)
    throw invalidArgument(option, 'context keys must not be empty');
  if (value.length > MAX_CONTEXT_STRING) {
    throw invalidArgument(option, `context ${what}s are at most ${MAX_CONTEXT_STRING} characters`);
  }
  if (!isWellFormedString(value)) {
    throw invalidArgument(option, `a context ${what} is not well-formed Unicode (lone surrogate)`);
  }
  return value;
}

/**
 * An encryption context as keyport holds it: a prototype-free object of string pairs. Accepts
 * a plain object or a Map; refuses everything else (arrays, class instances, symbol keys,
 * accessors, non-string values, empty keys, lone surrogates). `__proto__`, `constructor` and
 * `toString` are ordinary keys. Messages name a pair by position, never by its value.
 */
export function toEncryptionContext(value: unknown, option = 'context'): EncryptionContext {
  return checkedContext(value, option, false);
}

/**
 * The encryption context of a message sealed elsewhere, to hand to a KMS call as it is (an ESDK
 * message's KMS data keys are bound to it): checked as `toEncryptionContext` checks, except that
 * a key may be empty. The ESDK format allows any UTF-8 text as a key and ESDK-JS, -Python and -Go
 * write `{ "": value }`, which AWS KMS takes; keyport refuses an empty key in a context a caller
 * gives it (what it seals), not in one it read from a message it opens or rewraps. The result
 * is stamped: core's call check and the drivers' own checks take it as it is.
 */
export function toMessageContext(value: unknown, option = 'context'): EncryptionContext {
  return checkedContext(value, option, true);
}

function checkedContext(value: unknown, option: string, emptyKeys: boolean): EncryptionContext {
  if (typeof value === 'object' && value !== null && CheckedContext.has(value))
    return value as EncryptionContext;
  try {
    return readContext(value, option, emptyKeys);
  } catch (e) {
    throw trapFailure(e, option);
  }
}

/**
 * Contexts this module produced: prototype-free, every pair checked, frozen. On the Keyport path
 * one context is read by core's call check, again by the driver's own argument check (drivers
 * are public and check what a direct caller gives them) and again by the encoding that binds it
 * to the ciphertext: each read pays reflection per pair (measured with cold caches, as after
 * every SDK round trip, about 1 µs each). A record stamped here is taken as it is; frozen, so
 * nothing that holds it can change it after its check.
 *
 * The stamp is a private field, added by a base constructor that returns the object it is given:
 * no reflection sees it (`Object.getOwnPropertySymbols` and `Reflect.ownKeys` list no private
 * names), and checking it is a property lookup. It replaced a WeakSet, whose entry per call, a
 * young object in an ephemeron table the collector walks, cost about 1.8 µs more per call with the
 * caches cold. Stamped before it is frozen.
 */
class Stamp {
  constructor(target: object) {
    // biome-ignore lint/correctness/noConstructorReturn: the return override stamps `target` itself
    return target;
  }
}
class CheckedContext extends Stamp {
  #checked = true;
  static has(value: object): boolean {
    return #checked in value;
  }
}

function readContext(value: unknown, option: string, emptyKeys: boolean): EncryptionContext {
  const out = nullRecord<string>();
  let pairs: Iterable<[unknown, unknown]>;
  if (value instanceof Map) {
    pairs = value.entries();
  } else if (isPlainObject(value)) {
    pairs = ownEntries(value, option);
  } else {
    throw invalidArgument(option, `expected a plain object or a Map of strings, got ${describeType(value)}`);
  }
  let index = 0;
  for (const [k, v] of pairs) {
    if (index >= MAX_CONTEXT_PAIRS) throw invalidArgument(option, `at most ${MAX_CONTEXT_PAIRS} pairs`);
    const key = checkContextString(k, `${option} pair #${index}`, 'key', emptyKeys);
    out[key] = checkContextString(v, `${option} pair #${index}`, 'value');
    index++;
  }
  new CheckedContext(out);
  Object.freeze(out);
  return out;
}

/** As `toEncryptionContext`, with undefined passing through. */
export function optionalContext(value: unknown, option = 'context'): EncryptionContext | undefined {
  return value === undefined ? undefined : toEncryptionContext(value, option);
}

// ------------------------------------------------------------------ request shapes

/** The keys of each options type: `satisfies` makes the compiler list every key, so none is missed. */
const CALL_OPTIONS = { signal: true, timeoutMs: true } as const satisfies Record<keyof CallOptions, true>;

function callOptionsFrom(o: Record<string, unknown>, option: string): CallOptions {
  return callOptionsOf(o.signal, o.timeoutMs, option);
}

function callOptionsOf(signal: unknown, timeoutMs: unknown, option: string): CallOptions {
  if (signal === undefined && timeoutMs === undefined) return {};
  return {
    ...(signal !== undefined ? { signal: checkSignal(signal, `${option}.signal`) } : {}),
    ...(timeoutMs !== undefined ? { timeoutMs: checkDeadlineMs(timeoutMs, `${option}.timeoutMs`) } : {}),
  };
}

type OptionKeys = Readonly<Record<string, true>>;
const NO_EXTRA: OptionKeys = Object.freeze({});
/** `keys` plus `extra`, made once per pair: extras are module constants, and this runs per call. */
const unions = new WeakMap<OptionKeys, WeakMap<OptionKeys, OptionKeys>>();
function withExtra(keys: OptionKeys, extra: OptionKeys): OptionKeys {
  let byExtra = unions.get(keys);
  if (byExtra === undefined) {
    byExtra = new WeakMap();
    unions.set(keys, byExtra);
  }
  let union = byExtra.get(extra);
  if (union === undefined) {
    union = Object.freeze({ ...keys, ...extra });
    byExtra.set(extra, union);
  }
  return union;
}

/** Call options plus the named extras; returns the validated call options and the raw extras. */
export function checkCallOptions(
  value: unknown,
  option = 'options',
  extra: OptionKeys = NO_EXTRA,
): { call: CallOptions; rest: Record<string, unknown> } {
  const o = checkOptions(value, option, withExtra(CALL_OPTIONS, extra));
  const rest = nullRecord<unknown>();
  for (const key of Object.keys(extra)) if (o[key] !== undefined) rest[key] = o[key];
  return { call: callOptionsFrom(o, option), rest };
}

const KEY_REF = { uri: true, version: true } as const satisfies Record<keyof KeyRef, true>;

/** A key URI string or `{ uri, version? }`; the URI itself is parsed by the caller. */
export function checkKeyLike(value: unknown, option = 'key'): KeyRef {
  if (typeof value === 'string') return { uri: checkString(value, option, { min: 1, max: 4096 }) };
  const o = checkOptions(value, option, KEY_REF);
  if (value === undefined) throw invalidArgument(option, 'expected a key URI or { uri, version }');
  const uri = checkString(o.uri, `${option}.uri`, { min: 1, max: 4096 });
  if (o.version === undefined) return { uri };
  const version = checkString(o.version, `${option}.version`, { min: 1, max: 256 });
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters
  if (/[\u0000-\u0020\u007f]/.test(version))
    throw invalidArgument(`${option}.version`, 'no spaces or control characters');
  return { uri, version };
}

const RETRY_POLICY = {
  maxAttempts: true,
  baseDelayMs: true,
  maxDelayMs: true,
  attemptTimeoutMs: true,
  deadlineMs: true,
} as const satisfies Record<keyof RetryPolicy, true>;

export function checkRetryPolicy(value: unknown, option = 'retry'): Partial<RetryPolicy> {
  const o = checkOptions(value, option, RETRY_POLICY);
  const int = (key: string, min: number, max: number) =>
    o[key] === undefined ? {} : { [key]: checkInteger(o[key], `${option}.${key}`, min, max) };
  return {
    ...int('maxAttempts', 1, MAX_ATTEMPTS),
    ...int('baseDelayMs', 0, MAX_TIMER_MS),
    ...int('maxDelayMs', 0, MAX_TIMER_MS),
    ...int('attemptTimeoutMs', 1, MAX_TIMER_MS),
    ...int('deadlineMs', 1, MAX_TIMER_MS),
  };
}

const ROTATION_POLICY = { periodDays: true, nextRotationAt: true } as const satisfies Record<
  keyof RotationPolicy,
  true
>;
/**
 * How a request checker treats fields it does not know: `strict` refuses them (a provider's own
 * boundary), `extensions` passes them through untouched for the provider to check (core's
 * boundary, which serves every provider).
 */
export type UnknownFields = 'strict' | 'extensions';

function extensionsFor(mode: UnknownFields): Record<string, unknown> | undefined {
  return mode === 'extensions' ? nullRecord() : undefined;
}

/** Rotation periods and deletion waits: whole days, at most 100 years (the provider may narrow). */
export const MAX_DAYS = 36_500;

export function checkRotationPolicy(value: unknown, option = 'policy'): RotationPolicy {
  if (value === undefined) throw invalidArgument(option, 'expected a rotation policy object');
  const o = checkOptions(value, option, ROTATION_POLICY);
  return {
    ...(o.periodDays !== undefined
      ? { periodDays: checkInteger(o.periodDays, `${option}.periodDays`, 1, MAX_DAYS) }
      : {}),
    ...(o.nextRotationAt !== undefined
      ? { nextRotationAt: checkDate(o.nextRotationAt, `${option}.nextRotationAt`) }
      : {}),
  };
}

/** A string map of labels (same rules as a context, smaller limits). */
function checkLabels(value: unknown, option: string): Readonly<Record<string, string>> {
  const labels = toEncryptionContext(value, option);
  if (Object.keys(labels).length > 64) throw invalidArgument(option, 'at most 64 labels');
  return labels;
}

/** CreateKeyRequest's own fields (anything else in a request is a provider's extension). */
export const CREATE_KEY_FIELDS = {
  name: true,
  spec: true,
  usage: true,
  labels: true,
  description: true,
  rotation: true,
  external: true,
} as const satisfies Record<keyof CreateKeyRequest, true>;

export function checkCreateKeyRequest(
  value: unknown,
  option = 'req',
  unknown: UnknownFields = 'strict',
): CreateKeyRequest {
  if (value === undefined) throw invalidArgument(option, 'expected { name, spec, ... }');
  const extra = extensionsFor(unknown);
  const o = checkOptions(value, option, CREATE_KEY_FIELDS, extra);
  return {
    ...extra,
    name: checkString(o.name, `${option}.name`, { min: 1, max: 2048 }),
    spec: checkEnum(o.spec, `${option}.spec`, KEY_SPECS),
    ...(o.usage !== undefined ? { usage: checkEnum(o.usage, `${option}.usage`, KEY_USAGES) } : {}),
    ...(o.labels !== undefined ? { labels: checkLabels(o.labels, `${option}.labels`) } : {}),
    ...(o.description !== undefined
      ? { description: checkString(o.description, `${option}.description`, { max: 8192 }) }
      : {}),
    ...(o.rotation !== undefined ? { rotation: checkRotationPolicy(o.rotation, `${option}.rotation`) } : {}),
    ...(o.external !== undefined ? { external: checkBoolean(o.external, `${option}.external`) } : {}),
  };
}

const SCHEDULE_DELETION = { days: true } as const satisfies Record<keyof ScheduleDeletionRequest, true>;

export function checkScheduleDeletion(
  value: unknown,
  option = 'req',
  unknown: UnknownFields = 'strict',
): ScheduleDeletionRequest {
  const extra = extensionsFor(unknown);
  const o = checkOptions(value, option, SCHEDULE_DELETION, extra);
  return {
    ...extra,
    ...(o.days === undefined ? {} : { days: checkInteger(o.days, `${option}.days`, 1, MAX_DAYS) }),
  };
}

const GRANT_CONSTRAINT = { contextEquals: true, contextSubset: true } as const satisfies Record<
  keyof GrantConstraint,
  true
>;
const GRANT_REQUEST = {
  grantee: true,
  operations: true,
  constraints: true,
  expiresAt: true,
  name: true,
} as const satisfies Record<keyof GrantRequest, true>;

/** A grant request; constraint contexts follow the context rules (Maps converted, prototype-free). */
export function checkGrantRequest(
  value: unknown,
  option = 'req',
  unknown: UnknownFields = 'strict',
): GrantRequest {
  if (value === undefined) throw invalidArgument(option, 'expected { grantee, operations, ... }');
  const extra = extensionsFor(unknown);
  const o = checkOptions(value, option, GRANT_REQUEST, extra);
  // Read once, by index, as batch items are: `map` skips a sparse array's holes (and hands the
  // driver an array with them), and a Proxy's traps must fail as an argument, not escape raw.
  let given: unknown[];
  try {
    if (!Array.isArray(o.operations)) {
      throw invalidArgument(`${option}.operations`, `expected an array, got ${describeType(o.operations)}`);
    }
    const length = (o.operations as unknown[]).length;
    if (length === 0 || length > GRANT_OPERATIONS.length * 4) {
      throw invalidArgument(`${option}.operations`, `expected 1 to ${GRANT_OPERATIONS.length} operations`);
    }
    given = new Array(length);
    for (let i = 0; i < length; i++) given[i] = (o.operations as unknown[])[i];
  } catch (e) {
    throw trapFailure(e, `${option}.operations`);
  }
  const operations = given.map((op, i) => checkEnum(op, `${option}.operations[${i}]`, GRANT_OPERATIONS));
  let constraints: GrantConstraint | undefined;
  if (o.constraints !== undefined) {
    const c = checkOptions(o.constraints, `${option}.constraints`, GRANT_CONSTRAINT);
    constraints = {
      ...(c.contextEquals !== undefined
        ? { contextEquals: toEncryptionContext(c.contextEquals, `${option}.constraints.contextEquals`) }
        : {}),
      ...(c.contextSubset !== undefined
        ? { contextSubset: toEncryptionContext(c.contextSubset, `${option}.constraints.contextSubset`) }
        : {}),
    };
  }
  return {
    ...extra,
    grantee: checkString(o.grantee, `${option}.grantee`, { min: 1, max: 2048 }),
    operations,
    ...(constraints !== undefined ? { constraints } : {}),
    ...(o.expiresAt !== undefined ? { expiresAt: checkDate(o.expiresAt, `${option}.expiresAt`) } : {}),
    ...(o.name !== undefined ? { name: checkString(o.name, `${option}.name`, { min: 1, max: 256 }) } : {}),
  };
}

const IMPORT_PARAMETERS = { algorithm: true } as const satisfies Record<keyof ImportParametersRequest, true>;

export function checkImportParametersRequest(
  value: unknown,
  option = 'req',
  unknown: UnknownFields = 'strict',
): ImportParametersRequest {
  const extra = extensionsFor(unknown);
  const o = checkOptions(value, option, IMPORT_PARAMETERS, extra);
  return {
    ...extra,
    ...(o.algorithm === undefined
      ? {}
      : { algorithm: checkEnum(o.algorithm, `${option}.algorithm`, IMPORT_WRAPPING_ALGORITHMS) }),
  };
}

const IMPORT_MATERIAL = {
  wrappedMaterial: true,
  algorithm: true,
  importToken: true,
  expiresAt: true,
} as const satisfies Record<keyof ImportKeyMaterialRequest, true>;

export function checkImportKeyMaterialRequest(
  value: unknown,
  option = 'req',
  unknown: UnknownFields = 'strict',
): ImportKeyMaterialRequest {
  if (value === undefined) throw invalidArgument(option, 'expected { wrappedMaterial, algorithm, ... }');
  const extra = extensionsFor(unknown);
  const o = checkOptions(value, option, IMPORT_MATERIAL, extra);
  return {
    ...extra,
    wrappedMaterial: checkBytes(o.wrappedMaterial, `${option}.wrappedMaterial`),
    algorithm: checkEnum(o.algorithm, `${option}.algorithm`, IMPORT_WRAPPING_ALGORITHMS),
    ...(o.importToken !== undefined
      ? { importToken: checkBytes(o.importToken, `${option}.importToken`) }
      : {}),
    ...(o.expiresAt !== undefined ? { expiresAt: checkDate(o.expiresAt, `${option}.expiresAt`) } : {}),
  };
}

const CONTEXT_OPTION = { context: true } as const;
/** `listKeys`' extra option. */
export const LIST_OPTIONS = { pageSize: true, onUnmodeledKey: true } as const;
/** `generateDataKey`'s extra option (besides the context). */
export const DATA_KEY_OPTIONS = { bytes: true } as const;

/** The sign/verify extras of call options. */
export const SIGN_OPTIONS = { algorithm: true, messageType: true } as const satisfies Record<
  keyof SignRequest,
  true
>;

export function signRequestFrom(rest: Record<string, unknown>, option = 'options'): SignRequest {
  return {
    ...(rest.algorithm !== undefined
      ? { algorithm: checkEnum(rest.algorithm, `${option}.algorithm`, SIGNING_ALGORITHMS) }
      : {}),
    ...(rest.messageType !== undefined
      ? { messageType: checkEnum(rest.messageType, `${option}.messageType`, ['message', 'digest'] as const) }
      : {}),
  };
}

// ------------------------------------------------------------------ Keyport client

/** Every option of `KeyportOptions` (the compiler keeps this list complete); others are refused. */
const KEYPORT_OPTIONS = {
  providers: true,
  defaults: true,
  retry: true,
  audit: true,
  auditDigestKey: true,
  random: true,
  onAuditFailure: true,
  onAuditError: true,
} as const satisfies Record<keyof KeyportOptions, true>;

/**
 * Runs `read` (which reads caller objects: drivers, sinks, lists) and turns anything but a
 * KeyportError it throws — a getter or a proxy trap that fails — into InvalidArgument naming
 * `option`, so construction never fails with the caller's raw exception.
 */
function readSafely<T>(option: string, read: () => T): T {
  try {
    return read();
  } catch (e) {
    if (e instanceof KeyportError) throw e;
    throw invalidArgument(option, 'reading it threw (a getter or proxy that fails)');
  }
}

/** A provider as the client registers it: a scheme, a name and capabilities (methods are found by use). */
export function checkProvider(p: unknown, where = 'provider'): KmsProvider {
  if (typeof p !== 'object' || p === null)
    throw invalidArgument(where, `expected a driver, got ${describeType(p)}`);
  // Drivers are class instances whose fields may be getters: read, not refused, but safely.
  const provider = p as Partial<KmsProvider>;
  const scheme = readSafely(`${where}.scheme`, () => provider.scheme);
  checkString(scheme, `${where}.scheme`, { min: 1, max: 64 });
  // No "+": it separates the scheme from an instance name in key URIs (registry.ts).
  if (!/^[a-z][a-z0-9.-]*$/.test(scheme as string)) {
    throw invalidArgument(`${where}.scheme`, 'a URI scheme: lower-case letters, digits, "-", "."');
  }
  const name = readSafely(`${where}.name`, () => provider.name);
  if (name !== undefined) checkString(name, `${where}.name`, { min: 1, max: 128 });
  const capabilities = readSafely(`${where}.capabilities`, () => provider.capabilities);
  if (typeof capabilities !== 'object' || capabilities === null) {
    throw invalidArgument(`${where}.capabilities`, 'expected a capabilities object');
  }
  return p as KmsProvider;
}

export function checkAuditSink(sink: unknown, where = 'sink'): AuditSink {
  const write = readSafely(`${where}.write`, () => (sink as Partial<AuditSink> | null)?.write);
  if (typeof write !== 'function') {
    throw invalidArgument(where, 'expected an audit sink with a write method');
  }
  return sink as AuditSink;
}

/** The client's construction options: every provider and sink an object with the right methods. */
export function checkKeyportOptions(value: unknown): KeyportOptions {
  if (value === undefined) throw invalidArgument('options', 'expected { providers: [...] }');
  const o = checkOptions(value, 'options', KEYPORT_OPTIONS);
  // A list (each instance named after its scheme) or named instances in a plain object (a Map
  // has no own entries: it would register nothing); the registry checks names. What is checked
  // is a copy, and the copy is what the client keeps: a getter cannot answer differently later.
  let providers: KeyportOptions['providers'];
  let entries: [string, unknown][];
  if (Array.isArray(o.providers)) {
    const list = readSafely('options.providers', () => Array.from(o.providers as unknown[]));
    providers = list as KmsProvider[];
    entries = list.map((v, i) => [`[${i}]`, v]);
  } else if (isPlainObject(o.providers)) {
    entries = ownEntries(o.providers, 'options.providers');
    const named = nullRecord<KmsProvider>();
    for (const [name, driver] of entries) named[name] = driver as KmsProvider;
    providers = named;
    entries = entries.map(([k, v]) => [`.${k}`, v]);
  } else {
    throw invalidArgument(
      'options.providers',
      `expected an array or { name: driver }, got ${describeType(o.providers)}`,
    );
  }
  for (const [at, p] of entries) checkProvider(p, `options.providers${at}`);
  let defaults: Record<string, string> | undefined;
  if (o.defaults !== undefined) {
    if (!isPlainObject(o.defaults)) {
      throw invalidArgument(
        'options.defaults',
        `expected { scheme: instance name }, got ${describeType(o.defaults)}`,
      );
    }
    defaults = nullRecord<string>();
    for (const [scheme, name] of ownEntries(o.defaults, 'options.defaults'))
      defaults[scheme] = checkString(name, `options.defaults[${quote(scheme)}]`, { min: 1, max: 64 });
  }
  let audit: AuditSink[] | undefined;
  if (o.audit !== undefined) {
    if (!Array.isArray(o.audit))
      throw invalidArgument('options.audit', `expected an array, got ${describeType(o.audit)}`);
    audit = readSafely('options.audit', () => Array.from(o.audit as unknown[])).map((sink, i) =>
      checkAuditSink(sink, `options.audit[${i}]`),
    );
  }
  return {
    ...o,
    providers,
    ...(defaults !== undefined ? { defaults } : {}),
    ...(audit !== undefined ? { audit } : {}),
    ...(o.retry !== undefined ? { retry: checkRetryPolicy(o.retry, 'options.retry') } : {}),
    ...(o.auditDigestKey !== undefined
      ? {
          auditDigestKey:
            o.auditDigestKey === 'unkeyed'
              ? 'unkeyed'
              : checkBytes(o.auditDigestKey, 'options.auditDigestKey'),
        }
      : {}),
    ...(o.onAuditFailure !== undefined
      ? { onAuditFailure: checkEnum(o.onAuditFailure, 'options.onAuditFailure', ['fail', 'warn'] as const) }
      : {}),
    ...(o.random !== undefined ? { random: checkFunction(o.random, 'options.random') as () => number } : {}),
    ...(o.onAuditError !== undefined
      ? { onAuditError: checkFunction(o.onAuditError, 'options.onAuditError') as (e: unknown) => void }
      : {}),
  } as KeyportOptions;
}

/** Call options carrying a context (and the named extras): the context comes back prototype-free. */
export function contextCallOptions(
  value: unknown,
  extra: OptionKeys = NO_EXTRA,
): { call: CallOptions; context: EncryptionContext | undefined; rest: Record<string, unknown> } {
  const { call, rest } = checkCallOptions(value, 'options', withExtra(CONTEXT_OPTION, extra));
  return { call, context: optionalContext(rest.context, 'options.context'), rest };
}

/** The keys of `recordCallOptions`, in the order `contextCallOptions` lists them. */
const RECORD_OPTIONS = withExtra(CALL_OPTIONS, withExtra(CONTEXT_OPTION, NO_EXTRA));

/**
 * `contextCallOptions` without extras and without `rest`, as encrypt and decrypt take them once
 * per record: the same checks and errors, read in one pass, with no prototype-free copy of the
 * options and no lookup of option lists (each cost about a microsecond with the caches cold, as
 * they are after every SDK round trip).
 */
export function recordCallOptions(value: unknown): {
  call: CallOptions;
  context: EncryptionContext | undefined;
} {
  if (value === undefined) return { call: {}, context: undefined };
  let signal: unknown;
  let timeoutMs: unknown;
  let context: unknown;
  for (const [key, v] of optionEntries(value, 'options')) {
    if (key === 'context') context = v;
    else if (key === 'signal') signal = v;
    else if (key === 'timeoutMs') timeoutMs = v;
    else throw unknownOption('options', key, RECORD_OPTIONS);
  }
  return {
    call: callOptionsOf(signal, timeoutMs, 'options'),
    context: optionalContext(context, 'options.context'),
  };
}

const BATCH_ITEM_LIMIT = 100_000;

/** Batch items: each `{ <bytes field>, context? }`, contexts converted; at most 100,000 items. */
export function checkBatchItems(
  value: unknown,
  field: 'plaintext' | 'ciphertext',
): Array<Record<string, unknown> & { context?: EncryptionContext }> {
  // Read once, by index: a hole in a sparse array is a missing item (`map` would skip it and
  // hand on an array with the hole), and a Proxy's traps run here, once, or fail as an argument.
  let list: unknown[];
  try {
    // Array.isArray throws for a revoked Proxy.
    if (!Array.isArray(value))
      throw invalidArgument('items', `expected an array, got ${describeType(value)}`);
    const length = (value as unknown[]).length;
    if (length > BATCH_ITEM_LIMIT) throw invalidArgument('items', `at most ${BATCH_ITEM_LIMIT} items`);
    list = new Array(length);
    for (let i = 0; i < length; i++) list[i] = (value as unknown[])[i];
  } catch (e) {
    throw trapFailure(e, 'items');
  }
  const allowed = { [field]: true, context: true } as Record<string, true>;
  const out: Array<Record<string, unknown> & { context?: EncryptionContext }> = new Array(list.length);
  for (let i = 0; i < list.length; i++) {
    const item = list[i];
    const o = checkOptions(item, `items[${i}]`, allowed);
    if (item === undefined) throw invalidArgument(`items[${i}]`, `expected { ${field}, context? }`);
    const context = optionalContext(o.context, `items[${i}].context`);
    out[i] = {
      [field]: checkBytes(o[field], `items[${i}].${field}`),
      ...(context !== undefined ? { context } : {}),
    };
  }
  return out;
}
