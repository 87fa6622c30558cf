/**
 * Text keyport prints may quote what it was given — an argument, a file name, a message from Node
 * or an SDK — and none of it may reach the terminal as a control sequence (an OSC that sets the
 * window title or writes the clipboard, a CSI that clears the screen or hides the lines above).
 * Control characters come out escaped as `\uXXXX`.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { localWorkspace, runCli } from './support/cli.js';

/** An OSC title change and a CSI screen clear: what a hostile name would carry. */
const EVIL = '\u001b]0;owned\u0007\u001b[2J\u009b31m';
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;

let ws: Awaited<ReturnType<typeof localWorkspace>>;
let key: string;

beforeAll(async () => {
  ws = await localWorkspace();
  expect((await runCli(['keys', 'create', 'k'], { cwd: ws.dir })).code).toBe(0);
  key = ws.uri('k');
  await writeFile(join(ws.dir, 'plain.txt'), 'hello');
});

describe('control characters are escaped in what keyport prints', () => {
  it("commander's usage errors (an unknown option, a bad choice, an unknown command)", async () => {
    for (const argv of [
      ['encrypt', `--no-such${EVIL}`],
      ['encrypt', 'plain.txt', '-r', key, '--suite', EVIL],
      [`enc${EVIL}`],
    ]) {
      const r = await runCli(argv, { cwd: ws.dir });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/error: /);
      expect(r.stderr).not.toMatch(CONTROL);
      expect(r.stderr).toContain('\\u001b]0;owned\\u0007');
    }
  });

  it('the causes --verbose shows (Node quotes the file name as given)', async () => {
    const r = await runCli(['decrypt', `missing${EVIL}.enc`, '-k', key, '-o', 'x', '--verbose'], {
      cwd: ws.dir,
    });
    expect(r.code).toBe(8);
    expect(r.stderr).toMatch(/cause: +Error: ENOENT/);
    expect(r.stderr).not.toMatch(CONTROL);
  });

  it('the summary line of encrypt, decrypt and rewrap names the output escaped', async () => {
    const out = `out${EVIL}.enc`;
    const enc = await runCli(['encrypt', 'plain.txt', '-r', key, '-o', out], { cwd: ws.dir });
    expect(enc.code, enc.stderr).toBe(0);
    expect(enc.stdout).toMatch(/^encrypted -> .*out\\u001b\]0;owned\\u0007\\u001b\[2J\\u009b31m\.enc \(/);
    expect(enc.stdout).not.toMatch(CONTROL);
    const dec = await runCli(['decrypt', out, '-k', key, '-o', `plain${EVIL}`], { cwd: ws.dir });
    expect(dec.code, dec.stderr).toBe(0);
    expect(dec.stdout).toMatch(/^decrypted -> /);
    expect(dec.stdout).not.toMatch(CONTROL);
    const re = await runCli(['rewrap', out, '-k', key, '--add', key, '-o', `re${EVIL}`], { cwd: ws.dir });
    expect(re.code, re.stderr).toBe(0);
    expect(re.stdout).toMatch(/^rewrapped -> /);
    expect(re.stdout).not.toMatch(CONTROL);
  });

  it("migrate's summary names failed and skipped files, their errors and the journal escaped", async () => {
    expect((await runCli(['keys', 'create', 'to'], { cwd: ws.dir })).code).toBe(0);
    const dir = join(ws.dir, 'tree');
    await mkdir(dir);
    // Bound to a pair it does not store: migrating it without --reproduced-context fails.
    const sealed = await runCli(
      [
        'encrypt',
        'plain.txt',
        '-r',
        key,
        '--context',
        'u=1',
        '--context-not-stored',
        'u',
        '-o',
        join(dir, `f${EVIL}`),
      ],
      { cwd: ws.dir },
    );
    expect(sealed.code, sealed.stderr).toBe(0);
    await writeFile(join(dir, `s${EVIL}`), 'not an envelope');
    const r = await runCli(
      ['migrate', '--from', key, '--to', ws.uri('to'), '--no-progress', '--journal', `j${EVIL}`, dir],
      { cwd: ws.dir },
    );
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toMatch(
      /^ {2}failed .*f\\u001b\]0;owned\\u0007\\u001b\[2J\\u009b31m.*: InvalidCiphertext /m,
    );
    expect(r.stdout).toMatch(/^ {2}skipped .*s\\u001b\]0;owned.*\\u009b31m.*: not an envelope message$/m);
    expect(r.stdout).toMatch(/run the same command again to retry \(journal .*j\\u001b\]0;owned/);
    expect(r.stdout).not.toMatch(CONTROL);
  });
});
