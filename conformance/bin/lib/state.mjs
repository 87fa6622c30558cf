// The harness's record of what it started (`.emulators/state.json`), the env file the tests
// read (`.emulators/env`), and a lock so concurrent `up`/`down` calls (several vitest runs at
// once) never start a target twice or stop one another run still uses.
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { envFile, stateDir, stateFile } from './paths.mjs';
import { isAlive, processStartTime } from './process.mjs';

/** Variables every target's tests get, whatever is running. */
export const alwaysEnv = {
  AWS_ACCESS_KEY_ID: 'testing',
  AWS_SECRET_ACCESS_KEY: 'testing',
  AWS_REGION: 'us-east-1',
};

const lockDir = () => `${stateDir}/lock`;

/**
 * Runs `fn` holding the state lock. The lock is a directory (atomic create) holding the
 * owner's pid; a lock whose owner died is taken over. Waits up to `timeoutMs` — long enough
 * for another caller's cold install.
 */
export async function withStateLock(fn, timeoutMs = 20 * 60_000) {
  mkdirSync(stateDir, { recursive: true });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      mkdirSync(lockDir());
      writeFileSync(`${lockDir()}/owner`, `${process.pid} ${processStartTime(process.pid)}`);
      break;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
      if (lockOwnerDead()) {
        rmSync(lockDir(), { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) {
        throw new Error(`timed out waiting for the harness lock ${lockDir()} (held by another up/down)`);
      }
      await sleep(250);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lockDir(), { recursive: true, force: true });
  }
}

function lockOwnerDead() {
  try {
    const [pid, start] = readFileSync(`${lockDir()}/owner`, 'utf8').split(' ');
    return !isAlive(Number(pid), start);
  } catch {
    // Created but the owner file not yet written: give its creator a moment.
    return false;
  }
}

/**
 * @typedef {object} TargetRecord
 * @property {number | null} pid         process group leader, null for SoftHSM (a library)
 * @property {string | undefined} startTime
 * @property {Record<string, string>} env
 * @property {'cli' | 'lease'} owner     cli: stays until `down`; lease: the last lease holder stops it
 * @property {number[]} leases           pids of vitest runs using it
 * @property {string} log
 * @property {string} version
 * @property {number} installMs
 * @property {number} startMs
 * @property {string} startedAt
 * @property {string[]} [files]          files whose presence proves a pid-less target is up
 */

/** @returns {{ targets: Record<string, TargetRecord> }} */
export function readState() {
  try {
    return JSON.parse(readFileSync(stateFile, 'utf8'));
  } catch {
    return { targets: {} };
  }
}

export function writeState(state) {
  mkdirSync(stateDir, { recursive: true });
  writeAtomic(stateFile, `${JSON.stringify(state, null, 2)}\n`);
  writeEnvFile(state);
}

/** The env file holds the variables of every target that is up, plus the AWS basics. */
export function writeEnvFile(state) {
  const vars = { ...alwaysEnv };
  for (const record of Object.values(state.targets)) Object.assign(vars, record.env);
  const body = Object.entries(vars)
    .map(([k, v]) => `${k}=${shellQuoted(v)}`)
    .join('\n');
  writeAtomic(envFile, `${body}\n`);
}

/**
 * A value as a POSIX shell reads it back (`set -a && . .emulators/env`, as the byok example says):
 * as it is when plainly safe, else in single quotes. Azurite's connection string holds `;`, which
 * a shell took as the end of the command, cutting the variable short. The harness's own loaders
 * (global-setup.ts, scripts/with-emulators.mjs) undo the quoting.
 */
export function shellQuoted(value) {
  return /^[A-Za-z0-9_./:@%+,=-]*$/.test(value) ? value : `'${value.replaceAll("'", "'\\''")}'`;
}

/**
 * The env file's variables as the shell reads them (`shellQuoted` undone): for the harness's own
 * loaders, the vitest global setup and scripts/with-emulators.mjs. Lines are `KEY=VALUE`; values
 * never contain newlines.
 */
export function readEnvFile(path) {
  const vars = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0 && !line.startsWith('#')) vars[line.slice(0, eq)] = unquoted(line.slice(eq + 1));
  }
  return vars;
}

function unquoted(value) {
  return value.length >= 2 && value.startsWith("'") && value.endsWith("'")
    ? value.slice(1, -1).replaceAll("'\\''", "'")
    : value;
}

function writeAtomic(path, text) {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600 });
  renameSync(tmp, path);
}
