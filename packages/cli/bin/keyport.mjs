#!/usr/bin/env node
// The `keyport` command. Runs the bundle built by `pnpm build` (dist/bin/, see rolldown.config.mjs:
// a few files instead of a hundred modules to resolve and compile); the repository's tests set
// KEYPORT_CLI_FROM_SOURCE=1 and a TypeScript loader to run src/ directly.
import { existsSync } from 'node:fs';
import module from 'node:module';
import { homedir } from 'node:os';
import { join } from 'node:path';

const fromSource = process.env.KEYPORT_CLI_FROM_SOURCE === '1';
const entry = new URL(fromSource ? '../src/main.ts' : '../dist/bin/keyport.mjs', import.meta.url);
if (!fromSource && !existsSync(entry)) {
  process.stderr.write('keyport: the CLI is not built; run "pnpm --filter @keyport/cli build"\n');
  process.exit(2);
}
// V8's code cache for every module loaded from here on (Node >= 22.1): a later start skips
// compiling the bundle and its dependencies. NODE_COMPILE_CACHE chooses the directory and
// NODE_DISABLE_COMPILE_CACHE=1 turns it off (Node reads both); otherwise it lives in the user's
// cache directory. A cache that cannot be written only costs speed, never the command.
if (!fromSource && typeof module.enableCompileCache === 'function' && !process.env.NODE_COMPILE_CACHE) {
  try {
    const cache = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
    module.enableCompileCache(join(cache, 'keyport', 'node-compile-cache'));
  } catch {
    // no home directory or no cache: run uncached
  }
}
const { main } = await import(entry.href);
await main(process.argv.slice(2));
