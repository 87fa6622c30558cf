import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { peekMessage } from '../src/migrate/header-peek.js';
import { localWorkspace, runCli } from './support/cli.js';

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

async function twoKeys() {
  const ws = await localWorkspace();
  for (const n of ['a', 'b']) expect((await runCli(['keys', 'create', n], { cwd: ws.dir })).code).toBe(0);
  return ws;
}

describe('encrypt / decrypt / rewrap', () => {
  it('round-trips files with a context, and a wrong or extra context fails with exit 6', async () => {
    const ws = await twoKeys();
    const cwd = ws.dir;
    const plaintext = Buffer.alloc(300_000, 7);
    await writeFile(join(cwd, 'in.bin'), plaintext);
    const enc = await runCli(
      [
        '--json',
        'encrypt',
        'in.bin',
        '-o',
        'in.enc',
        '-r',
        ws.uri('a'),
        '--context',
        'tenant=acme-secret-value',
        '--frame-length',
        '65536',
      ],
      { cwd },
    );
    expect(enc.code).toBe(0);
    expect(JSON.parse(enc.stdout)).toMatchObject({
      ok: true,
      recipients: [ws.uri('a')],
      contextKeys: ['tenant'],
    });
    expect(enc.stdout).not.toContain('acme-secret-value');

    const dec = await runCli(
      [
        'decrypt',
        'in.enc',
        '-o',
        'out.bin',
        '-k',
        ws.uri('a'),
        '--context',
        'tenant=acme-secret-value',
        '--require-context',
      ],
      { cwd },
    );
    expect(dec.code).toBe(0);
    expect(sha(await readFile(join(cwd, 'out.bin')))).toBe(sha(plaintext));

    const wrong = await runCli(
      ['decrypt', 'in.enc', '-o', 'bad.bin', '-k', ws.uri('a'), '--context', 'tenant=evil'],
      { cwd },
    );
    expect(wrong.code).toBe(6);
    expect(wrong.stderr).not.toContain('evil');
    expect(wrong.stderr).not.toContain('acme-secret-value');
    const notExact = await runCli(
      ['decrypt', 'in.enc', '-o', 'bad.bin', '-k', ws.uri('a'), '--context', 'other=1', '--require-context'],
      { cwd },
    );
    expect(notExact.code).toBe(6);
    expect((await readdir(cwd)).filter((f) => f.includes('bad.bin'))).toEqual([]);
  });

  it('streams stdin to stdout, and refuses to print binary on a terminal', async () => {
    const ws = await twoKeys();
    const cwd = ws.dir;
    const enc = await runCli(['encrypt', '-r', ws.uri('a'), '-r', ws.uri('b')], {
      cwd,
      stdin: 'piped secret',
    });
    expect(enc.code).toBe(0);
    expect(enc.stdoutBytes[0]).toBe(0x02);
    const dec = await runCli(['decrypt', '--key', ws.uri('b')], { cwd, stdin: enc.stdoutBytes });
    expect(dec.code).toBe(0);
    expect(dec.stdout).toBe('piped secret');
    const discovered = await runCli(['decrypt', '--trust-configured'], { cwd, stdin: enc.stdoutBytes });
    expect(discovered.code).toBe(0);
    expect(discovered.stdout).toBe('piped secret');
    const tty = await runCli(['encrypt', '-r', ws.uri('a')], { cwd, stdin: 'x', tty: true });
    expect(tty.code).toBe(2);
    expect(tty.stderr).toMatch(/refusing to write ciphertext to a terminal/);
  });

  it('decrypt and rewrap trust only keys the caller names: no -k and no --trust-configured is a usage error', async () => {
    const ws = await twoKeys();
    const cwd = ws.dir;
    const enc = await runCli(['encrypt', '-r', ws.uri('a')], { cwd, stdin: 'only for a' });
    expect(enc.code).toBe(0);
    for (const argv of [['decrypt'], ['rewrap', '-', '--add', ws.uri('b')]]) {
      const r = await runCli(argv, { cwd, stdin: enc.stdoutBytes });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/-k\/--key <uri>.*--trust-configured/);
      expect(r.stdout).toBe('');
    }
    // The message names key a; trusting only b must not fall back to a.
    const other = await runCli(['decrypt', '-k', ws.uri('b')], { cwd, stdin: enc.stdoutBytes });
    expect(other.code).toBe(6);
    expect(other.stdout).toBe('');
    // The README's promise: the error names the providers of the keys the message was sealed for.
    expect(other.stderr).toMatch(/error InvalidCiphertext: .*the message names providers: "keyport:local"/);
    const both = await runCli(['decrypt', '-k', ws.uri('a'), '--trust-configured'], {
      cwd,
      stdin: enc.stdoutBytes,
    });
    expect(both.code).toBe(2);
  });

  it('an empty file name or key URI (an unset shell variable) is a usage error (exit 2), not the working directory or no key', async () => {
    const ws = await twoKeys();
    const cwd = ws.dir;
    for (const argv of [
      ['encrypt', '', '-r', ws.uri('a')],
      ['encrypt', '-o', '', '-r', ws.uri('a')],
      ['encrypt', '-r', ''],
      ['encrypt', '-r', ws.uri('a'), '-r', ' '],
      ['doctor', '-k', ''],
    ]) {
      const r = await runCli(argv, { cwd, stdin: 'x' });
      expect(r.code, `${JSON.stringify(argv)}: ${r.stderr}`).toBe(2);
      expect(r.stderr, JSON.stringify(argv)).toMatch(/empty/);
    }
    expect((await readdir(cwd)).filter((f) => !f.startsWith('keys') && !f.startsWith('keyport'))).toEqual([]);
  });

  it('a tampered message fails (exit 6) and leaves no output file', async () => {
    const ws = await twoKeys();
    const cwd = ws.dir;
    await runCli(['encrypt', '-r', ws.uri('a'), '-o', 'm.enc', '--frame-length', '1024'], {
      cwd,
      stdin: Buffer.alloc(10_000, 1),
    });
    const bytes = await readFile(join(cwd, 'm.enc'));
    bytes[bytes.length - 40] = (bytes[bytes.length - 40] as number) ^ 1;
    await writeFile(join(cwd, 'm.enc'), bytes);
    const r = await runCli(['decrypt', 'm.enc', '-o', 'plain.out', '-k', ws.uri('a')], { cwd });
    expect(r.code).toBe(6);
    expect(r.stderr).toMatch(/error (Integrity|InvalidCiphertext)/);
    expect((await readdir(cwd)).filter((f) => f.includes('plain.out'))).toEqual([]);
    const garbage = await runCli(['decrypt', '-o', 'g.out', '--trust-configured'], {
      cwd,
      stdin: 'not a message at all',
    });
    expect(garbage.code).toBe(6);
  });

  it('rewrap adds and removes recipients in place without touching the body', async () => {
    const ws = await twoKeys();
    const cwd = ws.dir;
    const plaintext = Buffer.alloc(50_000, 3);
    await writeFile(join(cwd, 'p'), plaintext);
    await runCli(['encrypt', 'p', '-o', 'm.enc', '-r', ws.uri('a')], { cwd });
    const before = await readFile(join(cwd, 'm.enc'));
    const rw = await runCli(
      [
        '--json',
        'rewrap',
        'm.enc',
        '--in-place',
        '-k',
        ws.uri('a'),
        '--add',
        ws.uri('b'),
        '--remove',
        ws.uri('a'),
      ],
      { cwd },
    );
    expect(rw.code).toBe(0);
    const after = await readFile(join(cwd, 'm.enc'));
    expect(after.subarray(after.length - 50_000)).toEqual(before.subarray(before.length - 50_000));
    expect((await runCli(['decrypt', 'm.enc', '-k', ws.uri('a'), '-o', 'x'], { cwd })).code).toBe(6);
    const ok = await runCli(['decrypt', 'm.enc', '-k', ws.uri('b'), '-o', 'y'], { cwd });
    expect(ok.code).toBe(0);
    expect(sha(await readFile(join(cwd, 'y')))).toBe(sha(plaintext));
    expect((await runCli(['rewrap', 'm.enc'], { cwd })).code).toBe(2);
  });

  it('a recipient named twice (the same URI, or a relative and an absolute keystore path) is wrapped for once', async () => {
    const ws = await twoKeys();
    const cwd = ws.dir;
    const a = ws.uri('a');
    const enc = await runCli(
      ['--json', 'encrypt', '-o', 'm.enc', '-r', a, '-r', a, '-r', 'local://keys.kp#a'],
      {
        cwd,
        stdin: 'hello',
      },
    );
    expect(enc.code, enc.stderr).toBe(0);
    expect(JSON.parse(enc.stdout)).toMatchObject({ recipients: [a] });
    const sealed = await peekMessage(join(cwd, 'm.enc'));
    expect(sealed.kind === 'envelope' && sealed.edks.length).toBe(1);
    const re = await runCli(
      ['--json', 'rewrap', 'm.enc', '-k', a, '--add', ws.uri('b'), '--add', ws.uri('b'), '-o', 'n.enc'],
      { cwd },
    );
    expect(re.code, re.stderr).toBe(0);
    expect(JSON.parse(re.stdout)).toMatchObject({ added: [ws.uri('b')] });
    const rewrapped = await peekMessage(join(cwd, 'n.enc'));
    expect(rewrapped.kind === 'envelope' && rewrapped.edks.length).toBe(2);
  });

  it('rewrap reports only the recipients it removed: a --remove naming no recipient is said, not counted', async () => {
    const ws = await twoKeys();
    const cwd = ws.dir;
    expect((await runCli(['keys', 'create', 'c'], { cwd })).code).toBe(0);
    await runCli(['encrypt', '-o', 'm.enc', '-r', ws.uri('a'), '-r', ws.uri('b')], { cwd, stdin: 'hello' });
    // `c` never was a recipient: the rewrap removes `b` only, and the summary says so.
    const human = await runCli(
      ['rewrap', 'm.enc', '-k', ws.uri('a'), '--remove', ws.uri('c'), '--remove', ws.uri('b'), '-o', 'n.enc'],
      { cwd },
    );
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/\(\+0 -1 recipients, body unchanged\)/);
    expect(human.stderr).toBe(
      `keyport: --remove "${ws.uri('c')}" is not a recipient of the message: nothing was removed for it\n`,
    );
    // A URI given twice is one recipient; from stdin to stdout the JSON result (on stderr) says it too.
    const json = await runCli(
      ['--json', 'rewrap', '-', '-k', ws.uri('a'), '--remove', ws.uri('c'), '--remove', ws.uri('c')],
      { cwd, stdin: await readFile(join(cwd, 'm.enc')) },
    );
    expect(json.code, json.stderr).toBe(0);
    const lines = json.stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((e) => !('progress' in e));
    expect(lines).toEqual([
      { note: `--remove "${ws.uri('c')}" is not a recipient of the message: nothing was removed for it` },
      { result: expect.objectContaining({ added: [], removed: [], notRecipients: [ws.uri('c')] }) },
    ]);
    // Nothing was removed: `b` still opens what came out.
    await writeFile(join(cwd, 'same.enc'), json.stdoutBytes);
    expect((await runCli(['decrypt', 'same.enc', '-k', ws.uri('b'), '-o', 'z'], { cwd })).code).toBe(0);
    // `b` is gone from n.enc, `a` still opens it.
    expect((await runCli(['decrypt', 'n.enc', '-k', ws.uri('b'), '-o', 'x'], { cwd })).code).toBe(6);
    expect((await runCli(['decrypt', 'n.enc', '-k', ws.uri('a'), '-o', 'y'], { cwd })).code).toBe(0);
  });
});
