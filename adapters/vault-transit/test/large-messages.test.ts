/**
 * Messages of several MiB, as far below Vault's 32 MiB request limit as a user may send them: the
 * answers' base64 is checked before it is decoded, and that check must hold for any size transit
 * answers (a check that throws on a few MiB failed every such message with Internal).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VaultTransitProvider } from '../src/index.js';
import { call, disableUpsert, keyName, provider } from './helpers.js';

/** 8 MiB: about 11 MiB of base64 each way, well within OpenBao's default 32 MiB request limit. */
const SIZE = 8 * 1024 * 1024;

function message(): Uint8Array {
  const data = new Uint8Array(SIZE);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31 + 7) & 0xff;
  return data;
}

const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && Buffer.compare(a, b) === 0;

describe('messages of several MiB (OpenBao)', () => {
  let p: VaultTransitProvider;
  let uri: string;
  beforeAll(async () => {
    await disableUpsert();
    p = provider();
    uri = (await p.createKey({ name: keyName('large'), spec: 'AES_256' }, call())).uri;
  });
  afterAll(() => p.close());

  it('encrypt and decrypt an 8 MiB message', { timeout: 60_000 }, async () => {
    const data = message();
    const sealed = await p.encrypt({ uri }, data, { context: { tenant: 'acme' } }, call());
    expect(sealed.keyVersion).toBe('1');
    const opened = await p.decrypt({ uri }, sealed.ciphertext, { context: { tenant: 'acme' } }, call());
    expect(same(opened.plaintext, data)).toBe(true);
  });

  it('encryptBatch and decryptBatch with an 8 MiB item beside a small one', { timeout: 60_000 }, async () => {
    const data = message();
    const small = new Uint8Array([1, 2, 3]);
    const sealed = await p.encryptBatch({ uri }, [{ data }, { data: small }]);
    const ciphertexts = sealed.map((r) => (r.ok ? r.value.ciphertext : undefined));
    expect(ciphertexts.every((c) => c !== undefined)).toBe(true);
    const opened = await p.decryptBatch(
      { uri },
      ciphertexts.map((c) => ({ data: c as Uint8Array })),
    );
    expect(opened[0]?.ok && same(opened[0].value.plaintext, data)).toBe(true);
    expect(opened[1]?.ok && same(opened[1].value.plaintext, small)).toBe(true);
  });
});
