/**
 * BYOK in both directions, with C_WrapKey/C_UnwrapKey so key material never leaves or enters the
 * token in the clear.
 *
 * Import: `createKey({ external: true })` makes an RSA-2048 wrapping pair in the token (CKA_ID
 * "kpimport"); its public half is the import parameter; the material, wrapped with RSA-OAEP (or
 * RSA-OAEP + AES-KWP, composed from two C_UnwrapKey calls because SoftHSM2 lacks
 * CKM_RSA_AES_KEY_WRAP), becomes version 1 of the key and the wrapping pair is destroyed.
 *
 * Export: `wrapKeyForExport` wraps an `exportable` AES key under a foreign RSA public key (SPKI)
 * with CKM_RSA_PKCS_OAEP, or — for RSA_AES_KEY_WRAP_* — under a fresh session AES key with
 * CKM_AES_KEY_WRAP_PAD, that key itself wrapped with OAEP (the AWS/GCP import format).
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import {
  checkBytes,
  checkEnum,
  checkOptions,
  IMPORT_WRAPPING_ALGORITHMS,
  type ImportKeyMaterialRequest,
  type ImportParameters,
  type ImportParametersRequest,
  type ImportWrappingAlgorithm,
  type KeyInfo,
  KeyportError,
  type KeyRef,
  keyportError,
  wrappingKeyWeakness,
} from '@keyport/core';
import { type OaepHash, oaepMechanism } from './capabilities.js';
import { ecSpki, rsaSpki } from './der.js';
import { asDecryptFailure, PROVIDER_NAME } from './errors.js';
import { type KeyAccess, untrusted, usableVersion } from './key-access.js';
import { keyInfo } from './key-info.js';
import { type ResolvedKey, resolveKey, writeMetadata } from './key-store.js';
import {
  destroyAll,
  type GeneratedVersion,
  IMPORT_KEY_ID,
  oneTokenWriteAtATime,
  onlyUsage,
  versionId,
} from './objects.js';
import { type Handle, P, type Pkcs11, readUlong, type Template } from './p11.js';
import { checkEcPair } from './pairing.js';

const hashOf = (a: ImportWrappingAlgorithm): OaepHash => (a.endsWith('SHA_1') ? 'sha1' : 'sha256');
const composite = (a: ImportWrappingAlgorithm): boolean => a.startsWith('RSA_AES_KEY_WRAP');

/** The import wrapping pair: unwrap-only private half, never extractable. */
export async function createImportKey(p11: Pkcs11, session: Handle, name: string): Promise<GeneratedVersion> {
  const common: Template = [
    { type: P.CKA_TOKEN, value: true },
    { type: P.CKA_LABEL, value: name },
    { type: P.CKA_ID, value: IMPORT_KEY_ID },
  ];
  const pair = await p11.C_GenerateKeyPairAsync(
    session,
    { mechanism: P.CKM_RSA_PKCS_KEY_PAIR_GEN },
    [
      ...common,
      { type: P.CKA_PRIVATE, value: false },
      { type: P.CKA_MODULUS_BITS, value: 2048 },
      { type: P.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
      // Wrap-only, unwrap-only: the module's defaults would also let the private half
      // C_Decrypt the wrapped material (objects.ts, onlyUsage).
      ...onlyUsage(P.CKO_PUBLIC_KEY, [{ type: P.CKA_WRAP, value: true }]),
    ],
    [
      ...common,
      { type: P.CKA_PRIVATE, value: true },
      { type: P.CKA_SENSITIVE, value: true },
      { type: P.CKA_EXTRACTABLE, value: false },
      ...onlyUsage(P.CKO_PRIVATE_KEY, [{ type: P.CKA_UNWRAP, value: true }]),
    ],
  );
  return { privateKey: pair.privateKey, publicKey: pair.publicKey };
}

/** The wrapping algorithm: the requested one or the first this module offers (read from its mechanisms). */
function checkAlgorithm(
  p: KeyAccess,
  algorithm: ImportWrappingAlgorithm | undefined,
): ImportWrappingAlgorithm {
  const chosen = algorithm ?? p.capabilities.import[0];
  if (chosen === undefined || !p.capabilities.import.includes(chosen)) {
    throw keyportError('Unsupported', `this module cannot unwrap ${chosen ?? 'imported material'}`, {
      provider: p.name,
      capability: 'import',
    });
  }
  return chosen;
}

function pendingImport(p: KeyAccess, key: ResolvedKey, keyUri: string): GeneratedVersion {
  if (key.meta.pendingImport !== true || key.importKey?.privateKey === undefined) {
    throw new KeyportError(
      'KeyStateConflict',
      'the key already has material (import needs createKey external)',
      {
        provider: p.name,
        keyUri,
        retryable: false,
      },
    );
  }
  // A wrapping pair someone else made would hand them the material wrapped under it.
  if (key.importKey.refused !== undefined)
    throw untrusted(
      'the import wrapping key pair',
      key.importKey.refused,
      'import into a key created anew; remove the objects under this label',
      p.name,
      keyUri,
    );
  return key.importKey;
}

function rsaPublicSpki(p11: Pkcs11, session: Handle, handle: Handle): Buffer {
  const [n, e] = p11.C_GetAttributeValue(session, handle, [
    { type: P.CKA_MODULUS },
    { type: P.CKA_PUBLIC_EXPONENT },
  ]);
  if (n === undefined || e === undefined)
    throw new KeyportError('Internal', 'RSA public key without modulus', { provider: PROVIDER_NAME });
  return rsaSpki(n.value, e.value);
}

export function getImportParameters(
  p: KeyAccess,
  ref: KeyRef,
  req: ImportParametersRequest,
  signal: AbortSignal | undefined,
): Promise<ImportParameters> {
  const algorithm = checkAlgorithm(p, req.algorithm);
  return p.withKey(
    ref,
    signal,
    async (session, key, target) => {
      const importKey = pendingImport(p, key, target.uri);
      const wrappingPublicKey = new Uint8Array(rsaPublicSpki(p.p11, session, importKey.publicKey as Handle));
      return { keyUri: target.uri, algorithm, wrappingPublicKey };
    },
    true,
  );
}

/** An AES key's template; the usage attributes in `extra` are the only ones set (objects.ts, onlyUsage). */
function aesTemplate(name: string, token: boolean, extra: Template): Template {
  return [
    { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
    { type: P.CKA_KEY_TYPE, value: P.CKK_AES },
    { type: P.CKA_TOKEN, value: token },
    { type: P.CKA_LABEL, value: name },
    { type: P.CKA_PRIVATE, value: true },
    { type: P.CKA_SENSITIVE, value: true },
    ...onlyUsage(P.CKO_SECRET_KEY, extra),
  ];
}

export function importKeyMaterial(
  p: KeyAccess,
  ref: KeyRef,
  req: ImportKeyMaterialRequest,
  signal: AbortSignal | undefined,
): Promise<KeyInfo> {
  const algorithm = checkAlgorithm(p, req.algorithm);
  const target = p.target(ref);
  const p11 = p.p11;
  return p.exclusive(target.name, signal, () =>
    p.withKey(
      { uri: target.uri },
      signal,
      // The unwrap creates the key on a worker thread: a token write (objects.ts).
      (session, key) =>
        oneTokenWriteAtATime(p11, async () => {
          const importKey = pendingImport(p, key, target.uri);
          const wrapped = Buffer.from(req.wrappedMaterial);
          const keyTemplate = aesTemplate(key.name, true, [
            { type: P.CKA_ID, value: versionId(1) },
            { type: P.CKA_EXTRACTABLE, value: false },
            { type: P.CKA_MODIFIABLE, value: true },
            { type: P.CKA_ENCRYPT, value: true },
            { type: P.CKA_DECRYPT, value: true },
          ]);
          const oaep = oaepMechanism(hashOf(algorithm));
          let imported: Handle;
          try {
            if (!composite(algorithm)) {
              imported = await p11.C_UnwrapKeyAsync(
                session,
                oaep,
                importKey.privateKey as Handle,
                wrapped,
                keyTemplate,
              );
            } else {
              const split = 256; // the import pair is RSA-2048
              // AES-KWP of 32 bytes is 40 bytes: the one length check SoftHSM2 lets us make.
              if (wrapped.length !== split + 40)
                throw new KeyportError('InvalidCiphertext', 'wrapped material is not a wrapped 32-byte key', {
                  provider: p.name,
                });
              const ephemeral = await p11.C_UnwrapKeyAsync(
                session,
                oaep,
                importKey.privateKey as Handle,
                wrapped.subarray(0, split),
                aesTemplate('keyport-import-ephemeral', false, [{ type: P.CKA_UNWRAP, value: true }]),
              );
              try {
                imported = await p11.C_UnwrapKeyAsync(
                  session,
                  { mechanism: P.CKM_AES_KEY_WRAP_PAD },
                  ephemeral,
                  wrapped.subarray(split),
                  keyTemplate,
                );
              } finally {
                p11.C_DestroyObject(session, ephemeral);
              }
            }
          } catch (e) {
            throw asDecryptFailure(e, target.uri);
          }
          const [len] = p11.C_GetAttributeValue(session, imported, [{ type: P.CKA_VALUE_LEN }]);
          // SoftHSM2 leaves CKA_VALUE_LEN at 0 on unwrapped keys (and refuses it in the template):
          // 0 means "not reported"; any other length must be 32. (README: SoftHSM-only assumptions.)
          const reported = len === undefined ? 0 : readUlong(len.value);
          if (reported !== 0 && reported !== 32) {
            p11.C_DestroyObject(session, imported);
            throw new KeyportError('InvalidArgument', 'AES_256 material is 32 bytes', {
              provider: p.name,
              keyUri: target.uri,
            });
          }
          const { pendingImport: _done, ...rest } = key.meta;
          writeMetadata(
            p11,
            session,
            key.name,
            { ...rest, versions: { '1': { createdAt: new Date().toISOString() } } },
            { meta: key.meta, handle: key.metaHandle, stale: key.staleMeta },
          );
          destroyAll(p11, session, [importKey.privateKey, importKey.publicKey]);
          return keyInfo(p11, session, resolveKey(p11, session, key.name, target.uri), target.uri);
        }),
      true,
    ),
  );
}

export interface WrapForExportOptions {
  /** The importing side's RSA public key, SPKI DER (AWS/GCP/Vault import parameters). */
  readonly wrappingPublicKeySpki: Uint8Array;
  readonly algorithm: ImportWrappingAlgorithm;
}

export function wrapKeyForExport(
  p: KeyAccess,
  ref: KeyRef,
  options: WrapForExportOptions,
  signal: AbortSignal = new AbortController().signal,
): Promise<Uint8Array> {
  // Called on the driver directly (core never fronts it): an algorithm outside the list — a typo
  // such as 'RSA_AES_KEY_WRAP_SHA1' — must not fall through to plain OAEP or the wrong hash.
  try {
    const o = checkOptions(options, 'options', { wrappingPublicKeySpki: true, algorithm: true });
    checkBytes(o.wrappingPublicKeySpki, 'options.wrappingPublicKeySpki');
    checkEnum(o.algorithm, 'options.algorithm', IMPORT_WRAPPING_ALGORITHMS);
  } catch (e) {
    throw e instanceof KeyportError ? e.withDetails({ provider: p.name, keyUri: ref.uri }) : e;
  }
  const hash = hashOf(options.algorithm);
  if (!p.oaepHashes.includes(hash)) {
    throw keyportError('Unsupported', `this module cannot wrap with OAEP ${hash}`, {
      provider: p.name,
      keyUri: ref.uri,
      capability: 'export',
    });
  }
  let wrappingPublic: KeyObject;
  try {
    wrappingPublic = createPublicKey({
      key: Buffer.from(options.wrappingPublicKeySpki),
      format: 'der',
      type: 'spki',
    });
  } catch {
    throw new KeyportError('InvalidArgument', 'the wrapping public key is not an SPKI DER RSA key', {
      provider: p.name,
    });
  }
  const jwk: { n?: string; e?: string; kty?: string } = wrappingPublic.export({ format: 'jwk' });
  if (jwk.kty !== 'RSA' || jwk.n === undefined || jwk.e === undefined) {
    throw new KeyportError('InvalidArgument', 'the wrapping public key must be RSA', { provider: p.name });
  }
  // Core's rule: whoever can compute the private half reads the exported key (RSA-768, e = 1),
  // and no target hands out a key over RSA-4096 (one of 32768 bits failed inside C_WrapKey).
  const weakness = wrappingKeyWeakness(wrappingPublic);
  if (weakness !== undefined) throw new KeyportError('InvalidArgument', weakness, { provider: p.name });
  const modulus = Buffer.from(jwk.n, 'base64url');
  const exponent = Buffer.from(jwk.e, 'base64url');
  const p11 = p.p11;
  return p.withKey(ref, signal, async (session, key, target) => {
    const { objects } = usableVersion(key, target, key.meta.usage, p.name);
    if (objects.secret === undefined || key.meta.spec !== 'AES_256') {
      throw keyportError('Unsupported', 'only AES_256 keys are exported', {
        provider: p.name,
        keyUri: target.uri,
        capability: 'export',
      });
    }
    const wrappingKey = p11.C_CreateObject(session, [
      { type: P.CKA_CLASS, value: P.CKO_PUBLIC_KEY },
      { type: P.CKA_KEY_TYPE, value: P.CKK_RSA },
      { type: P.CKA_TOKEN, value: false },
      { type: P.CKA_WRAP, value: true },
      { type: P.CKA_MODULUS, value: modulus },
      { type: P.CKA_PUBLIC_EXPONENT, value: exponent },
    ]);
    const transient: Handle[] = [wrappingKey];
    try {
      const oaep = oaepMechanism(hash);
      if (!composite(options.algorithm)) {
        return new Uint8Array(
          await p11.C_WrapKeyAsync(
            session,
            oaep,
            wrappingKey,
            objects.secret,
            // The wrapped key is as long as the modulus (at most 512 bytes, RSA-4096).
            Buffer.alloc(Math.max(1024, modulus.length)),
          ),
        );
      }
      const ephemeral = await p11.C_GenerateKeyAsync(
        session,
        { mechanism: P.CKM_AES_KEY_GEN },
        aesTemplate('keyport-export-ephemeral', false, [
          { type: P.CKA_VALUE_LEN, value: 32 },
          { type: P.CKA_WRAP, value: true },
          { type: P.CKA_EXTRACTABLE, value: true },
        ]),
      );
      transient.push(ephemeral);
      const material = await p11.C_WrapKeyAsync(
        session,
        { mechanism: P.CKM_AES_KEY_WRAP_PAD },
        ephemeral,
        objects.secret,
        Buffer.alloc(128),
      );
      const wrappedEphemeral = await p11.C_WrapKeyAsync(
        session,
        oaep,
        wrappingKey,
        ephemeral,
        Buffer.alloc(Math.max(1024, modulus.length)),
      );
      return new Uint8Array(Buffer.concat([wrappedEphemeral, material]));
    } finally {
      destroyAll(p11, session, transient);
    }
  });
}

/** SPKI DER of an RSA or EC key version's public half. */
export function publicKeyOf(
  p: KeyAccess,
  ref: KeyRef,
  signal: AbortSignal = new AbortController().signal,
): Promise<Uint8Array> {
  return p.withKey(ref, signal, async (session, key, target) => {
    const { version, objects } = usableVersion(key, target, key.meta.usage, p.name);
    await checkEcPair(p.p11, session, key, version, objects, p.name, target.uri);
    const spec = key.meta.spec;
    if (objects.publicKey === undefined) {
      throw new KeyportError('InvalidArgument', `${spec} keys have no public key`, {
        provider: p.name,
        keyUri: target.uri,
      });
    }
    if (spec === 'EC_P256' || spec === 'EC_P384') {
      const [point] = p.p11.C_GetAttributeValue(session, objects.publicKey, [{ type: P.CKA_EC_POINT }]);
      return new Uint8Array(ecSpki(spec, point?.value ?? Buffer.alloc(0)));
    }
    return new Uint8Array(rsaPublicSpki(p.p11, session, objects.publicKey));
  });
}
