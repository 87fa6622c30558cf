/**
 * Everything reachable from a value: own properties (non-enumerable and symbol keys too, read
 * through their descriptors so no getter runs), prototypes' own data fields, `cause` chains,
 * arrays, Maps, Sets and the bytes of every Buffer / typed array / ArrayBuffer met on the way.
 * A test asks whether a secret appears there in any encoding: raw bytes, base64, base64url, hex,
 * or its text as JSON.
 */
export function reachable(root: unknown): { texts: string[]; bytes: Buffer[] } {
  const texts: string[] = [];
  const bytes: Buffer[] = [];
  const seen = new Set<unknown>();
  const visit = (value: unknown, depth: number): void => {
    if (depth > 64) return;
    if (typeof value === 'string') {
      texts.push(value);
      return;
    }
    if (typeof value === 'bigint' || typeof value === 'number') {
      texts.push(String(value));
      return;
    }
    if ((typeof value !== 'object' && typeof value !== 'function') || value === null || seen.has(value))
      return;
    seen.add(value);
    if (value instanceof ArrayBuffer || value instanceof SharedArrayBuffer) {
      bytes.push(Buffer.from(new Uint8Array(value)));
      return;
    }
    if (ArrayBuffer.isView(value)) {
      bytes.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
      visit(value.buffer, depth + 1);
      return;
    }
    // A Buffer as JSON (`{ type: 'Buffer', data: [...] }`) or any array of octets.
    if (
      Array.isArray(value) &&
      value.length > 0 &&
      value.every((v) => Number.isInteger(v) && v >= 0 && v < 256)
    )
      bytes.push(Buffer.from(value as number[]));
    if (value instanceof Map) {
      for (const [k, v] of value) {
        visit(k, depth + 1);
        visit(v, depth + 1);
      }
    }
    if (value instanceof Set) for (const v of value) visit(v, depth + 1);
    // Functions are walked for their own fields (a bound request object), not their source.
    for (const key of Reflect.ownKeys(value)) {
      const d = Object.getOwnPropertyDescriptor(value, key);
      if (d === undefined) continue;
      if (typeof key === 'string') texts.push(key);
      if ('value' in d) visit(d.value, depth + 1);
    }
    // An error's V8 stack is an accessor on the instance in some versions: read it too.
    if (value instanceof Error) {
      try {
        visit(value.stack, depth + 1);
        visit(value.message, depth + 1);
      } catch {
        // A throwing getter shows nothing.
      }
    }
    const proto = Object.getPrototypeOf(value);
    if (
      proto !== null &&
      proto !== Object.prototype &&
      proto !== Error.prototype &&
      proto !== Function.prototype
    )
      visit(proto, depth + 1);
  };
  visit(root, 0);
  return { texts, bytes };
}

/** Where `secret` shows in what `root` reaches (raw, base64, base64url, hex, latin1), or undefined. */
export function findSecret(root: unknown, secret: Uint8Array): string | undefined {
  const raw = Buffer.from(secret);
  const forms = [
    raw.toString('base64'),
    raw.toString('base64url'),
    raw.toString('hex'),
    raw.toString('hex').toUpperCase(),
    [...raw].join(','),
    // A 3-byte-aligned middle stays recognisable inside a longer base64 text.
    raw.subarray(3, raw.length - ((raw.length - 3) % 3)).toString('base64'),
  ];
  const { texts, bytes } = reachable(root);
  for (const b of bytes) if (b.includes(raw)) return `raw bytes in a ${b.length}-byte buffer`;
  for (const t of texts) {
    for (const f of forms) if (f.length >= 8 && t.includes(f)) return `text form in "${t.slice(0, 80)}…"`;
    if (t.includes(raw.toString('latin1'))) return 'latin1 text';
  }
  return undefined;
}
