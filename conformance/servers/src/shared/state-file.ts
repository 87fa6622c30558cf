import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';

// A server's state on disk (the bins' --state option): one JSON document, replaced atomically
// (written beside it, then renamed) after every change, so a killed server leaves either the
// old or the new state, never half of one. It holds private key material in the clear, as the
// server's memory does: it is for tests, made 0600, and must never hold a real key.
export function readState<T>(file: string): T | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new Error(`the state file ${file} is not valid JSON; move it away to start empty`);
  }
}

export function writeState(file: string, state: unknown): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, JSON.stringify(state), { mode: 0o600 });
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}
