/** The providers' Go samples as built binaries, from build-go-samples.mjs. */
import { join } from 'node:path';
import { run } from './run-child.js';

/**
 * The binaries of a folder of Go samples under fixtures/, from build-go-samples.mjs (the harness
 * ran it when it installed the target; on a warm cache it only names them). Its failure (no Go, a
 * module the proxy would not serve) fails the test with its message: never a skip.
 */
export async function builtGoSamples(
  folder: string,
): Promise<{ driver: string; quickstart?: string; buildMs: number }> {
  const r = await run(
    process.execPath,
    [join(import.meta.dirname, 'build-go-samples.mjs'), folder],
    process.env,
  );
  if (r.code !== 0) throw new Error(`building the Go samples in ${folder} failed:\n${r.stderr}${r.stdout}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '') as {
    driver: string;
    quickstart?: string;
    buildMs: number;
  };
}
