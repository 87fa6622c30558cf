// Where the harness keeps things. Installs live in a cache outside the clone so a second
// checkout (or CI's fresh clone on the same machine) reuses them; runtime state (pids, logs,
// data dirs, the env file) lives in the clone under `.emulators/`, which is gitignored.
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

export const cacheDir = process.env.KEYPORT_CACHE ?? join(homedir(), '.cache', 'keyport');
export const venvDir = join(cacheDir, 'venv');
export const venvBin = join(venvDir, 'bin');
export const goBin = join(cacheDir, 'bin');
export const stampDir = join(cacheDir, 'stamps');
export const azuriteDir = join(cacheDir, 'azurite');
export const esdkJavaDir = join(cacheDir, 'esdk-java');
export const esdkGoDir = join(cacheDir, 'esdk-go');

export const stateDir = process.env.KEYPORT_EMULATORS_DIR ?? join(repoRoot, '.emulators');
export const stateFile = join(stateDir, 'state.json');
export const envFile = join(stateDir, 'env');

export function logFile(target) {
  return join(stateDir, `${target}.log`);
}
