/**
 * One test per row of the exit-code table (README "Exit codes", src/exit-codes.ts) for the
 * provider and usage rows 0-6. The file-system rows 8-15 are in outputs.test.ts, 7 (migration
 * locked) in migrate-lock.test.ts, 130 and 143 (signals) in signals.test.ts.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { jsonError, localWorkspace, runCli } from './support/cli.js';

describe('exit codes 0-6', () => {
  it('0: success', async () => {
    const ws = await localWorkspace();
    expect((await runCli(['keys', 'create', 'k'], { cwd: ws.dir })).code).toBe(0);
  });

  it('1: the operation failed (AlreadyExists)', async () => {
    const ws = await localWorkspace();
    await runCli(['keys', 'create', 'k'], { cwd: ws.dir });
    const r = await runCli(['--json', 'keys', 'create', 'k'], { cwd: ws.dir });
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stderr).error).toMatchObject({ code: 'AlreadyExists', exitCode: 1 });
  });

  it('2: usage error (unknown option), also as one JSON object on stderr with --json', async () => {
    const ws = await localWorkspace();
    expect((await runCli(['encrypt', '--bogus'], { cwd: ws.dir })).code).toBe(2);
    const r = await runCli(['--json', 'encrypt', '--bogus'], { cwd: ws.dir });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(JSON.parse(r.stderr)).toEqual({
      error: expect.objectContaining({
        code: 'InvalidArgument',
        exitCode: 2,
        message: expect.stringMatching(/--bogus/),
      }),
    });
  });

  it('2: no command (`keyport`, `keyport keys`, `help <unknown>`): help on stderr, one JSON error with --json', async () => {
    const ws = await localWorkspace();
    for (const args of [[], ['keys'], ['grants'], ['help', 'no-such-command']]) {
      const text = await runCli(args, { cwd: ws.dir });
      expect(text.code, args.join(' ')).toBe(2);
      expect(text.stderr, args.join(' ')).toContain('Usage:');
      expect(text.stdout).toBe('');
      const json = await runCli(['--json', ...args], { cwd: ws.dir });
      expect(json.code, args.join(' ')).toBe(2);
      expect(json.stdout).toBe('');
      expect(jsonError(json.stderr)).toMatchObject({ code: 'InvalidArgument', exitCode: 2 });
    }
    // Help asked for is a success, on stdout.
    for (const args of [['--help'], ['help'], ['keys', '--help'], ['help', 'decrypt'], ['--version']]) {
      const r = await runCli(args, { cwd: ws.dir });
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.stdout.length, args.join(' ')).toBeGreaterThan(0);
    }
  });

  it('3: not found (a key; a keystore file, which stays NotFound rather than a file error)', async () => {
    const ws = await localWorkspace();
    expect((await runCli(['keys', 'describe', ws.uri('missing')], { cwd: ws.dir })).code).toBe(3);
    await writeFile(
      join(ws.dir, 'other.json'),
      JSON.stringify({ providers: { local: { keystore: './nope.kp' } } }),
    );
    const r = await runCli(['--json', '--config', 'other.json', 'keys', 'list'], { cwd: ws.dir });
    expect(r.code, r.stderr).toBe(3);
    expect(JSON.parse(r.stderr).error.code).toBe('NotFound');
  });

  it('4: access denied (a wrong keystore passphrase)', async () => {
    const ws = await localWorkspace();
    const r = await runCli(['--json', 'keys', 'list'], {
      cwd: ws.dir,
      env: { KEYPORT_LOCAL_PASSPHRASE: 'wrong' },
    });
    expect(r.code).toBe(4);
    expect(JSON.parse(r.stderr).error.code).toBe('AccessDenied');
  });

  it('5: provider unavailable (nothing listens at the Vault address)', async () => {
    const ws = await localWorkspace({ hcvault: { address: 'http://127.0.0.1:9' } });
    const r = await runCli(['--json', '--timeout', '2000', 'keys', 'list', 'hcvault'], {
      cwd: ws.dir,
      env: { KEYPORT_VAULT_TOKEN: 'x' },
    });
    expect(r.code).toBe(5);
    expect(['Unavailable', 'Timeout']).toContain(JSON.parse(r.stderr).error.code);
  });

  it('6: integrity (not a message)', async () => {
    const ws = await localWorkspace();
    await runCli(['keys', 'create', 'k'], { cwd: ws.dir });
    const r = await runCli(['decrypt', '-k', ws.uri('k')], { cwd: ws.dir, stdin: 'not a message' });
    expect(r.code).toBe(6);
  });
});
