// Where Node headers are, offline: used to build pkcs11js (a Node-API addon, so any Node's
// headers serve every line) without the machine's npm `nodedir` setting or a download.
import { existsSync } from 'node:fs';
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
