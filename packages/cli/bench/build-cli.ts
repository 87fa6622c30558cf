/**
 * Builds the CLI as `pnpm build` does, tsc then rolldown, so a bench runs the bin a user runs
 * (bin/keyport.mjs loading dist/bin/keyport.mjs); its workspace dependencies, external to the
 * bundle, are built by turbo's ^build.
 */
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CLI_ROOT = fileURLToPath(new URL('..', import.meta.url));
export const BIN = join(CLI_ROOT, 'bin/keyport.mjs');

export function buildCli(): void {
  const tsc = join(dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', join(CLI_ROOT, 'tsconfig.build.json')], { stdio: 'inherit' });
  const rolldown = join(CLI_ROOT, 'node_modules/rolldown/bin/cli.mjs');
  execFileSync(process.execPath, [rolldown, '--config', join(CLI_ROOT, 'rolldown.config.mjs')], {
    cwd: CLI_ROOT,
    stdio: 'inherit',
  });
}
