/**
 * SIGINT / SIGTERM while a command replaces an existing file: `encrypt file -o out --force`,
 * `decrypt file -o out --force` and `rewrap file --in-place`, stopped deterministically mid-way
 * (a Vault that takes the request and never answers, or an input FIFO kept open): exit 130 /
 * 143, no temp file, the existing output (or the input rewrapped in place) byte for byte as it
 * was. And many `keyport encrypt` processes writing into one directory at once: each output
 * whole and opening, no temp left; several racing for one name without --force: one wins, the
 * others exit 12, the winner's file whole.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { openEnvelope } from '@keyport/envelope';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, HOOKS, localWorkspace, PASSPHRASE, runCli } from './support/cli.js';
import { localKeys, sha256 } from './support/seal.js';

/** A "Vault" that accepts connections and reads requests but never answers. */
let server: Server;
let requests = 0;
const sockets = new Set<Socket>();
let ws: Awaited<ReturnType<typeof localWorkspace>>;
let key: string;
let hanging: string;

beforeAll(async () => {
  server = createServer((s) => {
    sockets.add(s);
    s.on('data', () => {
      requests++;
    });
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  ws = await localWorkspace({ hcvault: { address: `http://127.0.0.1:${port}` } });
  const created = await runCli(['keys', 'create', 'k', '--provider', 'local'], { cwd: ws.dir });
  expect(created.code, created.stderr).toBe(0);
  key = ws.uri('k');
  hanging = `hcvault://127.0.0.1:${port}/transit/keys/never`;
}, 60_000);

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((r) => server.close(r));
});

interface Exit {
  code: number | null;
  signal: string | null;
  stderr: string;
}

function start(cwd: string, args: string[]): { child: ChildProcess; exited: Promise<Exit> } {
  const child = spawn(
    process.execPath,
    ['--import', HOOKS, BIN, '--config', '../keyport.config.json', ...args],
    {
      cwd,
      env: {
        PATH: process.env.PATH,
        KEYPORT_CLI_FROM_SOURCE: '1',
        KEYPORT_LOCAL_PASSPHRASE: PASSPHRASE,
        KEYPORT_VAULT_TOKEN: 'not-a-real-token',
      },
      stdio: ['pipe', 'ignore', 'pipe'],
    },
  );
  const err: Buffer[] = [];
  child.stderr?.on('data', (c: Buffer) => err.push(c));
  child.stdin?.on('error', () => undefined);
  const exited = new Promise<Exit>((resolve) =>
    child.once('exit', (code, signal) =>
      resolve({ code, signal, stderr: Buffer.concat(err).toString('utf8') }),
    ),
  );
  return { child, exited };
}

async function waitFor(ready: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await ready())) {
    if (Date.now() > deadline) throw new Error(`never happened: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A directory of its own holding `files`; returns it. */
async function dirWith(files: Record<string, Buffer | string>): Promise<string> {
  const dir = await mkdtemp(join(ws.dir, 'run-'));
  for (const [name, body] of Object.entries(files)) await writeFile(join(dir, name), body);
  return dir;
}

/** Signals the child once the hanging Vault has its request; checks exit, no temp, files unchanged. */
async function stopWhileVaultHangs(
  dir: string,
  args: string[],
  signal: 'SIGINT' | 'SIGTERM',
  unchanged: Record<string, Buffer | string>,
): Promise<void> {
  const before = requests;
  const c = start(dir, args);
  await waitFor(async () => requests > before || c.child.exitCode !== null, 'a request to the Vault');
  c.child.kill(signal);
  const r = await c.exited;
  expect(r.code, r.stderr).toBe(signal === 'SIGINT' ? 130 : 143);
  expect((await readdir(dir)).sort()).toEqual(Object.keys(unchanged).sort());
  for (const [name, body] of Object.entries(unchanged))
    expect((await readFile(join(dir, name))).equals(Buffer.from(body)), name).toBe(true);
}

describe('a signal while an existing file is being replaced: exit 130 / 143, no temp, the file as it was', () => {
  it('encrypt file -o existing --force (one recipient is a Vault that never answers) + SIGINT', async () => {
    const plain = randomBytes(3 * 1024 * 1024);
    const files = { 'p.txt': plain, 'out.enc': 'the previous output' };
    const dir = await dirWith(files);
    await stopWhileVaultHangs(
      dir,
      ['--timeout', '600000', 'encrypt', 'p.txt', '-o', 'out.enc', '--force', '-r', key, '-r', hanging],
      'SIGINT',
      files,
    );
  });

  it('rewrap --in-place (--add a Vault that never answers) + SIGTERM', async () => {
    const dir = await dirWith({ 'p.txt': randomBytes(2 * 1024 * 1024) });
    const enc = await runCli(
      ['--config', '../keyport.config.json', 'encrypt', 'p.txt', '-o', 'm.enc', '-r', key],
      { cwd: dir },
    );
    expect(enc.code, enc.stderr).toBe(0);
    const files = {
      'p.txt': await readFile(join(dir, 'p.txt')),
      'm.enc': await readFile(join(dir, 'm.enc')),
    };
    await stopWhileVaultHangs(
      dir,
      ['--timeout', '600000', 'rewrap', 'm.enc', '--in-place', '-k', key, '--add', hanging],
      'SIGTERM',
      files,
    );
  });

  it('decrypt fifo -o existing --force, the input kept open mid-message, + SIGTERM / SIGINT', async () => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      const plain = Buffer.alloc(4 * 1024 * 1024, 5);
      const dir = await dirWith({ 'p.txt': plain });
      const enc = await runCli(
        [
          '--config',
          '../keyport.config.json',
          'encrypt',
          'p.txt',
          '-o',
          'm.enc',
          '-r',
          key,
          '--frame-length',
          '65536',
        ],
        { cwd: dir },
      );
      expect(enc.code, enc.stderr).toBe(0);
      const message = await readFile(join(dir, 'm.enc'));
      await writeFile(join(dir, 'plain.out'), 'the previous output');
      expect(spawnSync('mkfifo', [join(dir, 'in.fifo')]).status).toBe(0);
      const c = start(dir, ['decrypt', 'in.fifo', '-k', key, '-o', 'plain.out', '--force']);
      // The writer end: more than a write batch of frames, then kept open.
      const writer = spawn('sh', ['-c', 'cat m.enc.part > in.fifo; sleep 600'], {
        cwd: dir,
        stdio: 'ignore',
      });
      await writeFile(join(dir, 'm.enc.part'), message.subarray(0, 2.5 * 1024 * 1024));
      try {
        await waitFor(
          async () =>
            (await readdir(dir)).some((n) => n.includes('.keyport.tmp')) || c.child.exitCode !== null,
          'the temp file',
        );
        c.child.kill(signal);
        const r = await c.exited;
        expect(r.code, r.stderr).toBe(signal === 'SIGINT' ? 130 : 143);
      } finally {
        writer.kill('SIGKILL');
      }
      expect((await readdir(dir)).sort()).toEqual(['in.fifo', 'm.enc', 'm.enc.part', 'p.txt', 'plain.out']);
      expect(await readFile(join(dir, 'plain.out'), 'utf8')).toBe('the previous output');
    }
  });
});

describe('many encrypt processes into one directory at once', () => {
  it('distinct outputs: all whole and opening; one output name without --force: one wins, the rest exit 12', {
    timeout: 300_000,
  }, async () => {
    const dir = await mkdtemp(join(ws.dir, 'many-'));
    await mkdir(join(dir, 'out'));
    const N = 12;
    const plains: Buffer[] = [];
    for (let i = 0; i < N; i++) {
      plains.push(randomBytes(64 * 1024 + i * 4099));
      await writeFile(join(dir, `p${i}.txt`), plains[i] as Buffer);
    }
    const RACERS = 4;
    for (let i = 0; i < RACERS; i++) await writeFile(join(dir, `same${i}.txt`), randomBytes(300 * 1024));
    const runs = [
      ...plains.map((_, i) => start(dir, ['encrypt', `p${i}.txt`, '-o', `out/p${i}.enc`, '-r', key]).exited),
      ...Array.from(
        { length: RACERS },
        (_, i) => start(dir, ['encrypt', `same${i}.txt`, '-o', 'out/same.enc', '-r', key]).exited,
      ),
    ];
    const results = await Promise.all(runs);
    for (const r of results.slice(0, N)) expect(r.code, r.stderr).toBe(0);
    const racers = results.slice(N).map((r) => r.code);
    expect(
      racers.filter((c) => c === 0),
      JSON.stringify(results.slice(N)),
    ).toHaveLength(1);
    expect(racers.filter((c) => c === 12)).toHaveLength(RACERS - 1);

    const keys = await localKeys(ws.keystore);
    try {
      const names = (await readdir(join(dir, 'out'))).sort();
      expect(names).toEqual([...plains.map((_, i) => `p${i}.enc`), 'same.enc'].sort());
      for (let i = 0; i < N; i++) {
        const opened = await openEnvelope(await readFile(join(dir, 'out', `p${i}.enc`)), {
          trust: [key],
          keys,
        });
        expect(sha256(opened.plaintext)).toBe(sha256(plains[i] as Buffer));
      }
      const winner = racers.indexOf(0);
      const same = await openEnvelope(await readFile(join(dir, 'out', 'same.enc')), { trust: [key], keys });
      expect(sha256(same.plaintext)).toBe(sha256(await readFile(join(dir, `same${winner}.txt`))));
    } finally {
      await keys.close();
    }
  });
});
