// RSA signatures over a caller-supplied digest, and RSA1_5 decryption. node:crypto hashes before
// it signs, and Node 20 refuses PKCS#1 v1.5 private decryption (CVE-2023-46809), so the encodings
// (RFC 8017 EMSA-PKCS1-v1_5, EMSA-PSS, EME-PKCS1-v1_5) are built here around raw RSA
// (RSA_NO_PADDING). Timing side channels do not matter for a loopback test server.
import {
  constants,
  createHash,
  type KeyObject,
  privateDecrypt,
  privateEncrypt,
  publicDecrypt,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';

export type RsaHash = 'sha256' | 'sha384' | 'sha512';

// DER prefix of DigestInfo for each hash (RFC 8017, section 9.2, note 1).
const DIGEST_INFO: Record<RsaHash, string> = {
  sha256: '3031300d060960864801650304020105000420',
  sha384: '3041300d060960864801650304020205000430',
  sha512: '3051300d060960864801650304020305000440',
};

const HASH_LENGTH: Record<RsaHash, number> = { sha256: 32, sha384: 48, sha512: 64 };

function modulusBits(key: KeyObject): number {
  const bits = key.asymmetricKeyDetails?.modulusLength;
  if (!bits) throw new Error('not an RSA key');
  return bits;
}

function rawPrivate(key: KeyObject, block: Buffer): Buffer {
  return privateEncrypt({ key, padding: constants.RSA_NO_PADDING }, block);
}

function rawPublic(key: KeyObject, block: Buffer): Buffer {
  return publicDecrypt({ key, padding: constants.RSA_NO_PADDING }, block);
}

export function pkcs1SignDigest(key: KeyObject, hash: RsaHash, digest: Buffer): Buffer {
  const t = Buffer.concat([Buffer.from(DIGEST_INFO[hash], 'hex'), digest]);
  return privateEncrypt({ key, padding: constants.RSA_PKCS1_PADDING }, t);
}

export function pkcs1VerifyDigest(key: KeyObject, hash: RsaHash, digest: Buffer, sig: Buffer): boolean {
  if (sig.length !== Math.ceil(modulusBits(key) / 8)) return false;
  try {
    const t = publicDecrypt({ key, padding: constants.RSA_PKCS1_PADDING }, sig);
    const expected = Buffer.concat([Buffer.from(DIGEST_INFO[hash], 'hex'), digest]);
    return t.length === expected.length && timingSafeEqual(t, expected);
  } catch {
    return false;
  }
}

function mgf1(hash: RsaHash, seed: Buffer, length: number): Buffer {
  const out: Buffer[] = [];
  for (let counter = 0; out.length * HASH_LENGTH[hash] < length; counter++) {
    const c = Buffer.alloc(4);
    c.writeUInt32BE(counter);
    out.push(createHash(hash).update(seed).update(c).digest());
  }
  return Buffer.concat(out).subarray(0, length);
}

/** RSASSA-PSS with MGF1 over the same hash and a salt as long as the hash (as JWA PS*). */
export function pssSignDigest(key: KeyObject, hash: RsaHash, digest: Buffer): Buffer {
  const bits = modulusBits(key);
  const emBits = bits - 1;
  const emLen = Math.ceil(emBits / 8);
  const hLen = HASH_LENGTH[hash];
  const salt = randomBytes(hLen);
  const h = createHash(hash).update(Buffer.alloc(8)).update(digest).update(salt).digest();
  const db = Buffer.concat([Buffer.alloc(emLen - 2 * hLen - 2), Buffer.from([1]), salt]);
  const masked = mgf1(hash, h, db.length);
  for (let i = 0; i < db.length; i++) masked[i] = (masked[i] ?? 0) ^ (db[i] ?? 0);
  masked[0] = (masked[0] ?? 0) & (0xff >> (8 * emLen - emBits));
  const em = Buffer.concat([masked, h, Buffer.from([0xbc])]);
  const k = Math.ceil(bits / 8);
  return rawPrivate(key, Buffer.concat([Buffer.alloc(k - em.length), em]));
}

export function pssVerifyDigest(key: KeyObject, hash: RsaHash, digest: Buffer, sig: Buffer): boolean {
  const bits = modulusBits(key);
  const k = Math.ceil(bits / 8);
  if (sig.length !== k) return false;
  let block: Buffer;
  try {
    block = rawPublic(key, sig);
  } catch {
    return false;
  }
  const emBits = bits - 1;
  const emLen = Math.ceil(emBits / 8);
  const em = block.subarray(block.length - emLen);
  const hLen = HASH_LENGTH[hash];
  if (block.length > emLen && block.subarray(0, block.length - emLen).some((b) => b !== 0)) {
    return false;
  }
  if (em[em.length - 1] !== 0xbc || emLen < 2 * hLen + 2) return false;
  const masked = em.subarray(0, emLen - hLen - 1);
  const h = em.subarray(emLen - hLen - 1, emLen - 1);
  const topMask = 0xff >> (8 * emLen - emBits);
  if (((masked[0] ?? 0) & ~topMask) !== 0) return false;
  const db = mgf1(hash, h, masked.length);
  for (let i = 0; i < db.length; i++) db[i] = (db[i] ?? 0) ^ (masked[i] ?? 0);
  db[0] = (db[0] ?? 0) & topMask;
  const psLen = emLen - 2 * hLen - 2;
  if (db.subarray(0, psLen).some((b) => b !== 0) || db[psLen] !== 1) return false;
  const salt = db.subarray(psLen + 1);
  const h2 = createHash(hash).update(Buffer.alloc(8)).update(digest).update(salt).digest();
  return timingSafeEqual(h, h2);
}

/** RSAES-PKCS1-v1_5 decryption; undefined when the padding is malformed. */
export function rsa15Decrypt(key: KeyObject, ciphertext: Buffer): Buffer | undefined {
  const k = Math.ceil(modulusBits(key) / 8);
  if (ciphertext.length !== k) return undefined;
  let em: Buffer;
  try {
    em = privateDecrypt({ key, padding: constants.RSA_NO_PADDING }, ciphertext);
  } catch {
    return undefined;
  }
  if (em[0] !== 0 || em[1] !== 2) return undefined;
  const sep = em.indexOf(0, 2);
  if (sep < 10) return undefined; // at least eight non-zero padding bytes
  return em.subarray(sep + 1);
}
