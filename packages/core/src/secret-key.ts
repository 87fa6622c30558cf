/**
 * How a secret key is best handed to `node:crypto` on the Node running: Node 24 and 25 ask every
 * key given as *bytes* to `createCipheriv`, `createHmac` or `hkdfSync` whether it is a KeyObject,
 * then a CryptoKey, each by catching a thrown error. Measured on Node 24.21: an AES-256-GCM
 * cipher 13.9 us on a byte key against 3.3 us on a KeyObject, an HMAC 11.6 against 1.9, and
 * making the KeyObject 0.6 us, so even a key used once is cheaper as a KeyObject there. Node 22
 * and 26 check without throwing (3.0-3.3 us either way; a KeyObject costs 0.7-0.8 us to make),
 * so there the bytes go in as they are.
 */
import { createSecretKey, type KeyObject } from 'node:crypto';

const NODE_MAJOR = Number(process.versions.node.split('.')[0]);

/** Whether byte keys cost `node:crypto` two thrown errors per use on this Node. */
export const BYTE_KEYS_THROW = NODE_MAJOR === 24 || NODE_MAJOR === 25;

/**
 * `bytes` as the key `node:crypto` takes fastest here: a KeyObject (holding its own copy; the
 * caller still zeroes `bytes`) or the bytes themselves.
 */
export function secretKey(bytes: Uint8Array): KeyObject | Uint8Array {
  return BYTE_KEYS_THROW ? createSecretKey(bytes) : bytes;
}
