/**
 * Transit cryptography: encrypt / decrypt (with the context as associated_data), data keys,
 * sign / verify, HMAC / verify, rewrap. Every function is one request or a small fixed number.
 */
import {
  type DataKeyRequest,
  type DataKeyResult,
  type DecryptResult,
  type EncryptionContext,
  type EncryptResult,
  KeyportError,
  type MacResult,
  type SigningAlgorithm,
  type SignRequest,
  type SignResult,
} from '@keyport/core';
import {
  associatedData,
  b64,
  ciphertextBytes,
  ciphertextText,
  parsePrefixed,
  prefixed,
  rawFromPrefixed,
  unb64,
} from './codec.js';
import type { TransitKeyData } from './key-types.js';
import { keyPath, opPath, type ResolvedKey } from './locate.js';
import type { VaultSession } from './session.js';

interface DataResponse<T> {
  readonly data: T;
}

const DERIVED_HINT = /missing 'context' for key derivation/;

/**
 * Per-provider memory of facts that never change for a key name: its type, and whether it
 * is derived (derived keys need `context` besides `associated_data`). Forgotten on delete.
 */
export class KeyFacts {
  private readonly types = new Map<string, string>();
  readonly derived = new Set<string>();

  async typeOf(session: VaultSession, key: ResolvedKey, signal: AbortSignal): Promise<string> {
    const id = `${key.mount}/${key.name}`;
    const known = this.types.get(id);
    if (known !== undefined) return known;
    const data = await readKey(session, key, signal);
    this.types.set(id, data.type);
    return data.type;
  }

  remember(key: ResolvedKey, data: TransitKeyData): void {
    this.types.set(`${key.mount}/${key.name}`, data.type);
    if (data.derived === true) this.derived.add(`${key.mount}/${key.name}`);
  }

  forget(key: ResolvedKey): void {
    this.types.delete(`${key.mount}/${key.name}`);
    this.derived.delete(`${key.mount}/${key.name}`);
  }
}

export async function readKey(
  session: VaultSession,
  key: ResolvedKey,
  signal: AbortSignal,
): Promise<TransitKeyData> {
  const r = (await session.call(signal, (o, vault) =>
    vault.read(keyPath(key), o),
  )) as DataResponse<TransitKeyData>;
  return r.data;
}

/** The body fields binding a context: associated_data, plus `context` for derived keys. */
function contextFields(
  facts: KeyFacts,
  key: ResolvedKey,
  context: EncryptionContext | undefined,
): Record<string, string> {
  const aad = associatedData(context);
  const fields: Record<string, string> = {};
  if (aad !== undefined) fields.associated_data = aad;
  if (facts.derived.has(`${key.mount}/${key.name}`)) {
    if (aad === undefined) {
      throw new KeyportError('InvalidArgument', 'derived transit keys need a non-empty encryption context', {
        keyUri: key.uri,
      });
    }
    fields.context = aad;
  }
  return fields;
}

/** Writes, learning once that a key is derived and retrying that one request with `context`. */
async function writeWithContext<T>(
  session: VaultSession,
  facts: KeyFacts,
  key: ResolvedKey,
  path: string,
  body: (ctx: Record<string, string>) => Record<string, unknown>,
  context: EncryptionContext | undefined,
  signal: AbortSignal,
): Promise<T> {
  const send = (): Promise<T> =>
    session.call(signal, (o, vault) =>
      vault.write(path, body(contextFields(facts, key, context)), o),
    ) as Promise<T>;
  try {
    return await send();
  } catch (error) {
    const message = String((error as { message?: unknown }).message ?? '');
    const id = `${key.mount}/${key.name}`;
    if (!facts.derived.has(id) && DERIVED_HINT.test(message)) {
      facts.derived.add(id);
      return send();
    }
    throw error;
  }
}

function versionOpt(key: ResolvedKey): Record<string, number> {
  return key.version === undefined ? {} : { key_version: Number(key.version) };
}

export async function encrypt(
  session: VaultSession,
  facts: KeyFacts,
  key: ResolvedKey,
  plaintext: Uint8Array,
  context: EncryptionContext | undefined,
  signal: AbortSignal,
): Promise<EncryptResult> {
  const r = await writeWithContext<DataResponse<{ ciphertext: string }>>(
    session,
    facts,
    key,
    opPath(key, 'encrypt'),
    (ctx) => ({ plaintext: b64(plaintext), ...ctx, ...versionOpt(key) }),
    context,
    signal,
  );
  return {
    ciphertext: ciphertextBytes(r.data.ciphertext),
    keyVersion: parsePrefixed(r.data.ciphertext).version,
  };
}

export async function decrypt(
  session: VaultSession,
  facts: KeyFacts,
  key: ResolvedKey,
  ciphertext: Uint8Array,
  context: EncryptionContext | undefined,
  signal: AbortSignal,
): Promise<DecryptResult> {
  const text = ciphertextText(ciphertext);
  const { version } = parsePrefixed(text);
  if (key.version !== undefined && key.version !== version) {
    throw new KeyportError(
      'InvalidCiphertext',
      'ciphertext was made by another version than the one pinned',
      {
        keyUri: key.uri,
      },
    );
  }
  const r = await writeWithContext<DataResponse<{ plaintext: string }>>(
    session,
    facts,
    key,
    opPath(key, 'decrypt'),
    (ctx) => ({ ciphertext: text, ...ctx }),
    context,
    signal,
  );
  return { plaintext: unb64(r.data.plaintext), keyVersion: version };
}

const DATAKEY_BITS: Readonly<Record<number, number>> = { 16: 128, 32: 256, 64: 512 };

export async function generateDataKey(
  session: VaultSession,
  facts: KeyFacts,
  key: ResolvedKey,
  req: DataKeyRequest,
  signal: AbortSignal,
): Promise<DataKeyResult> {
  const bytes = req.bytes ?? 32;
  const bits = DATAKEY_BITS[bytes];
  if (bits === undefined) {
    throw new KeyportError('InvalidArgument', 'transit data keys are 16, 32 or 64 bytes', {
      keyUri: key.uri,
    });
  }
  const r = await writeWithContext<DataResponse<{ ciphertext: string; plaintext: string }>>(
    session,
    facts,
    key,
    `${key.mount}/datakey/plaintext/${key.name}`,
    (ctx) => ({ bits, ...ctx, ...versionOpt(key) }),
    req.context,
    signal,
  );
  return {
    plaintext: unb64(r.data.plaintext),
    wrapped: ciphertextBytes(r.data.ciphertext),
    keyVersion: parsePrefixed(r.data.ciphertext).version,
  };
}

interface SignParams {
  readonly algorithm: SigningAlgorithm;
  readonly body: Record<string, unknown>;
}

/** Transit parameters for a signing algorithm on a key type; refuses mismatches. */
export function signParams(
  type: string,
  requested: SigningAlgorithm | undefined,
  keyUri: string,
): SignParams {
  const fail = (why: string): never => {
    throw new KeyportError('InvalidArgument', why, { keyUri });
  };
  if (type.startsWith('rsa-')) {
    const algorithm = requested ?? 'RSASSA_PSS_SHA_256';
    // PSS with salt length = hash length is what every other KMS and verifier expects.
    if (algorithm === 'RSASSA_PSS_SHA_256') {
      return {
        algorithm,
        body: { hash_algorithm: 'sha2-256', signature_algorithm: 'pss', salt_length: 'hash' },
      };
    }
    if (algorithm === 'RSASSA_PKCS1_V1_5_SHA_256') {
      return { algorithm, body: { hash_algorithm: 'sha2-256', signature_algorithm: 'pkcs1v15' } };
    }
    return fail(`${algorithm} cannot be used with an RSA key`);
  }
  const curves: Record<string, SigningAlgorithm> = {
    'ecdsa-p256': 'ECDSA_SHA_256',
    'ecdsa-p384': 'ECDSA_SHA_384',
  };
  const curveAlgorithm = curves[type];
  if (curveAlgorithm !== undefined) {
    if (requested !== undefined && requested !== curveAlgorithm)
      fail(`${requested} cannot be used with ${type}`);
    const hash = curveAlgorithm === 'ECDSA_SHA_256' ? 'sha2-256' : 'sha2-384';
    return { algorithm: curveAlgorithm, body: { hash_algorithm: hash, marshaling_algorithm: 'asn1' } };
  }
  throw new KeyportError('Unsupported', `keyport has no portable signing algorithm for ${type} keys`, {
    keyUri,
  });
}

export async function sign(
  session: VaultSession,
  facts: KeyFacts,
  key: ResolvedKey,
  message: Uint8Array,
  req: SignRequest,
  signal: AbortSignal,
): Promise<SignResult> {
  const params = signParams(await facts.typeOf(session, key, signal), req.algorithm, key.uri);
  const r = (await session.call(signal, (o, vault) =>
    vault.write(
      opPath(key, 'sign'),
      { input: b64(message), prehashed: req.messageType === 'digest', ...params.body, ...versionOpt(key) },
      o,
    ),
  )) as DataResponse<{ signature: string }>;
  const raw = rawFromPrefixed(r.data.signature, 'signature');
  return { signature: raw.bytes, algorithm: params.algorithm, keyVersion: raw.version };
}

/** Versions a signature or MAC without a version prefix may come from: newest first. */
async function candidateVersions(
  session: VaultSession,
  key: ResolvedKey,
  signal: AbortSignal,
): Promise<number[]> {
  if (key.version !== undefined) return [Number(key.version)];
  const data = await readKey(session, key, signal);
  const low = Math.max(data.min_decryption_version, data.min_available_version, 1);
  const out: number[] = [];
  for (let v = data.latest_version; v >= low; v--) out.push(v);
  return out;
}

/** One batched verify over every candidate version: valid when any version verifies. */
async function verifyAny(
  session: VaultSession,
  key: ResolvedKey,
  items: Array<Record<string, unknown>>,
  body: Record<string, unknown>,
  signal: AbortSignal,
): Promise<boolean> {
  if (items.length === 0) return false;
  let response: DataResponse<{ batch_results?: Array<{ valid?: boolean }> }>;
  try {
    response = (await session.call(signal, (o, vault) =>
      vault.write(opPath(key, 'verify'), { ...body, batch_input: items }, o),
    )) as typeof response;
  } catch (error) {
    // A batch where every item is malformed answers 400 with the per-item results.
    const results = (error as { response?: { body?: { data?: { batch_results?: unknown } } } }).response?.body
      ?.data?.batch_results;
    if (Array.isArray(results)) return results.some((r) => (r as { valid?: boolean }).valid === true);
    throw error;
  }
  return (response.data.batch_results ?? []).some((r) => r.valid === true);
}

export async function verify(
  session: VaultSession,
  facts: KeyFacts,
  key: ResolvedKey,
  message: Uint8Array,
  signature: Uint8Array,
  req: SignRequest & { algorithm: SigningAlgorithm },
  signal: AbortSignal,
): Promise<boolean> {
  const params = signParams(await facts.typeOf(session, key, signal), req.algorithm, key.uri);
  const input = b64(message);
  const items = (await candidateVersions(session, key, signal)).map((v) => ({
    input,
    signature: prefixed(v, signature),
  }));
  return verifyAny(session, key, items, { prehashed: req.messageType === 'digest', ...params.body }, signal);
}

async function requireHmacKey(
  session: VaultSession,
  facts: KeyFacts,
  key: ResolvedKey,
  signal: AbortSignal,
): Promise<void> {
  const type = await facts.typeOf(session, key, signal);
  // Transit would HMAC with any key's side HMAC key; keyport keeps MACs to MAC keys.
  if (type !== 'hmac')
    throw new KeyportError('InvalidArgument', `${type} keys are not MAC keys`, { keyUri: key.uri });
}

export async function mac(
  session: VaultSession,
  facts: KeyFacts,
  key: ResolvedKey,
  message: Uint8Array,
  signal: AbortSignal,
): Promise<MacResult> {
  await requireHmacKey(session, facts, key, signal);
  const r = (await session.call(signal, (o, vault) =>
    vault.write(opPath(key, 'hmac'), { input: b64(message), algorithm: 'sha2-256', ...versionOpt(key) }, o),
  )) as DataResponse<{ hmac: string }>;
  const raw = rawFromPrefixed(r.data.hmac, 'HMAC');
  return { mac: raw.bytes, keyVersion: raw.version };
}

export async function verifyMac(
  session: VaultSession,
  facts: KeyFacts,
  key: ResolvedKey,
  message: Uint8Array,
  tag: Uint8Array,
  signal: AbortSignal,
): Promise<boolean> {
  await requireHmacKey(session, facts, key, signal);
  const input = b64(message);
  const items = (await candidateVersions(session, key, signal)).map((v) => ({
    input,
    hmac: prefixed(v, tag),
  }));
  return verifyAny(session, key, items, { algorithm: 'sha2-256' }, signal);
}
