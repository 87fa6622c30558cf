/**
 * Capabilities are read from the module, not assumed: C_GetMechanismList (and C_GetMechanismInfo
 * for RSA modulus limits) decides which specs, usages and signing algorithms are declared, and a
 * throwaway session key pair tells which OAEP hashes C_EncryptInit accepts (the mechanism list
 * cannot say: SoftHSM2 2.6 lists CKM_RSA_PKCS_OAEP but refuses SHA-256 with CKR_ARGUMENTS_BAD).
 */
import type {
  Capabilities,
  ImportWrappingAlgorithm,
  KeySpec,
  KeyUsage,
  SigningAlgorithm,
} from '@keyport/core';
import type { RsaOAEP } from 'pkcs11js';
import { CKZ_DATA_SPECIFIED, type Handle, type Mechanism, P, type Pkcs11 } from './p11.js';

export type OaepHash = 'sha1' | 'sha256';

export function oaepMechanism(hash: OaepHash): Mechanism {
  const parameter: RsaOAEP = {
    type: P.CK_PARAMS_RSA_OAEP,
    hashAlg: hash === 'sha1' ? P.CKM_SHA_1 : P.CKM_SHA256,
    mgf: hash === 'sha1' ? P.CKG_MGF1_SHA1 : P.CKG_MGF1_SHA256,
    source: CKZ_DATA_SPECIFIED,
  };
  return { mechanism: P.CKM_RSA_PKCS_OAEP, parameter };
}

/** Which OAEP hashes the module accepts, tried on a session (non-token, public) RSA key pair. */
export function probeOaepHashes(p11: Pkcs11, slot: Handle, mechanisms: ReadonlySet<number>): OaepHash[] {
  if (!mechanisms.has(P.CKM_RSA_PKCS_OAEP) || !mechanisms.has(P.CKM_RSA_PKCS_KEY_PAIR_GEN)) return [];
  const session = p11.C_OpenSession(slot, P.CKF_SERIAL_SESSION);
  try {
    const min = p11.C_GetMechanismInfo(slot, P.CKM_RSA_PKCS_KEY_PAIR_GEN).minKeySize;
    const pair = p11.C_GenerateKeyPair(
      session,
      { mechanism: P.CKM_RSA_PKCS_KEY_PAIR_GEN },
      [
        { type: P.CKA_TOKEN, value: false },
        { type: P.CKA_MODULUS_BITS, value: Math.max(1024, min) },
        { type: P.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
        { type: P.CKA_ENCRYPT, value: true },
      ],
      [
        { type: P.CKA_TOKEN, value: false },
        { type: P.CKA_PRIVATE, value: false },
        { type: P.CKA_DECRYPT, value: true },
      ],
    );
    const accepted: OaepHash[] = [];
    for (const hash of ['sha256', 'sha1'] as const) {
      try {
        p11.C_EncryptInit(session, oaepMechanism(hash), pair.publicKey);
        p11.C_Encrypt(session, Buffer.alloc(16), Buffer.alloc(1024));
        accepted.push(hash);
      } catch {
        // refused: not declared
      }
    }
    return accepted;
  } finally {
    p11.C_CloseSession(session);
  }
}

/** What the module offers, as read once when the driver is built. */
export interface ModuleOffer {
  readonly mechanisms: ReadonlySet<number>;
  /** Whether CKM_RSA_PKCS_KEY_PAIR_GEN makes keys of this modulus size. */
  rsaBits(bits: number): boolean;
  /** The OAEP hashes C_EncryptInit accepts (see probeOaepHashes). */
  readonly oaepHashes: readonly OaepHash[];
}

/** Reads the module's offer from the slot (C_GetMechanismList, C_GetMechanismInfo). */
export function readModuleOffer(p11: Pkcs11, slot: Handle, oaepHashes?: readonly OaepHash[]): ModuleOffer {
  const mechanisms = new Set(p11.C_GetMechanismList(slot));
  const rsa = mechanisms.has(P.CKM_RSA_PKCS_KEY_PAIR_GEN)
    ? p11.C_GetMechanismInfo(slot, P.CKM_RSA_PKCS_KEY_PAIR_GEN)
    : undefined;
  return {
    mechanisms,
    rsaBits: (bits) => rsa !== undefined && rsa.minKeySize <= bits && rsa.maxKeySize >= bits,
    oaepHashes: oaepHashes ?? probeOaepHashes(p11, slot, mechanisms),
  };
}

/** The capabilities a module with this offer gives keyport: pure data from the offer. */
export function computeCapabilities({ mechanisms, rsaBits, oaepHashes }: ModuleOffer): Capabilities {
  const has = (...m: number[]) => m.every((x) => mechanisms.has(x));
  const signing: SigningAlgorithm[] = [];
  if (has(P.CKM_SHA256_RSA_PKCS_PSS, P.CKM_RSA_PKCS_PSS)) signing.push('RSASSA_PSS_SHA_256');
  if (has(P.CKM_SHA256_RSA_PKCS, P.CKM_RSA_PKCS)) signing.push('RSASSA_PKCS1_V1_5_SHA_256');
  const ecdsa = has(P.CKM_EC_KEY_PAIR_GEN, P.CKM_ECDSA);
  if (ecdsa) signing.push('ECDSA_SHA_256', 'ECDSA_SHA_384');

  const keySpecs: Partial<Record<KeySpec, KeyUsage[]>> = {};
  if (has(P.CKM_AES_KEY_GEN, P.CKM_AES_GCM)) keySpecs.AES_256 = ['encrypt_decrypt'];
  if (has(P.CKM_RSA_PKCS_KEY_PAIR_GEN)) {
    const rsaSigning = signing.some((a) => a.startsWith('RSASSA'));
    for (const spec of ['RSA_2048', 'RSA_3072', 'RSA_4096'] as const) {
      if (!rsaBits(Number(spec.slice(4)))) continue;
      const usages: KeyUsage[] = [];
      if (oaepHashes.length > 0) usages.push('encrypt_decrypt');
      if (rsaSigning) usages.push('sign_verify');
      if (usages.length > 0) keySpecs[spec] = usages;
    }
  }
  if (ecdsa) {
    keySpecs.EC_P256 = ['sign_verify'];
    keySpecs.EC_P384 = ['sign_verify'];
  }
  if (has(P.CKM_GENERIC_SECRET_KEY_GEN, P.CKM_SHA256_HMAC)) keySpecs.HMAC_256 = ['mac'];

  const imports: ImportWrappingAlgorithm[] = [];
  if (keySpecs.AES_256 !== undefined && has(P.CKM_RSA_PKCS_KEY_PAIR_GEN)) {
    if (oaepHashes.includes('sha256')) imports.push('RSAES_OAEP_SHA_256');
    if (oaepHashes.includes('sha1')) imports.push('RSAES_OAEP_SHA_1');
    if (has(P.CKM_AES_KEY_WRAP_PAD)) {
      if (oaepHashes.includes('sha256')) imports.push('RSA_AES_KEY_WRAP_SHA_256');
      if (oaepHashes.includes('sha1')) imports.push('RSA_AES_KEY_WRAP_SHA_1');
    }
  }

  return Object.freeze({
    keySpecs,
    context: 'native',
    dataKeys: keySpecs.AES_256 !== undefined ? 'native' : 'none',
    listKeys: true,
    rotation: 'versioned',
    autoRotation: false,
    // Enforced by the token itself: disabling clears CKA_ENCRYPT/CKA_DECRYPT/CKA_SIGN/CKA_VERIFY.
    enableDisable: true,
    // PKCS#11 has no deletion window: C_DestroyObject is immediate.
    scheduledDeletion: 'none',
    destroyVersion: true,
    grants: 'none',
    grantExpiry: 'none',
    grantConstraints: false,
    import: imports,
    signingAlgorithms: signing,
  });
}

/** Every mechanism the adapter can use (the module's list narrows this). */
const ALL_MECHANISMS: ReadonlySet<number> = new Set([
  P.CKM_AES_KEY_GEN,
  P.CKM_AES_GCM,
  P.CKM_AES_KEY_WRAP_PAD,
  P.CKM_RSA_PKCS_KEY_PAIR_GEN,
  P.CKM_RSA_PKCS_OAEP,
  P.CKM_RSA_PKCS,
  P.CKM_SHA256_RSA_PKCS,
  P.CKM_RSA_PKCS_PSS,
  P.CKM_SHA256_RSA_PKCS_PSS,
  P.CKM_EC_KEY_PAIR_GEN,
  P.CKM_ECDSA,
  P.CKM_GENERIC_SECRET_KEY_GEN,
  P.CKM_SHA256_HMAC,
]);

/**
 * The most any module lets this adapter declare, known without a token (for tools that plan
 * before connecting). A driver instance declares what its module actually offers
 * (`provider.capabilities`), which is this or less.
 */
export const PKCS11_CAPABILITIES: Capabilities = computeCapabilities({
  mechanisms: ALL_MECHANISMS,
  rsaBits: () => true,
  oaepHashes: ['sha256', 'sha1'],
});
