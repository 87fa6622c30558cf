/**
 * `migrateCiphertexts`: for data encrypted directly with a provider (not enveloped), e.g. rows
 * of AWS or Vault ciphertexts in a database. Each item is decrypted under `from`, encrypted
 * under `to` with the same context, and the result is decrypted again under `to` and compared
 * before it is yielded — the same "verify before you replace" guarantee as file migration; the
 * caller stores the yielded ciphertext in place of the old one. Results come back in input
 * order, with at most `jobs` items in flight; plaintexts are zeroed as soon as they are checked.
 */
import { timingSafeEqual } from 'node:crypto';
import { type EncryptionContext, type KeyOperations, KeyportError } from '@keyport/core';

export interface CiphertextItem {
  /** The caller's handle for the row (primary key...), returned unchanged. */
  readonly id?: string;
  readonly ciphertext: Uint8Array;
  readonly context?: EncryptionContext;
}

export interface MigratedCiphertext {
  readonly id: string | undefined;
  readonly ciphertext: Uint8Array;
  /** The `to` key version that encrypted it. */
  readonly keyVersion: string | undefined;
  /** The `from` key version that had encrypted the input. */
  readonly previousKeyVersion: string | undefined;
}

export interface MigrateCiphertextsOptions {
  readonly keys: KeyOperations;
  readonly jobs?: number;
  readonly signal?: AbortSignal;
  readonly timeoutMs?: number;
}

async function migrateOne(
  item: CiphertextItem,
  from: string,
  to: string,
  o: MigrateCiphertextsOptions,
): Promise<MigratedCiphertext> {
  const call = {
    ...(item.context !== undefined ? { context: item.context } : {}),
    ...(o.signal !== undefined ? { signal: o.signal } : {}),
    ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
  };
  const opened = await o.keys.decrypt(from, item.ciphertext, call);
  let check: Uint8Array | undefined;
  try {
    const sealed = await o.keys.encrypt(to, opened.plaintext, call);
    check = (await o.keys.decrypt(to, sealed.ciphertext, call)).plaintext;
    if (check.length !== opened.plaintext.length || !timingSafeEqual(check, opened.plaintext)) {
      throw new KeyportError('Integrity', 'the new ciphertext does not decrypt to the original plaintext', {
        keyUri: to,
      });
    }
    return {
      id: item.id,
      ciphertext: sealed.ciphertext,
      keyVersion: sealed.keyVersion,
      previousKeyVersion: opened.keyVersion,
    };
  } finally {
    opened.plaintext.fill(0);
    check?.fill(0);
  }
}

export async function* migrateCiphertexts(
  source: AsyncIterable<CiphertextItem | Uint8Array> | Iterable<CiphertextItem | Uint8Array>,
  from: string,
  to: string,
  options: MigrateCiphertextsOptions,
): AsyncGenerator<MigratedCiphertext, void, undefined> {
  const jobs = Math.max(1, options.jobs ?? 8);
  const window: Array<Promise<MigratedCiphertext>> = [];
  try {
    for await (const raw of source) {
      const item: CiphertextItem = raw instanceof Uint8Array ? { ciphertext: raw } : raw;
      const p = migrateOne(item, from, to, options);
      p.catch(() => undefined); // observed when its turn comes; avoids an unhandled rejection meanwhile
      window.push(p);
      if (window.length >= jobs) yield await (window.shift() as Promise<MigratedCiphertext>);
    }
    while (window.length > 0) yield await (window.shift() as Promise<MigratedCiphertext>);
  } finally {
    await Promise.allSettled(window);
  }
}
