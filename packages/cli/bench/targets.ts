/**
 * The emulators the benchmark needs (moto, OpenBao): the variables from the environment when
 * a harness already started them, otherwise `pnpm emulators up` under this process's lease, and
 * `down` afterwards (which stops a target only if this run was its last user).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const repoRoot = resolve(new URL('../../..', import.meta.url).pathname);
const cli = join(repoRoot, 'conformance/bin/emulators.mjs');
const NEEDED = ['KEYPORT_MOTO_ENDPOINT', 'KEYPORT_OPENBAO_ADDR', 'KEYPORT_OPENBAO_TOKEN'] as const;

export const REPO_ROOT = repoRoot;

export interface Targets {
  readonly env: Readonly<Record<(typeof NEEDED)[number], string>>;
  release(): void;
}

function pick(source: Record<string, string | undefined>): Targets['env'] | undefined {
  const out: Record<string, string> = {};
  for (const n of NEEDED) {
    const v = source[n];
    if (v === undefined || v === '') return undefined;
    out[n] = v;
  }
  return out as Targets['env'];
}

export function benchTargets(): Targets {
  const ready = pick(process.env);
  if (ready !== undefined) return { env: ready, release: () => undefined };
  const lease = String(process.pid);
  const names = ['moto', 'openbao'];
  const up = spawnSync(process.execPath, [cli, 'up', '--lease', lease, ...names], { stdio: 'inherit' });
  const fromFile: Record<string, string> = {};
  if (up.status === 0) {
    for (const line of readFileSync(join(repoRoot, '.emulators/env'), 'utf8').split('\n')) {
      const eq = line.indexOf('=');
      if (eq > 0) fromFile[line.slice(0, eq)] = line.slice(eq + 1);
    }
  }
  const env = pick(fromFile);
  if (env === undefined) {
    throw new Error('targets moto and openbao are not running: run "pnpm emulators up moto openbao"');
  }
  return {
    env,
    release: () => {
      spawnSync(process.execPath, [cli, 'down', '--lease', lease, ...names], { stdio: 'inherit' });
    },
  };
}
