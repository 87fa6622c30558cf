// Where Node headers are, offline: used to build pkcs11js (a Node-API addon, so any Node's
// headers serve every line) without the machine's npm `nodedir` setting or a download.
import { copyFileSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join, resolve } from 'node:path';

/** A Node prefix whose include/node has the Node-API headers and common.gypi node-gyp needs. */
export function hasHeaders(prefix) {
  const include = join(prefix, 'include/node');
  return existsSync(join(include, 'node_api.h')) && existsSync(join(include, 'common.gypi'));
}

export function findNodeDir() {
  const candidates = [];
  if (process.env.KEYPORT_NODEDIR) candidates.push(process.env.KEYPORT_NODEDIR);
  candidates.push(resolve(dirname(process.execPath), '..'));
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir !== '' && existsSync(join(dir, 'node'))) candidates.push(resolve(dir, '..'));
  }
  candidates.push('/usr/local', '/usr');
  return candidates.find(hasHeaders);
}

/**
 * A Node-API-only nodedir made offline from the `node-api-headers` package (a devDependency of
 * the workspace): its headers plus the smallest common.gypi node-gyp accepts. Enough for
 * pkcs11js, which uses nothing but Node-API; used when no installed Node ships headers.
 */
export function nodeDirFromNodeApiHeaders(repoRoot) {
  let pkg;
  try {
    pkg = dirname(createRequire(join(repoRoot, 'package.json')).resolve('node-api-headers/package.json'));
  } catch {
    return undefined;
  }
  const nodedir = join(repoRoot, 'node_modules/.cache/keyport-nodedir');
  const include = join(nodedir, 'include/node');
  mkdirSync(include, { recursive: true });
  for (const header of readdirSync(join(pkg, 'include')).filter((f) => f.endsWith('.h'))) {
    copyFileSync(join(pkg, 'include', header), join(include, header));
  }
  writeFileSync(
    join(include, 'common.gypi'),
    "{ 'variables': {}, 'target_defaults': { 'default_configuration': 'Release', 'configurations': { 'Release': { 'cflags': ['-O2'] } } } }\n",
  );
  return nodedir;
}
