#!/usr/bin/env node
// Builds pkcs11js (the PKCS#11 adapter's native addon) without depending on the machine's npm
// settings or on downloading Node headers. Run by the root `postinstall`; pnpm itself is told not
// to build pkcs11js (`pnpm.ignoredBuiltDependencies`) because node-gyp, left alone, reads
// `nodedir` from the user's npm configuration or downloads headers from nodejs.org.
//
// pkcs11js uses only Node-API, so headers from any installed Node ≥ 18 build an addon that loads
// on every Node line (22, 24, 26). The headers are looked for, offline, in:
//   1. KEYPORT_NODEDIR (an explicit choice);
//   2. the running Node's own prefix (official nodejs.org builds ship include/node);
//   3. the prefix of every `node` on PATH, then /usr/local and /usr (distribution packages).
//   4. failing all of those, the `node-api-headers` package (a workspace devDependency, so
//      already installed): its Node-API headers and a minimal common.gypi.
// The npm registry's `node` package (`npx -y node@24`) ships no headers; running under it still
// finds the system Node's, or falls back to 4.
//
// Usage: node scripts/build-native.mjs [--force] [--node-api-headers]
//   --node-api-headers skips 1-3 (to check that the fallback builds a working addon).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findNodeDir, nodeDirFromNodeApiHeaders } from './node-headers.mjs';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const force = process.argv.includes('--force');
const onlyNodeApiHeaders = process.argv.includes('--node-api-headers');

/** The folder holding pkcs11js, as the PKCS#11 adapter resolves it; undefined when not installed. */
function pkcs11jsDir() {
  for (const from of ['adapters/pkcs11', 'packages/byok', 'conformance']) {
    const manifest = join(repoRoot, from, 'package.json');
    if (!existsSync(manifest)) continue;
    try {
      return dirname(createRequire(manifest).resolve('pkcs11js/package.json'));
    } catch {}
  }
  return undefined;
}

/** True when the addon exists and loads in this Node. */
function addonLoads(dir) {
  const addon = join(dir, 'build/Release/pkcs11.node');
  if (!existsSync(addon)) return false;
  const probe = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(addon)})`], { stdio: 'ignore' });
  return probe.status === 0;
}

/** node-gyp as shipped with the package manager running us, or with the npm on PATH. */
function findNodeGyp() {
  const candidates = [];
  const { npm_config_node_gyp: fromPackageManager } = process.env; // set by npm and pnpm for scripts
  if (fromPackageManager) candidates.push(fromPackageManager);
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '' || !existsSync(join(dir, 'npm'))) continue;
    const prefix = resolve(dir, '..');
    candidates.push(join(prefix, 'lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'));
  }
  try {
    const npmRoot = execFileSync('npm', ['root', '-g'], { encoding: 'utf8' }).trim();
    candidates.push(join(npmRoot, 'npm/node_modules/node-gyp/bin/node-gyp.js'));
  } catch {}
  return candidates.find((c) => existsSync(c));
}

const dir = pkcs11jsDir();
if (dir === undefined) process.exit(0); // the PKCS#11 adapter is not installed here: nothing to build
if (!force && addonLoads(dir)) {
  console.log(`pkcs11js: ${join(dir, 'build/Release/pkcs11.node')} is built`);
  process.exit(0);
}

const nodedir = (onlyNodeApiHeaders ? undefined : findNodeDir()) ?? nodeDirFromNodeApiHeaders(repoRoot);
if (nodedir === undefined) {
  console.error(
    [
      'pkcs11js: no Node headers found offline (include/node/node_api.h and common.gypi).',
      'Install a Node that ships them (the nodejs.org tarball, or the distribution package with',
      'headers, e.g. Debian/Ubuntu "nodejs" from NodeSource, which puts them in /usr/include/node),',
      'or point KEYPORT_NODEDIR at such a Node prefix, then run: node scripts/build-native.mjs',
    ].join('\n'),
  );
  process.exit(1);
}
const nodeGyp = findNodeGyp();
if (nodeGyp === undefined) {
  console.error('pkcs11js: node-gyp was not found (it ships with npm); install npm and run again');
  process.exit(1);
}

// Only our explicit --nodedir counts: drop any nodedir or devdir the machine's npm set.
const env = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !/^npm_config_(nodedir|devdir|tarball|dist_url)$/i.test(k)),
);
console.log(`pkcs11js: building with headers from ${nodedir}/include/node`);
const build = spawnSync(process.execPath, [nodeGyp, 'rebuild', `--nodedir=${nodedir}`], {
  cwd: dir,
  env,
  stdio: ['ignore', 'inherit', 'inherit'],
});
if (build.status !== 0 || !addonLoads(dir)) {
  console.error(`pkcs11js: the build failed (node-gyp exit ${build.status}) in ${dir}`);
  process.exit(1);
}
console.log(`pkcs11js: built ${join(dir, 'build/Release/pkcs11.node')}`);
