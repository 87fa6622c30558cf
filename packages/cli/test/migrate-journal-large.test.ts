/**
 * The migration journal is read line by line: a journal of a million files is hundreds of MB
 * (four lines a file), and it was read whole into one string — past V8's ~512 MiB string limit
 * a resumed run failed, and below it the journal cost three times its size in memory. Here: the
 * entries of a journal that spans many read chunks (lines across chunk edges, an empty line, a
 * damaged one, an overlong one, a last line cut short by a crash) are read as they were written,
 * and reading a 96 MiB journal holds about one chunk, not the file (measured in a child process
 * from the OS).
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { Journal, type JournalHeader } from '../src/migrate/journal.js';
import { migrationTempFor } from '../src/migrate/plan.js';

const header: JournalHeader = {
  journal: 'keyport-migrate/1',
  from: 'local:///k.kp#a',
  to: 'local:///k.kp#b',
  removeSource: false,
};
const HOOKS = fileURLToPath(new URL('./support/register-ts.mjs', import.meta.url));
const JOURNAL_TS = fileURLToPath(new URL('../src/migrate/journal.ts', import.meta.url));

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'keyport-journal-'));
  dirs.push(d);
  return d;
}

const entry = (f: string, s: string, tmp?: string) =>
  `${JSON.stringify({ f, s, ...(tmp !== undefined ? { tmp } : {}), t: '2026-12-07T00:00:00.000Z' })}\n`;

describe('a journal larger than a read chunk', () => {
  it('is read entry by entry: temps of unfinished files, replaced files, damage skipped, a cut last line removed', async () => {
    const dir = await tempDir();
    const path = join(dir, 'j.journal');
    const file = (i: number) => join(dir, 'data', `f${String(i).padStart(6, '0')}-${'x'.repeat(i % 97)}.enc`);
    const tmpOf = (i: number) => migrationTempFor(file(i), i.toString(16).padStart(12, '0'));
    const parts: string[] = [JSON.stringify(header), '\n'];
    // 30,000 files (about 7 MiB: lines cross every 1 MiB chunk edge): even ones replaced, odd
    // ones left pending with a temp (a killed run's), every 1000th damaged or overlong around it.
    for (let i = 0; i < 30_000; i++) {
      parts.push(entry(file(i), 'pending', tmpOf(i)));
      if (i % 1000 === 500) parts.push('\n', '{"f": damaged\n', `${'z'.repeat(300 * 1024)}\n`);
      if (i % 2 === 0) parts.push(entry(file(i), 'rewrapped'), entry(file(i), 'replaced'));
    }
    const cut = entry(file(1), 'replaced').slice(0, 20); // the crash cut this line short
    const text = parts.join('');
    await writeFile(path, text + cut);

    const journal = await Journal.open(path, header);
    await journal.close();
    const temps = journal.leftoverTemps();
    expect(temps).toHaveLength(15_000);
    expect(new Set(temps)).toEqual(new Set(Array.from({ length: 15_000 }, (_, k) => tmpOf(2 * k + 1))));
    expect(journal.wasReplaced(file(0)) && journal.wasReplaced(file(29_998))).toBe(true);
    expect(journal.wasReplaced(file(1))).toBe(false);
    expect(journal.state(file(29_999))?.s).toBe('pending');
    // Only the line the crash cut short is removed.
    expect((await stat(path)).size).toBe(Buffer.byteLength(text));
  });

  it("another migration's journal is refused before anything is cut; a non-journal is refused at its first line", async () => {
    const dir = await tempDir();
    const other = join(dir, 'other.journal');
    const otherText = `${JSON.stringify({ ...header, to: 'local:///k.kp#c' })}\n${entry('/x', 'pending')}{"cut`;
    await writeFile(other, otherText);
    await expect(Journal.open(other, header)).rejects.toMatchObject({
      code: 'InvalidArgument',
      message: expect.stringMatching(/belongs to another migration/),
    });
    expect(await readFile(other, 'utf8')).toBe(otherText);
    // 64 MiB without a newline (a disk image, say): refused after its first 256 KiB, untouched.
    const image = join(dir, 'disk.img');
    await writeFile(image, Buffer.alloc(64 * 1024 * 1024, 0x41));
    await expect(Journal.open(image, header)).rejects.toMatchObject({
      code: 'InvalidArgument',
      message: expect.stringMatching(/is not a keyport migration journal/),
    });
    expect((await stat(image)).size).toBe(64 * 1024 * 1024);
  });

  it('reading a 96 MiB journal holds about one chunk, not the file (peak RSS from the OS)', async () => {
    const dir = await tempDir();
    const path = join(dir, 'big.journal');
    // Ten files' lines again and again: the journal's map stays small, so what is measured is
    // how the file is read.
    const block = Array.from({ length: 10 }, (_, i) => entry(join(dir, `f${i}.enc`), 'replaced')).join('');
    const copies = Math.ceil((96 * 1024 * 1024) / block.length);
    await writeFile(path, `${JSON.stringify(header)}\n${block.repeat(copies)}`);
    const script = `
      const { Journal } = await import(${JSON.stringify(JOURNAL_TS)});
      const hwm = () => Number(/VmHWM:\\s+(\\d+)/.exec(require('node:fs').readFileSync('/proc/self/status', 'utf8'))[1]);
      globalThis.gc?.();
      const before = hwm();
      const j = await Journal.open(${JSON.stringify(path)}, ${JSON.stringify(header)});
      await j.close();
      process.stdout.write(JSON.stringify({ grewKiB: hwm() - before, replaced: j.wasReplaced(${JSON.stringify(join(dir, 'f3.enc'))}) }));
    `;
    const out = execFileSync(
      process.execPath,
      [
        '--import',
        HOOKS,
        '--input-type=module',
        '-e',
        `import { createRequire } from 'node:module'; const require = createRequire(import.meta.url); ${script}`,
      ],
      { encoding: 'utf8' },
    );
    const { grewKiB, replaced } = JSON.parse(out) as { grewKiB: number; replaced: boolean };
    expect(replaced).toBe(true);
    // Read whole, the file alone (its bytes, then its text) grew the process by 190+ MiB.
    expect(grewKiB).toBeLessThan(48 * 1024);
  });
});
