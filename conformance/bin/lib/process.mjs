// Child processes: detached starts (own process group, so a stop reaches every descendant),
// liveness checks that survive pid reuse, bounded waits, and one error type that says which
// target failed, at which step, and how to reproduce it by hand.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, writeSync } from 'node:fs';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export class HarnessError extends Error {
  /**
   * @param {string} target
   * @param {string} step   install | start | ready | init
   * @param {string} message
   * @param {{ reproduce?: string, log?: string }} [extra]
   */
  constructor(target, step, message, extra = {}) {
    super(`target ${target} failed at step "${step}": ${message}`);
    this.name = 'HarnessError';
    this.target = target;
    this.step = step;
    this.reproduce = extra.reproduce;
    this.log = extra.log;
  }

  /** The full text printed to the user: the message, how to reproduce, and the log tail. */
  describe() {
    const lines = [this.message];
    if (this.reproduce) lines.push(`  reproduce: ${this.reproduce}`);
    if (this.log) {
      lines.push(`  log: ${this.log}`);
      const tail = tailFile(this.log, 30);
      if (tail) lines.push(tail.replace(/^/gm, '    | '));
    }
    return lines.join('\n');
  }
}

/** Process start time in clock ticks since boot (field 22 of /proc/<pid>/stat), or undefined. */
export function processStartTime(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19];
  } catch {
    return undefined;
  }
}

/** True when `pid` is alive and is still the process we started (not a reused pid). */
export function isAlive(pid, startTime) {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if (err.code !== 'EPERM') return false;
  }
  const now = processStartTime(pid);
  if (now === undefined) return false;
  // A zombie (state Z) has exited; its parent has not reaped it yet.
  try {
    const state = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0];
    if (state === 'Z') return false;
  } catch {
    return false;
  }
  return startTime === undefined || now === startTime;
}

/**
 * Processes started by this process and not yet written to the state file: an interrupt
 * kills them, since nothing else would know to. `recorded(pid)` takes one off the list.
 */
export const unrecorded = new Map();

export function recorded(pid) {
  unrecorded.delete(pid);
}

/**
 * Starts `command` detached in its own process group with stdout and stderr appended to
 * `log`. The harness does not keep a handle on it: `stopGroup(pid)` ends it later, possibly
 * from another process.
 */
export function spawnDetached(command, args, { env, cwd, log }) {
  const fd = openSync(log, 'a');
  try {
    const child = spawn(command, args, {
      cwd,
      env,
      detached: true,
      stdio: ['ignore', fd, fd],
    });
    const spawned = new Promise((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    child.unref();
    return spawned.then(() => {
      const proc = { pid: child.pid, startTime: processStartTime(child.pid) };
      unrecorded.set(proc.pid, proc);
      return proc;
    });
  } finally {
    closeSync(fd);
  }
}

/** SIGTERM to the whole group, then SIGKILL if it is still there after `graceMs`. */
export async function stopGroup(pid, startTime, graceMs = 5000) {
  unrecorded.delete(pid);
  if (!isAlive(pid, startTime)) return;
  signalGroup(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid, startTime)) return;
    await sleep(100);
  }
  signalGroup(pid, 'SIGKILL');
  const killDeadline = Date.now() + 2000;
  while (Date.now() < killDeadline && isAlive(pid, startTime)) await sleep(50);
}

/** Synchronous SIGKILL of a group: for exit and signal handlers, which cannot await. */
export function killGroupNow(pid, startTime) {
  if (isAlive(pid, startTime)) signalGroup(pid, 'SIGKILL');
}

function signalGroup(pid, signal) {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

/**
 * Polls `probe` until it returns a truthy value or `timeoutMs` passes. `alive`, when given,
 * is checked on each round so a crashed process fails fast instead of timing out.
 */
export async function waitFor(probe, { timeoutMs, intervalMs = 200, alive, what }) {
  const deadline = Date.now() + timeoutMs;
  let lastError;
  while (Date.now() < deadline) {
    if (alive && !alive()) {
      throw new Error(`the process exited while waiting for ${what}`);
    }
    try {
      const value = await probe();
      if (value) return value;
    } catch (err) {
      lastError = err;
    }
    await sleep(intervalMs);
  }
  const why = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
}

/** A port that was free on 127.0.0.1 a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/**
 * Runs a command to completion with a timeout, output captured (and appended to `log` when
 * given). Rejects with the exit code and the output tail.
 */
export function run(command, args, { env, cwd, timeoutMs, log } = {}) {
  return new Promise((resolve, reject) => {
    const fd = log ? openSync(log, 'a') : undefined;
    const child = spawn(command, args, {
      cwd,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let output = '';
    const collect = (chunk) => {
      output += chunk.toString();
      if (output.length > 64_000) output = output.slice(-32_000);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const timer = setTimeout(() => {
      signalGroup(child.pid, 'SIGKILL');
      finish(new Error(`timed out after ${timeoutMs} ms`));
    }, timeoutMs ?? 600_000);
    let done = false;
    function finish(err) {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (fd !== undefined) {
        try {
          writeSync(fd, output);
        } finally {
          closeSync(fd);
        }
      }
      if (err) {
        err.output = output;
        reject(err);
      } else resolve(output);
    }
    child.once('error', (err) => finish(err));
    child.once('close', (code, signal) => {
      if (code === 0) finish();
      else finish(new Error(`exited with ${signal ?? `code ${code}`}: ${lastLines(output, 15)}`));
    });
  });
}

export function lastLines(text, n) {
  return text.trimEnd().split('\n').slice(-n).join('\n');
}

export function tailFile(path, n) {
  if (!existsSync(path)) return '';
  const text = readFileSync(path, 'utf8');
  return lastLines(text, n);
}
