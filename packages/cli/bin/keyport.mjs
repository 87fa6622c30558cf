#!/usr/bin/env node
// The `keyport` command. Runs the built CLI (dist/); the repository's tests set
// KEYPORT_CLI_FROM_SOURCE=1 and a TypeScript loader to run src/ directly.
import { existsSync } from 'node:fs';

const fromSource = process.env.KEYPORT_CLI_FROM_SOURCE === '1';
const entry = new URL(fromSource ? '../src/main.ts' : '../dist/main.js', import.meta.url);
if (!fromSource && !existsSync(entry)) {
  process.stderr.write('keyport: the CLI is not built; run "pnpm --filter @keyport/cli build"\n');
  process.exit(2);
}
const { main } = await import(entry.href);
await main(process.argv.slice(2));
