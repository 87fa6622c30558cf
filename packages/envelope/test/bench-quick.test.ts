/**
 * Keeps the benchmark working: runs `bench/envelope.bench.mjs --quick` (every section at a small
 * size, each in its own child process) and checks the shape of what it writes. No timing is
 * asserted: figures from a quick run on a shared machine mean nothing.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const pkg = fileURLToPath(new URL('..', import.meta.url));
const root = join(pkg, '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'keyport-bench-quick-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function build(project: string): void {
  execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, project)], {
    stdio: 'inherit',
  });
}

/** glibc, and a kernel whose transparent huge pages are not 'never'. */
function glibcWithHugePages(): boolean {
  const header = (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header;
  let mode: string | undefined;
  try {
    mode = /\[(\w+)\]/.exec(readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8'))?.[1];
  } catch {
    mode = undefined;
  }
  return header?.glibcVersionRuntime !== undefined && mode !== undefined && mode !== 'never';
}

describe('pnpm bench --quick', () => {
  it('runs every section and writes { name, unit, value, baseline, baselineValue, ratio } rows', () => {
    // The bench runs the built package (and its workspace dependencies), as `pnpm bench` does.
    for (const p of ['packages/core', 'adapters/local', 'packages/envelope'])
      build(`${p}/tsconfig.build.json`);
    const out = join(dir, 'envelope.json');
    execFileSync(
      process.execPath,
      ['--expose-gc', join(pkg, 'bench/envelope.bench.mjs'), '--quick', `--out=${out}`],
      {
        stdio: ['ignore', 'ignore', 'inherit'],
      },
    );
    const rows = JSON.parse(readFileSync(out, 'utf8')) as Array<Record<string, unknown>>;
    expect(rows.length).toBeGreaterThan(20);
    for (const r of rows) {
      expect(typeof r.name).toBe('string');
      expect(typeof r.unit).toBe('string');
      expect(Number.isFinite(r.value)).toBe(true);
      expect(typeof r.baseline).toBe('string');
      expect(typeof r.baselineValue).toBe('number');
      expect(r.ratio === null || typeof r.ratio === 'number').toBe(true);
    }
    const names = rows.map((r) => r.name as string).join('\n');
    for (const part of [
      'EDK flood',
      'peak RSS growth (VmHWM',
      'openssl speed',
      'ESDK-JS 5.0.2, both 0x0478',
      'ESDK-JS 5.0.2, both 0x0578',
      'seal to 3 recipients',
      'into a reused output buffer',
      'into a reused SharedArrayBuffer output',
    ]) {
      expect(names).toContain(part);
    }
    for (const r of rows.filter((x) => /MiB\/s/.test(x.unit as string))) {
      expect(r.node).toBe(process.version);
      expect(r.concurrency).toBeDefined();
    }
    // Every concurrency-vs-1 row says how many cores each side kept busy and the ratio all cores
    // at concurrency 1's total work would give: 64 MiB seal/open at two concurrencies, three streams.
    const scaling = rows.filter((r) => / vs 1 \(wall time, interleaved/.test(r.name as string));
    expect(scaling.length).toBeGreaterThanOrEqual(5);
    for (const r of scaling) {
      for (const field of ['coresBusyAt1', 'coresBusy', 'ratioAtEqualWork']) {
        expect(Number.isFinite(r[field]) && (r[field] as number) > 0, `${r.name}: ${field}`).toBe(true);
      }
    }
    // The huge-pages rows (one-core seal/open against two baselines each, default-settings
    // seal/open) come from a child with the glibc tunable set, wherever glibc and transparent
    // huge pages are present, as on the CI machine.
    const hugePages = rows.filter((r) => r.malloc === 'glibc.malloc.hugetlb=1');
    if (glibcWithHugePages()) {
      expect(hugePages).toHaveLength(6);
      for (const r of hugePages) expect(r.name).toContain('[glibc.malloc.hugetlb=1]');
    } else {
      expect(hugePages).toHaveLength(0);
    }
  }, 300_000);

  it('root `pnpm bench --quick` forwards --quick to every package bench', () => {
    const script = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).scripts.bench as string;
    // On a supported Node line (as `pnpm test`), pnpm's extra arguments appended after the command.
    expect(script).toBe("node scripts/on-supported-node.mjs 'node scripts/bench.mjs'");
    const plan = (args: string[]) =>
      JSON.parse(
        execFileSync(
          process.execPath,
          [join(root, 'scripts/on-supported-node.mjs'), 'node scripts/bench.mjs', ...args, '--print-plan'],
          { cwd: root, encoding: 'utf8' },
        ),
      ) as Array<{ command: string[]; env: Record<string, string> }>;
    const quick = plan(['--quick']);
    const turbo = quick.filter((s) => s.command[0] === 'turbo');
    // Every bench gets the environment flag; those run as node scripts also get the argument.
    for (const step of quick) expect(step.env.KEYPORT_BENCH_QUICK).toBe('1');
    const withArg = turbo.find((s) => s.command.at(-1) === '--quick');
    expect(withArg?.command).toContain('--filter=@keyport/envelope');
    expect(withArg?.command.slice(-2)).toEqual(['--', '--quick']);
    // No vitest-run bench is given an argument vitest would refuse.
    for (const step of turbo.filter((s) => s !== withArg)) expect(step.command).not.toContain('--quick');
    const filtered = turbo.flatMap((s) => s.command.filter((c) => c.startsWith('--filter=')));
    expect(new Set(filtered).size).toBe(filtered.length);
    const bench = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8')).scripts.bench as string;
    expect(bench).toMatch(/node .*bench\/envelope\.bench\.mjs$/); // the argument lands on node's command line
    const full = plan([]);
    for (const step of full) expect(step.command).not.toContain('--quick');
    expect(full.every((s) => Object.keys(s.env).length === 0)).toBe(true);
    expect(() =>
      execFileSync(process.execPath, [join(root, 'scripts/bench.mjs'), '--quik'], { stdio: 'pipe' }),
    ).toThrow();
  });
});
