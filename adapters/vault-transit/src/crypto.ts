/**
 * Transit cryptography: encrypt / decrypt (the context as associated_data), data keys, sign /
 * verify, HMAC, bulk encrypt / decrypt through `batch_input`, and rewrap.
 */
import {
  type DataKeyRequest,
  type EncryptionContext,
  KeyportError,
  keyportError,
  type MacResult,
  type ProviderCallOptions,
  SIGNING_ALGORITHMS_BY_SPEC,
  type SigningAlgorithm,
  type SignRequest,
} from '@keyport/core';
import { malformedAnswer, PROVIDER_NAME, VAULT_ERROR_TABLE, vaultAnswer, vaultErrorKey } from './errors.js';
import { type KeyTarget, readKey } from './keys.js';
import { batchResultsOf } from './rpc.js';
import {
  associatedData,
  b64,
  ciphertextBytes,
  ciphertextText,
  parsePrefixed,
  prefixed,
  rawFromPrefixed,
  SIGN_PARAMS,
  specOfType,
  unb64,
} from './specs.js';
import { keyId, opPath, type ResolvedKey } from './uri.js';

/** One key's crypto calls need the server, the facts learnt about it, and the key. */
type Target = KeyTarget;

/** The body fields binding a context: associated_data, plus `context` for derived keys. */
function contextFields(t: Target, context: Context, strict = true): Record<string, string> {
  const aad = associatedData(context);
  const derived = t.facts.derived.has(keyId(t.key));
  if (aad === undefined && strict && derived) {
    throw refuse(t, 'derived transit keys need a non-empty encryption context');
  }
  return aad === undefined ? {} : { associated_data: aad, ...(derived ? { context: aad } : {}) };
}

const DERIVED_HINT = /missing 'context' for key derivation/;

/** Writes to `<mount>/<op>/<name>`, learning once that a key is derived and retrying with `context`. */
async function writeWithContext(t: Target, op: string, body: object, context: Context, signal: AbortSignal) {
  const send = () => {
    const request = { ...body, ...contextFields(t, context) };
    return t.s.write<unknown>(signal, opPath(t.key, op), request, answerBound([request]));
  };
  try {
    return await send();
  } catch (error) {
    const id = keyId(t.key);
    // Read from the answer's body: the error's message no longer holds the server's text (rpc.ts).
    const said = vaultAnswer(error)?.message || String((error as Error | null)?.message);
    if (t.facts.derived.has(id) || !DERIVED_HINT.test(said)) throw error;
    t.facts.derived.add(id);
    return await send();
  }
}

/**
 * Standard base64 as Vault writes it (padded); Node's decoder would skip anything else silently.
 * Alphabet characters, at most two `=` at the end, a length that is a multiple of four: checked
 * with one flat character class and the length, as a pattern repeating a group of four
 * (`(?:[…]{4})*`) makes V8 backtrack per group and throws RangeError ("Maximum call stack size
 * exceeded") on a few MiB, failing every message over about 3 MiB.
 */
const BASE64_TEXT = /^[A-Za-z0-9+/]*={0,2}$/;
const isBase64 = (text: string): boolean => text.length % 4 === 0 && BASE64_TEXT.test(text);
const PREFIX = /^vault:v[1-9][0-9]*:/;
const isPrefixed = (text: string): boolean => {
  const prefix = PREFIX.exec(text);
  return prefix !== null && isBase64(text.slice(prefix[0].length));
};

/**
 * A field of a successful answer's `data`, checked for the form Vault gives it: `vault:vN:<base64>`
 * (ciphertexts, signatures, MACs) or base64 (plaintexts). A server or proxy answering 2xx without
 * it is out of contract: Internal, saying what was missing, never echoing the body (it may carry
 * a plaintext). Left unchecked, a missing ciphertext surfaced as InvalidCiphertext (blaming the
 * caller) or a TypeError, and a plaintext that is not base64 decoded to wrong bytes silently.
 */
function answered(
  t: Target,
  op: string,
  answer: unknown,
  field: string,
  form: 'prefixed' | 'base64',
): string {
  const fail = (what: string) => malformedAnswer(`transit ${op} ${what}`, t.key.uri);
  const data = (answer as { data?: unknown } | null | undefined)?.data;
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw fail(`without the data object of a successful answer (expected data.${field})`);
  }
  return fieldOf(data, `data.${field}`, field, form, fail);
}

/** `record[field]` in the form Vault writes it, else `fail` saying what was wrong (never the value). */
function fieldOf(
  record: object,
  name: string,
  field: string,
  form: 'prefixed' | 'base64',
  fail: (what: string) => KeyportError,
  maxLength = Number.POSITIVE_INFINITY,
): string {
  const value = Object.hasOwn(record, field) ? (record as Record<string, unknown>)[field] : undefined;
  if (typeof value !== 'string') throw fail(`without ${name} (a string)`);
  // Checked before the text is matched or decoded: a size no input can have is not transit's.
  if (value.length > maxLength) {
    throw fail(`with ${name} of ${value.length} chars, more than its input allows (${maxLength})`);
  }
  const ok = form === 'prefixed' ? isPrefixed(value) : isBase64(value);
  if (!ok) {
    const shape = form === 'prefixed' ? 'vault:v<N>:<base64>' : 'base64';
    throw fail(`with ${name} that is not ${shape} (${value.length} chars)`);
  }
  return value;
}

type Context = EncryptionContext | undefined;
type Req = { readonly context?: Context };
type Call = ProviderCallOptions;
const pinned = (key: ResolvedKey) => (key.version === undefined ? {} : { key_version: Number(key.version) });
const sealed = (text: string) => ({
  ciphertext: ciphertextBytes(text),
  keyVersion: parsePrefixed(text).version,
});

/**
 * A ref pinned to a version is answered by that version: a ciphertext, signature or MAC naming
 * another was made under a version the caller did not ask for (one disabled by policy, or none
 * the caller would record), so it is refused rather than handed back as the pinned version's.
 */
function pinnedVersionAnswered(t: Target, version: string, fail: (what: string) => KeyportError): void {
  if (t.key.version !== undefined && version !== t.key.version) {
    throw fail(`naming version ${version} where version ${t.key.version} was pinned`);
  }
}
const opFail = (t: Target, op: string) => (what: string) =>
  malformedAnswer(`transit ${op} ${what}`, t.key.uri);

/** An answer's `vault:v<N>:` text as keyport ciphertext, from the pinned version when one is. */
function sealedBy(t: Target, op: string, text: string) {
  const result = sealed(text);
  pinnedVersionAnswered(t, result.keyVersion, opFail(t, op));
  return result;
}
const refuse = (t: Target, why: string) => new KeyportError('InvalidArgument', why, { keyUri: t.key.uri });

export async function encrypt(t: Target, plaintext: Uint8Array, { context }: Req, { signal }: Call) {
  const body = { plaintext: b64(plaintext), ...pinned(t.key) };
  const answer = await writeWithContext(t, 'encrypt', body, context, signal);
  return sealedBy(t, 'encrypt', answered(t, 'encrypt', answer, 'ciphertext', 'prefixed'));
}

/** A ref pinned to a version opens only that version's ciphertexts (decrypt and decryptBatch alike). */
function checkPinnedVersion(t: Target, text: string): void {
  if (t.key.version !== undefined && t.key.version !== parsePrefixed(text).version) {
    const why = 'ciphertext was made by another version than the one pinned';
    throw new KeyportError('InvalidCiphertext', why, { keyUri: t.key.uri });
  }
}

export async function decrypt(t: Target, ciphertext: Uint8Array, { context }: Req, { signal }: Call) {
  const text = ciphertextText(ciphertext);
  checkPinnedVersion(t, text);
  const { version } = parsePrefixed(text);
  const answer = await writeWithContext(t, 'decrypt', { ciphertext: text }, context, signal);
  return { plaintext: unb64(answered(t, 'decrypt', answer, 'plaintext', 'base64')), keyVersion: version };
}

const DATAKEY_BITS: Readonly<Record<number, number>> = { 16: 128, 32: 256, 64: 512 };

export async function generateDataKey(t: Target, req: DataKeyRequest, { signal }: Call) {
  const bytes = req.bytes ?? 32;
  // Own numeric entries only: `DATAKEY_BITS['constructor']` is a function, which JSON drops, and
  // transit would then make its default 32-byte key whatever size was asked for.
  const bits =
    typeof bytes === 'number' && Object.hasOwn(DATAKEY_BITS, bytes) ? DATAKEY_BITS[bytes] : undefined;
  if (bits === undefined) throw refuse(t, 'transit data keys are 16, 32 or 64 bytes');
  const op = 'datakey/plaintext';
  const answer = await writeWithContext(t, op, { bits, ...pinned(t.key) }, req.context, signal);
  const { ciphertext: wrapped, keyVersion } = sealedBy(
    t,
    op,
    answered(t, op, answer, 'ciphertext', 'prefixed'),
  );
  const plaintext = unb64(answered(t, op, answer, 'plaintext', 'base64'));
  if (plaintext.length !== bytes) {
    plaintext.fill(0);
    throw malformedAnswer(`transit ${op} with a key of another size than asked`, t.key.uri);
  }
  return { plaintext, wrapped, keyVersion };
}

/** The algorithm and transit parameters for signing with a key of `type`; refuses mismatches. */
export function signParams(type: string, requested: SigningAlgorithm | undefined, keyUri: string) {
  const spec = specOfType(type);
  const algorithms = spec === undefined ? undefined : SIGNING_ALGORITHMS_BY_SPEC[spec];
  if (algorithms === undefined) {
    throw keyportError('Unsupported', `keyport has no portable signing algorithm for ${type} keys`, {
      keyUri,
      capability: 'signingAlgorithms',
    });
  }
  const algorithm = requested ?? (algorithms[0] as SigningAlgorithm);
  const body = SIGN_PARAMS[algorithm];
  if (!algorithms.includes(algorithm) || body === undefined) {
    throw new KeyportError('InvalidArgument', `${algorithm} cannot be used with ${type} keys`, { keyUri });
  }
  return { algorithm, body };
}

export async function sign(t: Target, message: Uint8Array, req: SignRequest, { signal }: Call) {
  const type = await t.facts.typeOf(t.s, t.key, signal);
  const params = signParams(type, req.algorithm, t.key.uri);
  const body = { input: b64(message), prehashed: req.messageType === 'digest', ...params.body };
  const raw = await tagged(t, 'sign', 'signature', body, signal);
  if (!signatureFits(type, raw.bytes)) {
    // Transit signs with whatever key the name holds now and ignores parameters of other types:
    // a key replaced behind this instance (deleted and created again elsewhere) would answer a
    // signature of its own type, which would go out labelled with the algorithm of the old one.
    t.facts.forget(t.key);
    throw malformedAnswer(
      `transit sign with a signature that no ${type} key makes (${raw.bytes.length} bytes): the key was replaced, or the server is not transit; call again to use the key as it is now`,
      t.key.uri,
    );
  }
  return { signature: raw.bytes, algorithm: params.algorithm, keyVersion: raw.version };
}

/** RSA signatures are as long as the modulus; ECDSA ones (ASN.1) a DER SEQUENCE of two integers. */
const SIGNATURE_SHAPE: Readonly<Record<string, { readonly rsa?: number; readonly ecdsaMax?: number }>> = {
  'rsa-2048': { rsa: 256 },
  'rsa-3072': { rsa: 384 },
  'rsa-4096': { rsa: 512 },
  'ecdsa-p256': { ecdsaMax: 72 },
  'ecdsa-p384': { ecdsaMax: 104 },
};

function signatureFits(type: string, signature: Uint8Array): boolean {
  const shape = Object.hasOwn(SIGNATURE_SHAPE, type) ? SIGNATURE_SHAPE[type] : undefined;
  if (shape?.rsa !== undefined) return signature.length === shape.rsa;
  if (shape?.ecdsaMax !== undefined) {
    return signature.length >= 8 && signature.length <= shape.ecdsaMax && signature[0] === 0x30;
  }
  return true;
}

/** A sign or hmac call on the (pinned) key; the answer's `vault:vN:` tag, as raw bytes. */
async function tagged(t: Target, op: string, field: string, body: object, signal: AbortSignal) {
  const request = { ...body, ...pinned(t.key) };
  const answer = await t.s.write<unknown>(signal, opPath(t.key, op), request, answerBound([request]));
  const raw = rawFromPrefixed(answered(t, op, answer, field, 'prefixed'), field);
  pinnedVersionAnswered(t, raw.version, opFail(t, op));
  return raw;
}

/**
 * One batched verify over every version the unprefixed signature or MAC may come from (the
 * pinned one, else every live one): valid when any version verifies.
 */
async function verifyAny(
  t: Target,
  field: 'signature' | 'hmac',
  input: Uint8Array,
  tag: Uint8Array,
  body: Record<string, unknown>,
  signal: AbortSignal,
) {
  const versions: number[] = [];
  if (t.key.version !== undefined) versions.push(Number(t.key.version));
  else {
    const data = t.facts.remember(t.key, await readKey(t.s, t.key, signal));
    const low = Math.max(data.min_decryption_version, data.min_available_version, 1);
    for (let v = data.latest_version; v >= low; v--) versions.push(v);
  }
  if (versions.length === 0) return false;
  const items = versions.map((v) => ({ input: b64(input), [field]: prefixed(v, tag) }));
  return (await sendBatch(t, 'verify', items, signal, body)).some((r) => r.valid === true);
}

export async function verify(
  t: Target,
  message: Uint8Array,
  signature: Uint8Array,
  req: SignRequest & { algorithm: SigningAlgorithm },
  { signal }: Call,
) {
  const params = signParams(await t.facts.typeOf(t.s, t.key, signal), req.algorithm, t.key.uri);
  const body = { prehashed: req.messageType === 'digest', ...params.body };
  return verifyAny(t, 'signature', message, signature, body, signal);
}

/** Transit would HMAC with any key's side HMAC key; keyport keeps MACs to MAC keys. */
async function requireHmacKey(t: Target, signal: AbortSignal): Promise<void> {
  const type = await t.facts.typeOf(t.s, t.key, signal);
  if (type !== 'hmac') throw refuse(t, `${type} keys are not MAC keys`);
}

export async function mac(t: Target, message: Uint8Array, { signal }: Call): Promise<MacResult> {
  await requireHmacKey(t, signal);
  const raw = await tagged(t, 'hmac', 'hmac', { input: b64(message), algorithm: 'sha2-256' }, signal);
  return { mac: raw.bytes, keyVersion: raw.version };
}

export async function verifyMac(t: Target, message: Uint8Array, tag: Uint8Array, { signal }: Call) {
  await requireHmacKey(t, signal);
  return verifyAny(t, 'hmac', message, tag, { algorithm: 'sha2-256' }, signal);
}

// ---------------------------------------------------------------- batch and rewrap

export interface BatchItem {
  readonly data: Uint8Array;
  readonly context?: EncryptionContext;
}

export type BatchOutcome<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: KeyportError };

interface BatchResult {
  readonly ciphertext?: string;
  readonly plaintext?: string;
  readonly valid?: boolean;
  readonly error?: string;
  /** The item's `reference`, copied by transit (the Vault and OpenBao versions that take one). */
  readonly reference?: unknown;
}

/** Room in a batch answer for each item's result beyond its input's size (fields, an error). */
const ITEM_SLACK = 4096;
/** Room for the answer's own fields (request id, warnings, ...). */
const ANSWER_SLACK = 64 * 1024;

/**
 * The most bytes transit can answer a crypto request with (a batch's items, or a single call's
 * one body): no result is much longer than its item's input (a ciphertext is its plaintext and a
 * little more, a plaintext less than its ciphertext, a signature, MAC, data key or verification a
 * few hundred bytes at most), so the answer is bounded by what was sent. A larger one is refused
 * by the transport before it is read, never buffered up to the 128 MiB every answer is held to:
 * a server or proxy answering each of many concurrent small calls so would exhaust memory.
 */
function answerBound(items: readonly object[]): number {
  let bytes = ANSWER_SLACK;
  for (const item of items) {
    bytes += ITEM_SLACK;
    for (const value of Object.values(item)) bytes += String(value).length;
  }
  return bytes;
}

/**
 * Transit answers 400 when items fail but still lists every item's result. Each item carries its
 * index as transit's `reference`, which transit copies into that item's result: results answered
 * in another order (a proxy or server that is not quite Vault) are caught by it, where a count
 * alone would hand one item's ciphertext or plaintext to another. A server that copies no
 * reference (an older one) is read in order, as before.
 */
async function sendBatch(
  t: Target,
  op: string,
  items: readonly object[],
  signal: AbortSignal,
  body: object = {},
) {
  if (items.length === 0) return [];
  const referenced = items.map((item, i) => ({ ...item, reference: String(i) }));
  let results: unknown;
  try {
    const request = { ...body, batch_input: referenced };
    const answer = await t.s.write<unknown>(signal, opPath(t.key, op), request, answerBound(referenced));
    results = (answer as { data?: { batch_results?: unknown } } | null | undefined)?.data?.batch_results;
  } catch (error) {
    // A failure answered without results is the request's own; with results, the items'.
    results = batchResultsOf(error);
    if (results === undefined) throw error;
  }
  // One result per item, in order, or nothing: results that do not line up with the items
  // would hand one item's outcome to another, whether Vault answered 200 or 400.
  if (!Array.isArray(results) || results.length !== items.length) {
    const got = Array.isArray(results) ? `${results.length} results` : 'no results';
    throw malformedAnswer(`a batch of ${items.length} items with ${got}`, t.key.uri);
  }
  const misplaced = results.findIndex((r: unknown, i) => {
    const reference = typeof r === 'object' && r !== null ? (r as BatchResult).reference : undefined;
    return reference !== undefined && reference !== String(i);
  });
  if (misplaced !== -1) {
    throw malformedAnswer(
      `a batch of ${items.length} items with results out of order (result #${misplaced} is not its item's)`,
      t.key.uri,
    );
  }
  return results as BatchResult[];
}

/**
 * One outcome per input (`build` makes them), in order: an input already refused here stays out
 * of the request; `read` turns an item's result into its value (undefined: the item failed).
 */
async function runBatch<T>(
  t: Target,
  op: string,
  build: () => ReadonlyArray<object | KeyportError>,
  read: (r: BatchResult, index: number, fail: (what: string) => KeyportError) => T,
  signal: AbortSignal,
): Promise<Array<BatchOutcome<T>>> {
  const sendable = (all: ReadonlyArray<object | KeyportError>) =>
    all.filter((input) => !(input instanceof KeyportError));
  let inputs = build();
  let results = await sendBatch(t, op, sendable(inputs), signal);
  // A derived key this instance has not met yet fails every item (none carried `context`): it is
  // learnt from the answer and the batch sent again with each item's context, as a single call
  // is (writeWithContext). Sending again repeats nothing: encryption and decryption change no state.
  const id = keyId(t.key);
  const hinted = (r: unknown) =>
    typeof r === 'object' && r !== null && DERIVED_HINT.test(String((r as BatchResult).error));
  if (!t.facts.derived.has(id) && results.some(hinted)) {
    t.facts.derived.add(id);
    inputs = build();
    results = await sendBatch(t, op, sendable(inputs), signal);
  }
  let next = 0;
  return inputs.map((input, i) => {
    if (input instanceof KeyportError) return { ok: false, error: input };
    const r: unknown = results[next++];
    const failed = typeof r === 'object' && r !== null ? (r as BatchResult).error : undefined;
    if (typeof failed === 'string' && failed !== '') {
      const key = vaultErrorKey(400, failed) ?? '400';
      const code = VAULT_ERROR_TABLE[key]?.code ?? 'InvalidArgument';
      const why = `batch item #${i}: Vault answered ${key}`;
      return { ok: false, error: keyportError(code, why, { provider: PROVIDER_NAME, keyUri: t.key.uri }) };
    }
    // A result that is neither an error nor the field the item produces is out of contract (a
    // server or proxy that is not quite Vault): that item fails with Internal, saying what was
    // missing, and the others keep their outcomes. It is never blamed on the caller's input.
    const fail = opFail(t, `${op} batch item #${i}`);
    try {
      if (typeof r !== 'object' || r === null || Array.isArray(r))
        throw fail('with a result that is not an object');
      return { ok: true, value: read(r as BatchResult, i, fail) };
    } catch (error) {
      if (error instanceof KeyportError) return { ok: false, error };
      throw error;
    }
  });
}

/**
 * How much longer than its input an item's result may be: a transit ciphertext is the plaintext
 * with nonce, tag and `vault:v<N>:` added (an RSA-4096 one is 684 base64 characters, whatever the
 * plaintext), and a plaintext is shorter than its ciphertext. A longer result is refused unread.
 */
const RESULT_SLACK = 1024;

/** Many encryptions in one request; one outcome per item, in order. */
export function encryptBatch(t: Target, items: readonly BatchItem[], signal: AbortSignal) {
  const plaintexts = items.map((it) => b64(it.data));
  // Built when sent: the context fields depend on whether the key is known to be derived.
  const inputs = () =>
    items.map((it, i) => ({
      plaintext: plaintexts[i] as string,
      ...contextFields(t, it.context, false),
      ...pinned(t.key),
    }));
  const read = (r: BatchResult, i: number, fail: (what: string) => KeyportError) => {
    const most = (plaintexts[i]?.length ?? 0) + RESULT_SLACK;
    const result = sealed(fieldOf(r, `batch_results[${i}].ciphertext`, 'ciphertext', 'prefixed', fail, most));
    pinnedVersionAnswered(t, result.keyVersion, fail);
    return result;
  };
  return runBatch(t, 'encrypt', inputs, read, signal);
}

/**
 * Many decryptions in one request; a malformed ciphertext, or one of another version than the
 * ref pins (refused as `decrypt` refuses it), is refused here, without sending it.
 */
export function decryptBatch(t: Target, items: readonly BatchItem[], signal: AbortSignal) {
  const texts = items.map((it) => {
    try {
      const text = ciphertextText(it.data);
      checkPinnedVersion(t, text);
      return text;
    } catch (error) {
      return error as KeyportError;
    }
  });
  const inputs = () =>
    items.map((it, i) => {
      const text = texts[i] as string | KeyportError;
      return text instanceof KeyportError
        ? text
        : { ciphertext: text, ...contextFields(t, it.context, false) };
    });
  const read = (r: BatchResult, i: number, fail: (what: string) => KeyportError) => {
    const text = texts[i] as string;
    const most = text.length + RESULT_SLACK;
    return {
      plaintext: unb64(fieldOf(r, `batch_results[${i}].plaintext`, 'plaintext', 'base64', fail, most)),
      keyVersion: parsePrefixed(text).version,
    };
  };
  return runBatch(t, 'decrypt', inputs, read, signal);
}

/**
 * Re-encrypts under the key's newest version. Transit's `rewrap` takes no associated_data, so it
 * cannot open a ciphertext bound to a context: with a context keyport decrypts and encrypts again
 * (the plaintext passes through this process); without one the plaintext never leaves Vault.
 */
export async function rewrap(t: Target, ciphertext: Uint8Array, context: Context, signal: AbortSignal) {
  const text = ciphertextText(ciphertext);
  if (associatedData(context) === undefined && !t.facts.derived.has(keyId(t.key))) {
    const request = { ciphertext: text };
    const answer = await t.s.write<unknown>(signal, opPath(t.key, 'rewrap'), request, answerBound([request]));
    return { ...sealed(answered(t, 'rewrap', answer, 'ciphertext', 'prefixed')), serverSide: true };
  }
  const unpinned = { ...t, key: { ...t.key, version: undefined } };
  const opened = await decrypt(unpinned, ciphertext, { context }, { signal });
  try {
    return { ...(await encrypt(unpinned, opened.plaintext, { context }, { signal })), serverSide: false };
  } finally {
    opened.plaintext.fill(0);
  }
}
