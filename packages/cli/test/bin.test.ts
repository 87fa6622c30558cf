/** The real `keyport` bin in a child process (from source, through the TypeScript hooks). */
import { describe, expect, it } from 'vitest';
import { localWorkspace, spawnCli } from './support/cli.js';

describe('bin/keyport.mjs', () => {
  it('pipes stdin to stdout through encrypt and decrypt, and returns documented exit codes', async () => {
    const ws = await localWorkspace();
    const created = await spawnCli(['--json', 'keys', 'create', 'k'], { cwd: ws.dir });
    expect(created.code, created.stderr).toBe(0);
    const enc = await spawnCli(['encrypt', '-r', ws.uri('k'), '--context', 'a=b'], {
      cwd: ws.dir,
      stdin: 'through a pipe',
    });
    expect(enc.code, enc.stderr).toBe(0);
    const dec = await spawnCli(['decrypt', '-k', ws.uri('k'), '--context', 'a=b'], {
      cwd: ws.dir,
      stdin: enc.stdoutBytes,
    });
    expect(dec.stdout).toBe('through a pipe');
    const missing = await spawnCli(['keys', 'describe', ws.uri('nope')], { cwd: ws.dir });
    expect(missing.code).toBe(3);
    expect(missing.stderr).toMatch(/^keyport: error NotFound/);
    const usage = await spawnCli(['encrypt', '--bogus'], { cwd: ws.dir });
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/unknown option/);
  });
});
