// Key material: generation, JWK import, the public JWK a key bundle shows, and (de)serialisation
// for backups. Private and secret material never leaves this module except into an encrypted
// backup blob.
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPair,
  type JsonWebKey,
  type KeyObject,
  randomBytes,
} from 'node:crypto';
import { promisify } from 'node:util';
import { ownEntry } from '../shared/own.js';
import { badParameter } from './errors.js';

export type ServerMode = 'vault' | 'hsm';
export type KeyFamily = 'RSA' | 'EC' | 'oct';

export interface KeyMaterial {
  /** The kty the key bundle reports (RSA, RSA-HSM, EC, EC-HSM, oct-HSM). */
  readonly kty: string;
  readonly family: KeyFamily;
  readonly privateKey?: KeyObject;
  readonly publicKey?: KeyObject;
  readonly crv?: string;
  readonly bits: number;
  readonly secret?: Buffer;
}

const generateKeyPairAsync = promisify(generateKeyPair);

export const RSA_SIZES = [2048, 3072, 4096];
export const OCT_SIZES = [128, 192, 256];
const CURVE_NAMES: Record<string, string> = {
  'P-256': 'prime256v1',
  'P-384': 'secp384r1',
  'P-521': 'secp521r1',
  'P-256K': 'secp256k1',
};
const CURVE_BITS: Record<string, number> = { 'P-256': 256, 'P-384': 384, 'P-521': 521, 'P-256K': 256 };

export const DEFAULT_OPS: Record<KeyFamily, readonly string[]> = {
  RSA: ['encrypt', 'decrypt', 'sign', 'verify', 'wrapKey', 'unwrapKey'],
  EC: ['sign', 'verify'],
  // As a Managed HSM reports new AES keys (it also lists deriveKey, which this server lacks).
  oct: ['encrypt', 'decrypt', 'sign', 'verify', 'wrapKey', 'unwrapKey'],
};

/** The key types each mode accepts (a standard vault; a Managed HSM adds the -HSM types). */
export function familyOf(mode: ServerMode, kty: unknown): KeyFamily {
  const vaultTypes: Record<string, KeyFamily> = { RSA: 'RSA', EC: 'EC' };
  const hsmTypes: Record<string, KeyFamily> = {
    ...vaultTypes,
    'RSA-HSM': 'RSA',
    'EC-HSM': 'EC',
    'oct-HSM': 'oct',
  };
  const family = typeof kty === 'string' ? ownEntry(mode === 'hsm' ? hsmTypes : vaultTypes, kty) : undefined;
  if (family === undefined) {
    throw badParameter(`The key type '${String(kty)}' is not supported by this ${modeName(mode)}.`);
  }
  return family;
}

export const modeName = (mode: ServerMode): string => (mode === 'hsm' ? 'managed HSM' : 'key vault');

export interface CreateSpec {
  kty: unknown;
  key_size?: unknown;
  crv?: unknown;
  public_exponent?: unknown;
}

export async function generateMaterial(mode: ServerMode, spec: CreateSpec): Promise<KeyMaterial> {
  const family = familyOf(mode, spec.kty);
  const kty = spec.kty as string;
  if (family === 'RSA') {
    if (spec.crv !== undefined) throw badParameter('crv is not valid for RSA keys.');
    const bits = spec.key_size ?? 2048;
    if (typeof bits !== 'number' || !RSA_SIZES.includes(bits)) {
      throw badParameter(`Invalid key size ${String(bits)}: RSA keys are 2048, 3072 or 4096 bits.`);
    }
    // The reference documents public_exponent as applying only to keys created in a Managed HSM: a
    // vault creates e = 65537 whatever it is sent. 0 (what the Java client sends when none is set)
    // means the default, as absent does.
    const asked = spec.public_exponent ?? 0;
    if (typeof asked !== 'number' || !Number.isInteger(asked)) throw badParameter('Invalid public exponent.');
    const e = mode === 'hsm' && asked !== 0 ? asked : 65537;
    if (e !== 65537 && e !== 3) throw badParameter('Invalid public exponent.');
    const { privateKey, publicKey } = await generateKeyPairAsync('rsa', {
      modulusLength: bits,
      publicExponent: e as number,
    });
    return { kty, family, privateKey, publicKey, bits };
  }
  if (family === 'EC') {
    if (spec.key_size !== undefined) throw badParameter('key_size is not valid for EC keys.');
    const crv = spec.crv ?? 'P-256';
    const named = typeof crv === 'string' ? ownEntry(CURVE_NAMES, crv) : undefined;
    if (!named) throw badParameter(`Invalid curve name '${String(crv)}'.`);
    const { privateKey, publicKey } = await generateKeyPairAsync('ec', { namedCurve: named });
    return { kty, family, privateKey, publicKey, crv: crv as string, bits: CURVE_BITS[crv as string] ?? 0 };
  }
  if (spec.crv !== undefined) throw badParameter('crv is not valid for symmetric keys.');
  const bits = spec.key_size ?? 256;
  if (typeof bits !== 'number' || !OCT_SIZES.includes(bits)) {
    throw badParameter(`Invalid key size ${String(bits)}: AES keys are 128, 192 or 256 bits.`);
  }
  return { kty, family, secret: randomBytes(bits / 8), bits };
}

const b64 = (v: unknown): Buffer | undefined =>
  typeof v === 'string' && /^[A-Za-z0-9_-]*={0,2}$/.test(v) ? Buffer.from(v, 'base64url') : undefined;

/** Material from an imported JWK (https://learn.microsoft.com/rest/api/keyvault/keys/import-key). */
export function importMaterial(mode: ServerMode, jwk: Record<string, unknown>, hsm: boolean): KeyMaterial {
  if (jwk.key_hsm !== undefined) {
    throw badParameter('BYOK key import (key_hsm) is not supported by this server.');
  }
  const requested = typeof jwk.kty === 'string' ? jwk.kty : '';
  const base = requested.replace(/-HSM$/, '');
  const wantsHsm = hsm || requested.endsWith('-HSM') || (mode === 'hsm' && base === 'oct');
  const kty = wantsHsm ? `${base}-HSM` : base;
  const family = familyOf(mode, kty);
  try {
    if (family === 'oct') {
      const k = b64(jwk.k);
      if (!k || !OCT_SIZES.includes(k.length * 8)) throw badParameter('Invalid AES key length.');
      return { kty, family, secret: k, bits: k.length * 8 };
    }
    const fields: JsonWebKey = { ...(jwk as JsonWebKey), kty: base };
    delete fields.key_ops;
    if (!fields.d) throw badParameter('The imported key must contain its private part.');
    const privateKey = createPrivateKey({ key: fields, format: 'jwk' });
    const publicKey = createPublicKey(privateKey);
    if (family === 'RSA') {
      const bits = privateKey.asymmetricKeyDetails?.modulusLength ?? 0;
      if (!RSA_SIZES.includes(bits)) throw badParameter(`Invalid RSA key size ${bits}.`);
      return { kty, family, privateKey, publicKey, bits };
    }
    const crv = String(jwk.crv);
    if (!ownEntry(CURVE_NAMES, crv)) throw badParameter(`Invalid curve name '${crv}'.`);
    return { kty, family, privateKey, publicKey, crv, bits: CURVE_BITS[crv] ?? 0 };
  } catch (e) {
    if (e instanceof Error && e.name === 'KeyVaultError') throw e;
    throw badParameter('The imported JSON web key is not valid.');
  }
}

/** The `key` member of a key bundle: public parameters only. */
export function publicJwk(m: KeyMaterial, kid: string, keyOps: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = { kid, kty: m.kty, key_ops: [...keyOps] };
  if (m.publicKey) {
    const jwk = m.publicKey.export({ format: 'jwk' });
    if (m.family === 'RSA') Object.assign(out, { n: jwk.n, e: jwk.e });
    else Object.assign(out, { crv: m.crv, x: jwk.x, y: jwk.y });
  }
  return out;
}

/** The private JWK of an asymmetric key, for digest-level signing. */
export function privateJwk(m: KeyMaterial): JsonWebKey {
  if (!m.privateKey) throw new Error('no private key');
  return m.privateKey.export({ format: 'jwk' });
}

export interface SerializedMaterial {
  kty: string;
  family: KeyFamily;
  bits: number;
  crv?: string;
  jwk?: JsonWebKey;
  k?: string;
}

export function serializeMaterial(m: KeyMaterial): SerializedMaterial {
  const out: SerializedMaterial = { kty: m.kty, family: m.family, bits: m.bits };
  if (m.crv) out.crv = m.crv;
  if (m.privateKey) out.jwk = m.privateKey.export({ format: 'jwk' });
  if (m.secret) out.k = m.secret.toString('base64url');
  return out;
}

export function deserializeMaterial(s: SerializedMaterial): KeyMaterial {
  if (s.family === 'oct') {
    return { kty: s.kty, family: s.family, bits: s.bits, secret: Buffer.from(s.k ?? '', 'base64url') };
  }
  const privateKey = createPrivateKey({ key: s.jwk ?? {}, format: 'jwk' });
  const base = {
    kty: s.kty,
    family: s.family,
    bits: s.bits,
    privateKey,
    publicKey: createPublicKey(privateKey),
  };
  return s.crv ? { ...base, crv: s.crv } : base;
}
