/**
 * The Acme driver proven by keyport's conformance suite, and registered beside a built-in
 * driver in one client.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeProviderConformance, uniqueKeyNames } from '@keyport/conformance';
import { createKeyport } from '@keyport/core';
import { openEnvelope, sealEnvelope } from '@keyport/envelope';
import { openLocalKeystore } from '@keyport/local';
import { describe, expect, it } from 'vitest';
import { ACME_CAPABILITIES, AcmeDriver } from '../src/acme-driver.js';

describeProviderConformance({
  name: 'acme (third-party driver, in process)',
  provider: { capabilities: ACME_CAPABILITIES, open: async () => new AcmeDriver() },
  fixtures: {
    keyName: uniqueKeyNames('acme'),
    missingKeyUri: () => `acme://missing-${Date.now()}`,
    proofs: { default: { kind: 'real-provider', name: 'the Acme driver itself (in process)' } },
  },
});

describe('acme beside built-in drivers', () => {
  it('two acme instances and the local keystore in one client; one envelope to all three', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'acme-'));
    try {
      const local = await openLocalKeystore({
        path: join(dir, 'k.kp'),
        passphrase: 'pw',
        create: true,
        kdf: { log2N: 10 },
      });
      const keys = createKeyport({ providers: { acme: new AcmeDriver(), hsm: new AcmeDriver(), local } });
      const a = (await keys.createKey('acme', { name: 'orders', spec: 'AES_256' })).uri;
      const b = (await keys.createKey('hsm', { name: 'orders', spec: 'AES_256' })).uri;
      const c = (await keys.createKey('local', { name: 'orders', spec: 'AES_256' })).uri;
      expect([a, b]).toEqual(['acme://orders', 'acme+hsm://orders']);
      const sealed = await sealEnvelope(new TextEncoder().encode('hi'), { recipients: [a, b, c], keys });
      for (const trust of [a, b, c]) {
        const opened = await openEnvelope(sealed, { trust: [trust], keys });
        expect(new TextDecoder().decode(opened.plaintext)).toBe('hi');
      }
      await keys.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
