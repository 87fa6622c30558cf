// Keyport.encryptBatch / decryptBatch on OpenBao: the adapter's batch methods carry many items in
// one `batch_input` request, each item keeps its context, and a bad item fails alone.
import { Keyport, MemoryAuditSink } from '@keyport/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VaultTransitProvider } from '../src/index.js';
import { bytes, keyName, provider, text } from './helpers.js';

describe('Keyport batches through transit batch_input', () => {
  let p: VaultTransitProvider;
  let kp: Keyport;
  const audit = new MemoryAuditSink();
  beforeAll(() => {
    p = provider();
    kp = new Keyport({ providers: [p], audit: [audit] });
  });
  afterAll(() => p.close());

  it('seals and opens many items in one request each, a wrong context failing alone', async () => {
    const { uri } = await kp.createKey('hcvault', { name: keyName('batch'), spec: 'AES_256' });
    const sent: string[] = [];
    const client = await p.session.client();
    const write = client.write.bind(client);
    client.write = (path: string, data: unknown, o?: unknown) => {
      sent.push(path);
      return write(path, data as never, o as never);
    };
    const items = Array.from({ length: 30 }, (_, i) => ({
      plaintext: bytes(`item ${i}`),
      context: { row: String(i) },
    }));
    audit.events.length = 0;
    const sealed = await kp.encryptBatch(uri, items);
    expect(sealed.every((r) => r.ok)).toBe(true);
    expect(sealed.map((r) => r.ok && r.value.keyVersion)).toEqual(items.map(() => '1'));

    const opened = await kp.decryptBatch(
      uri,
      sealed.map((r, i) => ({
        ciphertext: r.ok ? r.value.ciphertext : new Uint8Array(),
        context: { row: i === 4 ? 'other' : String(i) },
      })),
    );
    expect(opened.map((r) => r.ok)).toEqual(items.map((_, i) => i !== 4));
    expect(opened[4]).toMatchObject({ ok: false, error: { code: 'InvalidCiphertext', keyUri: uri } });
    expect(opened.map((r, i) => (r.ok ? text(r.value.plaintext) : `item ${i}`))).toEqual(
      items.map((_, i) => `item ${i}`),
    );
    expect(sent.filter((s) => s.endsWith(`/encrypt/${uri.split('/').pop()}`))).toHaveLength(1);
    expect(sent.filter((s) => s.endsWith(`/decrypt/${uri.split('/').pop()}`))).toHaveLength(1);
    expect(audit.events).toHaveLength(60);
    expect(audit.events.filter((e) => e.outcome === 'failure').map((e) => [e.op, e.errorCode])).toEqual([
      ['decrypt', 'InvalidCiphertext'],
    ]);
    expect(JSON.stringify(audit.events)).not.toContain('"other"');
  });

  it('a ciphertext that is not transit-shaped fails alone, and the adapter takes { data } items too', async () => {
    const { uri } = await kp.createKey('hcvault', { name: keyName('batch-data'), spec: 'AES_256' });
    const [one] = await p.encryptBatch({ uri }, [{ data: bytes('direct') }]);
    expect(one?.ok).toBe(true);
    const opened = await kp.decryptBatch(uri, [
      { ciphertext: one?.ok ? one.value.ciphertext : new Uint8Array() },
      { ciphertext: bytes('garbage') },
    ]);
    expect(opened.map((r) => (r.ok ? text(r.value.plaintext) : r.error.code))).toEqual([
      'direct',
      'InvalidCiphertext',
    ]);
  });

  it('a missing key fails the whole request', async () => {
    const uri = `hcvault://${p.session.address}/transit/keys/${keyName('absent')}`;
    await expect(kp.decryptBatch(uri, [{ ciphertext: bytes('vault:v1:AAAA') }])).rejects.toMatchObject({
      keyUri: uri,
    });
  });
});
