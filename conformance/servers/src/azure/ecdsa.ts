// ECDSA over a caller-supplied digest. node:crypto always hashes its input before an ECDSA
// signature, but Key Vault's sign/verify take the digest itself, so the curve arithmetic is done
// here with BigInt (Jacobian coordinates). This is a test server: constant time is not a goal.
import { randomBytes } from 'node:crypto';
import { ownEntry } from '../shared/own.js';

interface Curve {
  readonly p: bigint;
  readonly a: bigint;
  readonly n: bigint;
  readonly gx: bigint;
  readonly gy: bigint;
  readonly size: number; // bytes of a coordinate / of r and s in the raw signature
}

const hex = (s: string): bigint => BigInt(`0x${s}`);

// Parameters as printed by `openssl ecparam -param_enc explicit -text` (SEC 2 / FIPS 186-4).
const CURVES: Record<string, Curve> = {
  'P-256': {
    p: hex('ffffffff00000001000000000000000000000000ffffffffffffffffffffffff'),
    a: hex('ffffffff00000001000000000000000000000000fffffffffffffffffffffffc'),
    n: hex('ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551'),
    gx: hex('6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296'),
    gy: hex('4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5'),
    size: 32,
  },
  'P-384': {
    p: hex(
      'fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffff',
    ),
    a: hex(
      'fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000fffffffc',
    ),
    n: hex(
      'ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973',
    ),
    gx: hex(
      'aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7',
    ),
    gy: hex(
      '3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5f',
    ),
    size: 48,
  },
  'P-521': {
    p: (1n << 521n) - 1n,
    a: (1n << 521n) - 4n,
    n: hex(
      '1fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409',
    ),
    gx: hex(
      'c6858e06b70404e9cd9e3ecb662395b4429c648139053fb521f828af606b4d3dbaa14b5e77efe75928fe1dc127a2ffa8de3348b3c1856a429bf97e7e31c2e5bd66',
    ),
    gy: hex(
      '11839296a789a3bc0045c8a5fb42c7d1bd998f54449579b446817afbd17273e662c97ee72995ef42640c550b9013fad0761353c7086a272c24088be94769fd16650',
    ),
    size: 66,
  },
  'P-256K': {
    p: hex('fffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2f'),
    a: 0n,
    n: hex('fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141'),
    gx: hex('79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798'),
    gy: hex('483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8'),
    size: 32,
  },
};

type Jacobian = readonly [bigint, bigint, bigint];

const mod = (x: bigint, m: bigint): bigint => {
  const r = x % m;
  return r < 0n ? r + m : r;
};

function invert(x: bigint, m: bigint): bigint {
  let [a, b, u, v] = [mod(x, m), m, 1n, 0n];
  while (a !== 0n) {
    const q = b / a;
    [a, b] = [b - q * a, a];
    [u, v] = [v - q * u, u];
  }
  return mod(v, m);
}

function double(c: Curve, [x, y, z]: Jacobian): Jacobian {
  if (y === 0n || z === 0n) return [0n, 1n, 0n];
  const { p } = c;
  const yy = mod(y * y, p);
  const s = mod(4n * x * yy, p);
  const zz = mod(z * z, p);
  const m = mod(3n * x * x + c.a * zz * zz, p);
  const x3 = mod(m * m - 2n * s, p);
  const y3 = mod(m * (s - x3) - 8n * yy * yy, p);
  return [x3, y3, mod(2n * y * z, p)];
}

function add(c: Curve, a: Jacobian, b: Jacobian): Jacobian {
  if (a[2] === 0n) return b;
  if (b[2] === 0n) return a;
  const { p } = c;
  const z1z1 = mod(a[2] * a[2], p);
  const z2z2 = mod(b[2] * b[2], p);
  const u1 = mod(a[0] * z2z2, p);
  const u2 = mod(b[0] * z1z1, p);
  const s1 = mod(a[1] * b[2] * z2z2, p);
  const s2 = mod(b[1] * a[2] * z1z1, p);
  if (u1 === u2) return s1 === s2 ? double(c, a) : [0n, 1n, 0n];
  const h = mod(u2 - u1, p);
  const r = mod(s2 - s1, p);
  const hh = mod(h * h, p);
  const hhh = mod(h * hh, p);
  const v = mod(u1 * hh, p);
  const x3 = mod(r * r - hhh - 2n * v, p);
  const y3 = mod(r * (v - x3) - s1 * hhh, p);
  return [x3, y3, mod(a[2] * b[2] * h, p)];
}

function multiply(c: Curve, k: bigint, point: Jacobian): Jacobian {
  let result: Jacobian = [0n, 1n, 0n];
  let addend = point;
  for (let e = k; e > 0n; e >>= 1n) {
    if (e & 1n) result = add(c, result, addend);
    addend = double(c, addend);
  }
  return result;
}

function affineX(c: Curve, [x, , z]: Jacobian): bigint {
  const zi = invert(z, c.p);
  return mod(x * zi * zi, c.p);
}

function toBigInt(bytes: Uint8Array): bigint {
  return bytes.length === 0 ? 0n : BigInt(`0x${Buffer.from(bytes).toString('hex')}`);
}

function toBytes(x: bigint, size: number): Buffer {
  return Buffer.from(x.toString(16).padStart(size * 2, '0'), 'hex');
}

/** The digest as an integer, truncated to the bit length of the group order (SEC 1, 4.1.3). */
function digestInteger(c: Curve, digest: Uint8Array): bigint {
  const nBits = c.n.toString(2).length;
  const e = toBigInt(digest);
  const excess = digest.length * 8 - nBits;
  return excess > 0 ? e >> BigInt(excess) : e;
}

export function curveSignatureSize(crv: string): number | undefined {
  const c = ownEntry(CURVES, crv);
  return c ? c.size * 2 : undefined;
}

/** Signs `digest` with private scalar `d`; returns r || s, each padded to the coordinate size. */
export function ecdsaSignDigest(crv: string, d: Uint8Array, digest: Uint8Array): Buffer {
  const c = ownEntry(CURVES, crv);
  if (!c) throw new Error(`unsupported curve ${crv}`);
  const dn = toBigInt(d);
  const e = digestInteger(c, digest);
  for (;;) {
    const k = mod(toBigInt(randomBytes(c.size + 8)), c.n - 1n) + 1n;
    const r = mod(affineX(c, multiply(c, k, [c.gx, c.gy, 1n])), c.n);
    if (r === 0n) continue;
    const s = mod(invert(k, c.n) * (e + r * dn), c.n);
    if (s === 0n) continue;
    return Buffer.concat([toBytes(r, c.size), toBytes(s, c.size)]);
  }
}

/** Verifies a raw r || s signature over `digest` with public point (x, y). */
export function ecdsaVerifyDigest(
  crv: string,
  x: Uint8Array,
  y: Uint8Array,
  digest: Uint8Array,
  signature: Uint8Array,
): boolean {
  const c = ownEntry(CURVES, crv);
  if (!c || signature.length !== c.size * 2) return false;
  const r = toBigInt(signature.subarray(0, c.size));
  const s = toBigInt(signature.subarray(c.size));
  if (r <= 0n || r >= c.n || s <= 0n || s >= c.n) return false;
  const w = invert(s, c.n);
  const e = digestInteger(c, digest);
  const u1 = mod(e * w, c.n);
  const u2 = mod(r * w, c.n);
  const sum = add(c, multiply(c, u1, [c.gx, c.gy, 1n]), multiply(c, u2, [toBigInt(x), toBigInt(y), 1n]));
  if (sum[2] === 0n) return false;
  return mod(affineX(c, sum), c.n) === r;
}
