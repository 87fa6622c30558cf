// The release dry run: `changeset version` applied to a scratch copy of the repository (the
// working tree, tracked and new files) must give consistent versions and changelogs — every
// package a changeset names bumped, the linked @keyport/* packages on one version, internal
// dependencies still `workspace:^`, the examples untouched, and every pending changeset consumed.
// Run by `.ci/run` through vitest.packaging.config.ts.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

interface Manifest {
  name: string;
  version: string;
  private?: boolean;
  dependencies?: Record<string, string>;
}

function workspaceDirs(root: string): string[] {
  const dirs = ['packages', 'adapters', 'examples'].flatMap((r) =>
    existsSync(join(root, r)) ? readdirSync(join(root, r)).map((d) => join(r, d)) : [],
  );
  return [...dirs, 'conformance', 'conformance/servers'].filter((d) =>
    existsSync(join(root, d, 'package.json')),
  );
}

const manifest = (root: string, dir: string): Manifest =>
  JSON.parse(readFileSync(join(root, dir, 'package.json'), 'utf8')) as Manifest;

/** Package name -> bump type from the pending changesets' front matter. */
function pendingBumps(): Map<string, string> {
  const bumps = new Map<string, string>();
  const dir = join(repoRoot, '.changeset');
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.md') && f !== 'README.md')) {
    const front = readFileSync(join(dir, file), 'utf8').split('---')[1] ?? '';
    for (const m of front.matchAll(/^"?([^":\s]+)"?\s*:\s*(major|minor|patch)\s*$/gm)) {
      bumps.set(m[1] as string, m[2] as string);
    }
  }
  return bumps;
}

let copy = '';
const dirs = workspaceDirs(repoRoot);
const bumps = pendingBumps();

beforeAll(() => {
  copy = mkdtempSync(join(tmpdir(), 'keyport-release-'));
  const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
    cwd: repoRoot,
    encoding: 'utf8',
  })
    .split('\0')
    .filter((f) => f !== '' && existsSync(join(repoRoot, f)));
  for (const f of files) {
    mkdirSync(dirname(join(copy, f)), { recursive: true });
    cpSync(join(repoRoot, f), join(copy, f));
  }
  execFileSync(process.execPath, [join(repoRoot, 'node_modules/@changesets/cli/bin.js'), 'version'], {
    cwd: copy,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}, 120_000);

afterAll(() => {
  if (copy !== '') rmSync(copy, { recursive: true, force: true });
});

describe('changeset version (dry run in a scratch copy)', () => {
  test('there are pending changesets to release', () => {
    expect(bumps.size).toBeGreaterThan(0);
  });

  test('consumes every pending changeset', () => {
    const left = readdirSync(join(copy, '.changeset')).filter((f) => f.endsWith('.md') && f !== 'README.md');
    expect(left).toEqual([]);
  });

  test('every package a changeset names is bumped, with a changelog entry for its new version', () => {
    for (const dir of dirs) {
      const before = manifest(repoRoot, dir);
      const after = manifest(copy, dir);
      if (!bumps.has(before.name)) continue;
      expect(after.version, before.name).not.toBe(before.version);
      const changelog = readFileSync(join(copy, dir, 'CHANGELOG.md'), 'utf8');
      expect(changelog, before.name).toContain(`# ${before.name}`);
      expect(changelog, before.name).toContain(`## ${after.version}`);
    }
  });

  test('the linked @keyport/* packages that were bumped share one version', () => {
    const versions = new Set(
      dirs
        .map((d) => [manifest(repoRoot, d), manifest(copy, d)] as const)
        .filter(([before, after]) => !before.private && before.version !== after.version)
        .map(([, after]) => after.version),
    );
    expect(versions.size).toBe(1);
  });

  test('internal dependencies stay workspace ranges, and the private examples keep their version', () => {
    for (const dir of dirs) {
      const before = manifest(repoRoot, dir);
      const after = manifest(copy, dir);
      for (const [dep, range] of Object.entries(after.dependencies ?? {})) {
        if (dep.startsWith('@keyport/')) expect(range, `${after.name} -> ${dep}`).toBe('workspace:^');
      }
      if (before.private === true) expect(after.version).toBe(before.version);
    }
  });
});
