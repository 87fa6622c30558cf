/**
 * Where, if anywhere, a secret's bytes are in everything reachable from a value: own properties
 * enumerable or not, symbol keys, accessors (own, and those of the value's class: SDK objects keep
 * state behind getters), `cause` chains, Map and Set entries, other iterables (headers), strings
 * and the bytes of every Buffer, typed array and ArrayBuffer. A secret counts in any encoding a
 * log could show: raw bytes, latin1/utf8 text, base64 (any alignment), base64url, hex and a JSON
 * array of its byte values. Every adapter's tests use it to prove a failed call's error keeps no
 * key material, also where util.inspect would not show it. Returns where it was found (empty: nowhere).
 */
export function findSecret(root: unknown, secret: Uint8Array): string[] {
  const bytes = Buffer.from(secret);
  const needles = [
    bytes.toString('latin1'),
    bytes.toString('hex'),
    bytes.toString('hex').toUpperCase(),
    bytes.toString('base64').replace(/=+$/, ''),
    bytes.toString('base64url'),
    JSON.stringify([...bytes]).slice(1, -1),
    // The base64 characters of the secret alone, at the other two alignments in a longer value.
    ...[1, 2].map((pad) =>
      Buffer.concat([Buffer.alloc(pad), bytes])
        .toString('base64')
        .slice(4, -4),
    ),
  ].filter((n) => n.length > 0);
  const found: string[] = [];
  forEachReachable(root, (where, value) => {
    const text = typeof value === 'string' ? value : value.toString('latin1');
    if (needles.some((n) => text.includes(n))) found.push(where);
  });
  return found;
}

/** Every buffer reachable from `root` (the same walk as findSecret), for a search by shape. */
export function reachableBytes(root: unknown): Buffer[] {
  const bytes: Buffer[] = [];
  forEachReachable(root, (_where, value) => {
    if (typeof value !== 'string') bytes.push(value);
  });
  return bytes;
}

/** Calls `visit` with every string and the bytes of every buffer reachable from `root`, and where. */
function forEachReachable(root: unknown, visit: (where: string, value: string | Buffer) => void): void {
  const seen = new Set<unknown>();
  const read = (holder: object, get: () => unknown): unknown => {
    try {
      return get.call(holder);
    } catch {
      return undefined;
    }
  };
  const walk = (value: unknown, where: string, depth: number): void => {
    if (typeof value === 'string') {
      visit(where, value);
      return;
    }
    if ((typeof value !== 'object' && typeof value !== 'function') || value === null) return;
    if (seen.has(value) || depth > 64) return;
    seen.add(value);
    if (ArrayBuffer.isView(value)) {
      visit(where, Buffer.from(value.buffer, value.byteOffset, value.byteLength));
      return;
    }
    if (value instanceof ArrayBuffer || value instanceof SharedArrayBuffer) visit(where, Buffer.from(value));
    // An array of octets is bytes too (a Buffer's JSON: `{ type: 'Buffer', data: [...] }`).
    if (
      Array.isArray(value) &&
      value.length > 0 &&
      value.length <= 1 << 20 &&
      value.every((v) => Number.isInteger(v) && v >= 0 && v <= 255)
    )
      visit(where, Buffer.from(value as number[]));
    if (value instanceof Map) {
      for (const [k, v] of value) {
        walk(k, `${where}<key>`, depth + 1);
        walk(v, `${where}<${String(k)}>`, depth + 1);
      }
    } else if (Symbol.iterator in value) {
      let i = 0;
      try {
        for (const v of value as Iterable<unknown>) if (i++ < 10_000) walk(v, `${where}[${i}]`, depth + 1);
      } catch {
        // an iterable that refuses to be iterated holds nothing we can read
      }
    }
    for (const key of Reflect.ownKeys(value)) {
      const d = Object.getOwnPropertyDescriptor(value, key);
      const at = `${where}.${String(key)}`;
      if (d !== undefined && 'value' in d) walk(d.value, at, depth + 1);
      else if (d?.get !== undefined) walk(read(value, d.get), at, depth + 1);
    }
    const proto: unknown = Object.getPrototypeOf(value);
    if (typeof proto !== 'object' || proto === null) return;
    if (proto === Object.prototype || proto === Error.prototype || proto === Array.prototype) return;
    for (const key of Reflect.ownKeys(proto)) {
      const d = key === '__proto__' ? undefined : Object.getOwnPropertyDescriptor(proto, key);
      if (d?.get !== undefined) walk(read(value, d.get), `${where}.${String(key)}`, depth + 1);
      // A prototype's data (not its methods): an object made with Object.create(state) keeps it there.
      else if (d !== undefined && 'value' in d && typeof d.value !== 'function')
        walk(d.value, `${where}.${String(key)}`, depth + 1);
    }
  };
  walk(root, 'error', 0);
}
