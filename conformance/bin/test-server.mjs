#!/usr/bin/env node
// Runs one of keyport's own test servers (TypeScript, in conformance/servers/src) as a plain
// Node process: `node test-server.mjs <azure-keyvault|gcp-kms> <ready-file> <data-dir>`.
//
// Node 20 cannot load TypeScript, and the servers are not built into dist/ for tests, so the
// source is loaded through vite's module runner (`runnerImport`, the same machinery vitest
// uses) with the workspace's "source" export condition. When the server listens, its address
// goes to <ready-file> as JSON; SIGTERM or SIGINT stops it cleanly.
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoRoot } from './lib/paths.mjs';
import { testServerSources } from './lib/targets.mjs';

const [name, readyFile, dataDir] = process.argv.slice(2);
const source = testServerSources[name];
if (!source || !readyFile || !dataDir) {
  process.stderr.write('usage: node test-server.mjs <azure-keyvault|gcp-kms> <ready-file> <data-dir>\n');
  process.exit(2);
}

// vite is vitest's dependency, not the root's: resolve it from vitest's location.
const requireFromVitest = createRequire(
  createRequire(join(repoRoot, 'package.json')).resolve('vitest/package.json'),
);
const { runnerImport } = await import(pathToFileURL(requireFromVitest.resolve('vite')).href);

const conditions = ['source', 'node', 'import', 'default'];
mkdirSync(dataDir, { recursive: true });
const { module } = await runnerImport(join(repoRoot, source.file), {
  configFile: false,
  root: repoRoot,
  logLevel: 'error',
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ['node'] } },
});
const start = module[source.start];
if (typeof start !== 'function') {
  process.stderr.write(`${source.file} does not export a function ${source.start}\n`);
  process.exit(1);
}

const server = await start({ host: '127.0.0.1', port: 0, dir: dataDir });
const port = server.port ?? Number(new URL(server.url ?? `http://${server.address}`).port);
writeFileSync(
  readyFile,
  JSON.stringify({
    url: server.url,
    caFile: server.caFile,
    address: server.address,
    // The Cloud KMS server's REST (HTTP/JSON) surface.
    restUrl: server.restUrl,
    port,
    // The bearer token the Key Vault server grants every permission when started without principals.
    token: module.DEFAULT_AZURE_TOKEN,
    pid: process.pid,
  }),
);
process.stdout.write(`${name} listening on ${server.url ?? server.address ?? port}\n`);

let stopping = false;
async function stop(signal) {
  if (stopping) return;
  stopping = true;
  process.stdout.write(`${name} stopping (${signal})\n`);
  const force = setTimeout(() => process.exit(1), 5000);
  force.unref();
  try {
    await server.stop();
  } finally {
    process.exit(0);
  }
}
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
