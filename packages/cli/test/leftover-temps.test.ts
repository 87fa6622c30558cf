/**
 * Temps left by a killed writer (SIGKILL: no handler runs) are removed by the next command that
 * writes the same target, or by `migrate` over their directory — a `decrypt` temp holds
 * plaintext — but only once their writer is known to be gone: a temp another process is still
 * writing, a file keyport did not make (another name, a symlink, another host's temp), is left.
 * Real child processes (the bin from source): the sweep judges other processes' pids.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstat, mkdtemp, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { sweepOutputTemps, tempPathFor } from '../src/files/output-temps.js';
import { BIN, HOOKS, localWorkspace, PASSPHRASE, runCli, spawnCli } from './support/cli.js';

const PLAIN = Buffer.alloc(4 * 1024 * 1024, 7);
/** The host tag keyport puts in a temp's name (8 hex digits of the host name's SHA-256). */
const HOST = createHash('sha256').update(hostname()).digest('hex').slice(0, 8);
const OTHER_HOST = HOST === '00000000' ? '11111111' : '00000000';

const FED = 3 * 1024 * 1024;

let ws: Awaited<ReturnType<typeof localWorkspace>>;
let key: string;
let sealed: Buffer;

beforeAll(async () => {
  ws = await localWorkspace();
  expect((await runCli(['keys', 'create', 'k'], { cwd: ws.dir })).code).toBe(0);
  key = ws.uri('k');
  await writeFile(join(ws.dir, 'big.txt'), PLAIN);
  expect((await runCli(['encrypt', 'big.txt', '-o', 'big.enc', '-r', key], { cwd: ws.dir })).code).toBe(0);
  sealed = await readFile(join(ws.dir, 'big.enc'));
});

const tempsIn = async (dir: string): Promise<string[]> =>
  (await readdir(dir)).filter((n) => n.endsWith('.keyport.tmp')).sort();

async function waitFor(ready: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await ready())) {
    if (Date.now() > deadline) throw new Error('the child never got ready');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * `decrypt -o plain.out` from stdin, fed the first 3 MiB of the message (more than one 1 MiB
 * write batch of plaintext) and then kept waiting on the open pipe: it is mid-write, its temp (plaintext) on disk, until the test ends it.
 */
async function pausedDecrypt(
  dir: string,
): Promise<{ child: ChildProcess; temp: string; exited: Promise<unknown> }> {
  const before = await tempsIn(dir);
  const child = spawn(
    process.execPath,
    ['--import', HOOKS, BIN, '--config', '../keyport.config.json', 'decrypt', '-k', key, '-o', 'plain.out'],
    {
      cwd: dir,
      env: { PATH: process.env.PATH, KEYPORT_CLI_FROM_SOURCE: '1', KEYPORT_LOCAL_PASSPHRASE: PASSPHRASE },
      stdio: ['pipe', 'ignore', 'ignore'],
    },
  );
  child.stdin?.on('error', () => undefined);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.stdin?.write(sealed.subarray(0, FED));
  let temp = '';
  await waitFor(async () => {
    const fresh = (await tempsIn(dir)).filter((n) => !before.includes(n));
    // Frames verified so far have reached it: the plaintext a SIGKILL would leave.
    if (fresh.length === 1 && (await lstat(join(dir, fresh[0] as string))).size > 0)
      temp = fresh[0] as string;
    return temp !== '';
  });
  return { child, temp, exited };
}

/** A pid that ran and is gone (reaped). */
function deadPid(): number {
  const pid = spawnSync(process.execPath, ['-e', '0']).pid;
  expect(pid).toBeGreaterThan(0);
  return pid as number;
}

const decryptTo = (dir: string) =>
  spawnCli(['--config', '../keyport.config.json', 'decrypt', '../big.enc', '-k', key, '-o', 'plain.out'], {
    cwd: dir,
  });

describe('temps left by a killed writer', () => {
  it('kill -9 mid-decrypt: the next decrypt to the same target removes the plaintext temp, says so, and writes the output', async () => {
    const dir = await mkdtemp(join(ws.dir, 'kill-'));
    const w = await pausedDecrypt(dir);
    expect(w.temp).toMatch(/^\.plain\.out\..*\.keyport\.tmp$/);
    w.child.kill('SIGKILL');
    await w.exited;
    expect(await tempsIn(dir)).toEqual([w.temp]);

    const r = await decryptTo(dir);
    expect(r.code, r.stderr).toBe(0);
    expect(await readdir(dir)).toEqual(['plain.out']);
    expect((await readFile(join(dir, 'plain.out'))).equals(PLAIN)).toBe(true);
    // Reported on stderr, by its (escaped) path; never its contents.
    expect(r.stderr).toContain(`removed ${JSON.stringify(join(dir, w.temp))}`);
  });

  it("a live writer's temp is left alone: both commands still work", async () => {
    const dir = await mkdtemp(join(ws.dir, 'live-'));
    const w = await pausedDecrypt(dir);
    const r = await spawnCli(
      [
        '--config',
        '../keyport.config.json',
        'decrypt',
        '../big.enc',
        '-k',
        key,
        '-o',
        'plain.out',
        '--force',
      ],
      { cwd: dir },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toContain('removed');
    expect(await tempsIn(dir)).toEqual([w.temp]);
    // The paused one goes on: plain.out appeared meanwhile, so it refuses to replace it (no
    // --force) and removes its own temp; its temp was whole until then.
    w.child.stdin?.end(sealed.subarray(FED));
    expect(await w.exited).toBe(12);
    expect(await tempsIn(dir)).toEqual([]);
    expect((await readFile(join(dir, 'plain.out'))).equals(PLAIN)).toBe(true);
  });

  it('files keyport did not make, or cannot judge, are left; a reused pid is not taken for the writer', async () => {
    const dir = await mkdtemp(join(ws.dir, 'alike-'));
    const gone = deadPid();
    const rand = '0123456789ab';
    const leave = [
      '.plain.out.keyport.tmp', // no writer in the name
      `.plain.out.${rand}.keyport.tmp`, // an earlier version's name: its writer cannot be told
      `.plain.out.${OTHER_HOST}-${gone}--${rand}.keyport.tmp`, // another host's: cannot be judged
      `.other.out.${HOST}-${gone}--${rand}.keyport.tmp`, // another target's
      `.plain.out.${HOST}-${gone}--${rand}.keyport.tmp.bak`, // not a temp name
      `plain.out.${HOST}-${gone}--${rand}.keyport.tmp`, // no leading dot
      `.plain.out.${HOST}-0--${rand}.keyport.tmp`, // pid 0: no process id keyport writes
      `.plain.out.${HOST}-4294967295--${rand}.keyport.tmp`, // beyond pid_t
    ];
    for (const n of leave) await writeFile(join(dir, n), 'not keyport');
    // A symlink with a gone writer's name: never followed, never removed.
    const link = `.plain.out.${HOST}-${gone}--aaaaaaaaaaaa.keyport.tmp`;
    await writeFile(join(ws.dir, 'link-target'), 'kept');
    await symlink(join(ws.dir, 'link-target'), join(dir, link));
    // The pid of a live process (this test's) with another start time: a reused pid, writer gone.
    const reused = `.plain.out.${HOST}-${process.pid}-1-bbbbbbbbbbbb.keyport.tmp`;
    const dead = `.plain.out.${HOST}-${gone}--cccccccccccc.keyport.tmp`;
    await writeFile(join(dir, reused), 'left by a killed writer');
    await writeFile(join(dir, dead), 'left by a killed writer');

    const r = await decryptTo(dir);
    expect(r.code, r.stderr).toBe(0);
    expect((await readdir(dir)).sort()).toEqual([...leave, link, 'plain.out'].sort());
    expect(await readFile(join(ws.dir, 'link-target'), 'utf8')).toBe('kept');
    expect((await readFile(join(dir, 'plain.out'))).equals(PLAIN)).toBe(true);
  });

  it('migrate removes the temps of gone writers in the directories it migrates', async () => {
    const dir = await mkdtemp(join(ws.dir, 'mig-'));
    expect((await runCli(['keys', 'create', 'k2'], { cwd: ws.dir })).code).toBe(0);
    await writeFile(join(dir, 'a.enc'), sealed);
    const dead = `.a.txt.${HOST}-${deadPid()}--cccccccccccc.keyport.tmp`;
    const alien = `.a.txt.${HOST}-1x-cccccccccccc.keyport.tmp`;
    await writeFile(join(dir, dead), 'left by a killed decrypt');
    await writeFile(join(dir, alien), 'not keyport');
    const r = await spawnCli(
      ['--config', '../keyport.config.json', 'migrate', '--from', key, '--to', ws.uri('k2'), '.'],
      { cwd: dir },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`removed ${JSON.stringify(join(dir, dead))}`);
    expect(await readdir(dir)).not.toContain(dead);
    expect(await readdir(dir)).toContain(alien);
  });

  it('a target name too long for the decoration: its temps (cut, hash-tagged) are found and judged too', async () => {
    const dir = await mkdtemp(join(ws.dir, 'long-'));
    const target = join(dir, `${'é'.repeat(120)}.out`); // 245 bytes
    const mine = tempPathFor(target);
    // The same name with a gone writer: what a killed process of this host left.
    const left = mine.replace(new RegExp(`-${process.pid}-\\d*-`), `-${deadPid()}--`);
    expect(left).not.toBe(mine);
    // This process's own pid and start time (made by it, if not through writeOutputFile): left.
    await writeFile(mine, 'this process');
    await writeFile(left, 'left by a killed writer');
    expect(await sweepOutputTemps(target)).toEqual([left]);
    expect(await readdir(dir)).toEqual([mine.slice(dir.length + 1)]);
  });
});
