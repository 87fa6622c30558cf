/**
 * `defaults.jobs` reaches an object-store migration as it does a file migration: the CLI passes
 * it to @keyport/object-migrate as `jobs` when no --jobs is given (the flag wins), at most 64
 * (a worker's objects in flight), with a note when the config asks for more. The package is
 * replaced here by a recorder: what it does with `jobs` is its own tests' business
 * (packages/object-migrate), and test/migrate-objects.test.ts runs the real one against S3.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { localWorkspace, ndjson, runCli } from './support/cli.js';

const seen: Array<Record<string, unknown>> = [];

vi.mock('@keyport/object-migrate', () => ({
  migrateObjectsCommand: async (_location: string, options: Record<string, unknown>) => {
    seen.push(options);
    return { result: { ok: true }, lines: ['recorded'], exitCode: 0 };
  },
}));

afterEach(() => {
  seen.length = 0;
});

async function workspace(defaults: Record<string, unknown> | undefined) {
  const ws = await localWorkspace({}, defaults === undefined ? {} : { defaults });
  for (const k of ['a', 'b']) expect((await runCli(['keys', 'create', k], { cwd: ws.dir })).code).toBe(0);
  return ws;
}

const migrate = (ws: Awaited<ReturnType<typeof localWorkspace>>, extra: string[] = []) =>
  runCli(['--json', 'migrate', 's3://bucket/prefix/', '--from', ws.uri('a'), '--to', ws.uri('b'), ...extra], {
    cwd: ws.dir,
  });

describe('object-store migrations take defaults.jobs', () => {
  it('defaults.jobs is passed when --jobs is not given; --jobs wins', async () => {
    const ws = await workspace({ jobs: 3 });
    const r = await migrate(ws);
    expect(r.code, r.stderr).toBe(0);
    expect(seen[0]?.jobs).toBe('3');
    const flag = await migrate(ws, ['--jobs', '12']);
    expect(flag.code, flag.stderr).toBe(0);
    expect(seen[1]?.jobs).toBe('12');
  });

  it('no defaults.jobs: nothing passed (the package default, 8)', async () => {
    const ws = await workspace(undefined);
    expect((await migrate(ws)).code).toBe(0);
    expect(seen[0]).not.toHaveProperty('jobs');
  });

  it('defaults.jobs above 64 (fine for files) is used as 64, with a note; --jobs above 64 stays a usage error', async () => {
    const ws = await workspace({ jobs: 200 });
    const r = await migrate(ws);
    expect(r.code, r.stderr).toBe(0);
    expect(seen[0]?.jobs).toBe('64');
    expect(ndjson(r.stderr).find((e) => 'note' in e)?.note).toMatch(
      /defaults\.jobs is 200; .* at most 64 objects in flight per worker: using 64/,
    );
    const flag = await migrate(ws, ['--jobs', '65']);
    expect(flag.code).toBe(2);
    expect(seen).toHaveLength(1);
  });
});
