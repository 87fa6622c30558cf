/**
 * Errors that quote the key material of the request they refuse. An endpoint (local-kms quotes a
 * refused plaintext whole; a proxy or a look-alike server may quote any request) puts it in its
 * answer, the SDK in its error's message, and the KeyportError keeps that as `cause`: every log
 * of the error would print it. Drivers ask here before mapping a failed call whose request
 * carried key material, and withhold the text of an error that quotes it (what the error keeps
 * then is the driver's: status, codes, request id).
 */
import { codeOf, requestIdOf } from './errors.js';

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

const read = (value: unknown, key: string): unknown => {
  try {
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined;
  } catch {
    return undefined;
  }
};

/**
 * Whether the texts core keeps of `error` in a KeyportError's cause (name, message, stack, code,
 * request id; causes and aggregated errors a few levels deep), or `extraTexts` (what else the
 * driver keeps of it), quote any of `secrets`.
 */
export function errorQuotesSecret(
  error: unknown,
  secrets: readonly Uint8Array[],
  extraTexts: readonly string[] = [],
): boolean {
  const texts = [...extraTexts];
  const visit = (e: unknown, depth: number): void => {
    if (typeof e !== 'object' || e === null || depth > 8) return;
    for (const value of [read(e, 'name'), read(e, 'message'), read(e, 'stack'), codeOf(e), requestIdOf(e)])
      if (typeof value === 'string' && value !== '') texts.push(value);
    visit(read(e, 'cause'), depth + 1);
    const inner = read(e, 'errors');
    if (Array.isArray(inner)) for (const x of inner.slice(0, 16)) visit(x, depth + 1);
  };
  visit(error, 0);
  return texts.some((t) => secrets.some((s) => quotesSecret(t, s)));
}
