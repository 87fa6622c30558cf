/**
 * Replacing a file must never drop a change someone else made while the command ran.
 *
 * - `--in-place` (encrypt, decrypt, rewrap): the input is replaced only if it is still the file
 *   that was opened, unchanged (inode, size, change and modification time as fstat(2) of the
 *   descriptor read). An append or an overwrite made between the read and the rename is refused
 *   with FileChanged (exit 12): the temp removed, the file as the editor left it.
 * - `--force` over another file: replaced if it is still the same regular file (its contents may
 *   have changed: they were to be replaced); another file, a symlink or nothing in its place, or
 *   a file that appeared where there was none, is refused.
 * - Ctrl-C after the bytes are written replaces nothing; setuid / setgid bits are not carried
 *   over; a name too long for the temp's decoration still works.
 *
 * Every change lands at a chosen point — inside the source the writer pulls (after it read the
 * input), or when a stand-in Vault receives the command's key request — never after a sleep.
 */
import { randomBytes } from 'node:crypto';
import {
  chmod,
  link,
  lstat,
  mkdtemp,
  open,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  symlink,
  unlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliError } from '../src/cli-errors.js';
import { openInputFile } from '../src/files/input-file.js';
import { writeOutputFile } from '../src/files/output-file.js';
import { localWorkspace, runCli } from './support/cli.js';

const PAST = new Date('2001-02-03T04:05:06Z');

/** What is in `dir` that is not one of `names` (temps, stray files). */
async function others(dir: string, names: string[]): Promise<string[]> {
  return (await readdir(dir)).filter((n) => !names.includes(n));
}

/** Writes `body` and dates it in the past: a later write changes mtime whatever the clock's grain. */
async function oldFile(path: string, body: string | Buffer): Promise<void> {
  await writeFile(path, body);
  await utimes(path, PAST, PAST);
}

/** Overwrites the first bytes of `path` in place: same inode, same size. */
async function overwriteStart(path: string, bytes: string): Promise<void> {
  const h = await open(path, 'r+');
  try {
    await h.write(Buffer.from(bytes), 0, bytes.length, 0);
  } finally {
    await h.close();
  }
}

/** The input's bytes transformed (upper-cased), with `between` run after the whole input was read. */
async function* transformed(
  input: AsyncIterable<Uint8Array>,
  between: () => Promise<void>,
): AsyncGenerator<Uint8Array> {
  const chunks: Buffer[] = [];
  for await (const c of input) chunks.push(Buffer.from(c));
  await between();
  yield Buffer.from(Buffer.concat(chunks).toString('utf8').toUpperCase());
}

async function caught(p: Promise<unknown>): Promise<CliError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(CliError);
  return e as CliError;
}

describe('writeOutputFile: in place, the input changed while the command ran', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'keyport-replace-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** Runs an in-place rewrite of `name` with `edit` made after the read; returns its outcome. */
  async function inPlace(name: string, edit: (path: string) => Promise<void>) {
    const path = join(dir, name);
    const input = await openInputFile(path, { toReplace: true });
    try {
      return await writeOutputFile(
        path,
        transformed(input.data, () => edit(path)),
        {
          inPlace: true,
          ...(input.stat !== undefined ? { input: input.stat } : {}),
        },
      ).then(
        (bytes) => ({ bytes, error: undefined }),
        (error: unknown) => ({ bytes: 0, error }),
      );
    } finally {
      await input.close();
    }
  }

  it('unchanged: replaced, permission bits kept', async () => {
    const path = join(dir, 'same.txt');
    await oldFile(path, 'hello');
    await chmod(path, 0o640);
    const r = await inPlace('same.txt', async () => undefined);
    expect(r.error).toBeUndefined();
    expect(await readFile(path, 'utf8')).toBe('HELLO');
    expect((await stat(path)).mode & 0o7777).toBe(0o640);
    expect(await others(dir, ['same.txt'])).toEqual([]);
    await rm(path);
  });

  it('an append after the read: FileChanged (exit 12), the append kept, no temp', async () => {
    const path = join(dir, 'appended.txt');
    await oldFile(path, 'original');
    const r = await inPlace('appended.txt', async (p) => {
      await writeFile(p, ' and an edit', { flag: 'a' });
    });
    expect(r.error).toBeInstanceOf(CliError);
    const e = r.error as CliError;
    expect(e).toMatchObject({ code: 'FileChanged', exitCode: 12, path });
    expect(e.message).toMatch(
      /changed while keyport ran \(it was written to \(8 bytes when read, 20 now\)\)/,
    );
    expect(e.message).toMatch(/not replaced/);
    expect(e.next).toMatch(/nothing was replaced/);
    expect(await readFile(path, 'utf8')).toBe('original and an edit');
    expect(await others(dir, ['appended.txt'])).toEqual([]);
    await rm(path);
  });

  it('a same-size overwrite after the read (only the times move): FileChanged, the edit kept', async () => {
    const path = join(dir, 'overwritten.txt');
    await oldFile(path, 'original');
    const r = await inPlace('overwritten.txt', (p) => overwriteStart(p, 'EDITED'));
    expect((r.error as CliError).code).toBe('FileChanged');
    expect((r.error as CliError).message).toMatch(/its modification time changed/);
    expect(await readFile(path, 'utf8')).toBe('EDITEDal');
    expect(await others(dir, ['overwritten.txt'])).toEqual([]);
    await rm(path);
  });

  it('a hard link added meanwhile (the old contents would survive under it): FileChanged', async () => {
    const path = join(dir, 'linked.txt');
    await oldFile(path, 'original');
    const r = await inPlace('linked.txt', (p) => link(p, join(dir, 'second-name')));
    expect((r.error as CliError).code).toBe('FileChanged');
    expect(await readFile(path, 'utf8')).toBe('original');
    expect(await others(dir, ['linked.txt', 'second-name'])).toEqual([]);
    await rm(path);
    await rm(join(dir, 'second-name'));
  });

  it('another file renamed over it, or the file removed: FileChanged, nothing written there', async () => {
    const path = join(dir, 'swapped.txt');
    await oldFile(path, 'original');
    await writeFile(join(dir, 'newer'), 'a newer file');
    const swapped = await inPlace('swapped.txt', (p) => rename(join(dir, 'newer'), p));
    expect((swapped.error as CliError).code).toBe('FileChanged');
    expect((swapped.error as CliError).message).toMatch(/another file was put in its place/);
    expect(await readFile(path, 'utf8')).toBe('a newer file');

    await oldFile(path, 'original');
    const removed = await inPlace('swapped.txt', (p) => unlink(p));
    expect((removed.error as CliError).code).toBe('FileChanged');
    expect((removed.error as CliError).message).toMatch(/removed or renamed away/);
    expect(await readdir(dir)).toEqual([]);
  });

  it('swapped for a symlink meanwhile: refused (exit 11), the link and its target untouched', async () => {
    const path = join(dir, 'to-link.txt');
    await oldFile(path, 'original');
    await writeFile(join(dir, 'target'), 'keep');
    const r = await inPlace('to-link.txt', async (p) => {
      await unlink(p);
      await symlink(join(dir, 'target'), p);
    });
    expect((r.error as CliError).code).toBe('NotARegularFile');
    expect((await lstat(path)).isSymbolicLink()).toBe(true);
    expect(await readFile(join(dir, 'target'), 'utf8')).toBe('keep');
    expect(await others(dir, ['to-link.txt', 'target'])).toEqual([]);
    await rm(path);
    await rm(join(dir, 'target'));
  });

  it('changed between its open and the start of the write: refused before the source is pulled', async () => {
    const path = join(dir, 'early.txt');
    await oldFile(path, 'original');
    const input = await openInputFile(path, { toReplace: true });
    let pulled = false;
    try {
      await writeFile(path, 'edited before the write began');
      const e = await caught(
        writeOutputFile(
          path,
          (async function* () {
            pulled = true;
            yield Buffer.from('x');
          })(),
          { inPlace: true, ...(input.stat !== undefined ? { input: input.stat } : {}) },
        ),
      );
      expect(e.code).toBe('FileChanged');
      expect(e.message).toMatch(/since keyport opened it/);
    } finally {
      await input.close();
    }
    expect(pulled).toBe(false);
    expect(await readFile(path, 'utf8')).toBe('edited before the write began');
    await rm(path);
  });

  it('opening the input to replace refuses a symlink and a FIFO at once (no wait for a writer)', async () => {
    await writeFile(join(dir, 'real'), 'x');
    await symlink(join(dir, 'real'), join(dir, 'link'));
    const viaLink = await caught(openInputFile(join(dir, 'link'), { toReplace: true }));
    expect(viaLink.code).toBe('NotARegularFile');
    expect(viaLink.message).toMatch(/symbolic link/);
    const { execFileSync } = await import('node:child_process');
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    const fifo = await caught(openInputFile(join(dir, 'fifo'), { toReplace: true }));
    expect(fifo.code).toBe('NotARegularFile');
    for (const n of ['real', 'link', 'fifo']) await rm(join(dir, n));
  });
});

describe('writeOutputFile: --force over another file', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'keyport-force-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** Writes "NEW" to `out` with --force, running `during` while the bytes are being made. */
  function force(out: string, during: () => Promise<void>, signal?: AbortSignal) {
    return writeOutputFile(
      out,
      (async function* () {
        await during();
        yield Buffer.from('NEW');
      })(),
      { force: true, ...(signal !== undefined ? { signal } : {}) },
    );
  }

  it('the same file written to meanwhile: replaced (its contents were to be replaced anyway)', async () => {
    const out = join(dir, 'busy.out');
    await oldFile(out, 'previous');
    await force(out, () => writeFile(out, ' more', { flag: 'a' }));
    expect(await readFile(out, 'utf8')).toBe('NEW');
    expect(await others(dir, ['busy.out'])).toEqual([]);
  });

  it('another file put in its place, or removed meanwhile: FileChanged, left as it is', async () => {
    const out = join(dir, 'moved.out');
    await oldFile(out, 'previous');
    await writeFile(join(dir, 'other'), 'another file');
    const e = await caught(force(out, () => rename(join(dir, 'other'), out)));
    expect(e).toMatchObject({ code: 'FileChanged', exitCode: 12 });
    expect(await readFile(out, 'utf8')).toBe('another file');
    const gone = await caught(force(out, () => unlink(out)));
    expect(gone.code).toBe('FileChanged');
    expect(await readdir(dir)).toEqual(['busy.out']);
  });

  it('a file that appeared where there was none: FileChanged with --force, FileExists without', async () => {
    const out = join(dir, 'appeared.out');
    const e = await caught(force(out, () => writeFile(out, 'someone else')));
    expect(e.code).toBe('FileChanged');
    expect(e.message).toMatch(/appeared while keyport ran/);
    expect(await readFile(out, 'utf8')).toBe('someone else');
    await rm(out);
    const plain = await caught(
      writeOutputFile(
        out,
        (async function* () {
          await writeFile(out, 'someone else');
          yield Buffer.from('NEW');
        })(),
      ),
    );
    expect(plain.code).toBe('FileExists');
    expect(await readFile(out, 'utf8')).toBe('someone else');
    await rm(out);
  });

  it('setuid, setgid and sticky bits of the replaced file are not carried over', async () => {
    const out = join(dir, 'suid.out');
    await writeFile(out, 'previous');
    await chmod(out, 0o6755);
    await force(out, async () => undefined);
    expect((await stat(out)).mode & 0o7777).toBe(0o755);
    await rm(out);
  });

  it('Ctrl-C once the bytes are written: nothing replaced, no temp, the abort reason thrown', async () => {
    const out = join(dir, 'stopped.out');
    await writeFile(out, 'previous');
    const controller = new AbortController();
    const reason = new CliError('Interrupted', 'stopped by SIGINT');
    // The source ends normally: the abort lands after the last byte, before the rename.
    const e = await force(out, async () => controller.abort(reason), controller.signal).catch((x) => x);
    expect(e).toBe(reason);
    expect(await readFile(out, 'utf8')).toBe('previous');
    expect(await others(dir, ['busy.out', 'stopped.out'])).toEqual([]);
    await rm(out);
  });

  it('a name near NAME_MAX still gets a temp of its own (the name is cut in the temp only)', async () => {
    const name = `${'é'.repeat(100)}${'n'.repeat(50)}`; // 250 bytes
    const out = join(dir, name);
    await writeOutputFile(
      out,
      (async function* () {
        yield Buffer.from('long');
      })(),
    );
    expect(await readFile(out, 'utf8')).toBe('long');
    await rm(out);
  });
});

/**
 * A stand-in for Vault transit that "encrypts" by carrying the data key in the ciphertext (never
 * anything but a test) and runs `onRequest` before it answers: the command's key request comes
 * after it read its input, so the edit lands between the read and the rename.
 */
function toyVault(): { server: Server; onRequest: { fn: (() => Promise<void>) | undefined } } {
  const onRequest: { fn: (() => Promise<void>) | undefined } = { fn: undefined };
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      void (async () => {
        res.setHeader('content-type', 'application/json');
        const parsed = body === '' ? {} : (JSON.parse(body) as Record<string, string>);
        const op = /^\/v1\/transit\/(encrypt|decrypt|datakey\/plaintext)\//.exec(req.url ?? '')?.[1];
        if (op !== undefined) {
          const hook = onRequest.fn;
          onRequest.fn = undefined;
          await hook?.();
        }
        if (op === 'datakey/plaintext') {
          const key = randomBytes(32).toString('base64');
          res.end(JSON.stringify({ data: { plaintext: key, ciphertext: `vault:v1:${key}` } }));
        } else if (op === 'encrypt') {
          res.end(JSON.stringify({ data: { ciphertext: `vault:v1:${parsed.plaintext}` } }));
        } else if (op === 'decrypt') {
          res.end(
            JSON.stringify({ data: { plaintext: String(parsed.ciphertext).slice('vault:v1:'.length) } }),
          );
        } else {
          res.end(JSON.stringify({ data: { policies: ['root'], ttl: 0 } }));
        }
      })();
    });
  });
  return { server, onRequest };
}

describe('encrypt / decrypt / rewrap --in-place: an edit between the read and the rename is kept', () => {
  const vault = toyVault();
  let ws: Awaited<ReturnType<typeof localWorkspace>>;
  let local: string;
  let toy: string;
  const env = { KEYPORT_VAULT_TOKEN: 'not-a-real-token' };

  beforeAll(async () => {
    await new Promise<void>((r) => vault.server.listen(0, '127.0.0.1', r));
    const port = (vault.server.address() as { port: number }).port;
    ws = await localWorkspace({ hcvault: { address: `http://127.0.0.1:${port}` } });
    expect((await runCli(['keys', 'create', 'k', '--provider', 'local'], { cwd: ws.dir })).code).toBe(0);
    local = ws.uri('k');
    toy = `hcvault://127.0.0.1:${port}/transit/keys/toy`;
  });
  afterAll(async () => {
    await new Promise((r) => vault.server.close(r));
  });

  const cli = (args: string[]) => runCli(['--json', ...args], { cwd: ws.dir, env });
  const errorOf = (stderr: string) =>
    JSON.parse(stderr.split('\n').find((l) => l.startsWith('{"error"')) ?? '{}').error;

  /** Runs `args` on `name` with an in-place overwrite of its first bytes at the Vault request. */
  async function editedMidway(name: string, args: string[]): Promise<void> {
    const path = join(ws.dir, name);
    await utimes(path, PAST, PAST);
    const before = await readFile(path);
    vault.onRequest.fn = () => overwriteStart(path, 'EDIT');
    const r = await cli([...args, name, '--in-place']);
    expect(vault.onRequest.fn, 'the Vault was asked').toBeUndefined();
    expect(r.code, r.stderr).toBe(12);
    expect(errorOf(r.stderr)).toMatchObject({ code: 'FileChanged', exitCode: 12, path });
    expect(errorOf(r.stderr).message).toMatch(/changed while keyport ran/);
    const edited = Buffer.concat([Buffer.from('EDIT'), before.subarray(4)]);
    expect((await readFile(path)).equals(edited), 'the edit is what the file holds').toBe(true);
    expect((await readdir(ws.dir)).filter((n) => n.includes('.tmp'))).toEqual([]);
  }

  it('rewrap --in-place --add (the Vault wraps after the whole message was read)', async () => {
    await writeFile(join(ws.dir, 'r.txt'), randomBytes(5000));
    expect((await cli(['encrypt', 'r.txt', '-o', 'r.enc', '-r', local])).code).toBe(0);
    await editedMidway('r.enc', ['rewrap', '-k', local, '--add', toy]);
    // Without an edit, the same command replaces it.
    await writeFile(join(ws.dir, 'r2.txt'), 'fine');
    expect((await cli(['encrypt', 'r2.txt', '-o', 'r2.enc', '-r', local])).code).toBe(0);
    const ok = await cli(['rewrap', '-k', local, '--add', toy, 'r2.enc', '--in-place']);
    expect(ok.code, ok.stderr).toBe(0);
  });

  it('encrypt --in-place and decrypt --in-place', async () => {
    await writeFile(join(ws.dir, 'e.txt'), 'plaintext to seal in place');
    await editedMidway('e.txt', ['encrypt', '-r', toy]);
    await writeFile(join(ws.dir, 'd.txt'), 'plaintext sealed for the toy vault');
    expect((await cli(['encrypt', 'd.txt', '-o', 'd.enc', '-r', toy])).code).toBe(0);
    await editedMidway('d.enc', ['decrypt', '-k', toy]);
    const ok = await cli(['encrypt', '-r', toy, 'd.txt', '--in-place']);
    expect(ok.code, ok.stderr).toBe(0);
    const back = await cli(['decrypt', '-k', toy, 'd.txt', '--in-place']);
    expect(back.code, back.stderr).toBe(0);
    expect(await readFile(join(ws.dir, 'd.txt'), 'utf8')).toBe('plaintext sealed for the toy vault');
  });
});
