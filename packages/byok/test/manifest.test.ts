import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type ByokPairing, MANIFEST_FORMAT, pairingsOf, readManifest, recordPairing } from '../src/index.js';
import { tempDir } from './support.js';

const pairing = (n: number): ByokPairing => ({
  hsm: { uri: `pkcs11:token=t;object=k${n}`, label: `k${n}`, id: '6b70763100000001', version: '1' },
  target: {
    uri: `aws-kms://arn:aws:kms:us-east-1:111122223333:key/${n}`,
    scheme: 'aws-kms',
    spec: 'AES_256',
    wrappingAlgorithm: 'RSAES_OAEP_SHA_1',
  },
  importedAt: new Date(0).toISOString(),
});

describe('BYOK manifest', () => {
  it('a missing manifest is empty; records append, concurrently, without losing one', async () => {
    const dir = await tempDir();
    const path = join(dir, 'm.json');
    expect(await readManifest(path)).toEqual({ format: MANIFEST_FORMAT, pairings: [] });
    await Promise.all([1, 2, 3, 4, 5].map((n) => recordPairing(path, pairing(n))));
    const m = await readManifest(path);
    expect(m.pairings.map((p) => p.hsm.label).sort()).toEqual(['k1', 'k2', 'k3', 'k4', 'k5']);
    expect(pairingsOf(m, 'pkcs11:token=t;object=k2')).toHaveLength(1);
    // Replaced by rename: no temporary file is left behind.
    expect(await readdir(dir)).toEqual(['m.json']);
    expect(JSON.parse(await readFile(path, 'utf8')).format).toBe(MANIFEST_FORMAT);
  });

  it('a damaged manifest is an Integrity error and is not overwritten', async () => {
    const path = join(await tempDir(), 'm.json');
    await writeFile(path, '{"format":"something-else","pairings":[]}');
    await expect(readManifest(path)).rejects.toMatchObject({ code: 'Integrity' });
    await expect(recordPairing(path, pairing(1))).rejects.toMatchObject({ code: 'Integrity' });
    expect(await readFile(path, 'utf8')).toContain('something-else');
    await writeFile(path, 'not json');
    await expect(readManifest(path)).rejects.toMatchObject({ code: 'Integrity' });
    // Damaged pairings: refused by position, never a TypeError later, never rewritten.
    for (const bad of ['null', '"x"', '{"hsm":{},"target":{"uri":"a"}}', '{"hsm":{"uri":"a"}}']) {
      const text = `{"format":"${MANIFEST_FORMAT}","pairings":[${JSON.stringify(pairing(1))},${bad}]}`;
      await writeFile(path, text);
      await expect(readManifest(path), bad).rejects.toMatchObject({
        code: 'Integrity',
        message: expect.stringContaining('position 1'),
      });
      await expect(recordPairing(path, pairing(2)), bad).rejects.toMatchObject({ code: 'Integrity' });
      expect(await readFile(path, 'utf8')).toBe(text);
    }
  });
});
