#!/usr/bin/env node
// Makes sure a headless Chromium is installed for the HTML report test: Debian's `chromium`
// package through apt (the only browser source here, as for SoftHSM), only when it is missing,
// serialised with the harness's apt lock. Idempotent; prints the executable's path.
// Usage: node packages/policy/scripts/ensure-chromium.mjs
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const CHROMIUM = process.env.KEYPORT_CHROMIUM ?? '/usr/bin/chromium';
const TIMEOUT_MS = 15 * 60_000;

export function ensureChromium() {
  if (existsSync(CHROMIUM)) return CHROMIUM;
  const reproduce = 'apt-get update && apt-get install -y chromium';
  if (process.getuid?.() !== 0) {
    throw new Error(`${CHROMIUM} is missing and installing it needs root: sudo sh -c '${reproduce}'`);
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [
    ['update', '-qq'],
    ['install', '-y', '-qq', 'chromium'],
  ]) {
    execFileSync('flock', ['/tmp/keyport-apt.lock', 'apt-get', ...args], {
      env,
      stdio: 'inherit',
      timeout: TIMEOUT_MS,
    });
  }
  if (!existsSync(CHROMIUM)) throw new Error(`chromium installed but ${CHROMIUM} is absent (${reproduce})`);
  return CHROMIUM;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) console.log(ensureChromium());
