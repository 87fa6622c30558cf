/**
 * Migration safety: one run per journal (exit 7, nothing touched), stale locks of dead processes
 * taken over with a message, --break-lock; the file header is the truth (a restored file is
 * migrated again); --to and --from are checked before the first file; skipped files are
 * reported with their reason; symlinks are followed only with --follow-symlinks; relative
 * local:// URIs are canonical.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmod,
  chown,
  copyFile,
  link,
  lstat,
  mkdir,
  readdir,
  readFile,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { kmsRecipient } from '@keyport/envelope';
import { describe, expect, it } from 'vitest';
import { peekMessage } from '../src/migrate/header-peek.js';
import { localWorkspace, ndjson, runCli, spawnCli } from './support/cli.js';
import { localKeys, sealFiles } from './support/seal.js';

async function setup(count: number) {
  const ws = await localWorkspace();
  for (const n of ['a', 'b']) await runCli(['keys', 'create', n], { cwd: ws.dir });
  const keys = await localKeys(ws.keystore);
  const digests = await sealFiles(keys, ws.uri('a'), join(ws.dir, 'data'), count);
  return { ws, keys, digests, a: ws.uri('a'), b: ws.uri('b') };
}

async function snapshot(files: Iterable<string>): Promise<Map<string, string>> {
  const m = new Map<string, string>();
  for (const f of files) m.set(f, (await readFile(f)).toString('hex'));
  return m;
}

const lockFile = (dir: string) => join(dir, '.keyport-migrate.journal.lock');

function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(r.stdout.toString());
}

describe('one migration per journal', () => {
  it('a lock held by a live process: exit 7, MigrationLocked, nothing touched', async () => {
    const { ws, digests, a, b } = await setup(4);
    const before = await snapshot(digests.keys());
    const holder = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString(), nonce: 'n1' };
    await writeFile(lockFile(ws.dir), JSON.stringify(holder));
    const r = await runCli(['--json', 'migrate', '--from', a, '--to', b, 'data'], { cwd: ws.dir });
    expect(r.code).toBe(7);
    expect(JSON.parse(r.stderr).error).toMatchObject({ code: 'MigrationLocked', exitCode: 7 });
    expect(JSON.parse(r.stderr).error.message).toContain(`pid ${process.pid}`);
    expect(await snapshot(digests.keys())).toEqual(before);
    expect(await readdir(ws.dir)).not.toContain('.keyport-migrate.journal');
    expect(JSON.parse(await readFile(lockFile(ws.dir), 'utf8')).nonce).toBe('n1');
  });

  it('a lock left by a dead process on this host is taken over with a message', async () => {
    const { ws, a, b } = await setup(4);
    const pid = deadPid();
    await writeFile(
      lockFile(ws.dir),
      JSON.stringify({ pid, host: hostname(), startedAt: new Date().toISOString(), nonce: 'gone' }),
    );
    const r = await runCli(['--json', 'migrate', '--from', a, '--to', b, 'data'], { cwd: ws.dir });
    expect(r.code, r.stderr).toBe(0);
    expect(ndjson(r.stderr).find((e) => 'note' in e)?.note).toContain(
      `took over the journal lock of pid ${pid}`,
    );
    expect(JSON.parse(r.stdout)).toMatchObject({ migrated: 4 });
    expect(await readdir(ws.dir)).not.toContain('.keyport-migrate.journal.lock');
  });

  it('a dead lock with the take-over marker of a breaker killed mid-take-over (empty or a dead pid) is taken at once', async () => {
    for (const marker of ['', String(deadPid())]) {
      const { ws, a, b } = await setup(2);
      const pid = deadPid();
      await writeFile(
        lockFile(ws.dir),
        JSON.stringify({ pid, host: hostname(), startedAt: new Date().toISOString(), nonce: 'gone' }),
      );
      await writeFile(`${lockFile(ws.dir)}.break`, marker);
      const r = await runCli(['--json', 'migrate', '--from', a, '--to', b, 'data'], { cwd: ws.dir });
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ migrated: 2 });
      const left = await readdir(ws.dir);
      expect(left).not.toContain('.keyport-migrate.journal.lock');
      expect(left).not.toContain('.keyport-migrate.journal.lock.break');
    }
  });

  it('a lock from another host is never taken silently; --break-lock takes it with a message', async () => {
    const { ws, a, b } = await setup(2);
    await writeFile(
      lockFile(ws.dir),
      JSON.stringify({ pid: 1, host: 'elsewhere', startedAt: new Date().toISOString(), nonce: 'x' }),
    );
    const locked = await runCli(['migrate', '--from', a, '--to', b, 'data'], { cwd: ws.dir });
    expect(locked.code).toBe(7);
    expect(locked.stderr).toMatch(/--break-lock/);
    const broken = await runCli(['--json', 'migrate', '--from', a, '--to', b, 'data', '--break-lock'], {
      cwd: ws.dir,
    });
    expect(broken.code, broken.stderr).toBe(0);
    expect(ndjson(broken.stderr).find((e) => 'note' in e)?.note).toMatch(
      /broke the journal lock of pid 1 on host "elsewhere"/,
    );
  });
});

describe('a damaged lock: exit 7 at once, saying what to do; --break-lock removes it', () => {
  it('a pid that is no process id (0, negative, fractional, huge, text, missing) is never waited on as live', async () => {
    const { ws, digests, a, b } = await setup(2);
    const before = await snapshot(digests.keys());
    const base = { host: hostname(), startedAt: new Date().toISOString(), nonce: 'n' };
    for (const [pid, shown] of [
      [0, '0'],
      [-1, '-1'],
      [1.5, '1.5'],
      [1e300, '1e+300'],
      [2 ** 31, '2147483648'],
      ['4242', '"4242"'],
      [undefined, 'missing'],
    ] as const) {
      await writeFile(lockFile(ws.dir), JSON.stringify({ ...base, pid }));
      const r = await runCli(['--json', 'migrate', '--from', a, '--to', b, 'data'], { cwd: ws.dir });
      expect(r.code, `${shown}: ${r.stderr}`).toBe(7);
      const error = JSON.parse(r.stderr).error;
      expect(error.code).toBe('MigrationLocked');
      expect(error.message).toContain(`is damaged: its pid is ${shown}, which is not a process id`);
      expect(error.message).toMatch(/if none is running, pass --break-lock \(or remove the lock file\)/);
      expect(JSON.parse(await readFile(lockFile(ws.dir), 'utf8')).pid).toEqual(pid);
    }
    expect(await snapshot(digests.keys())).toEqual(before);
    const broken = await runCli(['--json', 'migrate', '--from', a, '--to', b, 'data', '--break-lock'], {
      cwd: ws.dir,
    });
    expect(broken.code, broken.stderr).toBe(0);
    expect(ndjson(broken.stderr).find((e) => 'note' in e)?.note).toMatch(
      /removed a damaged journal lock .*its pid is missing.*\(--break-lock\)/,
    );
    expect(await readdir(ws.dir)).not.toContain('.keyport-migrate.journal.lock');
  });

  it('a FIFO or a symlink in place of the lock is refused at once (never opened and waited on)', async () => {
    const { ws, digests, a, b } = await setup(2);
    const before = await snapshot(digests.keys());
    execFileSync('mkfifo', [lockFile(ws.dir)]);
    const fifo = await runCli(['--json', 'migrate', '--from', a, '--to', b, 'data'], { cwd: ws.dir });
    expect(fifo.code, fifo.stderr).toBe(7);
    expect(JSON.parse(fifo.stderr).error.message).toMatch(/is damaged: it is a FIFO/);
    expect((await lstat(lockFile(ws.dir))).isFIFO()).toBe(true);
    const broken = await runCli(['--json', 'migrate', '--from', a, '--to', b, 'data', '--break-lock'], {
      cwd: ws.dir,
    });
    expect(broken.code, broken.stderr).toBe(0);
    expect(await readdir(ws.dir)).not.toContain('.keyport-migrate.journal.lock');

    expect(await snapshot(digests.keys())).not.toEqual(before);

    const second = await setup(1);
    const untouched = await snapshot(second.digests.keys());
    await symlink('/dev/zero', lockFile(second.ws.dir));
    const link = await runCli(['--json', 'migrate', '--from', second.a, '--to', second.b, 'data'], {
      cwd: second.ws.dir,
    });
    expect(link.code, link.stderr).toBe(7);
    expect(JSON.parse(link.stderr).error.message).toMatch(/is damaged: it is a symbolic link/);
    expect(await snapshot(second.digests.keys())).toEqual(untouched);
    expect((await lstat(lockFile(second.ws.dir))).isSymbolicLink()).toBe(true);
  });
});

describe('lock temp files left by runs killed while taking the lock', () => {
  it('the next run to take the lock removes those of dead writers on this host; live or foreign ones stay', async () => {
    const { ws, a, b } = await setup(2);
    const tag = createHash('sha256').update(hostname()).digest('hex').slice(0, 8);
    const otherTag = tag === 'ffffffff' ? 'eeeeeeee' : 'ffffffff';
    const dead = deadPid();
    const lock = '.keyport-migrate.journal.lock';
    // A stale lock of a dead run, killed after linking its temp into place (the temp is the lock).
    await writeFile(
      lockFile(ws.dir),
      JSON.stringify({ pid: dead, host: hostname(), startedAt: new Date().toISOString(), nonce: 'gone' }),
    );
    const gone = [
      `${lock}.${tag}-${dead}-aaaaaaaaaaaa.tmp`,
      `${lock}.break.${tag}-${dead}-bbbbbbbbbbbb.tmp`,
      `${lock}.${tag}-${dead}-eeeeeeeeeeee.tmp`,
    ];
    const kept = [
      // A writer of this host still running (this test's own process), one of another host,
      // a name of an older version (no pid: only age tells), and a symlink that merely looks like one.
      `${lock}.${tag}-${process.pid}-cccccccccccc.tmp`,
      `${lock}.${otherTag}-${dead}-dddddddddddd.tmp`,
      `${lock}.0123456789ab.tmp`,
      `${lock}.${tag}-${dead}-ffffffffffff.tmp`,
      `${lock}.${tag}-${dead}-0123456789ab.tmp.not-ours`,
    ];
    await writeFile(join(ws.dir, gone[0] as string), '');
    await writeFile(join(ws.dir, gone[1] as string), String(dead));
    await link(lockFile(ws.dir), join(ws.dir, gone[2] as string));
    for (const name of kept.slice(0, 3)) await writeFile(join(ws.dir, name), '{"pid":1}');
    await symlink(join(ws.dir, 'keys.kp'), join(ws.dir, kept[3] as string));
    await writeFile(join(ws.dir, kept[4] as string), 'x');
    const r = await runCli(['--json', 'migrate', '--from', a, '--to', b, 'data'], { cwd: ws.dir });
    expect(r.code, r.stderr).toBe(0);
    const left = await readdir(ws.dir);
    for (const name of gone) expect(left, name).not.toContain(name);
    for (const name of kept) expect(left, name).toContain(name);
    expect(left).not.toContain('.keyport-migrate.journal.lock');
    expect((await lstat(join(ws.dir, kept[3] as string))).isSymbolicLink()).toBe(true);
  });
});

describe('the file is the truth', () => {
  it('a file restored from a backup (sealed for --from again) is migrated again', async () => {
    const { ws, digests, a, b } = await setup(3);
    const file = [...digests.keys()][0] as string;
    const backup = join(ws.dir, 'backup.enc');
    await copyFile(file, backup);
    const args = ['--json', 'migrate', '--from', a, '--to', b, '--remove-source', 'data'];
    expect(JSON.parse((await runCli(args, { cwd: ws.dir })).stdout)).toMatchObject({ migrated: 3 });
    await copyFile(backup, file);
    const again = JSON.parse((await runCli(args, { cwd: ws.dir })).stdout);
    expect(again).toMatchObject({ migrated: 1, alreadyDone: 2, failed: 0 });
    const peeked = await peekMessage(file);
    expect(
      peeked.kind === 'envelope' &&
        peeked.edks.length === 1 &&
        kmsRecipient(b).matches(peeked.edks[0] as never),
    ).toBe(true);
  });
});

describe('checked before touching', () => {
  it('a --to that does not exist or is disabled stops the run before the first file', async () => {
    const { ws, digests, a, b } = await setup(3);
    const before = await snapshot(digests.keys());
    const missing = await runCli(['--json', 'migrate', '--from', a, '--to', ws.uri('nope'), 'data'], {
      cwd: ws.dir,
    });
    expect(missing.code).toBe(3);
    expect(JSON.parse(missing.stderr).error.message).toMatch(/--to cannot be used/);
    await runCli(['keys', 'disable', b], { cwd: ws.dir });
    const disabled = await runCli(['--json', 'migrate', '--from', a, '--to', b, 'data'], { cwd: ws.dir });
    expect(disabled.code).toBe(1);
    expect(JSON.parse(disabled.stderr).error.code).toBe('KeyStateConflict');
    const noFrom = await runCli(['--json', 'migrate', '--from', ws.uri('gone'), '--to', a, 'data'], {
      cwd: ws.dir,
    });
    expect(noFrom.code).toBe(3);
    expect(JSON.parse(noFrom.stderr).error.message).toMatch(/--from cannot be reached/);
    expect(await snapshot(digests.keys())).toEqual(before);
    const names = (await readdir(join(ws.dir, 'data', 'even'))).concat(await readdir(ws.dir));
    expect(names.filter((n) => n.includes('.tmp') || n.includes('journal'))).toEqual([]);
  });
});

describe('skipped files and symlinks', () => {
  it('reports every skipped file with its reason and counts it; follows symlinks only when asked', async () => {
    const { ws, digests, a, b } = await setup(2);
    const data = join(ws.dir, 'data');
    const [first] = [...digests.keys()] as [string];
    await writeFile(join(data, 'notes.txt'), 'not an envelope');
    execFileSync('mkfifo', [join(data, 'pipe')]);
    const outside = join(ws.dir, 'outside');
    await mkdir(outside);
    await sealFiles(await localKeys(ws.keystore), a, outside, 1);
    const outsideFile = join(outside, 'even', 'f0000.enc');
    await symlink(outsideFile, join(data, 'link.enc'));
    await symlink(first, join(data, 'dup.enc'));
    const r = await runCli(['--json', 'migrate', '--from', a, '--to', b, 'data'], { cwd: ws.dir });
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s).toMatchObject({ migrated: 2, skipped: 4, total: 6 });
    const reasons = Object.fromEntries(
      (s.skippedFiles as Array<{ file: string; reason: string }>).map((f) => [
        f.file.slice(data.length + 1),
        f.reason,
      ]),
    );
    expect(reasons).toEqual({
      'notes.txt': 'not an envelope message',
      pipe: 'a FIFO',
      'link.enc': 'symbolic link (not followed; pass --follow-symlinks)',
      'dup.enc': 'symbolic link (not followed; pass --follow-symlinks)',
    });
    const human = await runCli(['migrate', '--from', a, '--to', b, 'data', '--journal', 'h.journal'], {
      cwd: ws.dir,
    });
    expect(human.stdout).toMatch(/skipped ".*pipe": a FIFO/);
    expect((await peekMessage(outsideFile)).kind === 'envelope').toBe(true);
    const outsideBefore = await readFile(outsideFile);

    const follow = await runCli(
      ['--json', 'migrate', '--from', a, '--to', b, 'data', '--follow-symlinks', '--journal', 'f.journal'],
      { cwd: ws.dir },
    );
    expect(follow.code, follow.stderr).toBe(0);
    // The link's target is migrated (once, though two links lead to files); the links stay links.
    expect(JSON.parse(follow.stdout)).toMatchObject({ migrated: 1, alreadyDone: 2 });
    expect((await lstat(join(data, 'link.enc'))).isSymbolicLink()).toBe(true);
    expect(await readFile(outsideFile)).not.toEqual(outsideBefore);
  });

  it('the text summary names 20 skipped files and counts the rest, as it does failed ones; --json lists all', async () => {
    const { ws, a, b } = await setup(1);
    const data = join(ws.dir, 'data');
    for (let i = 0; i < 23; i++) await writeFile(join(data, `n${String(i).padStart(2, '0')}.txt`), 'plain');
    const r = await runCli(['migrate', '--from', a, '--to', b, 'data', '--no-progress'], { cwd: ws.dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('already done: 0, skipped: 23, failed: 0');
    // Before: one line per skipped file, however many (100,000 links, 100,000 lines).
    expect(r.stdout.split('\n').filter((l) => l.startsWith('  skipped "')).length, r.stdout).toBe(20);
    expect(r.stdout).toContain('  … and 3 more skipped (--json lists them all)');
    const json = await runCli(['--json', 'migrate', '--from', a, '--to', b, 'data'], { cwd: ws.dir });
    expect(JSON.parse(json.stdout)).toMatchObject({ skipped: 23 });
    expect(JSON.parse(json.stdout).skippedFiles).toHaveLength(23);
  });

  it('an unreadable file is skipped with the reason (run as an unprivileged user)', async () => {
    const { ws, digests, a, b } = await setup(2);
    const [first] = [...digests.keys()] as [string];
    execFileSync('chown', ['-R', '65534:65534', ws.dir]);
    await chown(first, 0, 0);
    await chmod(first, 0o600);
    await writeFile(join(ws.dir, 'pass'), '');
    const r = await spawnCli(['--json', 'migrate', '--from', a, '--to', b, 'data'], {
      cwd: ws.dir,
      uid: 65534,
      gid: 65534,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).skippedFiles).toEqual([
      { file: first, reason: 'unreadable: permission denied' },
    ]);
  });
});

describe('canonical key URIs', () => {
  it('a relative local:// keystore path is resolved; envelopes record the absolute URI', async () => {
    const ws = await localWorkspace();
    await runCli(['keys', 'create', 'a'], { cwd: ws.dir });
    await runCli(['keys', 'create', 'b'], { cwd: ws.dir });
    await writeFile(join(ws.dir, 'p.txt'), 'relative');
    const enc = await runCli(['--json', 'encrypt', 'p.txt', '-o', 'p.enc', '-r', 'local://keys.kp#a'], {
      cwd: ws.dir,
    });
    expect(enc.code, enc.stderr).toBe(0);
    expect(JSON.parse(enc.stdout).recipients).toEqual([ws.uri('a')]);
    const peeked = await peekMessage(join(ws.dir, 'p.enc'));
    expect(
      peeked.kind === 'envelope' && Buffer.from(peeked.edks[0]?.providerInfo ?? []).toString(),
    ).toContain(ws.keystore);
    // From another directory, with the path relative to there.
    await mkdir(join(ws.dir, 'sub'));
    const m = await runCli(
      [
        '--json',
        '--config',
        '../keyport.config.json',
        'migrate',
        '--from',
        'local://../keys.kp#a',
        '--to',
        'local://../keys.kp#b',
        '../p.enc',
      ],
      { cwd: join(ws.dir, 'sub') },
    );
    expect(m.code, m.stderr).toBe(0);
    expect(JSON.parse(m.stdout)).toMatchObject({ migrated: 1, skipped: 0 });
  });
});
