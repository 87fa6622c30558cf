// Request-body checks shared by the routes. Anything malformed is a 400 BadParameter, as the
// service answers.
import { badParameter } from './errors.js';
import { DEFAULT_OPS, type KeyFamily } from './material.js';
import type { KeyAttributes } from './store.js';

export type Body = Record<string, unknown>;

const NAME = /^[0-9a-zA-Z-]{1,127}$/;

/**
 * The latest instant the service can store (it keeps times as .NET DateTime, whose range ends at
 * 9999-12-31T23:59:59Z): `exp`, `nbf` and every time a rotation policy computes stay below it.
 * (Times before 1970 are negative and stored: the JS client sends dates after 2038 as negative
 * numbers, truncating seconds to 32 bits, and the service keeps what it is sent.)
 */
export const MAX_UNIX_SECONDS = 253_402_300_799;
/** The first instant of that range (0001-01-01T00:00:00Z). */
export const MIN_UNIX_SECONDS = -62_135_596_800;

export function checkName(name: string): string {
  if (!NAME.test(name)) throw badParameter(`The request URI contains an invalid name: ${name}`);
  return name;
}

export function bytesField(body: Body, field: string, required: true): Buffer;
export function bytesField(body: Body, field: string, required: false): Buffer | undefined;
export function bytesField(body: Body, field: string, required: boolean): Buffer | undefined {
  const v = body[field];
  if (v === undefined || v === null) {
    if (required) throw badParameter(`Property '${field}' is required.`);
    return undefined;
  }
  if (typeof v !== 'string' || !/^[A-Za-z0-9_-]*={0,2}$/.test(v)) {
    throw badParameter(`Property '${field}' must be base64url-encoded.`);
  }
  return Buffer.from(v, 'base64url');
}

export function stringField(body: Body, field: string): string {
  const v = body[field];
  if (typeof v !== 'string' || v.length === 0) throw badParameter(`Property '${field}' is required.`);
  return v;
}

const ALL_OPS = ['encrypt', 'decrypt', 'sign', 'verify', 'wrapKey', 'unwrapKey', 'import', 'export'];

export function keyOps(value: unknown, family: KeyFamily): string[] {
  if (value === undefined || value === null) return [...DEFAULT_OPS[family]];
  if (!Array.isArray(value)) throw badParameter('key_ops must be an array.');
  const out: string[] = [];
  for (const op of value) {
    if (typeof op !== 'string' || !ALL_OPS.includes(op)) {
      throw badParameter(`Invalid key operation '${String(op)}'.`);
    }
    if (op === 'import' || op === 'export') {
      // The BYOK key-exchange key (import) and key release (export) need features this server,
      // like a vault without them, does not offer.
      throw badParameter(`Key operation '${op}' is not supported by this vault.`);
    }
    if (!DEFAULT_OPS[family].includes(op)) {
      throw badParameter(`Key operation '${op}' is not valid for this key type.`);
    }
    if (!out.includes(op)) out.push(op);
  }
  return out;
}

export function tags(value: unknown): Record<string, string> | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) throw badParameter('tags must be an object.');
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length > 15) throw badParameter('A key can have at most 15 tags.');
  for (const [k, v] of entries) {
    if (typeof v !== 'string' || k.length > 512 || v.length > 256) {
      throw badParameter('Tag names are at most 512 characters and values strings of at most 256.');
    }
  }
  return Object.fromEntries(entries) as Record<string, string>;
}

export interface AttributeUpdate {
  enabled?: boolean;
  nbf?: number | undefined;
  exp?: number | undefined;
}

/** The settable members of `attributes`: enabled, nbf, exp (Unix seconds). */
export function attributesUpdate(value: unknown): AttributeUpdate {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw badParameter('attributes must be an object.');
  const a = value as Record<string, unknown>;
  const out: AttributeUpdate = {};
  if (a.enabled !== undefined && a.enabled !== null) {
    if (typeof a.enabled !== 'boolean') throw badParameter('attributes.enabled must be a boolean.');
    out.enabled = a.enabled;
  }
  for (const f of ['nbf', 'exp'] as const) {
    const v = a[f];
    if (v === undefined) continue;
    if (
      v !== null &&
      (typeof v !== 'number' || !Number.isInteger(v) || v < MIN_UNIX_SECONDS || v > MAX_UNIX_SECONDS)
    ) {
      throw badParameter(
        `attributes.${f} must be a Unix time in seconds between ${MIN_UNIX_SECONDS} (0001-01-01T00:00:00Z) and ${MAX_UNIX_SECONDS} (9999-12-31T23:59:59Z).`,
      );
    }
    out[f] = v === null ? undefined : v;
  }
  if (a.exportable === true) {
    throw badParameter('Exportable keys need a release policy; key release is not supported by this vault.');
  }
  return out;
}

export function applyAttributes(target: KeyAttributes, u: AttributeUpdate): void {
  if (u.enabled !== undefined) target.enabled = u.enabled;
  for (const f of ['nbf', 'exp'] as const) {
    if (!(f in u)) continue;
    const v = u[f];
    if (v === undefined) delete target[f];
    else target[f] = v;
  }
}
