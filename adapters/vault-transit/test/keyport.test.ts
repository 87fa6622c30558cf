// The adapter under core's call policy, as users hold it: `new Keyport({ providers: [...] })`.
import { Keyport } from '@keyport/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VaultTransitProvider } from '../src/index.js';
import { bytes, keyName, provider, text } from './helpers.js';

describe('through Keyport (core call policy)', () => {
  let p: VaultTransitProvider;
  let kp: Keyport;
  beforeAll(() => {
    p = provider({ flavor: 'vault' });
    kp = new Keyport({ providers: [p] });
  });
  afterAll(() => p.close());

  it('routes hcvault:// URIs, binds the context and maps failures with the key URI', async () => {
    const { uri } = await kp.createKey('hcvault', { name: keyName('kp'), spec: 'AES_256' });
    const enc = await kp.encrypt(uri, bytes('via keyport'), { context: { app: 'x' } });
    expect(text((await kp.decrypt(uri, enc.ciphertext, { context: { app: 'x' } })).plaintext)).toBe(
      'via keyport',
    );
    await expect(kp.decrypt(uri, enc.ciphertext, { context: { app: 'y' } })).rejects.toMatchObject({
      code: 'InvalidCiphertext',
      provider: 'hcvault',
      keyUri: uri,
    });
  });

  it('refuses undeclared capabilities before any request (Vault flavor: no disable, no scheduled deletion)', async () => {
    const uri = `hcvault://${p.session.address}/transit/keys/never-created`;
    await expect(kp.disableKey(uri)).rejects.toMatchObject({ code: 'Unsupported' });
    await expect(kp.scheduleKeyDeletion(uri)).rejects.toMatchObject({ code: 'Unsupported' });
  });
});
