import * as nodeCrypto from 'node:crypto';
import {
  constants,
  createHmac,
  createPrivateKey,
  createPublicKey,
  generateKeyPair,
  type KeyObject,
  privateDecrypt,
  privateEncrypt,
  randomBytes,
  sign,
  timingSafeEqual,
} from 'node:crypto';
import { promisify } from 'node:util';
import type { AlgorithmSpec } from './algorithms.js';
import { ecdsaSignDigest, pssSignDigest } from './prehash.js';
import { invalid } from './rpc-error.js';

// Key material lives only in these objects, inside the server process; nothing here is ever
// serialised into a response except public keys.
export type KeyMaterial =
  | { kind: 'secret'; key: Buffer }
  | { kind: 'pair'; privateKey: KeyObject; publicKey: KeyObject };

const generatePair = promisify(generateKeyPair);

export async function generateMaterial(spec: AlgorithmSpec): Promise<KeyMaterial> {
  switch (spec.kind) {
    case 'aes-256-gcm':
      return { kind: 'secret', key: randomBytes(32) };
    case 'hmac':
      return { kind: 'secret', key: randomBytes(spec.keyBytes) };
    case 'ecdsa': {
      const { privateKey, publicKey } = await generatePair('ec', { namedCurve: spec.curve });
      return { kind: 'pair', privateKey, publicKey };
    }
    case 'ed25519': {
      const { privateKey, publicKey } = await generatePair('ed25519');
      return { kind: 'pair', privateKey, publicKey };
    }
    case 'pqc-sign':
    case 'ml-kem': {
      // @types/node predates these key types: the call is the same, its overloads are not.
      const { privateKey, publicKey } = await (
        generatePair as (type: string) => Promise<{ privateKey: KeyObject; publicKey: KeyObject }>
      )(spec.keyType);
      return { kind: 'pair', privateKey, publicKey };
    }
    default: {
      const { privateKey, publicKey } = await generatePair('rsa', { modulusLength: spec.bits });
      return { kind: 'pair', privateKey, publicKey };
    }
  }
}

/** Turns unwrapped import bytes (raw for symmetric, PKCS#8 DER for asymmetric) into material for `spec`. */
export function importMaterial(spec: AlgorithmSpec, bytes: Buffer): KeyMaterial {
  if (spec.kind === 'aes-256-gcm') {
    if (bytes.length !== 32) throw invalid('Imported key material has the wrong length for the algorithm.');
    return { kind: 'secret', key: Buffer.from(bytes) };
  }
  if (spec.kind === 'hmac') {
    if (bytes.length !== spec.keyBytes)
      throw invalid('Imported key material has the wrong length for the algorithm.');
    return { kind: 'secret', key: Buffer.from(bytes) };
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: bytes, format: 'der', type: 'pkcs8' });
  } catch {
    throw invalid('Imported key material is not a PKCS#8 private key.');
  }
  const details = privateKey.asymmetricKeyDetails ?? {};
  const fits =
    spec.kind === 'pqc-sign' || spec.kind === 'ml-kem'
      ? (privateKey.asymmetricKeyType as string) === spec.keyType
      : spec.kind === 'ed25519'
        ? privateKey.asymmetricKeyType === 'ed25519'
        : spec.kind === 'ecdsa'
          ? privateKey.asymmetricKeyType === 'ec' && details.namedCurve === spec.curve
          : privateKey.asymmetricKeyType === 'rsa' && details.modulusLength === spec.bits;
  if (!fits) throw invalid('Imported key material does not match the requested algorithm.');
  return { kind: 'pair', privateKey, publicKey: createPublicKey(privateKey) };
}

export function publicKeyPem(material: KeyMaterial): string {
  if (material.kind !== 'pair') throw new Error('symmetric material has no public key');
  return material.publicKey.export({ type: 'spki', format: 'pem' }).toString();
}

export function publicKeyDer(material: KeyMaterial): Buffer {
  if (material.kind !== 'pair') throw new Error('symmetric material has no public key');
  return material.publicKey.export({ type: 'spki', format: 'der' });
}

/**
 * The public key as FIPS 203/204/205 define it (GetPublicKey's NIST_PQC format): the raw key, which
 * is the BIT STRING of the SubjectPublicKeyInfo (the IETF certificate profiles for ML-KEM, ML-DSA and
 * SLH-DSA give these algorithms no parameters, so the key is all the BIT STRING holds).
 */
export function publicKeyNistPqc(material: KeyMaterial): Buffer {
  const spki = publicKeyDer(material);
  let at = 0;
  const header = (tag: number): number => {
    if (spki[at] !== tag) throw new Error('unexpected SubjectPublicKeyInfo encoding');
    const first = spki[at + 1] ?? 0;
    const lengthBytes = first & 0x80 ? first & 0x7f : 0;
    let length = lengthBytes === 0 ? first : 0;
    for (let i = 0; i < lengthBytes; i++) length = length * 256 + (spki[at + 2 + i] ?? 0);
    at += 2 + lengthBytes;
    return length;
  };
  header(0x30); // SubjectPublicKeyInfo
  const algorithmIdentifier = header(0x30); // skipped whole (`at += header()` would read `at` first)
  at += algorithmIdentifier;
  const bits = header(0x03);
  if (spki[at] !== 0 || at + bits !== spki.length)
    throw new Error('unexpected SubjectPublicKeyInfo encoding');
  return Buffer.from(spki.subarray(at + 1));
}

/** AsymmetricSign: `prehashed` is a digest already made with the algorithm's hash; otherwise `input` is the data. */
export function signWith(
  spec: AlgorithmSpec,
  material: KeyMaterial,
  input: Buffer,
  prehashed: boolean,
): Buffer {
  if (material.kind !== 'pair') throw new Error('not a key pair');
  const key = material.privateKey;
  switch (spec.kind) {
    case 'ed25519':
    case 'pqc-sign':
      return sign(null, input, key);
    case 'rsa-raw-pkcs1':
      // PKCS#1 v1.5 type-1 padding over the caller's bytes, no hashing (RSA_SIGN_RAW_PKCS1_*).
      return privateEncrypt({ key, padding: constants.RSA_PKCS1_PADDING }, input);
    case 'rsa-pss':
    case 'rsa-pkcs1':
    case 'ecdsa': {
      const padding =
        spec.kind === 'rsa-pss'
          ? { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }
          : spec.kind === 'rsa-pkcs1'
            ? { padding: constants.RSA_PKCS1_PADDING }
            : {};
      return prehashed ? signDigest(spec, key, input) : sign(spec.hash, input, { key, ...padding });
    }
    default:
      throw new Error('not a signing algorithm');
  }
}

// DigestInfo prefixes (RFC 8017 §9.2 note 1) for PKCS#1 v1.5 over a supplied digest.
const DIGEST_INFO_PREFIX: Record<string, string> = {
  sha256: '3031300d060960864801650304020105000420',
  sha384: '3041300d060960864801650304020205000430',
  sha512: '3051300d060960864801650304020305000440',
};

function signDigest(spec: AlgorithmSpec, key: KeyObject, digest: Buffer): Buffer {
  if (spec.kind === 'rsa-pkcs1') {
    const prefix = Buffer.from(DIGEST_INFO_PREFIX[spec.hash] ?? '', 'hex');
    return privateEncrypt({ key, padding: constants.RSA_PKCS1_PADDING }, Buffer.concat([prefix, digest]));
  }
  if (spec.kind === 'rsa-pss') return pssSignDigest(spec.hash, key, digest);
  if (spec.kind === 'ecdsa') return ecdsaSignDigest(spec.curve, key, digest);
  throw new Error('algorithm does not sign digests');
}

export function oaepDecrypt(spec: AlgorithmSpec, material: KeyMaterial, ciphertext: Buffer): Buffer {
  if (spec.kind !== 'rsa-oaep' || material.kind !== 'pair') throw new Error('not an OAEP key');
  return privateDecrypt(
    { key: material.privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: spec.hash },
    ciphertext,
  );
}

/**
 * ML-KEM decapsulation. A ciphertext of the right length always gives a shared secret (for a
 * ciphertext not made with this key, FIPS 203's implicit rejection makes it a pseudorandom one);
 * one of any other length is refused, as the service does.
 */
export function decapsulateWith(spec: AlgorithmSpec, material: KeyMaterial, ciphertext: Buffer): Buffer {
  if (spec.kind !== 'ml-kem' || material.kind !== 'pair') throw new Error('not an ML-KEM key');
  const expected = ML_KEM_CIPHERTEXT_BYTES[spec.keyType];
  if (ciphertext.length !== expected)
    throw invalid(
      `ciphertext must be ${expected} bytes for ${spec.keyType.toUpperCase().replaceAll('-', '_')}.`,
    );
  // @types/node predates crypto.decapsulate (Node 24.7).
  const decapsulate = (nodeCrypto as unknown as { decapsulate: (key: KeyObject, ct: Buffer) => Buffer })
    .decapsulate;
  return Buffer.from(decapsulate(material.privateKey, ciphertext));
}

/** FIPS 203 Table 3: ciphertext sizes. */
const ML_KEM_CIPHERTEXT_BYTES: Partial<Record<string, number>> = { 'ml-kem-768': 1088, 'ml-kem-1024': 1568 };

export function hmac(spec: AlgorithmSpec, material: KeyMaterial, data: Buffer): Buffer {
  if (spec.kind !== 'hmac' || material.kind !== 'secret') throw new Error('not an HMAC key');
  return createHmac(spec.hash, material.key).update(data).digest();
}

export function constantTimeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
