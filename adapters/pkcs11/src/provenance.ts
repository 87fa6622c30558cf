/**
 * Whether a key version's objects are as keyport makes them, from what the token says of them.
 * Anyone with the PIN can write a newer metadata object recording a version (key-store.ts) and
 * put key objects under the key's label for it; the attributes read here are the module's own
 * word on where the material has been, which that cannot forge.
 */
import { ckrOf, type Handle, P, type Pkcs11, readBool } from './p11.js';

export type Slot = 'secret' | 'privateKey' | 'publicKey';

/** What a key object's attributes say about where its material has been. */
export interface Provenance {
  /** CKA_LOCAL: generated in the token (C_GenerateKey[Pair]), not created or unwrapped from bytes. */
  readonly local: boolean;
  // Secret and private keys only:
  readonly sensitive?: boolean;
  readonly extractable?: boolean;
  readonly alwaysSensitive?: boolean;
  readonly neverExtractable?: boolean;
  /** RSA keys only: CKA_MODULUS, which both halves of a pair carry. */
  readonly modulus?: Buffer;
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
  rsa: boolean,
): { id: Buffer; provenance: Provenance | null } | undefined {
  const types = [
    P.CKA_ID,
    P.CKA_LOCAL,
    ...(slot === 'publicKey'
      ? []
      : [P.CKA_SENSITIVE, P.CKA_EXTRACTABLE, P.CKA_ALWAYS_SENSITIVE, P.CKA_NEVER_EXTRACTABLE]),
    ...(rsa && slot !== 'secret' ? [P.CKA_MODULUS] : []),
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
  const provenance: Provenance =
    slot === 'publicKey'
      ? { local: flag(local), ...(rsa ? { modulus: rest[0] } : {}) }
      : {
          local: flag(local),
          sensitive: flag(rest[0]),
          extractable: flag(rest[1]),
          alwaysSensitive: flag(rest[2]),
          neverExtractable: flag(rest[3]),
          ...(rsa && slot === 'privateKey' ? { modulus: rest[4] } : {}),
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
 */
export function provenanceProblem(
  objects: ObjectsProvenance,
  rules: { readonly imported: boolean; readonly exportable: boolean },
): string | undefined {
  for (const slot of ['secret', 'privateKey'] as const) {
    const p = objects[slot];
    if (p === undefined) continue;
    const what = OBJECT_NAMES[slot];
    if (p === null)
      return `${what} does not answer CKA_SENSITIVE, CKA_EXTRACTABLE and CKA_LOCAL as a key does`;
    if (p.sensitive !== true) return `${what} is not CKA_SENSITIVE: its value can be read off the token`;
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
  if (pub === null) return `${OBJECT_NAMES.publicKey} does not answer CKA_LOCAL as a key does`;
  if (pub !== undefined && !pub.local)
    return `${OBJECT_NAMES.publicKey} was not generated in the token (CKA_LOCAL false): someone else may hold its private key`;
  const priv = objects.privateKey;
  if (pub?.modulus !== undefined && priv?.modulus !== undefined && !pub.modulus.equals(priv.modulus))
    return `${OBJECT_NAMES.publicKey} is not the pair of the ${OBJECT_NAMES.privateKey} (their CKA_MODULUS differ)`;
  return undefined;
}
