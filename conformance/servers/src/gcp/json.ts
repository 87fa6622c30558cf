import { toProto3JSON } from 'proto3-json-serializer';
import type protobuf from 'protobufjs';
import { ownEntry } from '../shared/own.js';

// A handler's plain object (the shape @grpc/proto-loader produces) as proto3 JSON, as the REST
// surface writes it and the list filters read it: RFC 3339 times, "1.5s" durations, base64
// bytes, enum names (or numbers on request), 64-bit integers as strings, Any as {"@type", …}.
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const INT64 = /^(u?int64|s?fixed64|sint64)$/;
const ANY = '.google.protobuf.Any';

/** proto3 JSON writes 64-bit integers (and Int64Value/UInt64Value) as strings, as the service does. */
function int64AsStrings(type: protobuf.Type, json: unknown, depth = 0): unknown {
  if (json === null || typeof json !== 'object' || Array.isArray(json) || depth > 32) return json;
  const out: Record<string, unknown> = { ...(json as Record<string, unknown>) };
  for (const [key, value] of Object.entries(out)) {
    const field = ownEntry(type.fields, key);
    if (!field) continue;
    const resolved = field.resolve().resolvedType;
    const wrapper =
      resolved?.fullName === '.google.protobuf.Int64Value' ||
      resolved?.fullName === '.google.protobuf.UInt64Value';
    const convert = (v: unknown): unknown =>
      (INT64.test(field.type) || wrapper) && typeof v === 'number'
        ? String(v)
        : resolved && 'fields' in resolved && !field.map && resolved.fullName !== ANY
          ? int64AsStrings(resolved as protobuf.Type, v, depth + 1)
          : v;
    out[key] = Array.isArray(value) ? value.map(convert) : convert(value);
  }
  return out;
}

export function toJson(type: protobuf.Type, value: object, numericEnums = false): Json {
  const message = type.fromObject(value as Record<string, unknown>);
  return int64AsStrings(type, toProto3JSON(message, { numericEnums })) as Json;
}
