import { execFileSync } from 'node:child_process';
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

  it('a FIFO, a device or a directory is refused without blocking or reading without end', async () => {
    const dir = await tempDir();
    const fifo = join(dir, 'fifo.json');
    execFileSync('mkfifo', [fifo]);
    // Before: readFile waited for a writer on the FIFO for ever, and read /dev/zero until memory ran out.
    for (const path of [fifo, '/dev/zero', dir]) {
      await expect(readManifest(path), path).rejects.toMatchObject({
        code: 'InvalidArgument',
        message: expect.stringContaining('not a regular file'),
      });
    }
    await expect(recordPairing(fifo, pairing(1))).rejects.toMatchObject({ code: 'InvalidArgument' });
  }, 5_000);

  it('bytes that are not UTF-8 are refused, not replaced by U+FFFD and saved so on the next record', async () => {
    const path = join(await tempDir(), 'm.json');
    const text = JSON.stringify({ format: MANIFEST_FORMAT, pairings: [pairing(1)] }).replace('k1', 'k\xff');
    const bytes = Buffer.from(text, 'latin1');
    await writeFile(path, bytes);
    await expect(readManifest(path)).rejects.toMatchObject({
      code: 'Integrity',
      message: expect.stringContaining('not UTF-8'),
    });
    await expect(recordPairing(path, pairing(2))).rejects.toMatchObject({ code: 'Integrity' });
    expect(await readFile(path)).toEqual(bytes);
  });

  it('a pairing without both URIs is refused before it is written and damages the manifest', async () => {
    const path = join(await tempDir(), 'm.json');
    await recordPairing(path, pairing(1));
    const before = await readFile(path, 'utf8');
    for (const bad of [
      null,
      {},
      { hsm: { uri: 'pkcs11:token=t;object=k' } },
      { ...pairing(2), target: {} },
    ]) {
      await expect(recordPairing(path, bad as never), JSON.stringify(bad)).rejects.toMatchObject({
        code: 'InvalidArgument',
      });
    }
    expect(await readFile(path, 'utf8')).toBe(before);
    expect((await readManifest(path)).pairings).toHaveLength(1);
  });

  it('a manifest name of 250 bytes is written: the temporary name is cut to fit, not ENAMETOOLONG', async () => {
    const dir = await tempDir();
    const path = join(dir, `${'é'.repeat(120)}manif.json`); // 250 bytes of UTF-8
    await recordPairing(path, pairing(1));
    expect((await readManifest(path)).pairings).toHaveLength(1);
    expect(await readdir(dir)).toEqual([`${'é'.repeat(120)}manif.json`]);
  });
});
