/**
 * A listing reads the label of every keyport metadata object on the token (CKO_DATA with
 * CKA_APPLICATION "keyport"), and anyone with the PIN can make such objects with any label: a
 * megabyte each, a control character, bytes that are not UTF-8, none at all. A label createKey
 * would refuse as a key name (1-128 characters, no control character) is not a keyport key: it is
 * not listed, as a key or as unmodeled, and not kept — what a listing holds is at most
 * MAX_LISTED_KEYS names of at most 128 characters — and it does not end the listing of the keys
 * that are keyport's.
 */
import { createKeyport, type KeyInfo, type UnmodeledKey } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { listKeyNames, readMetadata } from '../src/key-store.js';
import type { Handle } from '../src/p11.js';
import { metadataTemplate, signal, uniqueName, useProvider } from './support.js';

/** keys.ts's key name rule, as documented in the README: 1-128 characters (UTF-16 code units). */
const MAX_KEY_NAME_LENGTH = 128;

const t = useProvider({ keyCacheMs: 0 });
const { onToken, nameOf } = t;

const o = () => ({ signal: signal() });

/** `name` padded with "€" (3 bytes in UTF-8) to `length` characters. */
const padded = (name: string, length: number) => name + '€'.repeat(length - name.length);

/**
 * Session objects shaped as keyport metadata under each label, carrying `key`'s real metadata
 * (so a label that was kept would be described, and listed, as a key). Session objects are
 * cheaper than token objects and live while the pool's session that made them stays open.
 */
function plantMetadata(key: KeyInfo, labels: readonly (string | Buffer)[]): Promise<Handle[]> {
  return onToken((session) => {
    const current = readMetadata(t.provider.p11, session, nameOf(key), key.uri);
    if (current === undefined) throw new Error('no metadata');
    const value = Buffer.from(JSON.stringify(current.meta));
    return labels.map((label) =>
      t.provider.p11.C_CreateObject(session, metadataTemplate(label, value, false)),
    );
  });
}

const remove = (handles: readonly Handle[]) =>
  onToken((session) => {
    for (const h of handles) t.provider.p11.C_DestroyObject(session, h);
  });

/** What a listing through Keyport yields: the keys' names and the unmodeled entries' names. */
async function listing(): Promise<{ keys: string[]; unmodeled: string[] }> {
  const keyport = createKeyport({ providers: [t.provider] });
  const keys: string[] = [];
  const unmodeled: UnmodeledKey[] = [];
  for await (const k of keyport.listKeys('pkcs11', { onUnmodeledKey: (u) => unmodeled.push(u) }))
    keys.push(nameOf(k));
  return { keys, unmodeled: unmodeled.map((u) => nameOf(u)) };
}

describe('labels that cannot be keyport key names', () => {
  it('longer than 128 characters (just over, and 64 KiB), with a control character, or not UTF-8: neither listed nor kept', async () => {
    // A keyport key whose name is at the bound: 128 characters, most of them 3 bytes.
    const key = await t.provider.createKey(
      { name: padded(uniqueName('at-bound'), MAX_KEY_NAME_LENGTH), spec: 'AES_256' },
      o(),
    );
    expect(Buffer.byteLength(nameOf(key))).toBeGreaterThan(3 * MAX_KEY_NAME_LENGTH - 60);
    const prefix = uniqueName('planted');
    const labels = [
      `${prefix}-`.padEnd(MAX_KEY_NAME_LENGTH + 1, 'x'), // 129 characters, 129 bytes
      // 129 characters, 385 bytes: one byte over the longest label a key name makes.
      `${padded(`${prefix}-euro`, MAX_KEY_NAME_LENGTH)}€`,
      `${prefix}-`.padEnd(64 * 1024, 'y'),
      ...Array.from({ length: 64 }, (_, i) => `${prefix}-${i}-`.padEnd(MAX_KEY_NAME_LENGTH + 1, 'z')),
      `${prefix}-bell\u0007`,
      `${prefix}-line\nbreak`,
      Buffer.concat([Buffer.from(`${prefix}-latin1-`), Buffer.from([0xe9, 0xff])]),
    ];
    const planted = await plantMetadata(key, labels);
    try {
      const kept = await onToken((session) => listKeyNames(t.provider.p11, session));
      expect(kept.filter((n) => n.startsWith(prefix))).toEqual([]);
      expect(kept).toContain(nameOf(key));
      expect(Math.max(...kept.map((n) => n.length))).toBeLessThanOrEqual(MAX_KEY_NAME_LENGTH);

      const { keys, unmodeled } = await listing();
      expect(keys).toContain(nameOf(key));
      expect([...keys, ...unmodeled].filter((n) => n.startsWith(prefix))).toEqual([]);
    } finally {
      await remove(planted);
    }
  });

  it('an empty label does not end the listing', async () => {
    const key = await t.provider.createKey({ name: uniqueName('beside-empty'), spec: 'AES_256' }, o());
    const planted = await plantMetadata(key, ['']);
    try {
      const { keys, unmodeled } = await listing();
      expect(keys).toContain(nameOf(key));
      expect(unmodeled).not.toContain('');
    } finally {
      await remove(planted);
    }
  });
});
