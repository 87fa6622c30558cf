/**
 * Whether a key version's objects are as keyport makes them, from what the token says of them.
 * Anyone with the PIN can write a newer metadata object recording a version (key-store.ts) and
 * put key objects under the key's label for it; the attributes read here are the module's own
 * word on where the material has been, which that cannot forge.
 */
import type { KeySpec } from '@keyport/core';
import { CURVES } from './der.js';
import { ckrOf, type Handle, P, type Pkcs11, readBool, readUlong } from './p11.js';

export type Slot = 'secret' | 'privateKey' | 'publicKey';

/** What kind of key pair a label's private and public key objects are read as. */
export type PairKind = 'rsa' | 'ec';

/** What a key object's attributes say about where its material has been. */
export interface Provenance {
  /** CKA_LOCAL: generated in the token (C_GenerateKey[Pair]), not created or unwrapped from bytes. */
  readonly local: boolean;
  // Secret and private keys only:
  readonly sensitive?: boolean;
  readonly extractable?: boolean;
  readonly alwaysSensitive?: boolean;
  readonly neverExtractable?: boolean;
  /**
   * CKA_PRIVATE: usable only after C_Login. A public secret or private key object can be used
   * (C_DecryptInit, C_SignInit…) by any application that opens a session on the token, PIN or not.
   */
  readonly private?: boolean;
  /** RSA keys only: CKA_MODULUS, which both halves of a pair carry. */
  readonly modulus?: Buffer;
  /** EC keys only: CKA_EC_PARAMS (the curve's OID), which both halves of a pair carry. */
  readonly ecParams?: Buffer;
  /** Secret keys only: CKA_KEY_TYPE and CKA_VALUE_LEN (bytes; 0 when the module does not say). */
  readonly keyType?: number;
  readonly valueLen?: number;
}

/**
 * The key a version of `spec` is, as keyport makes it (objects.ts, `generateVersion`), or the
 * import wrapping pair (`'import'`: RSA-2048, import.ts). Provenance says where a key's material
 * has been, not how strong it is: a key generated in the token, sensitive and never extractable,
 * can still be an AES-128 key or an RSA-1024 pair planted under an AES_256 or RSA_2048 key.
 */
export type ExpectedKey =
  | { readonly kind: 'secret'; readonly keyType: number; readonly name: string; readonly bytes: number }
  | { readonly kind: 'rsa'; readonly bits: number }
  | { readonly kind: 'ec'; readonly spec: keyof typeof CURVES };

export function expectedKey(spec: KeySpec | 'import'): ExpectedKey {
  switch (spec) {
    case 'import':
      return { kind: 'rsa', bits: 2048 };
    case 'AES_256':
      return { kind: 'secret', keyType: P.CKK_AES, name: 'CKK_AES', bytes: 32 };
    case 'HMAC_256':
      return { kind: 'secret', keyType: P.CKK_GENERIC_SECRET, name: 'CKK_GENERIC_SECRET', bytes: 32 };
    case 'RSA_2048':
    case 'RSA_3072':
    case 'RSA_4096':
      return { kind: 'rsa', bits: Number(spec.slice(4)) };
    case 'EC_P256':
    case 'EC_P384':
      return { kind: 'ec', spec };
  }
}

/** The bit length of a big-endian unsigned integer (a CKA_MODULUS; leading zero bytes allowed). */
function bitLength(value: Buffer): number {
  let i = 0;
  while (i < value.length && value[i] === 0) i++;
  const top = value[i];
  return top === undefined ? 0 : (value.length - i - 1) * 8 + (32 - Math.clz32(top));
}

/** Per slot: the object's provenance, null when it cannot be read (no such attribute). */
export type ObjectsProvenance = Partial<Record<Slot, Provenance | null>>;

export const OBJECT_NAMES: Readonly<Record<Slot, string>> = {
  secret: 'secret key object',
  privateKey: 'private key object',
  publicKey: 'public key object',
};

/**
 * The CKA_ID of a key object just found, and its provenance (null when the module does not
 * answer those attributes for it), in one C_GetAttributeValue; undefined when the object is gone.
 */
export function readKeyObject(
  p11: Pkcs11,
  session: Handle,
  handle: Handle,
  slot: Slot,
  pair: PairKind | undefined,
): { id: Buffer; provenance: Provenance | null } | undefined {
  // What says which key it is (`sizeProblem`): its type and length, its modulus or its curve.
  const size =
    slot === 'secret'
      ? [P.CKA_KEY_TYPE, P.CKA_VALUE_LEN]
      : pair === 'rsa'
        ? [P.CKA_MODULUS]
        : pair === 'ec'
          ? [P.CKA_EC_PARAMS]
          : [];
  const types = [
    P.CKA_ID,
    P.CKA_LOCAL,
    ...(slot === 'publicKey'
      ? []
      : [P.CKA_SENSITIVE, P.CKA_EXTRACTABLE, P.CKA_ALWAYS_SENSITIVE, P.CKA_NEVER_EXTRACTABLE, P.CKA_PRIVATE]),
    ...size,
  ];
  let values: Buffer[];
  try {
    values = p11
      .C_GetAttributeValue(
        session,
        handle,
        types.map((type) => ({ type })),
      )
      .map((a) => a.value);
  } catch (e) {
    const ckr = ckrOf(e);
    if (ckr === P.CKR_OBJECT_HANDLE_INVALID) return undefined;
    // An object of another kind under the label (an EC key under an RSA key's): its ID still says
    // whether it claims to be a version; if it does, it is refused (`provenanceProblem`).
    if (ckr !== P.CKR_ATTRIBUTE_TYPE_INVALID && ckr !== P.CKR_ATTRIBUTE_SENSITIVE) throw e;
    try {
      const [id] = p11.C_GetAttributeValue(session, handle, [{ type: P.CKA_ID }]);
      return id === undefined ? undefined : { id: id.value, provenance: null };
    } catch (again) {
      if (ckrOf(again) === P.CKR_OBJECT_HANDLE_INVALID) return undefined;
      throw again;
    }
  }
  const [id, local, ...rest] = values;
  const flag = (v: Buffer | undefined) => v !== undefined && readBool(v);
  const sizes = rest.slice(slot === 'publicKey' ? 0 : 5);
  const sizeOf = (): Partial<Provenance> => {
    if (slot === 'secret') {
      const [keyType, valueLen] = sizes;
      return {
        ...(keyType !== undefined ? { keyType: readUlong(keyType) } : {}),
        ...(valueLen !== undefined ? { valueLen: readUlong(valueLen) } : {}),
      };
    }
    const [value] = sizes;
    if (value === undefined) return {};
    return pair === 'rsa' ? { modulus: value } : pair === 'ec' ? { ecParams: value } : {};
  };
  const provenance: Provenance =
    slot === 'publicKey'
      ? { local: flag(local), ...sizeOf() }
      : {
          local: flag(local),
          sensitive: flag(rest[0]),
          extractable: flag(rest[1]),
          alwaysSensitive: flag(rest[2]),
          neverExtractable: flag(rest[3]),
          private: flag(rest[4]),
          ...sizeOf(),
        };
  return { id: id ?? Buffer.alloc(0), provenance };
}

/**
 * Why keyport must not use a version (or an import key pair) made of these objects, or undefined
 * when they are as keyport makes them. Anyone with the PIN can write a newer metadata object that
 * records a version, and put objects under the key's label for it; what the token itself says of
 * those objects cannot be forged that way (a module lets CKA_SENSITIVE only become true and
 * CKA_EXTRACTABLE only become false; CKA_LOCAL, CKA_ALWAYS_SENSITIVE and CKA_NEVER_EXTRACTABLE
 * are its own). keyport generates every version in the token, sensitive, and non-extractable
 * unless the key was created `exportable` — except version 1 of an imported key (`imported`),
 * which C_UnwrapKey made from bytes its owner holds: sensitive and non-extractable, neither local
 * nor always sensitive. Material that was ever readable or extractable, or came into the token
 * from outside, may be known to whoever planted it: data sealed under it would be theirs to read.
 * Then the objects must be the key `rules.expected` says (`sizeProblem`).
 */
export function provenanceProblem(
  objects: ObjectsProvenance,
  rules: { readonly imported: boolean; readonly exportable: boolean; readonly expected: ExpectedKey },
): string | undefined {
  for (const slot of ['secret', 'privateKey'] as const) {
    const p = objects[slot];
    if (p === undefined) continue;
    const what = OBJECT_NAMES[slot];
    if (p === null)
      return `${what} does not answer the attributes a key of the key's spec has (CKA_SENSITIVE, CKA_EXTRACTABLE, CKA_LOCAL, and its length, modulus or curve)`;
    if (p.sensitive !== true) return `${what} is not CKA_SENSITIVE: its value can be read off the token`;
    // keyport makes every secret and private key private; a public one is anyone's to use.
    if (p.private !== true)
      return `${what} is not CKA_PRIVATE: any application that opens a session on the token can use it without the PIN`;
    if (p.extractable === true && (rules.imported || !rules.exportable))
      return `${what} is CKA_EXTRACTABLE though the key was not created exportable: it can be wrapped out under a key someone else knows`;
    if (rules.imported) continue;
    if (!p.local)
      return `${what} was not generated in the token (CKA_LOCAL false): its material came from outside`;
    if (p.alwaysSensitive !== true)
      return `${what} was not always sensitive (CKA_ALWAYS_SENSITIVE false): its value was readable once`;
    if (!rules.exportable && p.neverExtractable !== true)
      return `${what} was extractable once (CKA_NEVER_EXTRACTABLE false) though the key was not created exportable`;
  }
  const pub = objects.publicKey;
  if (pub === null)
    return `${OBJECT_NAMES.publicKey} does not answer the attributes a key of the key's spec has (CKA_LOCAL, and its modulus or curve)`;
  if (pub !== undefined && !pub.local)
    return `${OBJECT_NAMES.publicKey} was not generated in the token (CKA_LOCAL false): someone else may hold its private key`;
  const priv = objects.privateKey;
  if (pub?.modulus !== undefined && priv?.modulus !== undefined && !pub.modulus.equals(priv.modulus))
    return `${OBJECT_NAMES.publicKey} is not the pair of the ${OBJECT_NAMES.privateKey} (their CKA_MODULUS differ)`;
  return sizeProblem(objects, rules.expected, rules.imported);
}

/**
 * Why these objects are not the key keyport makes for the key's spec (type, length, modulus
 * size, curve), or undefined. Anyone with the PIN can generate a weaker key in the token —
 * local, sensitive, never extractable, so every provenance check passes — and record it as a
 * version: data would then be sealed under AES-128, or signed with RSA-1024, under a key whose
 * spec says AES_256 or RSA_2048.
 */
function sizeProblem(
  objects: ObjectsProvenance,
  expected: ExpectedKey,
  imported: boolean,
): string | undefined {
  if (expected.kind === 'secret') {
    const p = objects.secret;
    if (p === undefined || p === null) return undefined;
    const what = OBJECT_NAMES.secret;
    if (p.keyType !== expected.keyType)
      return `${what} is of CKA_KEY_TYPE 0x${(p.keyType ?? 0).toString(16)}, not ${expected.name} as the key's spec says`;
    // SoftHSM2 leaves CKA_VALUE_LEN at 0 on unwrapped keys (import.ts): an imported version may
    // not say its length. Every version the token generated says it.
    const len = p.valueLen ?? 0;
    if (len !== expected.bytes && !(imported && len === 0))
      return `${what} is a ${len * 8}-bit key (CKA_VALUE_LEN ${len}), not the ${expected.bytes * 8}-bit key the key's spec says`;
    return undefined;
  }
  for (const slot of ['privateKey', 'publicKey'] as const) {
    const p = objects[slot];
    if (p === undefined || p === null) continue;
    const what = OBJECT_NAMES[slot];
    if (expected.kind === 'rsa') {
      const bits = p.modulus === undefined ? 0 : bitLength(p.modulus);
      if (bits !== expected.bits)
        return `${what} is an RSA-${bits} key (CKA_MODULUS), not the RSA-${expected.bits} key the key's spec says`;
    } else if (p.ecParams === undefined || !p.ecParams.equals(CURVES[expected.spec].oid)) {
      return `${what} is not a key on ${CURVES[expected.spec].crv} (CKA_EC_PARAMS), the curve the key's spec says`;
    }
  }
  return undefined;
}
