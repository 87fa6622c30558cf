/**
 * Endpoint errors that quote the plaintext of the request they refuse. local-kms quotes a refused
 * plaintext whole ("Value '…' at 'plaintext' failed to satisfy constraint"), and a proxy or a
 * look-alike endpoint may quote the request in its answer; the SDK puts the answer's message (and
 * `__type`, `code`) on its error, which the KeyportError keeps as `cause`: every log of the
 * error would print the plaintext. Such an error is replaced by one that keeps what mapping and
 * retries read (exception name, HTTP status, request id, fault and retry flags) without the text.
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

type Record_ = Record<string, unknown>;
const field = (value: unknown, key: string): unknown => {
  try {
    return typeof value === 'object' && value !== null ? (value as Record_)[key] : undefined;
  } catch {
    return undefined;
  }
};
const text = (value: unknown): string => (typeof value === 'string' ? value : '');

/** The texts of an error that outlive it in a KeyportError's cause (core keeps these, a few causes deep). */
function keptTexts(error: unknown): string[] {
  const texts: string[] = [];
  let e = error;
  for (let depth = 0; depth < 8 && typeof e === 'object' && e !== null; depth++) {
    for (const key of ['name', 'message', 'stack', 'code', 'Code', 'errorCode', 'requestId'])
      texts.push(text(field(e, key)));
    texts.push(text(field(field(e, '$metadata'), 'requestId')));
    e = field(e, 'cause');
  }
  return texts.filter((t) => t !== '');
}

/** `error`, or when it quotes `secret` (the request's `what`) a copy without its text. */
export function withoutEcho(error: unknown, secret: Uint8Array, what: string): unknown {
  const kept = keptTexts(error);
  if (!kept.some((t) => quotesSecret(t, secret))) return error;
  const clean = (value: unknown) =>
    typeof value === 'string' && !quotesSecret(value, secret) ? value : undefined;
  const name = clean(field(error, 'name'));
  const metadata = field(error, '$metadata');
  const copy = new Error(`the endpoint's message is withheld: it quotes the ${what} sent`) as Error & Record_;
  copy.name = name ?? 'Error';
  copy.stack = `${copy.name}: ${copy.message}`;
  copy.$metadata = {
    httpStatusCode: field(metadata, 'httpStatusCode'),
    requestId: clean(field(metadata, 'requestId')),
  };
  for (const key of ['$fault', '$retryable'])
    if (field(error, key) !== undefined) copy[key] = field(error, key);
  return copy;
}
