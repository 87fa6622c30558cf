/**
 * Progress on stderr: a bar with bytes, rate and ETA (cli-progress) when stderr is a terminal,
 * NDJSON events with --json, nothing with --no-progress or when stderr is a pipe. stdout never
 * carries any of it.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { localWorkspace, runCli } from './support/cli.js';

let ws: Awaited<ReturnType<typeof localWorkspace>>;

beforeAll(async () => {
  ws = await localWorkspace();
  await runCli(['keys', 'create', 'k'], { cwd: ws.dir });
  await writeFile(join(ws.dir, 'big'), Buffer.alloc(3 * 1024 * 1024, 5));
});

describe('progress', () => {
  it('draws a bar with bytes, rate and ETA on a terminal', async () => {
    const r = await runCli(['encrypt', 'big', '-o', 'big.enc', '-r', ws.uri('k')], {
      cwd: ws.dir,
      stderrTty: true,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/encrypt \[[^\]]+\] 100% 3\.0 MiB\/3\.0 MiB [\d.]+ (B|KiB|MiB|GiB)\/s ETA/);
    expect(r.stdout).toMatch(/^encrypted ->/);
  });

  it('is silent with --no-progress on a terminal, and when stderr is not a terminal', async () => {
    const off = await runCli(['encrypt', 'big', '-o', 'a.enc', '-r', ws.uri('k'), '--no-progress'], {
      cwd: ws.dir,
      stderrTty: true,
    });
    expect(off.stderr).toBe('');
    const piped = await runCli(['encrypt', 'big', '-o', 'b.enc', '-r', ws.uri('k')], { cwd: ws.dir });
    expect(piped.stderr).toBe('');
  });

  it('emits NDJSON progress events with --json, ending at the total', async () => {
    const r = await runCli(['--json', 'decrypt', 'big.enc', '-o', 'big.out', '-k', ws.uri('k')], {
      cwd: ws.dir,
    });
    expect(r.code, r.stderr).toBe(0);
    const events = r.stderr
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    const size = (await import('node:fs')).statSync(join(ws.dir, 'big.enc')).size;
    expect(events.at(-1)).toMatchObject({
      progress: { command: 'decrypt', unit: 'bytes', done: size, total: size },
    });
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, bytes: 3 * 1024 * 1024 });
  });
});
