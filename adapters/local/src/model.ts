/**
 * The keystore body: the JSON document sealed inside the keystore file. Dates are ISO-8601
 * strings, key material is base64 (raw bytes for AES/HMAC, PKCS#8 DER for RSA/EC).
 */
import { createHash } from 'node:crypto';
import {
  GRANT_OPERATIONS,
  type GrantOperation,
  KEY_SPECS,
  KEY_STATES,
  KEY_USAGES,
  KEY_VERSION_STATES,
  type KeySpec,
  type KeyState,
  type KeyUsage,
  type KeyVersionState,
  MAX_DATE_MS,
  MIN_DATE_MS,
  USAGES_BY_SPEC,
} from '@keyport/core';
import { localError } from './errors.js';
import { WRAPPING_KEY_BITS } from './import.js';
import { isRsaPkcs8, materialMatchesSpec } from './key-material.js';

export const BODY_FORMAT = 1;

export interface StoredVersion {
  version: number;
  state: KeyVersionState;
  createdAt: string;
  /** Absent while pending import and after destruction. */
  material?: string;
  destroyedAt?: string;
}

export interface StoredGrant {
  id: string;
  grantee: string;
  operations: GrantOperation[];
  contextEquals?: Record<string, string>;
  contextSubset?: Record<string, string>;
  expiresAt?: string;
  name?: string;
  createdAt: string;
}

export interface StoredImportJob {
  /** base64 of the random import token. */
  token: string;
  /** base64 PKCS#8 DER of the RSA wrapping private key. */
  wrappingKey: string;
  expiresAt: string;
}

export interface StoredKey {
  name: string;
  spec: KeySpec;
  usage: KeyUsage;
  state: KeyState;
  origin: 'provider' | 'external';
  createdAt: string;
  labels: Record<string, string>;
  description?: string;
  /** 0 while no version holds material (pending import). */
  primaryVersion: number;
  versions: StoredVersion[];
  rotationPeriodDays?: number;
  nextRotationAt?: string;
  deletionDate?: string;
  grants: StoredGrant[];
  importJob?: StoredImportJob;
}

export interface KeystoreBody {
  format: number;
  /** The principal that may manage keys and grants. */
  owner: string;
  createdAt: string;
  keys: StoredKey[];
}

export function emptyBody(owner: string, now: Date): KeystoreBody {
  return { format: BODY_FORMAT, owner, createdAt: now.toISOString(), keys: [] };
}

export function findKey(body: KeystoreBody, name: string): StoredKey | undefined {
  return body.keys.find((k) => k.name === name);
}

// ------------------------------------------------------------------ validation on load

function corrupt(what: string): never {
  throw localError('Integrity', `keystore body is malformed (${what})`);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isStringMap(v: unknown): v is Record<string, string> {
  return isRecord(v) && Object.values(v).every((x) => typeof x === 'string');
}

/** An ISO date within core's range (1970..9999): a date at the start of time is not a schedule. */
function isDate(v: unknown): v is string {
  if (typeof v !== 'string' || v.length > 40) return false;
  const t = Date.parse(v);
  return t >= MIN_DATE_MS && t <= MAX_DATE_MS;
}

function optional(v: unknown, check: (x: unknown) => boolean): boolean {
  return v === undefined || check(v);
}

const isStr = (v: unknown): boolean => typeof v === 'string';

/** What a key name may be: what core's `local://<path>#<name>` URI grammar can address. */
export const KEY_NAME = /^[A-Za-z0-9_.-]{1,256}$/;
const isKeyName = (v: unknown): boolean => typeof v === 'string' && KEY_NAME.test(v);
/** The grant ids revokeGrant takes (1-1024 characters): a grant it cannot name cannot be revoked. */
const isGrantId = (v: unknown): boolean => typeof v === 'string' && v.length > 0 && v.length <= 1024;
const isPosInt = (v: unknown): boolean => Number.isInteger(v) && (v as number) > 0;
/** The largest key version: the ciphertext format stores it as an unsigned 32-bit integer. */
export const MAX_VERSION = 2 ** 32 - 1;

/**
 * A key version: 1 .. MAX_VERSION, as ciphertexts carry it. A larger one loaded, and encrypt
 * made ciphertexts that decrypt refused ("key version"): data sealed for good.
 */
const isVersionNumber = (v: unknown): boolean => isPosInt(v) && (v as number) <= MAX_VERSION;

/**
 * Material is canonical base64 whose bytes have the structure of the spec (see
 * materialMatchesSpec). Without this a sealed body with a 3-byte AES key loaded fine and the
 * first encrypt threw node:crypto's RangeError, and an EC key holding RSA material signed.
 */
function materialFits(material: unknown, spec: KeySpec): boolean {
  if (material === undefined) return true;
  if (typeof material !== 'string') return false;
  // Every read re-validates the body; parsing each RSA key again would dominate. The verdict
  // depends only on (spec, material), so recent ones are remembered by a digest of both.
  const memo = createHash('sha256').update(spec).update('\0').update(material).digest('base64');
  const known = MATERIAL_VERDICTS.get(memo);
  if (known !== undefined) return known;
  const bytes = canonicalBase64(material);
  let fits = false;
  if (bytes !== undefined) {
    try {
      fits = materialMatchesSpec(spec, bytes);
    } finally {
      bytes.fill(0);
    }
  }
  if (MATERIAL_VERDICTS.size >= 4096) MATERIAL_VERDICTS.clear();
  MATERIAL_VERDICTS.set(memo, fits);
  return fits;
}

const MATERIAL_VERDICTS = new Map<string, boolean>();

/** The bytes of canonical base64 (what the keystore writes), or undefined. */
function canonicalBase64(value: unknown): Buffer | undefined {
  if (typeof value !== 'string' || value.length > 64 * 1024 || !/^[A-Za-z0-9+/]*={0,2}$/.test(value))
    return undefined;
  const bytes = Buffer.from(value, 'base64');
  if (bytes.toString('base64') !== value) {
    bytes.fill(0);
    return undefined;
  }
  return bytes;
}

/** An import job's wrapping key is an RSA-3072 PKCS#8 key and its token 32 random bytes, canonical base64. */
function importJobFits(job: Record<string, unknown>): boolean {
  const token = canonicalBase64(job.token);
  const key = canonicalBase64(job.wrappingKey);
  try {
    return (
      token !== undefined &&
      token.length > 0 &&
      token.length <= 256 &&
      key !== undefined &&
      isRsaPkcs8(key, WRAPPING_KEY_BITS)
    );
  } finally {
    key?.fill(0);
  }
}

function checkVersion(v: unknown, where: string, spec: KeySpec): void {
  if (
    !isRecord(v) ||
    !isVersionNumber(v.version) ||
    !KEY_VERSION_STATES.includes(v.state as KeyVersionState) ||
    !isDate(v.createdAt) ||
    !materialFits(v.material, spec) ||
    !optional(v.destroyedAt, isDate)
  ) {
    corrupt(`${where} version`);
  }
}

/** The documented rotation period range (whole days); larger values overflow Date. */
const isRotationDays = (v: unknown): boolean => isPosInt(v) && (v as number) <= 36_500;

function checkGrant(g: unknown, where: string): void {
  if (
    !isRecord(g) ||
    !isGrantId(g.id) ||
    !isStr(g.grantee) ||
    !Array.isArray(g.operations) ||
    !g.operations.every((op) => GRANT_OPERATIONS.includes(op as GrantOperation)) ||
    !optional(g.contextEquals, isStringMap) ||
    !optional(g.contextSubset, isStringMap) ||
    !optional(g.expiresAt, isDate) ||
    !optional(g.name, isStr) ||
    !isDate(g.createdAt)
  ) {
    corrupt(`${where} grant`);
  }
}

function checkKey(k: unknown, index: number): void {
  const where = `key #${index}`;
  if (
    !isRecord(k) ||
    // A name no key URI can address: the key could not be reached, and listKeys (which makes
    // every key's URI) failed with InvalidArgument for the whole keystore.
    !isKeyName(k.name) ||
    !KEY_SPECS.includes(k.spec as KeySpec) ||
    !KEY_USAGES.includes(k.usage as KeyUsage) ||
    // The usage must fit the (just checked) spec, as createKey makes sure: an HMAC key marked
    // encrypt_decrypt loaded, and encrypt handed its raw bytes to RSA-OAEP (a raw OpenSSL error).
    !USAGES_BY_SPEC[k.spec as KeySpec].includes(k.usage as KeyUsage) ||
    !KEY_STATES.includes(k.state as KeyState) ||
    (k.origin !== 'provider' && k.origin !== 'external') ||
    !isDate(k.createdAt) ||
    !isStringMap(k.labels) ||
    !optional(k.description, isStr) ||
    !Number.isInteger(k.primaryVersion) ||
    !Array.isArray(k.versions) ||
    !Array.isArray(k.grants) ||
    !optional(k.rotationPeriodDays, isRotationDays) ||
    !optional(k.nextRotationAt, isDate) ||
    // A rotation date without a period: the schedule could never advance, so every use of the
    // key added a version and wrote the file, until it outgrew MAX_KEYSTORE_BYTES.
    (k.nextRotationAt !== undefined && k.rotationPeriodDays === undefined) ||
    !optional(k.deletionDate, isDate)
  ) {
    corrupt(where);
  }
  for (const v of k.versions) checkVersion(v, where, k.spec as KeySpec);
  // Version numbers are unique, and the primary one (0 while pending import) exists.
  const numbers = k.versions.map((v: StoredVersion) => v.version);
  if (new Set(numbers).size !== numbers.length) corrupt(`${where} duplicate versions`);
  if (k.primaryVersion !== 0 && !numbers.includes(k.primaryVersion as number))
    corrupt(`${where} primary version`);
  for (const g of k.grants) checkGrant(g, where);
  const job = k.importJob;
  if (job !== undefined && (!isRecord(job) || !isDate(job.expiresAt) || !importJobFits(job))) {
    corrupt(`${where} import job`);
  }
}

/** Checks the shape of a decrypted body; anything unexpected is an Integrity error. */
export function validateBody(value: unknown): KeystoreBody {
  if (!isRecord(value) || value.format !== BODY_FORMAT || !isStr(value.owner) || !isDate(value.createdAt)) {
    corrupt('header fields');
  }
  if (!Array.isArray(value.keys)) corrupt('keys');
  value.keys.forEach(checkKey);
  const names = new Set(value.keys.map((k: StoredKey) => k.name));
  if (names.size !== value.keys.length) corrupt('duplicate key names');
  return value as unknown as KeystoreBody;
}
