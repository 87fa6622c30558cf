/**
 * Service errors that quote the plaintext of the request they refuse. Cloud KMS itself names
 * resources only, but a proxy or a look-alike endpoint may quote the request in its error, and
 * the client puts that text in its error's message, which the KeyportError keeps as `cause`:
 * every log of the error would print the plaintext (or the data key, for emulated data keys).
 * Such an error is replaced by one that keeps what mapping reads (the gRPC or HTTP status, the
 * request id, and whether the text named a checksum or the message size limit) without the text.
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

type Fields = Record<string, unknown>;
const field = (value: unknown, key: string): unknown => {
  try {
    return typeof value === 'object' && value !== null ? (value as Fields)[key] : undefined;
  } catch {
    return undefined;
  }
};
const text = (value: unknown): string => (typeof value === 'string' ? value : '');

/** The request id headers errors.ts reads from the error's metadata. */
const REQUEST_IDS = ['x-request-id', 'request-id'];

function requestIds(error: unknown): string[] {
  const metadata = field(error, 'metadata') as { get?: (key: string) => unknown[] } | undefined;
  try {
    return REQUEST_IDS.map((k) => text(metadata?.get?.(k)?.[0]));
  } catch {
    return [];
  }
}

/** The texts of an error that outlive it in a KeyportError (core keeps these in `cause`, a few causes deep). */
function keptTexts(error: unknown): string[] {
  const texts: string[] = [...requestIds(error)];
  let e = error;
  for (let depth = 0; depth < 8 && typeof e === 'object' && e !== null; depth++) {
    for (const key of ['name', 'message', 'stack', 'code', 'Code', 'errorCode', 'requestId'])
      texts.push(text(field(e, key)));
    e = field(e, 'cause');
  }
  return texts.filter((t) => t !== '');
}

/** `error`, or when it quotes `secret` (the request's `what`) a copy without its text. */
export function withoutEcho(error: unknown, secret: Uint8Array, what: string): unknown {
  if (!keptTexts(error).some((t) => quotesSecret(t, secret))) return error;
  // What errors.ts reads in the text to tell a corrupted request or an oversized message apart.
  const said = `${text(field(error, 'message'))} ${text(field(error, 'details'))}`.toLowerCase();
  const named = [
    said.includes('crc32c') || said.includes('checksum') ? ' (it named a checksum)' : '',
    said.includes('message larger than max') ? ' (message larger than max)' : '',
  ].join('');
  const copy = new Error(`the service's message is withheld: it quotes the ${what} sent${named}`) as Error &
    Fields;
  copy.stack = `Error: ${copy.message}`;
  const code = field(error, 'code');
  if (typeof code === 'number' || (typeof code === 'string' && /^\d{1,3}$/.test(code))) copy.code = code;
  const status = field(error, 'httpStatusCode');
  if (typeof status === 'number') copy.httpStatusCode = status;
  const ids = new Map(
    REQUEST_IDS.map((k, i) => [k, requestIds(error)[i]] as const).filter(
      (entry): entry is readonly [string, string] =>
        entry[1] !== undefined && entry[1] !== '' && !quotesSecret(entry[1], secret),
    ),
  );
  copy.metadata = { get: (key: string) => (ids.has(key) ? [ids.get(key)] : []) };
  return copy;
}
