/**
 * Transit key types <-> keyport key specs, and a transit key read -> KeyInfo.
 *
 * Core's KeySpec has no name for chacha20-poly1305 or ed25519 keys, so those are created with
 * `createTransitKey` and are usable for encrypt/decrypt (chacha20) through the portable API,
 * but `describeKey` refuses them with Unsupported rather than report a spec that is not true.
 */
import {
  formatKeyUri,
  type KeyInfo,
  type KeySpec,
  type KeyUsage,
  type KeyVersionInfo,
  USAGES_BY_SPEC,
} from '@keyport/core';

export const TRANSIT_KEY_TYPES = [
  'aes256-gcm96',
  'chacha20-poly1305',
  'rsa-2048',
  'rsa-3072',
  'rsa-4096',
  'ecdsa-p256',
  'ecdsa-p384',
  'ed25519',
  'hmac',
] as const;
export type TransitKeyType = (typeof TRANSIT_KEY_TYPES)[number];

export const TYPE_BY_SPEC: Readonly<Record<KeySpec, TransitKeyType>> = {
  AES_256: 'aes256-gcm96',
  RSA_2048: 'rsa-2048',
  RSA_3072: 'rsa-3072',
  RSA_4096: 'rsa-4096',
  EC_P256: 'ecdsa-p256',
  EC_P384: 'ecdsa-p384',
  HMAC_256: 'hmac',
};

/** Usages per spec: exactly core's (transit RSA keys both encrypt with OAEP and sign). */
export const USAGES = USAGES_BY_SPEC;

export function specOfType(type: string): KeySpec | undefined {
  for (const [spec, t] of Object.entries(TYPE_BY_SPEC)) if (t === type) return spec as KeySpec;
  return undefined;
}

/** AEAD types take `associated_data`; RSA encryption has nowhere to put it. */
export function isAead(type: string): boolean {
  return type === 'aes256-gcm96' || type === 'aes128-gcm96' || type === 'chacha20-poly1305';
}

/** The fields of `GET <mount>/keys/<name>` keyport reads. */
export interface TransitKeyData {
  readonly name: string;
  readonly type: string;
  /** Absent for hmac keys. */
  readonly keys?: Record<string, number | { creation_time?: string; public_key?: string; name?: string }>;
  readonly latest_version: number;
  readonly min_decryption_version: number;
  readonly min_encryption_version: number;
  readonly min_available_version: number;
  readonly auto_rotate_period?: number;
  readonly deletion_allowed?: boolean;
  readonly derived?: boolean;
  readonly exportable?: boolean;
  readonly imported_key?: boolean;
  readonly soft_deleted?: boolean;
}

function createdAt(entry: NonNullable<TransitKeyData['keys']>[string] | undefined): Date | undefined {
  if (entry === undefined) return undefined;
  if (typeof entry === 'number') return new Date(entry * 1000);
  return entry.creation_time !== undefined ? new Date(entry.creation_time) : undefined;
}

export interface KeyLocation {
  readonly address: string;
  readonly mount: string;
  readonly name: string;
}

export function keyUriOf(loc: KeyLocation): string {
  return formatKeyUri({ scheme: 'hcvault', address: loc.address, mount: loc.mount, name: loc.name });
}

/** KeyInfo for a key whose spec core can name; undefined for chacha20 / ed25519 keys. */
export interface KeyInfoExtras {
  readonly usage?: KeyUsage | undefined;
  readonly labels?: Readonly<Record<string, string>> | undefined;
  readonly description?: string | undefined;
}

export function toKeyInfo(
  loc: KeyLocation,
  data: TransitKeyData,
  extras: KeyInfoExtras = {},
): KeyInfo | undefined {
  const usageHint = extras.usage;
  const spec = specOfType(data.type);
  if (spec === undefined) return undefined;
  const usages = USAGES[spec];
  const usage = usageHint !== undefined && usages.includes(usageHint) ? usageHint : (usages[0] as KeyUsage);
  const minAvailable = Math.max(data.min_available_version, 1);
  const versions: KeyVersionInfo[] = [];
  for (let v = 1; v <= data.latest_version; v++) {
    const at = createdAt(data.keys?.[String(v)]);
    const state = v < minAvailable ? 'destroyed' : v < data.min_decryption_version ? 'disabled' : 'enabled';
    versions.push({ version: String(v), state, ...(at !== undefined ? { createdAt: at } : {}) });
  }
  const first = createdAt(data.keys?.[String(minAvailable)]);
  const period = data.auto_rotate_period ?? 0;
  return {
    uri: keyUriOf(loc),
    spec,
    usage,
    state: data.soft_deleted === true ? 'disabled' : 'enabled',
    ...(first !== undefined && minAvailable === 1 ? { createdAt: first } : {}),
    primaryVersion: String(data.latest_version),
    versions,
    labels: { ...extras.labels },
    ...(extras.description !== undefined ? { description: extras.description } : {}),
    ...(period > 0 ? { rotation: { periodDays: period / 86_400 } } : {}),
    origin: data.imported_key === true ? 'external' : 'provider',
  };
}
