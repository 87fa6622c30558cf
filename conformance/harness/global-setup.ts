// vitest global setup: brings up the targets the selected projects need (through the same CLI
// a developer runs, `conformance/bin/emulators.mjs`), loads `.emulators/env` into process.env
// before any test worker starts (workers inherit it), and on teardown prints the logs of
// targets whose tests failed or whose process died, then releases what this run used.
//
// vitest calls a root-level globalSetup once per project (they inherit it) and once for the
// root project; only the root call acts, because only it sees the whole selection.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
// @ts-expect-error the harness's bin is plain JavaScript without declarations
import { readEnvFile } from '../bin/lib/state.mjs';
import { projectTargets, type TargetName, targetsForProjects } from './targets.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const cli = join(repoRoot, 'conformance/bin/emulators.mjs');
const stateDir = process.env.KEYPORT_EMULATORS_DIR ?? join(repoRoot, '.emulators');
const LOG_TAIL_LINES = 40;

interface TargetStatus {
  name: string;
  state: string;
  log?: string;
}

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  if (!project.isRootProject()) return undefined;
  const projects = project.vitest.projects.map((p) => p.name);
  const needed = targetsForProjects(projects);
  if (needed.length === 0) return undefined;

  const lease = String(process.pid);
  await runCli(['up', '--lease', lease, '--skip-unbuilt', ...needed]);
  loadEnvFile(join(stateDir, 'env'));

  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    spawnSync(process.execPath, [cli, 'down', '--lease', lease, ...needed], {
      stdio: 'inherit',
      timeout: 30_000,
    });
  };
  // Ctrl-C or an early exit still releases the targets (spawnSync works inside 'exit').
  process.once('exit', release);

  return async () => {
    printLogsOfTroubledTargets(project, needed);
    process.removeListener('exit', release);
    release();
  };
}

/** Runs the CLI; its progress goes to stderr live. A failure fails the run with its message. */
function runCli(args: string[]): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'inherit', 'pipe'] });
    let errors = '';
    child.stderr.on('data', (chunk: Buffer) => {
      process.stderr.write(chunk);
      errors += chunk.toString();
    });
    child.once('error', reject);
    child.once('close', (code) => {
      if (code === 0) {
        resolvePromise();
        return;
      }
      const failure = errors.split('\n').filter((l) => !/: (up in|installed in|already running)/.test(l));
      reject(
        new Error(
          `the emulator harness failed (node conformance/bin/emulators.mjs ${args.join(' ')} exited ${code}):\n${failure.join('\n')}`,
        ),
      );
    });
  });
}

/** `KEY=VALUE` lines into process.env; values never contain newlines. */
function loadEnvFile(path: string): void {
  if (!existsSync(path)) throw new Error(`the emulator harness wrote no env file at ${path}`);
  Object.assign(process.env, readEnvFile(path) as Record<string, string>);
}

function printLogsOfTroubledTargets(project: TestProject, needed: readonly TargetName[]): void {
  const failedProjects = new Set(
    project.vitest.state
      .getTestModules()
      .filter((m) => m.state() === 'failed')
      .map((m) => m.project.name),
  );
  const suspects = new Set<string>();
  for (const name of failedProjects) for (const t of projectTargets[name] ?? []) suspects.add(t);
  const statuses = readStatus();
  for (const status of statuses) {
    if (!needed.includes(status.name as TargetName)) continue;
    const died = status.state === 'dead';
    if (!died && !suspects.has(status.name)) continue;
    const log = status.log ?? join(stateDir, `${status.name}.log`);
    if (!existsSync(log)) continue;
    const tail = readFileSync(log, 'utf8').trimEnd().split('\n').slice(-LOG_TAIL_LINES).join('\n');
    const why = died ? 'its process died' : 'tests that use it failed';
    process.stderr.write(
      `\n--- ${status.name} (${why}): last lines of ${log} ---\n${tail}\n--- end of ${status.name} log ---\n`,
    );
  }
}

function readStatus(): TargetStatus[] {
  const out = spawnSync(process.execPath, [cli, 'status', '--json'], { encoding: 'utf8', timeout: 30_000 });
  try {
    const parsed: { targets: TargetStatus[] } = JSON.parse(out.stdout);
    return parsed.targets;
  } catch {
    return [];
  }
}
