/**
 * SHA-512 of a small input, base64 (cache keys). Node's one-shot `crypto.hash` (20.12+) skips
 * the Hash object, which with OpenSSL 3.2+ (Node 22, 24) re-fetches the algorithm on every
 * `createHash`; older Node falls back to `createHash`.
 */
import * as crypto from 'node:crypto';

type OneShot = (algorithm: string, data: Uint8Array, encoding: 'base64') => string;
const oneShot = (crypto as unknown as { hash?: OneShot }).hash;

export function sha512Base64(data: Uint8Array): string {
  if (typeof oneShot === 'function') return oneShot('sha512', data, 'base64');
  return crypto.createHash('sha512').update(data).digest('base64');
}
