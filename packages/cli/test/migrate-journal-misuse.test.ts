/**
 * `--journal` is a path the user types: a careless one names a file that is not a journal.
 * Nothing of such a file may be cut, appended to or followed through a link, and what a journal
 * lists as a killed run's temp is removed only when it is one: a journal edited by hand (or a
 * damaged one) never gets a user's file deleted.
 */
import { execFileSync } from 'node:child_process';
import { lstat, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrationTempFor } from '../src/migrate/plan.js';
import { jsonError, localWorkspace, runCli } from './support/cli.js';
import { localKeys, sealFiles } from './support/seal.js';

let ws: Awaited<ReturnType<typeof localWorkspace>>;
let files: string[];

beforeAll(async () => {
  ws = await localWorkspace();
  for (const n of ['a', 'b']) expect((await runCli(['keys', 'create', n], { cwd: ws.dir })).code).toBe(0);
  files = [...(await sealFiles(await localKeys(ws.keystore), ws.uri('a'), join(ws.dir, 'data'), 2)).keys()];
});
afterAll(async () => {
  await rm(ws.dir, { recursive: true, force: true });
});

const migrate = (...extra: string[]) =>
  runCli(['--json', 'migrate', '--from', ws.uri('a'), '--to', ws.uri('b'), 'data', ...extra], {
    cwd: ws.dir,
  });

describe('--journal naming something that is not a journal', () => {
  it('a text file (no newline at its end) is refused, not cut to nothing; no file is migrated', async () => {
    const notes = join(ws.dir, 'notes.txt');
    const text = 'line one\nmy notes, the last line without a newline';
    await writeFile(notes, text);
    const before = await Promise.all(files.map((f) => readFile(f)));
    const r = await migrate('--journal', 'notes.txt');
    expect(r.code).toBe(2);
    expect(jsonError(r.stderr).message).toMatch(/is not a keyport migration journal/);
    // The file's content is never quoted back: it could be anything.
    expect(r.stderr).not.toContain('my notes');
    expect(await readFile(notes, 'utf8')).toBe(text);
    expect(await Promise.all(files.map((f) => readFile(f)))).toEqual(before);
    // A one-line file without any newline: the whole of it would have been cut.
    await writeFile(notes, 'just one line');
    expect((await migrate('--journal', 'notes.txt')).code).toBe(2);
    expect(await readFile(notes, 'utf8')).toBe('just one line');
  });

  it('an envelope (one of the files to migrate, or any binary file) is refused byte for byte intact', async () => {
    const victim = files[0] as string;
    const before = await readFile(victim);
    const r = await migrate('--journal', victim);
    expect(r.code).toBe(2);
    expect(await readFile(victim)).toEqual(before);
  });

  it('a symbolic link is not followed, even to a journal: refused (exit 11), its target untouched', async () => {
    const target = join(ws.dir, 'target.txt');
    await writeFile(target, 'not a journal, no newline');
    await symlink(target, join(ws.dir, 'link.journal'));
    const r = await migrate('--journal', 'link.journal');
    expect(r.code).toBe(11);
    expect(jsonError(r.stderr).code).toBe('NotARegularFile');
    expect(await readFile(target, 'utf8')).toBe('not a journal, no newline');
  });

  it('a FIFO is refused at once, never waited on', async () => {
    execFileSync('mkfifo', [join(ws.dir, 'fifo.journal')]);
    const r = await migrate('--journal', 'fifo.journal');
    expect(r.code).toBe(11);
    expect(jsonError(r.stderr).code).toBe('NotARegularFile');
  });

  it('a header a crash cut short is a journal still: the run goes on', async () => {
    const dir = join(ws.dir, 'cut');
    await mkdir(dir);
    await writeFile(join(dir, 'j'), '{"journal":"keyport-mig');
    const run = await migrate('--journal', 'cut/j');
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ migrated: 2 });
    const lines = (await readFile(join(dir, 'j'), 'utf8')).split('\n');
    expect(JSON.parse(lines[0] as string)).toMatchObject({ journal: 'keyport-migrate/1' });
  });
});

describe("a journal's leftover temps", () => {
  it('only names a temp of the file can have are removed: a user file the journal lists stays', async () => {
    const dir = join(ws.dir, 'left');
    await mkdir(dir);
    const keep = join(ws.dir, 'data', 'precious.txt');
    await writeFile(keep, 'do not delete');
    // A temp's name for a file in data/, but in another directory.
    const sibling = join(ws.dir, 'gone2.enc.0123456789ab.keyport-migrate.tmp');
    await writeFile(sibling, 'not next to the file it claims');
    const file = files[1] as string;
    const real = migrationTempFor(file, '0123456789ab');
    await writeFile(real, 'a killed run left this');
    // A temp's name, but a symlink now: not what a run created, so not removed.
    const linked = migrationTempFor(files[0] as string, 'aaaaaaaaaaaa');
    await symlink(keep, linked);
    const header = { journal: 'keyport-migrate/1', from: ws.uri('a'), to: ws.uri('b'), removeSource: false };
    const data = join(ws.dir, 'data');
    const lines = [
      header,
      { f: file, s: 'failed', tmp: real },
      { f: join(data, 'gone1.enc'), s: 'pending', tmp: keep },
      { f: join(data, 'gone2.enc'), s: 'pending', tmp: sibling },
      { f: join(data, 'gone3.enc'), s: 'rewrapped', tmp: 42 },
      { f: files[0], s: 'verified', tmp: linked },
    ];
    await writeFile(join(dir, 'j'), lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
    const run = await migrate('--journal', 'left/j');
    expect(run.code, run.stderr).toBe(0);
    expect(await readFile(keep, 'utf8')).toBe('do not delete');
    expect(await readFile(sibling, 'utf8')).toBe('not next to the file it claims');
    expect((await lstat(linked)).isSymbolicLink()).toBe(true);
    await expect(readFile(real)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
