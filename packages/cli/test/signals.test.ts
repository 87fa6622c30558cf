/**
 * SIGINT / SIGTERM with real child processes: encrypt, decrypt, rewrap and migrate stop within
 * about a second, remove their temp files, leave no output and exit 130 / 143; a migration's
 * journal stays whole and the next run finishes; a second SIGINT exits at once, even while
 * something that cannot be aborted (a slow keystore unlock) is running.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdtemp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openLocalKeystore } from '@keyport/local';
import { beforeAll, describe, expect, it } from 'vitest';
import { BIN, HOOKS, localWorkspace, PASSPHRASE, runCli } from './support/cli.js';
import { localKeys, sealFiles } from './support/seal.js';

interface Child {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: string | null; at: number; stderr: string }>;
}

function start(cwd: string, args: string[]): Child {
  const child = spawn(process.execPath, ['--import', HOOKS, BIN, ...args], {
    cwd,
    env: { PATH: process.env.PATH, KEYPORT_CLI_FROM_SOURCE: '1', KEYPORT_LOCAL_PASSPHRASE: PASSPHRASE },
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  const err: Buffer[] = [];
  child.stderr?.on('data', (c: Buffer) => err.push(c));
  child.stdin?.on('error', () => undefined);
  const exited = new Promise<{ code: number | null; signal: string | null; at: number; stderr: string }>(
    (resolve) =>
      child.once('exit', (code, signal) =>
        resolve({ code, signal, at: Date.now(), stderr: Buffer.concat(err).toString('utf8') }),
      ),
  );
  return { child, exited };
}

/** Waits until `ready()` holds: something only the running command does (so its handlers are installed). */
async function waitFor(ready: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await ready())) {
    if (Date.now() > deadline) throw new Error('the child never got ready');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Resident memory of a process in MiB (from /proc). */
async function rssMiB(pid: number | undefined): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return Number(/VmRSS:\s*(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

const tempsIn = async (dir: string): Promise<string[]> =>
  (await readdir(dir, { recursive: true })).filter((n) => String(n).includes('.tmp'));

let ws: Awaited<ReturnType<typeof localWorkspace>>;
let key: string;
let sealed: Buffer;

beforeAll(async () => {
  ws = await localWorkspace();
  expect((await runCli(['keys', 'create', 'k'], { cwd: ws.dir })).code).toBe(0);
  key = ws.uri('k');
  await writeFile(join(ws.dir, 'big.txt'), Buffer.alloc(4 * 1024 * 1024, 7));
  expect((await runCli(['encrypt', 'big.txt', '-o', 'big.enc', '-r', key], { cwd: ws.dir })).code).toBe(0);
  sealed = await readFile(join(ws.dir, 'big.enc'));
});

/** Feeds the first MiB of `input` and keeps the pipe open: the command is mid-way until signalled. */
async function midway(
  args: string[],
  input: Buffer,
  output: string,
  signal: 'SIGINT' | 'SIGTERM' | 'SIGHUP',
) {
  const dir = await mkdtemp(join(ws.dir, 'run-'));
  const c = start(dir, ['--config', '../keyport.config.json', ...args, '-o', output]);
  c.child.stdin?.write(input.subarray(0, 1024 * 1024));
  await waitFor(async () => (await tempsIn(dir)).length > 0);
  const sent = Date.now();
  c.child.kill(signal);
  const r = await c.exited;
  return { dir, r, ms: r.at - sent };
}

describe('a signal stops a command mid-way: exit 130 / 143, no temp, no output', () => {
  it('encrypt + SIGINT exits 130 within about a second', async () => {
    const { dir, r, ms } = await midway(
      ['encrypt', '-r', key],
      Buffer.alloc(8 << 20, 1),
      'out.enc',
      'SIGINT',
    );
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr).toMatch(/Interrupted/);
    expect(ms).toBeLessThan(1500);
    expect(await readdir(dir)).toEqual([]);
  });

  it('decrypt + SIGTERM exits 143', async () => {
    const { dir, r, ms } = await midway(['decrypt', '-k', key], sealed, 'plain.out', 'SIGTERM');
    expect(r.code, r.stderr).toBe(143);
    expect(r.stderr).toMatch(/Terminated/);
    expect(ms).toBeLessThan(1500);
    expect(await readdir(dir)).toEqual([]);
  });

  it('decrypt + SIGHUP (the terminal closed) exits 129 and leaves no plaintext temp', async () => {
    // Node's default for SIGHUP ends the process on the spot: the temp, plaintext, stayed behind.
    const { dir, r, ms } = await midway(['decrypt', '-k', key], sealed, 'plain.out', 'SIGHUP');
    expect(r.signal, r.stderr).toBeNull();
    expect(r.code, r.stderr).toBe(129);
    expect(r.stderr).toMatch(/HungUp/);
    expect(ms).toBeLessThan(1500);
    expect(await readdir(dir)).toEqual([]);
  });

  it('rewrap + SIGINT exits 130', async () => {
    await runCli(['keys', 'create', 'k2'], { cwd: ws.dir });
    const { dir, r } = await midway(
      ['rewrap', '-', '-k', key, '--add', ws.uri('k2')],
      sealed,
      'new.enc',
      'SIGINT',
    );
    expect(r.code, r.stderr).toBe(130);
    expect(await readdir(dir)).toEqual([]);
  });

  it('SIGINT twice while --force replaces an output: the old file stays whole, no temp, no plaintext', async () => {
    const dir = await mkdtemp(join(ws.dir, 'twice-'));
    await writeFile(join(dir, 'plain.out'), 'the previous output');
    const c = start(dir, [
      '--config',
      '../keyport.config.json',
      'decrypt',
      '-k',
      key,
      '-o',
      'plain.out',
      '--force',
    ]);
    c.child.stdin?.write(sealed.subarray(0, 2.5 * 1024 * 1024));
    await waitFor(async () => {
      const temp = (await tempsIn(dir))[0];
      return temp !== undefined && (await stat(join(dir, temp)).catch(() => undefined))?.size !== 0;
    });
    // The second one lands while the first is being handled, or after the exit: either way the
    // process ends by SIGINT (130, or the signal itself) and removed its temp first.
    c.child.kill('SIGINT');
    c.child.kill('SIGINT');
    const r = await c.exited;
    if (r.signal === null) expect(r.code, r.stderr).toBe(130);
    else expect(r.signal, r.stderr).toBe('SIGINT');
    expect(await readdir(dir)).toEqual(['plain.out']);
    expect(await readFile(join(dir, 'plain.out'), 'utf8')).toBe('the previous output');
  });

  it('migrate + SIGINT exits 130 with no temp and a whole journal; the next run finishes', async () => {
    const m = await localWorkspace();
    for (const n of ['a', 'b']) await runCli(['keys', 'create', n], { cwd: m.dir });
    const keys = await localKeys(m.keystore);
    await sealFiles(keys, m.uri('a'), join(m.dir, 'data'), 300);
    await keys.close();
    const args = [
      'migrate',
      '--from',
      m.uri('a'),
      '--to',
      m.uri('b'),
      '--jobs',
      '4',
      '--no-progress',
      'data',
    ];
    const journal = join(m.dir, '.keyport-migrate.journal');
    const c = start(m.dir, args);
    await waitFor(async () => (await readFile(journal, 'utf8').catch(() => '')).split('\n').length > 40);
    const sent = Date.now();
    c.child.kill('SIGINT');
    const r = await c.exited;
    expect(r.code, r.stderr).toBe(130);
    expect(r.at - sent).toBeLessThan(1500);
    expect(await tempsIn(join(m.dir, 'data'))).toEqual([]);
    const text = await readFile(journal, 'utf8');
    expect(text.endsWith('\n')).toBe(true);
    for (const line of text.trimEnd().split('\n')) JSON.parse(line);
    expect(await readdir(m.dir)).not.toContain('.keyport-migrate.journal.lock');
    const again = await runCli(['--json', ...args], { cwd: m.dir });
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ total: 300, failed: 0 });
    expect(JSON.parse(again.stdout).migrated).toBeGreaterThan(0);
    expect(JSON.parse(again.stdout).migrated + JSON.parse(again.stdout).alreadyDone).toBe(300);
  });
});

describe('a reader that closes stdout early', () => {
  it('decrypt | head: exits 141 (broken pipe) quietly, without a stack', async () => {
    const r = spawnSync(
      'bash',
      [
        '-c',
        `set -o pipefail; "${process.execPath}" --import "${HOOKS}" "${BIN}" decrypt big.enc -k "$1" | head -c 10 > /dev/null; echo "status \${PIPESTATUS[0]}" >&2`,
        'sh',
        key,
      ],
      {
        cwd: ws.dir,
        env: { PATH: process.env.PATH, KEYPORT_CLI_FROM_SOURCE: '1', KEYPORT_LOCAL_PASSPHRASE: PASSPHRASE },
      },
    );
    const stderr = r.stderr.toString();
    expect(stderr).toMatch(/status 141/);
    expect(stderr).not.toMatch(/EPIPE|Unhandled/);
  });
});

describe('stdout that cannot be written (a full disk behind `>`)', () => {
  it('decrypt > /dev/full: DiskFull, exit 13, without a stack', async () => {
    const full = openSync('/dev/full', 'w');
    try {
      const r = spawnSync(process.execPath, ['--import', HOOKS, BIN, 'decrypt', 'big.enc', '-k', key], {
        cwd: ws.dir,
        env: { PATH: process.env.PATH, KEYPORT_CLI_FROM_SOURCE: '1', KEYPORT_LOCAL_PASSPHRASE: PASSPHRASE },
        stdio: ['ignore', full, 'pipe'],
      });
      const stderr = r.stderr.toString();
      expect(r.status, stderr).toBe(13);
      expect(stderr).toMatch(/DiskFull: cannot write to stdout: no space left on the device \(ENOSPC\)/);
      expect(stderr).not.toMatch(/\n\s+at /);
    } finally {
      closeSync(full);
    }
  });

  it("--help, --version and a command's help > /dev/full: DiskFull, exit 13, not 0 with nothing written", () => {
    const full = openSync('/dev/full', 'w');
    try {
      for (const args of [['--help'], ['--version'], ['keys', '--help'], ['encrypt', '--help']]) {
        const r = spawnSync(process.execPath, ['--import', HOOKS, BIN, ...args], {
          cwd: ws.dir,
          env: { PATH: process.env.PATH, KEYPORT_CLI_FROM_SOURCE: '1' },
          stdio: ['ignore', full, 'pipe'],
        });
        const stderr = r.stderr.toString();
        expect(r.status, `${args.join(' ')}: ${stderr}`).toBe(13);
        expect(stderr).toMatch(/DiskFull: cannot write to stdout/);
      }
      // And to a working stdout, still 0.
      const ok = spawnSync(process.execPath, ['--import', HOOKS, BIN, '--version'], {
        cwd: ws.dir,
        env: { PATH: process.env.PATH, KEYPORT_CLI_FROM_SOURCE: '1' },
      });
      expect(ok.status).toBe(0);
      expect(ok.stdout.toString()).toMatch(/^\d+\.\d+\.\d+/);
    } finally {
      closeSync(full);
    }
  });
});

describe('when the command cannot stop (a slow keystore unlock: scrypt cannot be aborted)', () => {
  let slowDir: string;
  beforeAll(async () => {
    slowDir = await mkdtemp(join(tmpdir(), 'keyport-slow-'));
    // The costliest scrypt the keystore accepts (N·r = 2^21: 256 MiB, work N·r·p = 2^22,
    // about 16 times the default): over a second of thread-pool work per unlock.
    const p = await openLocalKeystore({
      path: join(slowDir, 'slow.kp'),
      passphrase: PASSPHRASE,
      create: true,
      kdf: { log2N: 18, r: 8, p: 2 },
    });
    await p.close?.();
    await writeFile(
      join(slowDir, 'keyport.config.json'),
      JSON.stringify({ providers: { local: { keystore: './slow.kp' } } }),
    );
  });

  /** Starts `keys list` and waits until scrypt's 256 MiB are allocated: it is unlocking. */
  async function unlocking(): Promise<Child> {
    const c = start(slowDir, ['keys', 'list']);
    await waitFor(async () => (await rssMiB(c.child.pid)) > 220);
    return c;
  }

  it('one SIGINT still ends it within about a second', async () => {
    const c = await unlocking();
    const sent = Date.now();
    c.child.kill('SIGINT');
    const r = await c.exited;
    // The derivation is abortable, so the run stops at once (130); if the exit still waits on
    // the thread pool, the watchdog ends it by SIGINT itself 900 ms later (a shell reports 130).
    if (r.signal === null) expect(r.code, r.stderr).toBe(130);
    else {
      expect(r.signal, r.stderr).toBe('SIGINT');
      expect(r.stderr).toMatch(/still busy 900 ms after SIGINT/);
    }
    expect(r.at - sent).toBeLessThan(1500);
  });

  it('a second SIGINT exits at once', async () => {
    const c = await unlocking();
    c.child.kill('SIGINT');
    await new Promise((r) => setTimeout(r, 100));
    const sent = Date.now();
    c.child.kill('SIGINT');
    const r = await c.exited;
    expect(r.signal, r.stderr).toBe('SIGINT');
    expect(r.stderr).toMatch(/SIGINT again: stopped at once/);
    expect(r.at - sent).toBeLessThan(500);
  });
});

describe('SIGKILL: nothing can clean up at once; the next run on the target does', () => {
  it('a killed decrypt leaves the target untouched and one 0600 temp holding a prefix of the plaintext', async () => {
    const dir = await mkdtemp(join(ws.dir, 'kill-'));
    const plaintext = Buffer.alloc(4 * 1024 * 1024, 7);
    await writeFile(join(dir, 'p.txt'), plaintext);
    const enc = await runCli(
      [
        '--config',
        '../keyport.config.json',
        'encrypt',
        'p.txt',
        '-o',
        'p.enc',
        '-r',
        key,
        '--frame-length',
        '65536',
      ],
      { cwd: dir },
    );
    expect(enc.code, enc.stderr).toBe(0);
    const message = await readFile(join(dir, 'p.enc'));
    const c = start(dir, ['--config', '../keyport.config.json', 'decrypt', '-k', key, '-o', 'plain.out']);
    // More than a write batch (1 MiB) of verified frames, and the pipe kept open.
    c.child.stdin?.write(message.subarray(0, 2.5 * 1024 * 1024));
    await waitFor(async () => {
      const temp = (await tempsIn(dir))[0];
      return temp !== undefined && (await stat(join(dir, temp))).size > 0;
    });
    c.child.kill('SIGKILL');
    expect((await c.exited).signal).toBe('SIGKILL');
    const left = (await readdir(dir)).filter((n) => !['p.txt', 'p.enc'].includes(n));
    expect(left).toHaveLength(1);
    expect(left[0]).toMatch(/^\.plain\.out\.[0-9a-f]{8}-\d+-\d*-[0-9a-f]{12}\.keyport\.tmp$/);
    const temp = join(dir, left[0] as string);
    expect((await stat(temp)).mode & 0o777).toBe(0o600);
    const held = await readFile(temp);
    expect(held.length).toBeGreaterThan(0);
    expect(held.length).toBeLessThan(plaintext.length);
    expect(held.equals(plaintext.subarray(0, held.length))).toBe(true);
    // The rerun is not in its way: a temp of its own, the target written whole; the killed run's
    // temp (its writer gone) is removed by it (test/leftover-temps.test.ts covers the rules).
    const rerun = await runCli(
      ['--config', '../keyport.config.json', 'decrypt', 'p.enc', '-k', key, '-o', 'plain.out'],
      { cwd: dir },
    );
    expect(rerun.code, rerun.stderr).toBe(0);
    expect((await readFile(join(dir, 'plain.out'))).equals(plaintext)).toBe(true);
    expect(await tempsIn(dir)).toEqual([]);
  });
});
