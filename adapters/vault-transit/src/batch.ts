/**
 * Bulk encrypt / decrypt through transit's `batch_input` (one request for many items), and
 * rewrap. Each item keeps its own context. Results come back per item, in order: one bad
 * ciphertext does not hide the others' plaintexts.
 */
import { type EncryptionContext, KeyportError } from '@keyport/core';
import { associatedData, b64, ciphertextBytes, ciphertextText, parsePrefixed, unb64 } from './codec.js';
import { decrypt, encrypt, type KeyFacts } from './crypto.js';
import { mapVaultError, ruleFor } from './errors.js';
import { opPath, type ResolvedKey } from './locate.js';
import type { VaultSession } from './session.js';

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
  readonly key_version?: number;
  readonly error?: string;
}

/** Transit answers 400 when items fail but still lists every item's result. */
async function sendBatch(
  session: VaultSession,
  path: string,
  items: ReadonlyArray<Record<string, unknown>>,
  signal: AbortSignal,
): Promise<BatchResult[]> {
  try {
    const r = (await session.call(signal, (o, vault) => vault.write(path, { batch_input: items }, o))) as {
      data: { batch_results: BatchResult[] };
    };
    return r.data.batch_results;
  } catch (error) {
    const results = (error as { response?: { body?: { data?: { batch_results?: unknown } } } }).response?.body
      ?.data?.batch_results;
    if (Array.isArray(results) && results.length === items.length) return results as BatchResult[];
    throw error;
  }
}

function itemError(key: ResolvedKey, index: number, message: string): KeyportError {
  const rule = ruleFor(400, message);
  return new KeyportError(
    rule?.code ?? 'InvalidArgument',
    `batch item #${index}: ${rule?.description ?? 'failed'}`,
    {
      provider: 'hcvault',
      keyUri: key.uri,
    },
  );
}

function contextItem(
  key: ResolvedKey,
  facts: KeyFacts,
  context: EncryptionContext | undefined,
): Record<string, string> {
  const aad = associatedData(context);
  const out: Record<string, string> = {};
  if (aad !== undefined) out.associated_data = aad;
  if (facts.derived.has(`${key.mount}/${key.name}`) && aad !== undefined) out.context = aad;
  return out;
}

export async function encryptBatch(
  session: VaultSession,
  facts: KeyFacts,
  key: ResolvedKey,
  items: readonly BatchItem[],
  signal: AbortSignal,
): Promise<Array<BatchOutcome<{ ciphertext: Uint8Array; keyVersion: string }>>> {
  if (items.length === 0) return [];
  const input = items.map((it) => ({
    plaintext: b64(it.data),
    ...contextItem(key, facts, it.context),
    ...(key.version !== undefined ? { key_version: Number(key.version) } : {}),
  }));
  try {
    const results = await sendBatch(session, opPath(key, 'encrypt'), input, signal);
    return results.map((r, i) =>
      r.error || r.ciphertext === undefined
        ? { ok: false, error: itemError(key, i, r.error ?? '') }
        : {
            ok: true,
            value: {
              ciphertext: ciphertextBytes(r.ciphertext),
              keyVersion: parsePrefixed(r.ciphertext).version,
            },
          },
    );
  } catch (error) {
    throw mapVaultError(error, key.uri) ?? error;
  }
}

export async function decryptBatch(
  session: VaultSession,
  facts: KeyFacts,
  key: ResolvedKey,
  items: readonly BatchItem[],
  signal: AbortSignal,
): Promise<Array<BatchOutcome<{ plaintext: Uint8Array; keyVersion: string }>>> {
  if (items.length === 0) return [];
  // Malformed ciphertexts are refused here, per item, without sending them.
  const texts = items.map((it) => {
    try {
      return ciphertextText(it.data);
    } catch (error) {
      return error as KeyportError;
    }
  });
  const sendable = items.flatMap((it, i) => {
    const t = texts[i];
    return typeof t === 'string' ? [{ ciphertext: t, ...contextItem(key, facts, it.context) }] : [];
  });
  let results: BatchResult[] = [];
  try {
    if (sendable.length > 0) results = await sendBatch(session, opPath(key, 'decrypt'), sendable, signal);
  } catch (error) {
    throw mapVaultError(error, key.uri) ?? error;
  }
  let next = 0;
  return texts.map((t, i) => {
    if (typeof t !== 'string') return { ok: false, error: t };
    const r = results[next++];
    if (r === undefined || r.error || r.plaintext === undefined) {
      return { ok: false, error: itemError(key, i, r?.error ?? '') };
    }
    return { ok: true, value: { plaintext: unb64(r.plaintext), keyVersion: parsePrefixed(t).version } };
  });
}

/**
 * Re-encrypts a ciphertext under the key's newest version. Transit's own `rewrap` takes no
 * associated_data, so it cannot open a ciphertext bound to a context: with a context keyport
 * decrypts and encrypts again (the plaintext passes through this process's memory); without
 * one it uses the server-side rewrap, where the plaintext never leaves Vault.
 */
export async function rewrap(
  session: VaultSession,
  facts: KeyFacts,
  key: ResolvedKey,
  ciphertext: Uint8Array,
  context: EncryptionContext | undefined,
  signal: AbortSignal,
): Promise<{ ciphertext: Uint8Array; keyVersion: string; serverSide: boolean }> {
  const text = ciphertextText(ciphertext);
  if (associatedData(context) === undefined && !facts.derived.has(`${key.mount}/${key.name}`)) {
    try {
      const r = (await session.call(signal, (o, vault) =>
        vault.write(opPath(key, 'rewrap'), { ciphertext: text }, o),
      )) as {
        data: { ciphertext: string };
      };
      return {
        ciphertext: ciphertextBytes(r.data.ciphertext),
        keyVersion: parsePrefixed(r.data.ciphertext).version,
        serverSide: true,
      };
    } catch (error) {
      throw mapVaultError(error, key.uri) ?? error;
    }
  }
  const unpinned = { ...key, version: undefined };
  const opened = await decrypt(session, facts, unpinned, ciphertext, context, signal);
  try {
    const sealed = await encrypt(session, facts, unpinned, opened.plaintext, context, signal);
    return { ciphertext: sealed.ciphertext, keyVersion: sealed.keyVersion ?? '', serverSide: false };
  } finally {
    opened.plaintext.fill(0);
  }
}
