import { execFileSync, spawn } from 'node:child_process';
import { chmod, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';
import { acquireFileLock } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { MANIFEST_FORMAT, pairingsOf, readManifest, recordPairing } from '../src/index.js';
import { samplePairing, tempDir } from './support.js';

const HOOKS = fileURLToPath(new URL('../../cli/test/support/register-ts.mjs', import.meta.url));
const WRITER = fileURLToPath(new URL('./manifest-writer.mjs', import.meta.url));

function runWriter(
  path: string,
  id: number,
  count: number,
  start: string,
): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', HOOKS, WRITER, path, String(id), String(count), start],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stderr }));
  });
}

describe('BYOK manifest', () => {
  it('a missing manifest is empty; records append, concurrently, without losing one', async () => {
    const dir = await tempDir();
    const path = join(dir, 'm.json');
    expect(await readManifest(path)).toEqual({ format: MANIFEST_FORMAT, pairings: [] });
    await Promise.all([1, 2, 3, 4, 5].map((n) => recordPairing(path, samplePairing(n))));
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
    await expect(recordPairing(path, samplePairing(1))).rejects.toMatchObject({ code: 'Integrity' });
    expect(await readFile(path, 'utf8')).toContain('something-else');
    await writeFile(path, 'not json');
    await expect(readManifest(path)).rejects.toMatchObject({ code: 'Integrity' });
    // Damaged pairings: refused by position, never a TypeError later, never rewritten.
    for (const bad of ['null', '"x"', '{"hsm":{},"target":{"uri":"a"}}', '{"hsm":{"uri":"a"}}']) {
      const text = `{"format":"${MANIFEST_FORMAT}","pairings":[${JSON.stringify(samplePairing(1))},${bad}]}`;
      await writeFile(path, text);
      await expect(readManifest(path), bad).rejects.toMatchObject({
        code: 'Integrity',
        message: expect.stringContaining('position 1'),
      });
      await expect(recordPairing(path, samplePairing(2)), bad).rejects.toMatchObject({ code: 'Integrity' });
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
    await expect(recordPairing(fifo, samplePairing(1))).rejects.toMatchObject({ code: 'InvalidArgument' });
  }, 5_000);

  it('a manifest path that is a symbolic link is refused: a rename would replace the link, not its target', async () => {
    const dir = await tempDir();
    const real = join(dir, 'shared.json');
    await recordPairing(real, samplePairing(1));
    const before = await readFile(real, 'utf8');
    const link = join(dir, 'byok.json');
    await symlink(real, link);
    await expect(recordPairing(link, samplePairing(2))).rejects.toMatchObject({ code: 'InvalidArgument' });
    // The link is still a link, and the file it names is as it was.
    expect(await readFile(real, 'utf8')).toBe(before);
    expect((await readdir(dir)).sort()).toEqual(['byok.json', 'shared.json']);
    expect(pairingsOf(await readManifest(link), 'pkcs11:token=t;object=k2')).toEqual([]);
  });

  it('bytes that are not UTF-8 are refused, not replaced by U+FFFD and saved so on the next record', async () => {
    const path = join(await tempDir(), 'm.json');
    const text = JSON.stringify({ format: MANIFEST_FORMAT, pairings: [samplePairing(1)] }).replace(
      'k1',
      'k\xff',
    );
    const bytes = Buffer.from(text, 'latin1');
    await writeFile(path, bytes);
    await expect(readManifest(path)).rejects.toMatchObject({
      code: 'Integrity',
      message: expect.stringContaining('not UTF-8'),
    });
    await expect(recordPairing(path, samplePairing(2))).rejects.toMatchObject({ code: 'Integrity' });
    expect(await readFile(path)).toEqual(bytes);
  });

  it('a pairing without both URIs is refused before it is written and damages the manifest', async () => {
    const path = join(await tempDir(), 'm.json');
    await recordPairing(path, samplePairing(1));
    const before = await readFile(path, 'utf8');
    for (const bad of [
      null,
      {},
      { hsm: { uri: 'pkcs11:token=t;object=k' } },
      { ...samplePairing(2), target: {} },
    ]) {
      await expect(recordPairing(path, bad as never), JSON.stringify(bad)).rejects.toMatchObject({
        code: 'InvalidArgument',
      });
    }
    expect(await readFile(path, 'utf8')).toBe(before);
    expect((await readManifest(path)).pairings).toHaveLength(1);
  });

  it('a manifest name of 250 or 255 bytes is written: the temporary and lock names are cut to fit, not ENAMETOOLONG', async () => {
    for (const name of [`${'é'.repeat(120)}manif.json`, `${'é'.repeat(125)}manif`]) {
      const dir = await tempDir();
      const path = join(dir, name); // 250 and 255 bytes of UTF-8
      await recordPairing(path, samplePairing(1));
      expect((await readManifest(path)).pairings).toHaveLength(1);
      expect(await readdir(dir)).toEqual([name]);
    }
  });

  it('two processes recording into one manifest at once lose no pairing', async () => {
    // Before: each update read the manifest, then renamed its own version over it, so of two
    // processes updating at once the later rename dropped the other's pairing.
    const EACH = 40;
    const dir = await tempDir();
    const path = join(dir, 'm.json');
    const start = join(await tempDir(), 'start');
    const children = [0, 1].map((id) => runWriter(path, id, EACH, start));
    const ready = async () => (await readdir(join(start, '..'))).filter((n) => n.startsWith('start.ready-'));
    const deadline = Date.now() + 60_000;
    while ((await ready()).length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await writeFile(start, '');
    for (const r of await Promise.all(children)) expect(r, r.stderr).toMatchObject({ code: 0 });
    const labels = (await readManifest(path)).pairings.map((p) => p.hsm.label);
    for (const id of [0, 1]) {
      expect(labels.filter((l) => l.startsWith(`w${id}-`))).toEqual(
        Array.from({ length: EACH }, (_, i) => `w${id}-${i}`),
      );
    }
    // The lock is released: only the manifest is left.
    expect(await readdir(dir)).toEqual(['m.json']);
  }, 60_000);

  it("waiting for another process's update ends when the caller's signal fires, writing nothing", async () => {
    const dir = await tempDir();
    const path = join(dir, 'm.json');
    await recordPairing(path, samplePairing(1));
    const before = await readFile(path, 'utf8');
    // Another process's update in progress: it holds the manifest's lock.
    const held = await acquireFileLock(`${path}.lock`);
    const controller = new AbortController();
    const waiting = recordPairing(path, samplePairing(2), { signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    await expect(waiting).rejects.toMatchObject({ code: 'Aborted' });
    expect(await readFile(path, 'utf8')).toBe(before);
    await held.release();
    await recordPairing(path, samplePairing(3));
    expect((await readManifest(path)).pairings.map((p) => p.hsm.label)).toEqual(['k1', 'k3']);
  });

  it('a misspelt or wrongly typed recordPairing option is refused before the manifest is touched', async () => {
    const path = join(await tempDir(), 'm.json');
    await expect(recordPairing(path, samplePairing(1), { sginal: 1 } as never)).rejects.toMatchObject({
      code: 'InvalidArgument',
      message: expect.stringContaining('"sginal"'),
    });
    await expect(recordPairing(path, samplePairing(1), { signal: 'x' } as never)).rejects.toMatchObject({
      code: 'InvalidArgument',
      message: expect.stringContaining('options.signal'),
    });
    expect((await readManifest(path)).pairings).toHaveLength(0);
  });

  it("an update keeps the manifest's permissions (shared with a group); a new manifest is the owner's only", async () => {
    const dir = await tempDir();
    const fresh = join(dir, 'new.json');
    await recordPairing(fresh, samplePairing(1));
    expect((await stat(fresh)).mode & 0o777).toBe(0o600);
    const shared = join(dir, 'shared.json');
    await writeFile(shared, `${JSON.stringify({ format: MANIFEST_FORMAT, pairings: [] })}\n`);
    for (const mode of [0o640, 0o664]) {
      await chmod(shared, mode);
      // Before: the update's temporary file (0600) replaced it, and the group lost it.
      await recordPairing(shared, samplePairing(mode));
      expect((await stat(shared)).mode & 0o777).toBe(mode);
    }
    expect((await readManifest(shared)).pairings).toHaveLength(2);
  });

  it('a manifest path that is not a non-empty string is InvalidArgument from readManifest and recordPairing, nothing written', async () => {
    const dir = await tempDir();
    const cwd = process.cwd();
    // '' resolves against the working directory: run there, so a stray write would show.
    process.chdir(dir);
    try {
      // Before: undefined, a number or an object were node:fs TypeErrors, '' read as an empty
      // manifest and failed to record as "the BYOK manifest  cannot be written" (Unavailable).
      for (const path of [undefined, 7, {}, '']) {
        for (const call of [
          () => readManifest(path as never),
          () => recordPairing(path as never, samplePairing(1)),
        ]) {
          await expect(call()).rejects.toMatchObject({
            name: 'KeyportError',
            code: 'InvalidArgument',
            message: expect.stringContaining('expected a file path'),
          });
        }
      }
      expect(await readdir(dir)).toEqual([]);
    } finally {
      process.chdir(cwd);
    }
  });

  it('a manifest path ending in a separator is InvalidArgument, not an empty manifest', async () => {
    const path = join(await tempDir(), 'm.json');
    await recordPairing(path, samplePairing(1));
    // Before: `m.json/` read as a missing file, an empty manifest beside m.json's pairing.
    for (const call of [() => readManifest(`${path}/`), () => recordPairing(`${path}/`, samplePairing(2))]) {
      await expect(call()).rejects.toMatchObject({
        code: 'InvalidArgument',
        message: expect.stringContaining('not one ending in a path separator'),
      });
    }
    expect((await readManifest(path)).pairings).toHaveLength(1);
  });

  it('a file that is not JSON (a key file named by mistake) is refused without quoting its bytes', async () => {
    const path = join(await tempDir(), 'm.json');
    const secret = 'a3f9c0d1e2b4a5968778695a4b3c2d1e0f';
    await writeFile(path, `${secret}\n`);
    const error = await readManifest(path).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: 'Integrity', message: expect.stringContaining('not JSON') });
    // Before: the cause was V8's SyntaxError, which quotes the text: `Unexpected token 'a', "a3f9c0d1e2"...`.
    const shown = `${inspect(error, { depth: 10 })}${JSON.stringify(error)}`;
    expect(shown).not.toContain(secret.slice(0, 6));
  });

  it("pending imports: damaged ones are Integrity by position; a pairing drops its target's, keeps the others", async () => {
    const path = join(await tempDir(), 'm.json');
    const pendingOf = (n: number) => {
      const { target, hsm } = samplePairing(n);
      const { version: _, ...unversioned } = target as typeof target & { version?: string };
      return { hsm, target: unversioned, startedAt: new Date(0).toISOString() };
    };
    for (const bad of ['{}', '[null]', `[${JSON.stringify({ ...samplePairing(1), startedAt: 5 })}]`]) {
      const text = `{"format":"${MANIFEST_FORMAT}","pairings":[],"pending":${bad}}`;
      await writeFile(path, text);
      await expect(readManifest(path), bad).rejects.toMatchObject({ code: 'Integrity' });
      await expect(recordPairing(path, samplePairing(2)), bad).rejects.toMatchObject({ code: 'Integrity' });
      expect(await readFile(path, 'utf8')).toBe(text);
    }
    await writeFile(
      path,
      JSON.stringify({ format: MANIFEST_FORMAT, pairings: [], pending: [pendingOf(1), pendingOf(2)] }),
    );
    await recordPairing(path, samplePairing(1));
    expect(await readManifest(path)).toEqual({
      format: MANIFEST_FORMAT,
      pairings: [samplePairing(1)],
      pending: [pendingOf(2)],
    });
    await recordPairing(path, samplePairing(2));
    expect(await readManifest(path)).toEqual({
      format: MANIFEST_FORMAT,
      pairings: [samplePairing(1), samplePairing(2)],
    });
    expect(JSON.parse(await readFile(path, 'utf8'))).not.toHaveProperty('pending');
  });
});
