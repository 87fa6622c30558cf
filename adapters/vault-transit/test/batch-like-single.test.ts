/**
 * Promises the single calls keep that the batch calls once broke: a pinned version, and a derived
 * key this provider has not met yet.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VaultTransitProvider } from '../src/index.js';
import { bytes, call, disableUpsert, keyName, provider, rejection, text } from './helpers.js';

describe('review: batch calls keep the single calls promises', () => {
  let p: VaultTransitProvider;
  let aes: string;
  beforeAll(async () => {
    await disableUpsert();
    p = provider();
    aes = (await p.createKey({ name: keyName('review'), spec: 'AES_256' }, call())).uri;
  });
  afterAll(() => p.close());

  it('decryptBatch under a pinned version refuses a ciphertext of another version, as decrypt does', async () => {
    const old = await p.encrypt({ uri: aes }, bytes('old'), {}, call());
    await p.rotateKey({ uri: aes }, call());
    const current = await p.encrypt({ uri: aes }, bytes('new'), {}, call());
    const pinned = { uri: aes, version: '2' };
    expect((await rejection(p, p.decrypt(pinned, old.ciphertext, {}, call()))).code).toBe(
      'InvalidCiphertext',
    );
    const opened = await p.decryptBatch(pinned, [{ data: old.ciphertext }, { data: current.ciphertext }]);
    expect(opened.map((r) => r.ok)).toEqual([false, true]);
    expect(!opened[0]?.ok && opened[0]?.error.code).toBe('InvalidCiphertext');
    expect(opened[1]?.ok && text(opened[1].value.plaintext)).toBe('new');
    // The same through the URI's ?version=.
    const viaUri = await p.decryptBatch({ uri: `${aes}?version=2` }, [{ data: old.ciphertext }]);
    expect(!viaUri[0]?.ok && viaUri[0]?.error.code).toBe('InvalidCiphertext');
  });

  it('encryptBatch and decryptBatch bind each context on a derived key this provider has not met yet', async () => {
    const name = keyName('derived');
    await p.createTransitKey(name, 'aes256-gcm96', { derived: true });
    const uri = aes.replace(/keys\/.*/, `keys/${name}`);
    const q = provider(); // a fresh provider: the single calls learn the key is derived from its answer
    try {
      const sealed = await q.encryptBatch({ uri }, [
        { data: bytes('a'), context: { t: '1' } },
        { data: bytes('b'), context: { t: '2' } },
      ]);
      expect(sealed.map((r) => (r.ok ? 'ok' : r.error.code))).toEqual(['ok', 'ok']);
      const cts = sealed.map((r) => (r.ok ? r.value.ciphertext : new Uint8Array()));
      const r = provider(); // and one more for decryption
      try {
        const opened = await r.decryptBatch({ uri }, [
          { data: cts[0] as Uint8Array, context: { t: '1' } },
          { data: cts[1] as Uint8Array, context: { t: 'wrong' } },
        ]);
        expect(opened.map((o) => (o.ok ? text(o.value.plaintext) : o.error.code))).toEqual([
          'a',
          'InvalidCiphertext',
        ]);
      } finally {
        await r.close();
      }
      // Single calls agree with the batch: the context is bound.
      expect(
        text((await q.decrypt({ uri }, cts[1] as Uint8Array, { context: { t: '2' } }, call())).plaintext),
      ).toBe('b');
    } finally {
      await q.close();
    }
  });
});
