/**
 * Ciphertexts sealed by @keyport/local's own format (0x01 AES-GCM, 0x02 RSA-OAEP-SHA-256, each
 * with a u32 key version) before any shared keyport frame existed. They must decrypt forever:
 * these fixtures were written by that code and are never regenerated.
 */
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createKeyport } from '@keyport/core';
import { afterAll, describe, expect, it } from 'vitest';
import { openLocalKeystore } from '../src/index.js';

const here = join(dirname(fileURLToPath(import.meta.url)), 'fixtures/format-v1');
const manifest = JSON.parse(readFileSync(join(here, 'ciphertexts.json'), 'utf8')) as {
  passphrase: string;
  plaintext: string;
  context: Record<string, string>;
  ciphertexts: { key: string; version: string; context: boolean; hex: string }[];
};

describe('local ciphertexts of the first format', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kp-fixture-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('every fixture decrypts to its plaintext and version; a changed context does not', async () => {
    const path = join(dir, 'keystore.kp');
    copyFileSync(join(here, 'keystore.kp'), path);
    chmodSync(path, 0o600); // a checkout leaves it 0644, which warns (KEYPORT_LOCAL_KEYSTORE_EXPOSED)
    const keys = createKeyport({
      providers: [await openLocalKeystore({ path, passphrase: manifest.passphrase })],
    });
    try {
      expect(manifest.ciphertexts.map((c) => c.hex.slice(0, 2))).toEqual(['01', '01', '01', '02', '02']);
      for (const c of manifest.ciphertexts) {
        const uri = `local://${path}#${c.key}`;
        const ciphertext = Buffer.from(c.hex, 'hex');
        const context = c.context ? manifest.context : undefined;
        const opened = await keys.decrypt(uri, ciphertext, context ? { context } : {});
        expect(Buffer.from(opened.plaintext).toString('utf8')).toBe(manifest.plaintext);
        expect(opened.keyVersion).toBe(c.version);
        await expect(keys.decrypt(uri, ciphertext, { context: { tenant: 'other' } })).rejects.toMatchObject({
          code: 'InvalidCiphertext',
        });
      }
    } finally {
      await keys.close();
    }
  });
});
