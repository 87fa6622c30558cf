/**
 * createFileExclusive: the one way keyport's packages create a lock or key file that processes
 * race for. The file appears whole or not at all, exactly one racer wins, the loser learns it
 * from `false` (not an error), and no temp file is left behind either way.
 */
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempPathBeside } from '../src/exclusive-file.js';
import { createFileExclusive } from '../src/index.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyport-exclusive-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('createFileExclusive', () => {
  it('creates the file whole, mode 0600, and removes its temp', async () => {
    const path = join(dir, 'lock');
    expect(await createFileExclusive(path, '{"pid":1}', join(dir, 'lock.1.tmp'))).toBe(true);
    expect(await readFile(path, 'utf8')).toBe('{"pid":1}');
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(await readdir(dir)).toEqual(['lock']);
  });

  it('returns false and leaves the existing file as it was', async () => {
    const path = join(dir, 'lock');
    await writeFile(path, 'theirs');
    expect(await createFileExclusive(path, 'mine', join(dir, 'lock.2.tmp'))).toBe(false);
    expect(await readFile(path, 'utf8')).toBe('theirs');
    expect(await readdir(dir)).toEqual(['lock']);
  });

  it('of many racing creators exactly one wins, and the file holds the winner’s whole content', async () => {
    const path = join(dir, 'key');
    const contents = Array.from({ length: 24 }, (_, i) => `content of racer ${i} `.repeat(200));
    const won = await Promise.all(
      contents.map((c, i) => createFileExclusive(path, c, join(dir, `key.${i}.tmp`))),
    );
    expect(won.filter(Boolean)).toHaveLength(1);
    expect(await readFile(path, 'utf8')).toBe(contents[won.indexOf(true)]);
    expect(await readdir(dir)).toEqual(['key']);
  });

  it('throws other failures as they came (a missing directory), leaving nothing', async () => {
    const path = join(dir, 'missing', 'lock');
    await expect(createFileExclusive(path, 'x', join(dir, 'missing', 'lock.tmp'))).rejects.toMatchObject({
      code: 'ENOENT',
    });
    expect(await readdir(dir)).toEqual([]);
  });

  it('refuses a temp name that exists (it is created exclusively too) and keeps that file', async () => {
    const temp = join(dir, 'lock.tmp');
    await writeFile(temp, 'someone else’s');
    await expect(createFileExclusive(join(dir, 'lock'), 'x', temp)).rejects.toMatchObject({ code: 'EEXIST' });
    expect(await readdir(dir)).toEqual(['lock.tmp']);
  });

  it.each([
    ['255 bytes of ASCII', 'k'.repeat(255)],
    ['250 bytes of 2-byte characters', 'é'.repeat(125)],
    ['252 bytes of 4-byte characters', '🔑'.repeat(63)],
  ])('a name of %s gets a temp that fits NAME_MAX, cut between characters', async (_, name) => {
    const temp = tempPathBeside(join(dir, name));
    const tempName = temp.slice(dir.length + 1);
    expect(Buffer.byteLength(tempName)).toBeLessThanOrEqual(255);
    expect(tempName).not.toContain('\uFFFD');
    expect(Buffer.from(tempName).toString('utf8')).toBe(tempName);
    expect(tempName.startsWith(`.${name.slice(0, 8)}`)).toBe(true);
    // The file itself is created, through its temp, and the temp is gone.
    const path = join(dir, name);
    expect(await createFileExclusive(path, 'whole', tempPathBeside(path))).toBe(true);
    expect(await readFile(path, 'utf8')).toBe('whole');
    expect(await readdir(dir)).toEqual([name]);
  });
});
