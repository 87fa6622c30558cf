import { createPrivateKey, createPublicKey, KeyObject } from 'node:crypto';

// A JSON encoding of in-memory server state that keeps what JSON loses: Date, Buffer, Map,
// Set and node:crypto KeyObjects (private keys as PKCS#8, public as SPKI, secret as raw bytes).
// Functions are dropped (they are caches rebuilt on load).
type Tagged =
  | { $date: string }
  | { $bytes: string }
  | { $map: [unknown, unknown][] }
  | { $set: unknown[] }
  | { $key: 'private' | 'public' | 'secret'; der: string };

export function encode(value: unknown): unknown {
  if (value instanceof Date) return { $date: value.toISOString() } satisfies Tagged;
  if (Buffer.isBuffer(value) || value instanceof Uint8Array)
    return { $bytes: Buffer.from(value).toString('base64') } satisfies Tagged;
  if (value instanceof KeyObject) {
    if (value.type === 'private')
      return { $key: 'private', der: value.export({ type: 'pkcs8', format: 'der' }).toString('base64') };
    if (value.type === 'public')
      return { $key: 'public', der: value.export({ type: 'spki', format: 'der' }).toString('base64') };
    return { $key: 'secret', der: value.export().toString('base64') };
  }
  if (value instanceof Map) return { $map: [...value].map(([k, v]) => [encode(k), encode(v)]) };
  if (value instanceof Set) return { $set: [...value].map(encode) };
  if (Array.isArray(value)) return value.map(encode);
  if (typeof value === 'function') return undefined;
  if (value !== null && typeof value === 'object') {
    // Null prototype: a key named __proto__ (from request data) stays an ordinary key.
    const out: Record<string, unknown> = Object.create(null);
    for (const [k, v] of Object.entries(value)) {
      const e = encode(v);
      if (e !== undefined) out[k] = e;
    }
    return out;
  }
  return value;
}

export function decode(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(decode);
  if (value === null || typeof value !== 'object') return value;
  const v = value as Record<string, unknown>;
  if (typeof v.$date === 'string') return new Date(v.$date);
  if (typeof v.$bytes === 'string') return Buffer.from(v.$bytes, 'base64');
  if (Array.isArray(v.$map))
    return new Map((v.$map as [unknown, unknown][]).map(([k, x]) => [decode(k), decode(x)]));
  if (Array.isArray(v.$set)) return new Set(v.$set.map(decode));
  if (typeof v.$key === 'string' && typeof v.der === 'string') {
    const der = Buffer.from(v.der, 'base64');
    if (v.$key === 'private') return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
    if (v.$key === 'public') return createPublicKey({ key: der, format: 'der', type: 'spki' });
    throw new Error('secret KeyObjects are not stored');
  }
  const out: Record<string, unknown> = Object.create(null);
  for (const [k, x] of Object.entries(v)) out[k] = decode(x);
  return { ...out };
}
