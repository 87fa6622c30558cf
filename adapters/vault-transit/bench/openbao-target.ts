/**
 * The OpenBao target for the benchmark: the variables from the environment when a harness has
 * already started it, otherwise `pnpm emulators up openbao` under this process's lease (and
 * `down` afterwards, which stops it only if this run was its last user).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const repoRoot = resolve(new URL('../../..', import.meta.url).pathname);
const cli = join(repoRoot, 'conformance/bin/emulators.mjs');

export interface Target {
  readonly addr: string;
  readonly token: string;
  release(): void;
}

function readEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(join(repoRoot, '.emulators/env'), 'utf8').split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

export function openbaoTarget(): Target {
  const addr = process.env.KEYPORT_OPENBAO_ADDR;
  const token = process.env.KEYPORT_OPENBAO_TOKEN;
  if (addr && token) return { addr, token, release: () => undefined };
  const lease = String(process.pid);
  const up = spawnSync(process.execPath, [cli, 'up', '--lease', lease, 'openbao'], { stdio: 'inherit' });
  if (up.status !== 0) throw new Error('target openbao is not running: run "pnpm emulators up openbao"');
  const env = readEnv();
  const a = env.KEYPORT_OPENBAO_ADDR;
  const t = env.KEYPORT_OPENBAO_TOKEN;
  if (!a || !t) throw new Error('target openbao is not running: run "pnpm emulators up openbao"');
  return {
    addr: a,
    token: t,
    release: () => {
      spawnSync(process.execPath, [cli, 'down', '--lease', lease, 'openbao'], { stdio: 'inherit' });
    },
  };
}
