#!/usr/bin/env node
// Runs a command with every emulator up and its variables in the environment, then releases
// them: `node scripts/with-emulators.mjs <command> [args…]`. Benchmarks use it, so `pnpm bench`
// works on a fresh machine the way `pnpm test` does (the vitest global setup does the same).
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readEnvFile } from '../conformance/bin/lib/state.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'conformance/bin/emulators.mjs');
const lease = String(process.pid);
const [command, ...args] = process.argv.slice(2);
if (command === undefined) {
  console.error('usage: node scripts/with-emulators.mjs <command> [args…]');
  process.exit(2);
}

const up = spawnSync(process.execPath, [cli, 'up', '--lease', lease], { stdio: 'inherit' });
if (up.status !== 0) process.exit(up.status ?? 1);
const release = () => spawnSync(process.execPath, [cli, 'down', '--lease', lease], { stdio: 'inherit' });

const env = { ...process.env, ...readEnvFile(join(root, '.emulators/env')) };
const run = spawnSync(command, args, { stdio: 'inherit', env, shell: false });
release();
process.exit(run.status ?? 1);
