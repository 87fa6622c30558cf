/**
 * Outputs are never replaced by accident and failures leave nothing behind: devices, FIFOs,
 * sockets, directories and symlinks are refused; an existing output needs --force; the input
 * needs --in-place (mode kept); "-o -" is stdout; and every file-system failure has its own
 * code and exit code, names the path and leaves no temp file (exit codes 8-15).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import {
  chmod,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, HOOKS, localWorkspace, PASSPHRASE, runCli, spawnCli } from './support/cli.js';

let ws: Awaited<ReturnType<typeof localWorkspace>>;
let key: string;

beforeAll(async () => {
  ws = await localWorkspace();
  expect((await runCli(['keys', 'create', 'k'], { cwd: ws.dir })).code).toBe(0);
  key = ws.uri('k');
});

async function temps(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.includes('.tmp'));
}

const encrypt = (args: string[], cwd = ws.dir) => runCli(['--json', 'encrypt', '-r', key, ...args], { cwd });

/** The one error object among the NDJSON lines on stderr (progress events may come first). */
function errorOf(stderr: string): { code: string; message: string; exitCode: number; path?: string } {
  const lines = stderr.split('\n').filter((l) => l.startsWith('{"error"'));
  expect(lines, stderr).toHaveLength(1);
  return JSON.parse(lines[0] as string).error;
}

describe('output targets', () => {
  it('refuses a character device (exit 11) and leaves it a device', async () => {
    await writeFile(join(ws.dir, 'in.txt'), 'hello');
    const r = await encrypt(['in.txt', '-o', '/dev/null', '--force']);
    expect(r.code).toBe(11);
    expect(errorOf(r.stderr)).toMatchObject({ code: 'NotARegularFile', path: '/dev/null' });
    expect((await lstat('/dev/null')).isCharacterDevice()).toBe(true);
    expect(await temps('/dev')).toEqual([]);
  });

  it('refuses a FIFO, a socket and a symlink (exit 11) and a directory (exit 10), even with --force', async () => {
    const dir = join(ws.dir, 'special');
    await mkdir(dir);
    await writeFile(join(dir, 'in.txt'), 'hello');
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    const server = createServer();
    await new Promise<void>((r) => server.listen(join(dir, 'sock'), r));
    await writeFile(join(dir, 'real'), 'keep me');
    await symlink(join(dir, 'real'), join(dir, 'link'));
    await mkdir(join(dir, 'sub'));
    try {
      for (const [target, exit, kind] of [
        ['fifo', 11, 'NotARegularFile'],
        ['sock', 11, 'NotARegularFile'],
        ['link', 11, 'NotARegularFile'],
        ['sub', 10, 'IsADirectory'],
      ] as const) {
        const r = await encrypt(['special/in.txt', '-o', `special/${target}`, '--force']);
        expect(r.code, target).toBe(exit);
        expect(errorOf(r.stderr).code).toBe(kind);
        expect(errorOf(r.stderr).message).toContain(join(dir, target));
      }
      expect((await lstat(join(dir, 'fifo'))).isFIFO()).toBe(true);
      expect((await lstat(join(dir, 'sock'))).isSocket()).toBe(true);
      expect((await lstat(join(dir, 'link'))).isSymbolicLink()).toBe(true);
      expect(await readFile(join(dir, 'real'), 'utf8')).toBe('keep me');
      expect(await temps(dir)).toEqual([]);
    } finally {
      server.close();
    }
  });

  it('refuses an existing output without --force (exit 12) and replaces it with --force', async () => {
    await writeFile(join(ws.dir, 'plain'), 'data');
    await writeFile(join(ws.dir, 'exists.enc'), 'old');
    const refused = await encrypt(['plain', '-o', 'exists.enc']);
    expect(refused.code).toBe(12);
    expect(errorOf(refused.stderr).code).toBe('FileExists');
    expect(await readFile(join(ws.dir, 'exists.enc'), 'utf8')).toBe('old');
    const forced = await encrypt(['plain', '-o', 'exists.enc', '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    expect((await readFile(join(ws.dir, 'exists.enc')))[0]).toBe(0x02);
  });

  it('refuses the input as output without --in-place (exit 12); --in-place replaces it and keeps its mode', async () => {
    const p = join(ws.dir, 'same.txt');
    await writeFile(p, 'the same file');
    await chmod(p, 0o640);
    const refused = await encrypt(['same.txt', '-o', 'same.txt', '--force']);
    expect(refused.code).toBe(12);
    expect(errorOf(refused.stderr).message).toMatch(/input file/);
    expect(await readFile(p, 'utf8')).toBe('the same file');
    // A hard link to the input is the input too.
    execFileSync('ln', [p, join(ws.dir, 'hard.txt')]);
    expect((await encrypt(['same.txt', '-o', 'hard.txt', '--force'])).code).toBe(12);
    // In place, the other link would keep the plaintext: refused while it exists.
    const linked = await encrypt(['same.txt', '--in-place']);
    expect(linked.code).toBe(12);
    expect(errorOf(linked.stderr).message).toMatch(/1 other hard link/);
    expect(await readFile(p, 'utf8')).toBe('the same file');
    await rm(join(ws.dir, 'hard.txt'));

    const inPlace = await encrypt(['same.txt', '--in-place']);
    expect(inPlace.code, inPlace.stderr).toBe(0);
    expect((await stat(p)).mode & 0o777).toBe(0o640);
    const back = await runCli(['decrypt', 'same.txt', '--in-place', '-k', key], { cwd: ws.dir });
    expect(back.code, back.stderr).toBe(0);
    expect(await readFile(p, 'utf8')).toBe('the same file');
    // Plaintext: the owner's bits kept, the group's dropped (next test).
    expect((await stat(p)).mode & 0o777).toBe(0o600);
    expect(await temps(ws.dir)).toEqual([]);
  });

  it('decrypt never writes plaintext readable by group or others: in place, over --force, new file; encrypt keeps the mode', async () => {
    const modeOf = async (name: string) => (await stat(join(ws.dir, name))).mode & 0o7777;
    const decrypt = (args: string[]) => runCli(['decrypt', '-k', key, ...args], { cwd: ws.dir });
    // [mode of the ciphertext, mode of the plaintext that replaces it]
    const cases: Array<[number, number]> = [
      [0o644, 0o600],
      [0o666, 0o600],
      [0o440, 0o400],
      [0o755, 0o700],
      [0o600, 0o600],
    ];
    for (const [before, after] of cases) {
      const name = `world-${before.toString(8)}.txt`;
      await writeFile(join(ws.dir, name), 'secret plaintext');
      await chmod(join(ws.dir, name), 0o644);
      const enc = await encrypt([name, '--in-place']);
      expect(enc.code, enc.stderr).toBe(0);
      // A ciphertext may be world-readable: encrypt --in-place keeps the mode.
      expect(await modeOf(name)).toBe(0o644);
      await chmod(join(ws.dir, name), before);
      const dec = await decrypt([name, '--in-place']);
      expect(dec.code, dec.stderr).toBe(0);
      expect(await readFile(join(ws.dir, name), 'utf8')).toBe('secret plaintext');
      // Before: the ciphertext's mode, 0644 plaintext.
      expect((await modeOf(name)).toString(8), name).toBe(after.toString(8));
    }

    await writeFile(join(ws.dir, 'msg-src.txt'), 'secret plaintext');
    expect((await encrypt(['msg-src.txt', '-o', 'msg.enc'])).code).toBe(0);
    // -o over an existing world-readable file with --force: the same rule.
    await writeFile(join(ws.dir, 'shared.txt'), 'old');
    await chmod(join(ws.dir, 'shared.txt'), 0o664);
    const forced = await decrypt(['msg.enc', '-o', 'shared.txt', '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(await readFile(join(ws.dir, 'shared.txt'), 'utf8')).toBe('secret plaintext');
    expect((await modeOf('shared.txt')).toString(8)).toBe('600');
    // A new file: 0600 whatever the umask.
    const fresh = await decrypt(['msg.enc', '-o', 'fresh.txt']);
    expect(fresh.code, fresh.stderr).toBe(0);
    expect((await modeOf('fresh.txt')).toString(8)).toBe('600');
    // encrypt over an existing file with --force keeps its mode (a ciphertext may be shared).
    await writeFile(join(ws.dir, 'shared.enc'), 'old');
    await chmod(join(ws.dir, 'shared.enc'), 0o644);
    expect((await encrypt(['msg-src.txt', '-o', 'shared.enc', '--force'])).code).toBe(0);
    expect((await modeOf('shared.enc')).toString(8)).toBe('644');
    expect(await temps(ws.dir)).toEqual([]);
  });

  it('stdin redirected from the output file is the input too (exit 12), in a real process', async () => {
    const p = join(ws.dir, 'redirected.txt');
    await writeFile(p, 'redirected');
    const fd = openSync(p, 'r');
    try {
      const r = spawnSync(
        process.execPath,
        ['--import', HOOKS, BIN, '--json', 'encrypt', '-o', 'redirected.txt', '--force', '-r', key],
        {
          cwd: ws.dir,
          stdio: [fd, 'pipe', 'pipe'],
          env: { PATH: process.env.PATH, KEYPORT_CLI_FROM_SOURCE: '1', KEYPORT_LOCAL_PASSPHRASE: PASSPHRASE },
        },
      );
      expect(r.status, r.stderr.toString()).toBe(12);
      expect(errorOf(r.stderr.toString()).message).toMatch(/input file/);
    } finally {
      closeSync(fd);
    }
    expect(await readFile(p, 'utf8')).toBe('redirected');
  });

  it('a FIFO input whose output must be refused is refused at once, not after a writer comes', async () => {
    const dir = join(ws.dir, 'fifo-in');
    await mkdir(dir);
    execFileSync('mkfifo', [join(dir, 'in.fifo')]);
    await writeFile(join(dir, 'exists.enc'), 'keep');
    // Nobody ever opens the FIFO for writing: opening it to read would wait forever (the old
    // order: input opened first, output checked after), so the child is killed at its timeout.
    for (const [argv, exit, kind] of [
      [['in.fifo', '--in-place'], 11, 'NotARegularFile'],
      [['in.fifo', '-o', 'exists.enc'], 12, 'FileExists'],
    ] as const) {
      const r = await spawnCli(
        ['--json', '--config', '../keyport.config.json', 'encrypt', '-r', key, ...argv],
        {
          cwd: dir,
          timeoutMs: 10_000,
        },
      );
      expect(r.code, `${argv.join(' ')}: ${r.stderr}`).toBe(exit);
      expect(errorOf(r.stderr).code).toBe(kind);
    }
    expect((await lstat(join(dir, 'in.fifo'))).isFIFO()).toBe(true);
    expect(await readFile(join(dir, 'exists.enc'), 'utf8')).toBe('keep');
    expect(await temps(dir)).toEqual([]);
  });

  it('processes racing for one output: one new file wins whole, each other exits 12, no temp left', async () => {
    const dir = await mkdtemp(join(ws.dir, 'race-'));
    const plain = Buffer.alloc(3 * 1024 * 1024, 5);
    await writeFile(join(dir, 'p.txt'), plain);
    const racers = (extra: string[]) =>
      Promise.all(
        Array.from({ length: 4 }, () =>
          spawnCli(
            [
              '--json',
              '--config',
              '../keyport.config.json',
              'encrypt',
              'p.txt',
              '-o',
              'out.enc',
              '-r',
              key,
              ...extra,
            ],
            { cwd: dir },
          ),
        ),
      );
    const opens = async () => {
      const r = await runCli(['--config', '../keyport.config.json', 'decrypt', 'out.enc', '-k', key], {
        cwd: dir,
      });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdoutBytes.equals(plain)).toBe(true);
    };
    // No --force: link(2) publishes at most one; the others find it there (before or after writing).
    const fresh = await racers([]);
    expect(fresh.filter((r) => r.code === 0)).toHaveLength(1);
    for (const r of fresh.filter((x) => x.code !== 0)) {
      expect(r.code, r.stderr).toBe(12);
      expect(errorOf(r.stderr).code).toBe('FileExists');
    }
    await opens();
    // --force: every winner replaced a whole file; a racer that saw its target replaced under it
    // refuses (exit 12) rather than clobber a file it did not check.
    const forced = await racers(['--force']);
    expect(forced.some((r) => r.code === 0)).toBe(true);
    for (const r of forced) expect([0, 12], r.stderr).toContain(r.code);
    await opens();
    expect(await temps(dir)).toEqual([]);
  });

  it('"-o -" writes to stdout', async () => {
    await writeFile(join(ws.dir, 'to-stdout'), 'x');
    const r = await runCli(['encrypt', 'to-stdout', '-o', '-', '-r', key], { cwd: ws.dir });
    expect(r.code).toBe(0);
    expect(r.stdoutBytes[0]).toBe(0x02);
    expect(await readdir(ws.dir)).not.toContain('-');
  });
});

describe('file-system errors: own code, own exit code, the path named, no temp left', () => {
  it('a missing input exits 8 (FileNotFound) naming the path, with no stack and no temp', async () => {
    const r = await runCli(['encrypt', 'nope.txt', '-o', 'nope.enc', '-r', key], { cwd: ws.dir });
    expect(r.code).toBe(8);
    expect(r.stderr).toMatch(/^keyport: error FileNotFound: cannot read ".*nope\.txt"/);
    expect(r.stderr).not.toMatch(/ at .*\.ts:\d+/);
    expect(await readdir(ws.dir)).not.toContain('nope.enc');
    expect(await temps(ws.dir)).toEqual([]);
    const dir = await runCli(['--json', 'encrypt', 'no-such-dir/x', '-r', key], { cwd: ws.dir });
    expect(errorOf(dir.stderr)).toMatchObject({ code: 'FileNotFound', exitCode: 8 });
    const out = await encrypt(['plain', '-o', 'no-such-dir/out.enc']);
    expect(errorOf(out.stderr)).toMatchObject({ code: 'FileNotFound', exitCode: 8 });
  });

  it('a directory as input exits 10 (IsADirectory)', async () => {
    const r = await encrypt(['.', '-o', 'dir.enc']);
    expect(r.code).toBe(10);
    expect(errorOf(r.stderr).code).toBe('IsADirectory');
  });

  it('a read error of the device exits 15 (FileIO)', async () => {
    // Reading /proc/self/mem at offset 0 (an unmapped address) fails with EIO.
    const r = await encrypt(['/proc/self/mem', '-o', 'eio.enc']);
    expect(r.code).toBe(15);
    expect(errorOf(r.stderr)).toMatchObject({ code: 'FileIO', path: '/proc/self/mem' });
    expect(await readdir(ws.dir)).not.toContain('eio.enc');
    expect(await temps(ws.dir)).toEqual([]);
  });

  it('permission denied exits 9 (FilePermission), for the input and for the output directory', async () => {
    const dir = join(ws.dir, 'locked');
    await mkdir(dir);
    await writeFile(join(dir, 'secret.txt'), 'root only');
    await chmod(join(dir, 'secret.txt'), 0o600);
    await chmod(ws.dir, 0o755);
    await chmod(join(ws.dir, 'keys.kp'), 0o644);
    await writeFile(join(ws.dir, 'pass'), 'test passphrase, not a secret');
    // The child runs as "nobody": root's files are closed to it.
    const asNobody = { cwd: dir, uid: 65534, gid: 65534 };
    const input = await spawnCli(
      ['--json', '--config', '../keyport.config.json', 'encrypt', 'secret.txt', '-r', key],
      asNobody,
    );
    expect(input.code, input.stderr).toBe(9);
    expect(errorOf(input.stderr)).toMatchObject({ code: 'FilePermission', exitCode: 9 });
    await writeFile(join(dir, 'open.txt'), 'anyone');
    await chmod(join(dir, 'open.txt'), 0o644);
    const output = await spawnCli(
      ['--json', '--config', '../keyport.config.json', 'encrypt', 'open.txt', '-o', 'out.enc', '-r', key],
      asNobody,
    );
    expect(output.code, output.stderr).toBe(9);
    expect(errorOf(output.stderr).message).toContain(dir);
    expect(await readdir(dir)).toEqual(['open.txt', 'secret.txt']);
  });
});

describe('disk full and read-only file systems (a small tmpfs)', () => {
  let small: string;
  let readOnly: string;
  beforeAll(async () => {
    small = join(ws.dir, 'small');
    readOnly = join(ws.dir, 'ro');
    await mkdir(small);
    await mkdir(readOnly);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', small]);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,ro', 'tmpfs', readOnly]);
  });
  afterAll(() => {
    for (const m of [small, readOnly]) execFileSync('umount', [m]);
  });

  it('disk full exits 13 (DiskFull): the existing output is untouched and no temp is left', async () => {
    await writeFile(join(ws.dir, 'big'), Buffer.alloc(256 * 1024, 1));
    await writeFile(join(small, 'out.enc'), 'previous');
    const r = await encrypt(['big', '-o', join(small, 'out.enc'), '--force']);
    expect(r.code, r.stderr).toBe(13);
    expect(errorOf(r.stderr)).toMatchObject({ code: 'DiskFull', path: join(small, 'out.enc') });
    expect(await readFile(join(small, 'out.enc'), 'utf8')).toBe('previous');
    expect(await readdir(small)).toEqual(['out.enc']);
  });

  it('a read-only file system exits 14 (ReadOnlyFileSystem)', async () => {
    const r = await encrypt(['plain', '-o', join(readOnly, 'out.enc')]);
    expect(r.code).toBe(14);
    expect(errorOf(r.stderr).code).toBe('ReadOnlyFileSystem');
    expect(await readdir(readOnly)).toEqual([]);
  });
});
