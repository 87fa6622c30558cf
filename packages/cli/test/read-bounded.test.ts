import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileTooLarge, readBounded, readFailure } from '../src/files/read-bounded.js';

describe('readBounded', () => {
  it('reads a file of exactly the bound and refuses one byte more', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'keyport-bounded-'));
    const at = join(dir, 'at');
    const over = join(dir, 'over');
    await writeFile(at, Buffer.alloc(200_000, 1));
    await writeFile(over, Buffer.alloc(200_001, 1));
    expect((await readBounded(at, 200_000)).equals(Buffer.alloc(200_000, 1))).toBe(true);
    const e = await readBounded(over, 200_000).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(FileTooLarge);
    expect(readFailure(e)).toBe('larger than 200000 bytes');
    expect((await readBounded(join(dir, 'none'), 10).catch(readFailure)) as string).toBe('ENOENT');
  });

  it('stops reading a device that never ends at the bound', async () => {
    await expect(readBounded('/dev/zero', 1024 * 1024)).rejects.toBeInstanceOf(FileTooLarge);
  });
});

describe('readBounded, for secrets', () => {
  it('returns memory of its own, exactly the file, never a slice of the shared Buffer pool', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'keyport-bounded-'));
    for (const size of [1, 40, 4095, 65_537]) {
      const path = join(dir, `s${size}`);
      await writeFile(path, Buffer.alloc(size, 7));
      const read = await readBounded(path, 1024 * 1024);
      expect(read.byteOffset, String(size)).toBe(0);
      expect(read.buffer.byteLength, String(size)).toBe(size);
    }
  });
});
