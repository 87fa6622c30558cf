/**
 * The --json contract, one test per command: on success stdout is exactly one JSON object with
 * "ok" (and stderr only NDJSON events: progress, note, result); on failure stdout is empty
 * (or, for doctor and migrate, a result with "ok": false) and stderr carries exactly one
 * {"error": {"code", "message", "exitCode"}} whose exitCode is the process's.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { type CliResult, localWorkspace, runCli } from './support/cli.js';
import { localKeys, sealFiles } from './support/seal.js';

type Json = Record<string, unknown>;

function stderrLines(r: CliResult): Json[] {
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  return lines.map((l) => {
    const v = JSON.parse(l) as Json;
    expect(typeof v === 'object' && v !== null && !Array.isArray(v), l).toBe(true);
    expect(Object.keys(v), l).toHaveLength(1);
    expect(['progress', 'note', 'result', 'error'], l).toContain(Object.keys(v)[0]);
    return v;
  });
}

/** A success: one JSON object with ok: true on stdout, only events on stderr. */
function ok(r: CliResult): Json {
  expect(r.code, r.stderr).toBe(0);
  const events = stderrLines(r);
  expect(events.filter((e) => 'error' in e)).toEqual([]);
  const value = JSON.parse(r.stdout) as Json;
  expect(typeof value === 'object' && !Array.isArray(value)).toBe(true);
  expect(value.ok).toBe(true);
  return value;
}

/** A failure: exactly one error object on stderr with the process's exit code. */
function failed(r: CliResult, code?: string): Json {
  expect(r.code).not.toBe(0);
  const errors = stderrLines(r).filter((e) => 'error' in e);
  expect(errors).toHaveLength(1);
  const error = (errors[0] as { error: Json }).error;
  expect(error).toMatchObject({ exitCode: r.code, code: expect.any(String), message: expect.any(String) });
  if (code !== undefined) expect(error.code).toBe(code);
  if (r.stdout !== '') expect((JSON.parse(r.stdout) as Json).ok).toBe(false);
  return error;
}

let ws: Awaited<ReturnType<typeof localWorkspace>>;
let k: string;
const json = (args: string[], stdin?: string) =>
  runCli(['--json', ...args], { cwd: ws.dir, ...(stdin !== undefined ? { stdin } : {}) });

beforeAll(async () => {
  ws = await localWorkspace();
  k = ws.uri('k');
  await writeFile(join(ws.dir, 'p.txt'), 'plain');
});

describe('--json: one contract for every command', () => {
  it('usage errors', async () => {
    failed(await json(['nonsense']), 'InvalidArgument');
    failed(await json(['keys', 'describe']), 'InvalidArgument');
  });

  it('keys create', async () => {
    expect(ok(await json(['keys', 'create', 'k']))).toMatchObject({ uri: k });
    failed(await json(['keys', 'create', 'k']), 'AlreadyExists');
  });

  it('keys list', async () => {
    expect((ok(await json(['keys', 'list'])).keys as unknown[]).length).toBeGreaterThan(0);
    failed(await json(['keys', 'list', 'aws-kms']), 'InvalidArgument');
  });

  it('keys describe', async () => {
    expect(ok(await json(['keys', 'describe', k]))).toMatchObject({ uri: k, state: 'enabled' });
    failed(await json(['keys', 'describe', ws.uri('missing')]), 'NotFound');
  });

  it('keys rotate / disable / enable', async () => {
    expect(ok(await json(['keys', 'rotate', k]))).toMatchObject({ primaryVersion: '2' });
    expect(ok(await json(['keys', 'disable', k]))).toMatchObject({ state: 'disabled' });
    expect(ok(await json(['keys', 'enable', k]))).toMatchObject({ state: 'enabled' });
    failed(await json(['keys', 'rotate', ws.uri('missing')]), 'NotFound');
  });

  it('keys schedule-deletion / cancel-deletion / destroy-version', async () => {
    await json(['keys', 'create', 'gone']);
    expect(ok(await json(['keys', 'schedule-deletion', ws.uri('gone'), '--days', '7']))).toMatchObject({
      state: 'pending_deletion',
    });
    expect(ok(await json(['keys', 'cancel-deletion', ws.uri('gone')])).state).not.toBe('pending_deletion');
    await json(['keys', 'enable', ws.uri('gone')]);
    ok(await json(['keys', 'rotate', ws.uri('gone')]));
    ok(await json(['keys', 'destroy-version', ws.uri('gone'), '--key-version', '1']));
    failed(await json(['keys', 'schedule-deletion', ws.uri('gone'), '--days', 'soon']), 'InvalidArgument');
  });

  it('encrypt (to a file, and to stdout: the result then goes to stderr)', async () => {
    expect(ok(await json(['encrypt', 'p.txt', '-o', 'p.enc', '-r', k, '--context', 'a=b']))).toMatchObject({
      bytes: expect.any(Number),
    });
    const toStdout = await json(['encrypt', '-r', k], 'x');
    expect(toStdout.code).toBe(0);
    expect(toStdout.stdoutBytes[0]).toBe(0x02);
    expect(stderrLines(toStdout).find((e) => 'result' in e)).toMatchObject({ result: { ok: true } });
    failed(await json(['encrypt', 'p.txt', '-o', 'p.enc', '-r', k]), 'FileExists');
  });

  it('decrypt', async () => {
    ok(await json(['decrypt', 'p.enc', '-o', 'p.out', '-k', k, '--context', 'a=b']));
    failed(
      await json(['decrypt', 'p.enc', '-o', 'p2.out', '-k', k, '--context', 'a=c']),
      'InvalidCiphertext',
    );
  });

  it('rewrap', async () => {
    await json(['keys', 'create', 'k2']);
    expect(ok(await json(['rewrap', 'p.enc', '--in-place', '-k', k, '--add', ws.uri('k2')]))).toMatchObject({
      added: [ws.uri('k2')],
    });
    failed(await json(['rewrap', 'p.enc', '-k', k]), 'InvalidArgument');
  });

  it('grants create / list / revoke / sweep', async () => {
    const g = ok(await json(['grants', 'create', k, '--grantee', 'app', '--op', 'decrypt']));
    expect((ok(await json(['grants', 'list', k])).grants as unknown[]).length).toBe(1);
    expect(ok(await json(['grants', 'sweep', k, '--dry-run']))).toMatchObject({ dryRun: true });
    expect(ok(await json(['grants', 'revoke', k, g.id as string]))).toMatchObject({ revoked: g.id });
    failed(await json(['grants', 'revoke', k, 'no-such-grant']));
  });

  it('capabilities', async () => {
    expect(ok(await json(['capabilities'])).providers).toHaveProperty('local');
    failed(await json(['capabilities', '--nope']), 'InvalidArgument');
  });

  it('doctor', async () => {
    expect(ok(await json(['doctor', '-k', k])).checks).toEqual(
      expect.arrayContaining([expect.objectContaining({ ok: true })]),
    );
    const down = await localWorkspace({ hcvault: { address: 'http://127.0.0.1:9' } });
    const r = await runCli(['--json', 'doctor'], { cwd: down.dir, env: { KEYPORT_VAULT_TOKEN: 't' } });
    expect(r.code).not.toBe(0);
    expect(JSON.parse(r.stdout).ok).toBe(false);
  });

  it('migrate (with NDJSON progress events on stderr)', async () => {
    const keys = await localKeys(ws.keystore);
    await sealFiles(keys, k, join(ws.dir, 'data'), 4);
    await keys.close();
    const r = await json(['migrate', '--from', k, '--to', ws.uri('k2'), '--progress-every', '1', 'data']);
    expect(ok(r)).toMatchObject({ total: 4, migrated: 4 });
    const progress = stderrLines(r).filter((e) => 'progress' in e);
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.at(-1)).toMatchObject({
      progress: { command: 'migrate', unit: 'files', done: 4, total: 4 },
    });
    failed(await json(['migrate', '--from', k, '--to', k, 'data']), 'InvalidArgument');
  });

  it('import', async () => {
    failed(await json(['import', 'aws-kms://alias/x', '--new-hsm-key', 'h']), 'InvalidArgument');
  });

  it('audit verify', async () => {
    await writeFile(join(ws.dir, 'audit.key'), 'ab'.repeat(32), { mode: 0o600 });
    failed(await json(['audit', 'verify', 'no-such.log', '--key-file', 'audit.key']));
  });
});
