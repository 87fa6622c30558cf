#!/usr/bin/env node
// Runs a command on a Node line keyport supports (>= 22.12). When the `node` running this
// script is older — a fresh machine's system Node 20, past its end of life — Node 24 is taken
// from the npm registry's `node` package (`npx -y node@24`) and put first on PATH for the
// command, so the README's two commands work unchanged on such a machine.
//
// Usage: node scripts/on-supported-node.mjs <command> [args...]   (run through a shell)
import { execFileSync, spawn } from 'node:child_process';
import { delimiter, dirname } from 'node:path';

const [major, minor] = process.versions.node.split('.').map(Number);
const supported = major > 22 || (major === 22 && minor >= 12);
const command = process.argv.slice(2).join(' ');
if (command === '') {
  console.error('usage: node scripts/on-supported-node.mjs <command> [args...]');
  process.exit(2);
}

let path = process.env.PATH ?? '';
if (!supported) {
  let node24;
  try {
    node24 = execFileSync('npx', ['-y', 'node@24', '-p', 'process.execPath'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    }).trim();
  } catch {
    console.error(
      `Node ${process.version} is older than keyport's >=22.12 and node@24 could not be fetched from npm`,
    );
    process.exit(1);
  }
  const version = execFileSync(node24, ['--version'], { encoding: 'utf8' }).trim();
  console.error(
    `[keyport] Node ${process.version} is older than keyport's >=22.12: running on Node ${version} from npm`,
  );
  path = `${dirname(node24)}${delimiter}${path}`;
}

const child = spawn(command, { shell: true, stdio: 'inherit', env: { ...process.env, PATH: path } });
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal === 'SIGINT' ? 130 : 143)));
