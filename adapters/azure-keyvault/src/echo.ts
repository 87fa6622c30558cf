/**
 * Vault errors that quote the key material of the request they refuse. Key Vault itself does not,
 * but a proxy or a look-alike server may quote the request (the plaintext of an encrypt, the
 * content key of a wrapKey, the private fields of an imported JWK) in its error, and the SDK puts
 * that text in its RestError's message, which the KeyportError keeps as `cause`: every log of the
 * error would print it. errors.ts withholds such an error's text as it does a decrypt's.
 */

/**
 * Runs that count as a quote: 8 raw characters (64 bits), 16 encoded ones (64 to 96 bits). Shorter
 * values cannot be told from other text ("x" is in every message): a raw secret shorter than its
 * run is not looked for, an encoded one only whole and from 8 characters on (6 bytes).
 */
const RUN = { raw: 8, encoded: 16 } as const;
const SHORTEST = { raw: RUN.raw, encoded: 8 } as const;

/** The secret as an endpoint could quote it: raw text, and hex and base64 (standard and URL alphabets, each alignment). */
function encodings(secret: Uint8Array): { raw: string[]; encoded: string[] } {
  const bytes = Buffer.from(secret.buffer, secret.byteOffset, secret.byteLength);
  const encoded = [bytes.toString('hex'), bytes.toString('hex').toUpperCase()];
  for (const pad of [0, 1, 2]) {
    // Inside a longer base64 value the secret may start at any of three alignments: only the
    // characters made of its bytes alone are compared.
    const b64 = Buffer.concat([Buffer.alloc(pad), bytes]).toString('base64');
    const tail = (pad + bytes.length) % 3;
    const from = pad === 0 ? 0 : pad + 1;
    const to = b64.length - (tail === 0 ? 0 : 5 - tail);
    const own = b64.slice(from, Math.max(from, to));
    encoded.push(own, own.replace(/\+/g, '-').replace(/\//g, '_'));
  }
  return { raw: [bytes.toString('latin1'), bytes.toString('utf8')], encoded };
}

/** Whether `text` holds the secret, or a run of it, in one of its encodings. */
export function quotesSecret(text: string, secret: Uint8Array): boolean {
  if (text === '' || secret.length === 0) return false;
  const { raw, encoded } = encodings(secret);
  for (const [values, size, shortest] of [
    [raw, RUN.raw, SHORTEST.raw],
    [encoded, RUN.encoded, SHORTEST.encoded],
  ] as const) {
    let runs: Set<string> | undefined;
    for (const value of values) {
      if (value.length < shortest) continue;
      if (value.length <= size) {
        if (text.includes(value)) return true;
        continue;
      }
      if (runs === undefined) {
        runs = new Set<string>();
        for (let i = 0; i + size <= text.length; i++) runs.add(text.slice(i, i + size));
      }
      for (let i = 0; i + size <= value.length; i++) if (runs.has(value.slice(i, i + size))) return true;
    }
  }
  return false;
}

const field = (value: unknown, key: string): unknown => {
  try {
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined;
  } catch {
    return undefined;
  }
};

/** Whether the texts of an error that outlive it in a KeyportError's cause quote one of `secrets`. */
export function quotesAnySecret(error: unknown, secrets: readonly Uint8Array[]): boolean {
  const texts: string[] = [];
  let e = error;
  for (let depth = 0; depth < 8 && typeof e === 'object' && e !== null; depth++) {
    for (const key of ['name', 'message', 'stack', 'code', 'requestId']) {
      const value = field(e, key);
      if (typeof value === 'string' && value !== '') texts.push(value);
    }
    e = field(e, 'cause');
  }
  return texts.some((t) => secrets.some((s) => quotesSecret(t, s)));
}
