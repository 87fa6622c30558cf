import { constants, createECDH, createHash, type KeyObject, privateEncrypt, randomBytes } from 'node:crypto';

// node:crypto always hashes what it signs, but AsymmetricSign usually receives a digest the
// client already computed. These two routines sign a given digest with standard encodings so
// any verifier of "hash(data)" accepts the result: ECDSA (k·G taken from ECDH) and RSASSA-PSS
// (EMSA-PSS encoding, RFC 8017 §9.1.1, then the raw RSA private operation).

const CURVE_ORDER: Record<string, bigint> = {
  prime256v1: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
  secp384r1:
    0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
  secp256k1: 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n,
};

const toBig = (b: Uint8Array): bigint =>
  b.length === 0 ? 0n : BigInt(`0x${Buffer.from(b).toString('hex')}`);
const toBytes = (n: bigint, len: number): Buffer => Buffer.from(n.toString(16).padStart(len * 2, '0'), 'hex');
const mod = (a: bigint, n: bigint): bigint => ((a % n) + n) % n;

function modInverse(a: bigint, n: bigint): bigint {
  let [r0, r1] = [mod(a, n), n];
  let [s0, s1] = [1n, 0n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  return mod(s0, n);
}

function derInteger(n: bigint): Buffer {
  let hex = n.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  let body = Buffer.from(hex, 'hex');
  if (body[0]! & 0x80) body = Buffer.concat([Buffer.from([0]), body]);
  return Buffer.concat([Buffer.from([0x02, body.length]), body]);
}

export function ecdsaSignDigest(curve: string, privateKey: KeyObject, digest: Buffer): Buffer {
  const n = CURVE_ORDER[curve];
  if (n === undefined) throw new Error(`no order for ${curve}`);
  const byteLen = Math.ceil(n.toString(2).length / 8);
  const d = toBig(Buffer.from(privateKey.export({ format: 'jwk' }).d ?? '', 'base64url'));
  const excessBits = digest.length * 8 - n.toString(2).length;
  const z = excessBits > 0 ? toBig(digest) >> BigInt(excessBits) : toBig(digest);
  const ecdh = createECDH(curve);
  for (;;) {
    const k = toBig(randomBytes(byteLen));
    if (k === 0n || k >= n) continue;
    ecdh.setPrivateKey(toBytes(k, byteLen));
    const point = ecdh.getPublicKey();
    const r = mod(toBig(point.subarray(1, 1 + byteLen)), n);
    if (r === 0n) continue;
    const s = mod(modInverse(k, n) * (z + r * d), n);
    if (s === 0n) continue;
    const body = Buffer.concat([derInteger(r), derInteger(s)]);
    return Buffer.concat([Buffer.from([0x30, body.length]), body]);
  }
}

function mgf1(hash: string, seed: Buffer, length: number): Buffer {
  const blocks: Buffer[] = [];
  for (let counter = 0; blocks.length * seed.length < length; counter++) {
    const c = Buffer.alloc(4);
    c.writeUInt32BE(counter);
    blocks.push(createHash(hash).update(seed).update(c).digest());
  }
  return Buffer.concat(blocks).subarray(0, length);
}

/** RSASSA-PSS over a digest, salt length = digest length (what Cloud KMS uses). */
export function pssSignDigest(hash: string, privateKey: KeyObject, digest: Buffer): Buffer {
  const modBits = privateKey.asymmetricKeyDetails?.modulusLength ?? 0;
  const k = Math.ceil(modBits / 8);
  const emBits = modBits - 1;
  const emLen = Math.ceil(emBits / 8);
  const hLen = digest.length;
  const salt = randomBytes(hLen);
  const h = createHash(hash).update(Buffer.alloc(8)).update(digest).update(salt).digest();
  const db = Buffer.concat([Buffer.alloc(emLen - 2 * hLen - 2), Buffer.from([1]), salt]);
  const mask = mgf1(hash, h, emLen - hLen - 1);
  for (let i = 0; i < db.length; i++) db[i] = db[i]! ^ mask[i]!;
  db[0] = db[0]! & (0xff >> (8 * emLen - emBits));
  const em = Buffer.concat([Buffer.alloc(k - emLen), db, h, Buffer.from([0xbc])]);
  return privateEncrypt({ key: privateKey, padding: constants.RSA_NO_PADDING }, em);
}
