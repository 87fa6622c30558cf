import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const HOOKS = fileURLToPath(
  new URL('../../../../packages/cli/test/support/register-ts.mjs', import.meta.url),
);

/** The children still running, killed by `killChildren` (a test that failed left them behind). */
const running = new Set<ChildProcess>();

/**
 * Runs `script` (a child script that imports ./parent-bound.mjs first) under the TypeScript hooks
 * and resolves with its stdout parsed as JSON; rejects with its stderr when it exits non-zero.
 * Its stdin is a pipe this process holds: the child exits when this process ends.
 */
export function runChild<T>(script: string, args: string[], env: NodeJS.ProcessEnv): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', HOOKS, script, ...args], {
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    running.add(child);
    let out = '';
    let err = '';
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stderr?.on('data', (c: Buffer) => {
      err += c.toString();
    });
    child.once('error', (e) => {
      running.delete(child);
      reject(e);
    });
    child.once('close', (code, signal) => {
      running.delete(child);
      if (code !== 0) reject(new Error(`${script} exited with ${code ?? signal}: ${err}`));
      else resolve(JSON.parse(out) as T);
    });
  });
}

/** Kills every child still running (for afterAll). */
export function killChildren(): void {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
}
