/**
 * Whether an EC version's public key object is its private key object's pair. Both halves are
 * found by label and CKA_ID, and provenance (provenance.ts) only says each was generated in the
 * token on the right curve: anyone with the PIN can destroy a version's public object and put the
 * public half of another pair generated in the token in its place — one whose private half they
 * made extractable and read — and `getPublicKey` would hand out their key and `verify` accept
 * their signatures (or, the other way round, another private key would sign for this one). RSA
 * halves are compared by CKA_MODULUS when the key is read (`provenanceProblem`); an EC private
 * key object carries no public point in PKCS#11 (SoftHSM2 answers CKA_EC_POINT with
 * CKR_ATTRIBUTE_TYPE_INVALID), so where the module does not offer one, the private key signs a
 * fixed probe and the public key must verify it.
 *
 * A pair proven once is remembered by its two handles (per module: handles are the module's), so
 * later calls on it pay one lookup. That trusts the module not to give a destroyed object's
 * handle to a new object while this process runs, as the key cache (provider.ts) already does
 * within its lifetime; SoftHSM2 never reuses a handle.
 */
import { verify } from 'node:crypto';
import { KeyportError } from '@keyport/core';
import { CURVES, ecSpki } from './der.js';
import { untrusted } from './key-access.js';
import type { ResolvedKey, VersionObjects } from './key-store.js';
import { signWith } from './mechanisms.js';
import { ckrOf, type Handle, P, type Pkcs11 } from './p11.js';

/** What the private key signs to show it is the public key's pair: public, fixed, never a secret. */
const PROBE = Buffer.from('keyport: EC key pair check', 'ascii');

/** Pairs (by handles) proven per module; dropped whole past this many (each is re-proven once). */
const MAX_PROVEN = 10_000;
const provenByHandles = new WeakMap<Pkcs11, Set<string>>();
/** The resolved versions proven: a cached key's calls skip even building the handle string. */
const provenObjects = new WeakSet<VersionObjects>();

function handlesKey(privateKey: Handle, publicKey: Handle): string {
  return `${privateKey.toString('hex')}/${publicKey.toString('hex')}`;
}

/** The public point an attribute holds, as SPKI DER (one encoding to compare), or undefined if it is none. */
function spkiOf(spec: keyof typeof CURVES, point: Buffer | undefined): Buffer | undefined {
  if (point === undefined) return undefined;
  try {
    return ecSpki(spec, point);
  } catch {
    return undefined;
  }
}

/** The private key object's CKA_EC_POINT, where the module keeps one; undefined when it does not. */
function privatePoint(p11: Pkcs11, session: Handle, privateKey: Handle): Buffer | undefined {
  try {
    return p11.C_GetAttributeValue(session, privateKey, [{ type: P.CKA_EC_POINT }])[0]?.value;
  } catch (e) {
    const ckr = ckrOf(e);
    if (ckr === P.CKR_ATTRIBUTE_TYPE_INVALID || ckr === P.CKR_ATTRIBUTE_SENSITIVE) return undefined;
    throw e;
  }
}

/** Why the two objects are not one pair, or undefined when they are. */
async function pairProblem(
  p11: Pkcs11,
  session: Handle,
  spec: keyof typeof CURVES,
  privateKey: Handle,
  publicKey: Handle,
  provider: string,
  keyUri: string,
): Promise<string | undefined> {
  const [point] = p11.C_GetAttributeValue(session, publicKey, [{ type: P.CKA_EC_POINT }]);
  const spki = spkiOf(spec, point?.value);
  if (spki === undefined) return `public key object's CKA_EC_POINT is not a point on ${CURVES[spec].crv}`;
  const own = privatePoint(p11, session, privateKey);
  if (own !== undefined) {
    return spkiOf(spec, own)?.equals(spki) === true
      ? undefined
      : 'public key object is not the pair of the private key object (their CKA_EC_POINT differ)';
  }
  const algorithm = spec === 'EC_P384' ? 'ECDSA_SHA_384' : 'ECDSA_SHA_256';
  let signature: Uint8Array;
  try {
    signature = await signWith(p11, session, privateKey, algorithm, PROBE, 'message');
  } catch (e) {
    // A disabled key's private half may not sign (CKA_SIGN false): its pairing cannot be shown.
    if (ckrOf(e) !== P.CKR_KEY_FUNCTION_NOT_PERMITTED) throw e;
    throw new KeyportError(
      'KeyStateConflict',
      "the key is disabled: keyport shows an EC version's public key is its private key's pair by signing with the private key, which the token refuses while the key is disabled; enable the key",
      { provider, keyUri, retryable: false },
    );
  }
  // The probe is hashed as signWith hashed it for the token (CKM_ECDSA signs a digest).
  const hashName = algorithm === 'ECDSA_SHA_384' ? 'sha384' : 'sha256';
  const ok = verify(hashName, PROBE, { key: spki, format: 'der', type: 'spki' }, signature);
  return ok
    ? undefined
    : 'public key object is not the pair of the private key object (a signature its private key made does not verify under it)';
}

/**
 * Throws Integrity when `version` of an EC key has a public key object that is not its private
 * key object's pair; does nothing for other keys. Run before a version's EC key is used.
 */
export async function checkEcPair(
  p11: Pkcs11,
  session: Handle,
  key: ResolvedKey,
  version: number,
  objects: VersionObjects,
  provider: string,
  keyUri: string,
): Promise<void> {
  const spec = key.meta.spec;
  if (spec !== 'EC_P256' && spec !== 'EC_P384') return;
  if (provenObjects.has(objects)) return;
  const { privateKey, publicKey } = objects;
  // A missing half is not a pair to compare: the caller finds it missing.
  if (privateKey === undefined || publicKey === undefined) return;
  let proven = provenByHandles.get(p11);
  if (proven === undefined) {
    proven = new Set();
    provenByHandles.set(p11, proven);
  }
  const handles = handlesKey(privateKey, publicKey);
  if (!proven.has(handles)) {
    const why = await pairProblem(p11, session, spec, privateKey, publicKey, provider, keyUri);
    if (why !== undefined)
      throw untrusted(`version ${version}`, why, 'destroy that version, or rotate the key', provider, keyUri);
    if (proven.size >= MAX_PROVEN) proven.clear();
    proven.add(handles);
  }
  provenObjects.add(objects);
}
