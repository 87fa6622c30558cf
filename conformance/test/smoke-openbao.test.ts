// One real call through node-vault against the OpenBao dev server, on the transit mount the
// harness enabled with the root token it generated.
import vault from 'node-vault';
import { describe, expect, it } from 'vitest';
import { requireTarget } from '../harness/env.js';

describe('smoke: OpenBao (Vault Transit)', () => {
  it('creates a transit key and encrypts and decrypts with associated data', async () => {
    const env = requireTarget('openbao');
    const client = vault({
      apiVersion: 'v1',
      endpoint: env.KEYPORT_OPENBAO_ADDR,
      token: env.KEYPORT_OPENBAO_TOKEN,
    });
    const name = `smoke-${Date.now()}`;
    await client.write(`transit/keys/${name}`, { type: 'aes256-gcm96' });
    const associated = Buffer.from('purpose=smoke').toString('base64');
    const encrypted: { data: { ciphertext: string } } = await client.write(`transit/encrypt/${name}`, {
      plaintext: Buffer.from('openbao smoke').toString('base64'),
      associated_data: associated,
    });
    expect(encrypted.data.ciphertext).toMatch(/^vault:v1:/);
    const decrypted: { data: { plaintext: string } } = await client.write(`transit/decrypt/${name}`, {
      ciphertext: encrypted.data.ciphertext,
      associated_data: associated,
    });
    expect(Buffer.from(decrypted.data.plaintext, 'base64').toString()).toBe('openbao smoke');
  });
});
