import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { status } from '@grpc/grpc-js';
import { fromProto3JSON } from 'proto3-json-serializer';
import type protobuf from 'protobufjs';
import { ownEntry } from '../shared/own.js';
import type { Handler } from './context.js';
import { camel, snake } from './field-names.js';
import { toJson } from './json.js';
import { LABELS_MESSAGE, OBJECT_OPTIONS } from './proto.js';
import { RpcError } from './rpc-error.js';

// Cloud KMS over HTTP/JSON, transcoded from the same service definitions the gRPC server
// serves: every route comes from a method's `google.api.http` annotation in the .proto files
// (plus the HTTP rules the KMS service configuration gives the IAMPolicy and Operations mixins),
// requests are proto3 JSON turned into the same plain objects the gRPC decoder produces, the same
// handlers run, and responses and errors are written back in proto3 JSON and Google's error
// shape (https://google.aip.dev/127, https://cloud.google.com/apis/design/errors).

/** The mixins' HTTP rules in the KMS service configuration (kms_v1.yaml), which the clients ship too. */
const MIXIN_RULES: Record<string, HttpRule[]> = {
  'google.iam.v1.IAMPolicy.GetIamPolicy': [
    'keyRings/*',
    'keyRings/*/cryptoKeys/*',
    'keyRings/*/importJobs/*',
  ].map((r) => ({ method: 'GET', template: `/v1/{resource=projects/*/locations/*/${r}}:getIamPolicy` })),
  'google.iam.v1.IAMPolicy.SetIamPolicy': [
    'keyRings/*',
    'keyRings/*/cryptoKeys/*',
    'keyRings/*/importJobs/*',
  ].map((r) => ({
    method: 'POST',
    template: `/v1/{resource=projects/*/locations/*/${r}}:setIamPolicy`,
    body: '*',
  })),
  'google.iam.v1.IAMPolicy.TestIamPermissions': [
    'keyRings/*',
    'keyRings/*/cryptoKeys/*',
    'keyRings/*/importJobs/*',
  ].map((r) => ({
    method: 'POST',
    template: `/v1/{resource=projects/*/locations/*/${r}}:testIamPermissions`,
    body: '*',
  })),
  'google.cloud.location.Locations.GetLocation': [
    { method: 'GET', template: '/v1/{name=projects/*/locations/*}' },
  ],
  'google.cloud.location.Locations.ListLocations': [
    { method: 'GET', template: '/v1/{name=projects/*}/locations' },
  ],
  'google.longrunning.Operations.GetOperation': [
    { method: 'GET', template: '/v1/{name=projects/*/locations/*/operations/*}' },
  ],
};

/** Largest request body read; Cloud KMS's own data limits (64 KiB) are far below it. */
export const MAX_REST_BODY = 1024 * 1024;

/**
 * Bounds on the REST port's connections, as on the gRPC relay's (relay.ts): the server runs inside
 * the test runner, a connection costs it a descriptor, and Node's own timeouts let a connection
 * that never sends a request stay open indefinitely (one was still open after 75 s), so a loop of
 * connections or leaked clients exhausted the runner's descriptors.
 */
export interface RestLimits {
  /**
   * Most connections at once that have not sent a request. One more closes the oldest connection
   * that has sent no request for a second or more. A connection that has made a request is never
   * closed for this (an HTTP/1.1 client may reuse an idle one at any moment: closing it failed the
   * request with ECONNRESET, as a client sending 250 requests at once saw), so parallel clients
   * may hold more, for as long as Node's own timeouts let them.
   */
  maxConnections: number;
  /** A connection that has not sent a request's headers after this long without traffic is closed. */
  silentMs: number;
}

/** How long a new connection may stay silent before the connection limit may close it. */
const SILENT_GRACE_MS = 1000;

export const REST_LIMITS: Readonly<RestLimits> = Object.freeze({ maxConnections: 256, silentMs: 10_000 });

interface HttpRule {
  method: string;
  template: string;
  body?: string;
}

interface Route {
  rpc: string;
  httpMethod: string;
  regex: RegExp;
  vars: string[][];
  body: string | undefined;
  requestType: protobuf.Type;
  responseType: protobuf.Type;
  handler: Handler;
}

export type Invoke = (
  method: string,
  handler: Handler,
  request: unknown,
  header: (name: string) => string | undefined,
) => Promise<unknown>;

const HTTP_STATUS: Partial<Record<status, number>> = {
  [status.CANCELLED]: 499,
  [status.INVALID_ARGUMENT]: 400,
  [status.DEADLINE_EXCEEDED]: 504,
  [status.NOT_FOUND]: 404,
  [status.ALREADY_EXISTS]: 409,
  [status.PERMISSION_DENIED]: 403,
  [status.UNAUTHENTICATED]: 401,
  [status.RESOURCE_EXHAUSTED]: 429,
  [status.FAILED_PRECONDITION]: 400,
  [status.ABORTED]: 409,
  [status.OUT_OF_RANGE]: 400,
  [status.UNIMPLEMENTED]: 501,
  [status.UNAVAILABLE]: 503,
};

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** `/v1/{name=projects/*}/keyRings:verb` → an anchored regex with one group per variable. */
export function compileTemplate(template: string): { regex: RegExp; vars: string[][] } {
  const vars: string[][] = [];
  let re = '';
  const parts = template.split(/(\{[^}]*\})/);
  for (const part of parts) {
    if (part.startsWith('{')) {
      const [field = '', pattern = '*'] = part.slice(1, -1).split('=');
      vars.push(field.split('.').map(camel));
      const segs = pattern
        .split('/')
        .map((seg) => (seg === '**' ? '.+' : seg === '*' ? '[^/]+' : escapeRe(seg)));
      re += `(${segs.join('/')})`;
    } else {
      re += escapeRe(part);
    }
  }
  return { regex: new RegExp(`^${re}$`), vars };
}

function rulesOf(method: protobuf.Method): HttpRule[] {
  const out: HttpRule[] = [];
  const add = (rule: Record<string, unknown>) => {
    for (const verb of ['get', 'post', 'put', 'patch', 'delete'] as const) {
      const template = rule[verb];
      if (typeof template === 'string') {
        out.push({
          method: verb.toUpperCase(),
          template,
          ...(typeof rule.body === 'string' && rule.body !== '' && { body: rule.body }),
        });
      }
    }
    const more = rule.additional_bindings ?? rule.additionalBindings;
    for (const b of Array.isArray(more) ? more : more ? [more] : []) add(b as Record<string, unknown>);
  };
  for (const opt of method.parsedOptions ?? []) {
    const rule = (opt as Record<string, unknown>)['(google.api.http)'];
    if (rule && typeof rule === 'object') add(rule as Record<string, unknown>);
  }
  return out;
}

export function buildRoutes(
  root: protobuf.Root,
  services: ReadonlyArray<readonly [string, Record<string, Handler>]>,
): Route[] {
  const routes: Route[] = [];
  for (const [serviceName, handlers] of services) {
    const service = root.lookupService(serviceName);
    for (const method of Object.values(service.methods)) {
      const handler = handlers[method.name];
      if (!handler) continue; // not implemented: no route, so the URL is unknown (404)
      const selector = `${serviceName}.${method.name}`;
      // The service configuration's rules for the mixins first, then the protos' own.
      const rules = [...(MIXIN_RULES[selector] ?? []), ...rulesOf(method)];
      for (const rule of rules) {
        const { regex, vars } = compileTemplate(rule.template);
        routes.push({
          rpc: method.name,
          httpMethod: rule.method,
          regex,
          vars,
          body: rule.body,
          requestType: (method.resolve() as protobuf.Method).resolvedRequestType as protobuf.Type,
          responseType: (method.resolve() as protobuf.Method).resolvedResponseType as protobuf.Type,
          handler,
        });
      }
    }
  }
  // A custom verb (`…}:encrypt`) is matched before a plain template, so `…/cryptoKeys/k:getIamPolicy`
  // never reaches GetCryptoKey with the name `k:getIamPolicy` (the sort is stable).
  const hasVerb = (r: Route) => /:[a-zA-Z]+\$$/.test(r.regex.source);
  return routes.sort((a, b) => Number(hasVerb(b)) - Number(hasVerb(a)));
}

const invalid = (message: string) => new RpcError(status.INVALID_ARGUMENT, message);

/**
 * A value the transcoder cannot turn into its field's type, worded as the service words it
 * ("Invalid value at 'crypto_key.purpose' (type.googleapis.com/google.cloud.kms.v1.CryptoKey.
 * CryptoKeyPurpose), \"foo\"") and answered with a google.rpc.BadRequest naming the field.
 */
class InvalidValue extends RpcError {
  constructor(
    readonly field: string,
    type: protobuf.Enum | protobuf.Type,
    value: string,
  ) {
    super(
      status.INVALID_ARGUMENT,
      `Invalid value at '${field}' (type.googleapis.com/${type.fullName.replace(/^\./, '')}), ${value}`,
    );
  }
}

/**
 * An enum field's value as proto3 JSON gives it: one of the enum's own names, or the number (or
 * digits in a string, as query parameters carry it) of one of its own values. Anything else —
 * an unknown name (`Object.prototype` member names included), an unknown or fractional number, a
 * boolean — is refused before the method runs, as the service does, instead of being read as the
 * default value. null (the default value in proto3 JSON) passes.
 */
function enumValue(type: protobuf.Enum, value: unknown, field: string): unknown {
  if (value === null) return value;
  if (typeof value === 'string') {
    if (Object.hasOwn(type.values, value)) return value;
    if (/^-?\d{1,10}$/.test(value) && Object.hasOwn(type.valuesById, Number(value))) return Number(value);
    throw new InvalidValue(field, type, JSON.stringify(value.slice(0, 64)));
  }
  if (typeof value === 'number') {
    if (Number.isInteger(value) && Object.hasOwn(type.valuesById, value)) return value;
    throw new InvalidValue(field, type, String(value));
  }
  if (typeof value === 'boolean') throw new InvalidValue(field, type, String(value));
  return value; // an object or a list where a value belongs: refused when the message is decoded
}

// proto3 JSON bytes: standard or URL-safe base64, padded or not
// (https://protobuf.dev/programming-guides/json/).
const BASE64 = /^(?:[A-Za-z0-9+/_-]{4})*(?:[A-Za-z0-9+/_-]{2}(?:==)?|[A-Za-z0-9+/_-]{3}=?)?$/;

// The 32-bit integer types and their ranges.
const INT32_RANGES: Readonly<Record<string, readonly [number, number]>> = {
  int32: [-(2 ** 31), 2 ** 31 - 1],
  sint32: [-(2 ** 31), 2 ** 31 - 1],
  sfixed32: [-(2 ** 31), 2 ** 31 - 1],
  uint32: [0, 2 ** 32 - 1],
  fixed32: [0, 2 ** 32 - 1],
};
const JSON_NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

/**
 * A 32-bit integer field's proto3 JSON value: a number, or a string holding one (as query
 * parameters always do), integral and within the type's range. Anything else is refused as the
 * service refuses it ("Invalid value at 'page_size' (TYPE_INT32), \"abc\""): the decoder would
 * read "abc" as 0, cut 2.5 to 2 and wrap 4294967304 to 8, so `?pageSize=abc` silently listed a
 * default page and `lengthBytes: 4294967304` returned 8 bytes. Other types pass unchanged.
 */
function int32Value(field: protobuf.Field, value: unknown, at: string): unknown {
  if (Object.hasOwn(INT64_RANGES, field.type)) return int64Value(field, value, at);
  const range = INT32_RANGES[field.type];
  if (!range || (typeof value !== 'number' && typeof value !== 'string')) return value;
  const n = typeof value === 'number' ? value : JSON_NUMBER.test(value) ? Number(value) : Number.NaN;
  if (!Number.isInteger(n) || n < range[0] || n > range[1]) {
    const shown = typeof value === 'string' ? JSON.stringify(value.slice(0, 64)) : String(value);
    throw invalid(`Invalid value at '${at}' (TYPE_${field.type.toUpperCase()}), ${shown}`);
  }
  return n;
}

// The 64-bit integer types and their ranges.
const INT64_RANGES: Readonly<Record<string, readonly [bigint, bigint]>> = {
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  sint64: [-(2n ** 63n), 2n ** 63n - 1n],
  sfixed64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n],
  fixed64: [0n, 2n ** 64n - 1n],
};

/**
 * A 64-bit integer field's proto3 JSON value (a number, or a string holding one: "Exponent
 * notation is also accepted", https://protobuf.dev/programming-guides/json/), integral and within
 * the type's range, handed on as its exact decimal digits. Anything else is refused as the service
 * refuses it ("Invalid value at 'plaintext_crc32c.value' (TYPE_INT64), \"18446744073709551616\"").
 * The decoder handed out-of-range digits and `true` on as some other number, so a request checksum
 * of 2^64 or `true` was answered as a checksum mismatch instead of being refused.
 */
function int64Value(field: protobuf.Field, value: unknown, at: string): unknown {
  const range = INT64_RANGES[field.type];
  if (!range) return value;
  let n: bigint | undefined;
  if (typeof value === 'string' && /^-?\d{1,30}$/.test(value)) n = BigInt(value);
  else if (typeof value === 'number' || (typeof value === 'string' && JSON_NUMBER.test(value))) {
    const f = Number(value);
    // A JSON number past 2^53 is already rounded by JSON.parse; its nearest double is judged.
    if (Number.isInteger(f)) n = BigInt(f);
  }
  if (n === undefined || n < range[0] || n > range[1]) {
    const shown = typeof value === 'string' ? JSON.stringify(value.slice(0, 64)) : shownJson(value);
    throw invalid(`Invalid value at '${at}' (TYPE_${field.type.toUpperCase()}), ${shown}`);
  }
  return n.toString();
}

/** How a JSON value that is not a string shows in an error (short, as the service shows it). */
const shownJson = (v: unknown) => (typeof v === 'object' ? JSON.stringify(v).slice(0, 64) : String(v));

/**
 * A string field's proto3 JSON value is a JSON string ("string: JSON value will be the string",
 * https://protobuf.dev/programming-guides/json/), and so is every value of a map<string, string>
 * such as CryptoKey.labels; the decoder turned `{"labels": {"team": 1}}` into the label "1" and
 * `true` into "true". A number, boolean, list or object is refused as the service refuses it
 * ("Invalid value at 'crypto_key.labels[team]' (TYPE_STRING), 1"); null (the default) passes,
 * except as a map value (see mapValue).
 */
function stringValue(field: protobuf.Field, value: unknown, at: string): void {
  if (field.type !== 'string' || value === null || value === undefined || typeof value === 'string') return;
  throw invalid(`Invalid value at '${at}' (TYPE_STRING), ${shownJson(value)}`);
}

/**
 * A map field's value: a JSON object whose values are checked as the map's value type is checked
 * (keys are always strings in JSON). Anything else is refused when the message is decoded.
 */
function mapValue(field: protobuf.Field, value: unknown, path: string): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  if (Object.hasOwn(value, '__proto__')) throw invalid(LABELS_MESSAGE);
  for (const [k, v] of Object.entries(value)) {
    const at = `${path}[${k.slice(0, 64)}]`;
    // null is no map value (Java's JsonFormat: "Map value cannot be null."); it was stored as "null".
    if (v === null || Array.isArray(v) || (typeof v === 'object' && field.resolvedType === null))
      throw invalid(`Invalid value at '${at}' (TYPE_${field.type.toUpperCase()}), ${shownJson(v)}`);
    if (field.resolvedType === null) scalarValue(field, v, at);
  }
  return value;
}

/**
 * A scalar field's value: a list where the field is not repeated is refused as the service
 * refuses it ("Proto field is not repeating, cannot start list."), and a bytes field's string must
 * be base64 ("Invalid value at 'plaintext' (TYPE_BYTES), Base64 decoding failed for \"!!!\""),
 * instead of being decoded leniently (Buffer.from skips what is not base64: "!!!" was read as no
 * bytes at all). Other mismatches are refused when the message is decoded.
 */
function scalarValue(field: protobuf.Field, value: unknown, path: string): unknown {
  if (!field.repeated && Array.isArray(value))
    throw invalid('Invalid JSON payload received. Proto field is not repeating, cannot start list.');
  const check = (v: unknown, at: string) => {
    stringValue(field, v, at);
    // "bool: true, false" (https://protobuf.dev/programming-guides/json/): 1 or "true" is refused,
    // worded as the service words it, not as the decoder library does.
    if (field.type === 'bool' && typeof v !== 'boolean')
      throw invalid(
        `Invalid value at '${at}' (TYPE_BOOL), ${typeof v === 'string' ? JSON.stringify(v.slice(0, 64)) : shownJson(v)}`,
      );
    if (field.type === 'bytes' && typeof v === 'string' && !BASE64.test(v))
      throw invalid(
        `Invalid value at '${at}' (TYPE_BYTES), Base64 decoding failed for ${JSON.stringify(v.slice(0, 64))}`,
      );
    // An integer comes back in range and exact (a 64-bit one as its decimal digits).
    return int32Value(field, v, at);
  };
  if (Array.isArray(value)) return value.map((v, i) => check(v, `${path}[${i}]`));
  return check(value, path);
}

const WRAPPER_TYPES = new Set(
  ['Double', 'Float', 'Int64', 'UInt64', 'Int32', 'UInt32', 'Bool', 'String', 'Bytes'].map(
    (t) => `.google.protobuf.${t}Value`,
  ),
);
const TIME_TYPES = new Set(['.google.protobuf.Timestamp', '.google.protobuf.Duration']);

/**
 * A Timestamp or Duration read from its JSON string, set on the decoded request under `keys`
 * (JSON field names, list indexes). The decoder library is not trusted with these: it refused
 * every negative Duration ("-5s", which the service takes and then judges by the field's own
 * rules), read "s" as 0 s, took a Timestamp without a zone ("2030-01-01T00:00:00") and rolled
 * "2030-02-30" over to March 2, lost the fraction of a Timestamp with an offset, and worded its
 * refusals as the library ("googleProtobufDurationFromProto3JSON: incorrect value … passed as
 * google.protobuf.Duration", even for a Timestamp).
 */
interface TimePatch {
  keys: (string | number)[];
  value: { seconds: number; nanos: number };
}

const TIMESTAMP =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:Z|([+-])(\d{2}):(\d{2}))$/;
const DURATION = /^(-)?(\d{1,20})(?:\.(\d{1,9}))?s$/;

const daysIn = (year: number, month: number) =>
  month === 2
    ? year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)
      ? 29
      : 28
    : [4, 6, 9, 11].includes(month)
      ? 30
      : 31;

/**
 * A Timestamp ("RFC 3339, where generated output will always be Z-normalized … Offsets other than
 * 'Z' are also accepted") or Duration ("seconds with up to 9 fractional digits, suffixed with
 * 's'", https://protobuf.dev/programming-guides/json/) JSON value, refused in the service's words
 * ("Invalid value at 'crypto_key.rotation_period' (type.googleapis.com/google.protobuf.Duration),
 * Field 'rotationPeriod', Illegal duration format; duration must end with 's'"). The range is
 * judged later, as over gRPC (wire.ts fromTimestamp/fromDuration).
 */
function timeValue(
  type: protobuf.Type,
  value: unknown,
  at: string,
  key: string,
): { seconds: number; nanos: number } {
  const isTimestamp = type.fullName === '.google.protobuf.Timestamp';
  const refuse = (why: string) => new InvalidValue(at, type, `Field '${key.slice(0, 64)}', ${why}`);
  if (typeof value !== 'string')
    throw refuse(`Invalid data type for ${isTimestamp ? 'timestamp' : 'duration'}`);
  if (!isTimestamp) {
    if (!value.endsWith('s')) throw refuse("Illegal duration format; duration must end with 's'");
    const m = DURATION.exec(value);
    if (!m) throw refuse('Illegal duration format');
    const sign = m[1] ? -1 : 1;
    return {
      seconds: sign * Number(m[2]) || 0,
      nanos: sign * Number((m[3] ?? '').padEnd(9, '0')) || 0,
    };
  }
  if (!/(?:Z|[+-]\d{2}:\d{2})$/.test(value))
    throw refuse("Illegal timestamp format; timestamps must end with 'Z' or have a valid timezone offset.");
  const m = TIMESTAMP.exec(value);
  const [year, month, day, hour, minute, second] = (m?.slice(1, 7) ?? []).map(Number);
  const [offH, offM] = [Number(m?.[9] ?? 0), Number(m?.[10] ?? 0)];
  if (
    !m ||
    year === undefined ||
    month === undefined ||
    day === undefined ||
    hour === undefined ||
    minute === undefined ||
    second === undefined ||
    month < 1 ||
    month > 12 ||
    day < 1 ||
    day > daysIn(year, month) ||
    hour > 23 ||
    minute > 59 ||
    second > 59 ||
    offH > 23 ||
    offM > 59
  )
    throw refuse('Invalid time format: Failed to parse input');
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day); // also years 0001-0099, which Date.UTC maps to 19xx
  date.setUTCHours(hour, minute, second, 0);
  const offset = (m[8] === '-' ? -1 : 1) * (offH * 3600 + offM * 60);
  return { seconds: date.getTime() / 1000 - offset, nanos: Number((m[7] ?? '').padEnd(9, '0')) };
}

/** Sets a TimePatch's value on the decoded request (made objects where the path is missing). */
function setTime(request: Record<string, unknown>, patch: TimePatch): void {
  let target: unknown = request;
  const last = patch.keys[patch.keys.length - 1];
  for (const k of patch.keys.slice(0, -1)) {
    target = typeof k === 'number' ? (target as unknown[])[k] : child(target as Record<string, unknown>, k);
  }
  if (typeof last === 'string' && target !== null && typeof target === 'object')
    (target as Record<string, unknown>)[last] = patch.value;
}

/**
 * Renames original (snake_case) field names to their JSON names and refuses names the message
 * does not have, as the service does ("Invalid JSON payload received. Unknown name …"), and
 * enum values the enum does not have ("Invalid value at '<field path>' (type.googleapis.com/…)").
 * `at` is the field path of `json` from the request root, in proto (snake_case) names.
 */
function normalize(
  type: protobuf.Type,
  json: unknown,
  patches: TimePatch[],
  depth = 0,
  at = '',
  keys: readonly (string | number)[] = [],
): unknown {
  if (depth > 32) throw invalid('Invalid JSON payload received. Nested too deeply.');
  if (json === null || typeof json !== 'object' || Array.isArray(json)) return json;
  if (type.fullName.startsWith('.google.protobuf.')) return json; // well-known types have their own JSON
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(json)) {
    const name = camel(key);
    const field = ownEntry(type.fields, name);
    if (!field)
      throw invalid(
        `Invalid JSON payload received. Unknown name ${JSON.stringify(key.slice(0, 64))}: Cannot find field.`,
      );
    const path = `${at}${snake(field.name)}`;
    // "null is an accepted value for all field types and treated as the default value of the
    // corresponding field type" (https://protobuf.dev/programming-guides/json/): the field is left
    // unset. The decoder refused `"importOnly": null` and `"versionTemplate": null`.
    if (value === null) continue;
    const resolved = field.resolve().resolvedType;
    const sub = resolved && 'fields' in resolved ? (resolved as protobuf.Type) : undefined;
    const en = resolved && !('fields' in resolved) ? (resolved as protobuf.Enum) : undefined;
    if (field.map) {
      out[name] = mapValue(field, value, path);
    } else if (sub && Array.isArray(value) && field.repeated) {
      out[name] = value.map((v, i) =>
        normalize(sub, v, patches, depth + 1, `${path}[${i}].`, [...keys, name, i]),
      );
    } else if (sub && !field.repeated && TIME_TYPES.has(sub.fullName)) {
      // Read here, not by the decoder, and set on the decoded request (see TimePatch).
      patches.push({ keys: [...keys, name], value: timeValue(sub, value, path, key) });
    } else if (sub && !field.repeated && WRAPPER_TYPES.has(sub.fullName)) {
      // A wrapper's JSON is its value's JSON, checked as that scalar is (path `<field>.value`).
      const inner = ownEntry(sub.fields, 'value');
      out[name] = inner ? scalarValue(inner, value, `${path}.value`) : value;
    } else if (sub) {
      out[name] = normalize(sub, value, patches, depth + 1, `${path}.`, [...keys, name]);
      // A message field holds a JSON object (its well-known types have their own JSON forms);
      // `"versionTemplate": 5` was read as an empty template and the key created.
      if (
        !sub.fullName.startsWith('.google.protobuf.') &&
        (typeof value !== 'object' || Array.isArray(value))
      ) {
        if (Array.isArray(value))
          throw invalid('Invalid JSON payload received. Proto field is not repeating, cannot start list.');
        throw new InvalidValue(
          path,
          sub,
          typeof value === 'string' ? JSON.stringify(value.slice(0, 64)) : String(value),
        );
      }
    } else if (en && Array.isArray(value) && field.repeated) {
      out[name] = value.map((v, i) => enumValue(en, v, `${path}[${i}]`));
    } else if (en && !field.repeated) {
      out[name] = enumValue(en, value, path);
    } else {
      out[name] = scalarValue(field, value, path);
    }
  }
  return out;
}

const SYSTEM_PARAMETERS = new Set([
  'alt',
  'key',
  'access_token',
  'prettyPrint',
  'fields',
  'callback',
  'quotaUser',
  'upload_protocol',
  'uploadType',
]);

/** Sets a query parameter on the request JSON, typed by the request message's field. */
function setQuery(type: protobuf.Type, json: Record<string, unknown>, key: string, value: string): void {
  const path = key.split('.');
  let t: protobuf.Type | undefined = type;
  let target = json;
  for (let i = 0; i < path.length; i++) {
    const name = camel(path[i] ?? '');
    const field: protobuf.Field | undefined = t && ownEntry(t.fields, name);
    if (!field)
      throw invalid(`Invalid query parameter ${JSON.stringify(key.slice(0, 64))}: Cannot find field.`);
    const resolved: protobuf.Type | protobuf.Enum | null = field.resolve().resolvedType;
    const isMessage =
      resolved !== null && 'fields' in resolved && !resolved.fullName.startsWith('.google.protobuf.');
    if (i < path.length - 1) {
      if (!isMessage || field.repeated)
        throw invalid(`Invalid query parameter ${JSON.stringify(key.slice(0, 64))}.`);
      target = child(target, name);
      t = resolved as protobuf.Type;
      continue;
    }
    if (isMessage) throw invalid(`Query parameter ${JSON.stringify(key.slice(0, 64))} names a message.`);
    if (field.repeated) {
      if (target[name] === undefined) target[name] = [];
      const list = target[name];
      if (!Array.isArray(list)) throw invalid(`Invalid query parameter ${JSON.stringify(key.slice(0, 64))}.`);
      list.push(typedQuery(field, resolved, value, `${fieldPath(path)}[${list.length}]`));
    } else {
      target[name] = typedQuery(field, resolved, value, fieldPath(path));
    }
  }
}

/** A query parameter's name (`versionView`, `options.requestedPolicyVersion`) as a proto field path. */
const fieldPath = (segments: string[]) => segments.map((seg) => snake(camel(seg))).join('.');

/** A query parameter's string as its field's proto3 JSON value (enums checked as in a body). */
function typedQuery(
  field: protobuf.Field,
  resolved: protobuf.Type | protobuf.Enum | null,
  value: string,
  at: string,
): unknown {
  if (Object.hasOwn(INT32_RANGES, field.type) || Object.hasOwn(INT64_RANGES, field.type))
    return int32Value(field, value, at);
  if (field.type === 'float' || field.type === 'double') return Number(value);
  if (field.type === 'bool') return value === 'true' ? true : value === 'false' ? false : value;
  if (resolved && !('fields' in resolved)) return enumValue(resolved, value, at);
  return value;
}

/**
 * A FieldMask in JSON is one string of lowerCamel paths ("In JSON, a field mask is encoded as a
 * single string where paths are separated by a comma. Fields name in each path are converted
 * to/from lower-camel naming conventions", google/protobuf/field_mask.proto). proto3-json-serializer
 * splits the string but keeps the JSON names, so the top-level masks of a request (`update_mask`)
 * are turned into the proto field names here, as the gRPC decoder delivers them; a path already
 * in snake_case is unchanged.
 */
function protoFieldMasks(type: protobuf.Type, request: object): object {
  const out = request as Record<string, unknown>;
  for (const field of type.fieldsArray) {
    const mask = out[field.name] as { paths?: unknown } | null | undefined;
    if (field.resolve().resolvedType?.fullName !== '.google.protobuf.FieldMask' || !mask) continue;
    if (Array.isArray(mask.paths)) {
      out[field.name] = { ...mask, paths: mask.paths.map((p) => snake(String(p).trim())) };
    }
  }
  return out;
}

/** The object under `key`, made when missing. */
function child(target: Record<string, unknown>, key: string): Record<string, unknown> {
  const next = target[key];
  if (next !== null && typeof next === 'object' && !Array.isArray(next))
    return next as Record<string, unknown>;
  const made: Record<string, unknown> = {};
  target[key] = made;
  return made;
}

function setPath(json: Record<string, unknown>, path: string[], value: string): void {
  let target = json;
  for (const seg of path.slice(0, -1)) {
    target = child(target, seg);
  }
  target[path[path.length - 1] ?? ''] = value;
}

/**
 * Whether a query parameter names a field the path or the body already binds. Only the fields
 * "not bound by the path template" (nor by the body field) are query parameters (google.api.http
 * HttpRule), so such a parameter is ignored rather than replacing the bound value: `?parent=…` on
 * `POST /v1/{parent=…}/keyRings` used to create the key ring under the query's parent, and
 * `?cryptoKey.purpose=MAC` replaced the purpose the body gave.
 */
function boundElsewhere(route: Route, key: string): boolean {
  const path = key.split('.').map(camel);
  // A path variable is a scalar: the same field path. The body field is a message: it or under it.
  const same = (bound: readonly string[]) =>
    bound.length === path.length && bound.every((seg, i) => seg === path[i]);
  if (route.vars.some(same)) return true;
  return route.body !== undefined && route.body !== '*' && path[0] === camel(route.body);
}

class BodyTooLarge extends Error {}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > MAX_REST_BODY) return reject(new BodyTooLarge());
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_REST_BODY) {
        req.pause();
        reject(new BodyTooLarge());
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function sendJson(res: ServerResponse, httpStatus: number, body: unknown, close = false): void {
  const payload = JSON.stringify(body);
  res.writeHead(httpStatus, {
    'content-type': 'application/json; charset=UTF-8',
    'content-length': Buffer.byteLength(payload),
    ...(close && { connection: 'close' }),
  });
  res.end(payload);
}

export function errorBody(
  code: status,
  message: string,
  details?: object[],
): { error: { code: number; message: string; status: string; details?: object[] } } {
  return {
    error: {
      code: HTTP_STATUS[code] ?? 500,
      message,
      status: status[code] ?? 'UNKNOWN',
      ...(details && { details }),
    },
  };
}

/** The error body of an RpcError, with the google.rpc.BadRequest of a field's invalid value. */
function rpcErrorBody(err: RpcError): ReturnType<typeof errorBody> {
  if (!(err instanceof InvalidValue)) return errorBody(err.code, err.message);
  return errorBody(err.code, err.message, [
    {
      '@type': 'type.googleapis.com/google.rpc.BadRequest',
      fieldViolations: [{ field: err.field, description: err.message }],
    },
  ]);
}

export interface RestServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

export async function startRestServer(opts: {
  routes: Route[];
  invoke: Invoke;
  dropped: symbol;
  host: string;
  port: number;
  tls?: { cert: Buffer; key: Buffer };
  sockets: Set<Socket>;
  limits?: Readonly<RestLimits>;
}): Promise<RestServer> {
  const limits = opts.limits ?? REST_LIMITS;
  // The accepted (TCP) sockets in recency order: moved to the end when a request starts or ends.
  const conns = new Map<Socket, { spoke: boolean; since: number }>();
  // A request's socket is the TLS socket over the accepted one under https; `_parent` links them
  // (an undocumented field, hence the fallback: a request it misses counts as no activity).
  const accepted = (s: Socket) => (s as Socket & { _parent?: Socket })._parent ?? s;
  // Evicts the oldest connection silent for SILENT_GRACE_MS or more; false when there is none (a
  // younger one may be a client whose request is still on its way).
  const evictSilent = () => {
    const now = Date.now();
    for (const [s, c] of conns) {
      if (c.spoke) continue;
      if (now - c.since < SILENT_GRACE_MS) return false;
      conns.delete(s);
      s.destroy();
      return true;
    }
    return false;
  };
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    let raw: Buffer;
    try {
      raw = await readBody(req);
    } catch (e) {
      if (e instanceof BodyTooLarge) {
        // Google's API front end answers an oversized JSON body with 400 INVALID_ARGUMENT
        // naming the limit ("Request payload size exceeds the limit: N bytes."); the HTTP
        // status and `error.code` agree, as in every other error (this was 413 with code 400).
        sendJson(
          res,
          HTTP_STATUS[status.INVALID_ARGUMENT] ?? 400,
          errorBody(
            status.INVALID_ARGUMENT,
            `Request payload size exceeds the limit: ${MAX_REST_BODY} bytes.`,
          ),
          true,
        );
        req.socket.end();
        return;
      }
      throw e;
    }
    const method = (req.method ?? 'GET').toUpperCase();
    const path = url.pathname;
    let match: { route: Route; groups: string[] } | undefined;
    for (const route of opts.routes) {
      if (route.httpMethod !== method) continue;
      const m = route.regex.exec(path);
      if (m) {
        match = { route, groups: m.slice(1) };
        break;
      }
    }
    if (!match) {
      sendJson(
        res,
        404,
        errorBody(
          status.NOT_FOUND,
          `The requested URL ${JSON.stringify(path.slice(0, 200))} was not found on this server.`,
        ),
      );
      return;
    }
    const { route, groups } = match;
    const numericEnums = /enum-encoding=int/.test(url.searchParams.get('$alt') ?? '');
    try {
      let json: Record<string, unknown> = {};
      if (route.body !== undefined && raw.length > 0) {
        let parsed: unknown;
        try {
          parsed = JSON.parse(raw.toString('utf8'));
        } catch {
          throw invalid('Invalid JSON payload received. The body is not JSON.');
        }
        if (route.body === '*') {
          if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
            throw invalid('Invalid JSON payload received. The body must be a JSON object.');
          json = parsed as Record<string, unknown>;
        } else if (parsed !== '') {
          json = { [camel(route.body)]: parsed };
        }
        // else: @google-cloud/kms (google-gax's REST transcoder) sends `""` as the body when the
        // body field is an empty message (CreateKeyRing's `keyRing: {}`), and the service takes it
        // as that empty message.
      }
      const patches: TimePatch[] = [];
      json = normalize(route.requestType, json, patches) as Record<string, unknown>;
      route.vars.forEach((fieldPath, i) => {
        let value: string;
        try {
          value = decodeURIComponent(groups[i] ?? '');
        } catch {
          throw invalid('The request URL is malformed.');
        }
        setPath(json, fieldPath, value);
      });
      if (route.body !== '*') {
        for (const [k, v] of url.searchParams) {
          if (k.startsWith('$') || SYSTEM_PARAMETERS.has(k) || boundElsewhere(route, k)) continue;
          setQuery(route.requestType, json, k, v);
        }
      }
      let request: unknown;
      try {
        const message = fromProto3JSON(route.requestType, json as Parameters<typeof fromProto3JSON>[1]);
        if (message === null) throw new Error('null message');
        const problem = route.requestType.verify(message);
        if (problem) throw new Error(problem);
        request = protoFieldMasks(route.requestType, route.requestType.toObject(message, OBJECT_OPTIONS));
        for (const patch of patches) setTime(request as Record<string, unknown>, patch);
      } catch (e) {
        if (e instanceof RpcError) throw e;
        throw invalid(
          `Invalid JSON payload received. ${(e instanceof Error ? e.message : '').slice(0, 200)}`,
        );
      }
      const result = await opts.invoke(route.rpc, route.handler, request, (name) => {
        const v = req.headers[name];
        return Array.isArray(v) ? v[0] : v;
      });
      if (result === opts.dropped) return;
      sendJson(res, 200, toJson(route.responseType, result as object, numericEnums));
    } catch (err) {
      if (err instanceof RpcError) {
        sendJson(res, HTTP_STATUS[err.code] ?? 500, rpcErrorBody(err));
      } else {
        sendJson(
          res,
          500,
          errorBody(status.INTERNAL, 'Internal error in the keyport Cloud KMS test server.'),
        );
      }
    }
  };

  const listener = (req: IncomingMessage, res: ServerResponse) => {
    const socket = accepted(req.socket);
    const c = conns.get(socket);
    if (c && !c.spoke) {
      c.spoke = true;
      socket.setTimeout(0);
    }
    handle(req, res).catch(() => {
      if (!res.headersSent && !res.destroyed)
        sendJson(
          res,
          500,
          errorBody(status.INTERNAL, 'Internal error in the keyport Cloud KMS test server.'),
        );
    });
  };
  const server: Server = opts.tls
    ? createHttpsServer({ cert: opts.tls.cert, key: opts.tls.key }, listener)
    : createHttpServer(listener);
  server.headersTimeout = 30_000;
  server.requestTimeout = 60_000;
  server.on('connection', (s: Socket) => {
    let silent = 0;
    for (const c of conns.values()) if (!c.spoke) silent++;
    while (silent >= limits.maxConnections && evictSilent()) silent--;
    const c = { spoke: false, since: Date.now() };
    conns.set(s, c);
    s.on('close', () => conns.delete(s));
    s.setTimeout(limits.silentMs);
    s.on('timeout', () => {
      if (!c.spoke) s.destroy();
    });
    s.setNoDelay(true);
    opts.sockets.add(s);
    s.on('close', () => opts.sockets.delete(s));
  });
  server.on('secureConnection', (s: Socket) => {
    opts.sockets.add(s);
    s.on('close', () => opts.sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const hostInUrl = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  return {
    url: `${opts.tls ? 'https' : 'http'}://${hostInUrl}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
