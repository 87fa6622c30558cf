#!/usr/bin/env node
// keyport-azure-keyvault: start the Key Vault test server from a shell. Prints KEY=VALUE lines
// (the emulator contract's variables) once it listens, and stops on SIGINT/SIGTERM.
import { readFileSync, realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { PrincipalAccess } from './auth.js';
import { type AzureKeyVaultServerOptions, DEFAULT_AZURE_TOKEN, startAzureKeyVaultServer } from './server.js';

const USAGE = `usage: keyport-azure-keyvault [--mode vault|hsm] [--port N] [--principals FILE.json]
  FILE.json maps bearer tokens to key permissions: { "<token>": "all" | ["get", "sign", ...] }`;

export function parseAzureCliArgs(argv: readonly string[]): AzureKeyVaultServerOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      mode: { type: 'string', default: 'vault' },
      port: { type: 'string', default: '0' },
      principals: { type: 'string' },
    },
    strict: true,
  });
  if (values.mode !== 'vault' && values.mode !== 'hsm')
    throw new Error(`--mode must be vault or hsm\n${USAGE}`);
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65_535)
    throw new Error(`--port must be 0-65535\n${USAGE}`);
  const opts: AzureKeyVaultServerOptions = { mode: values.mode, port };
  if (values.principals) {
    opts.principals = JSON.parse(readFileSync(values.principals, 'utf8')) as Record<string, PrincipalAccess>;
  }
  return opts;
}

async function main(): Promise<void> {
  const opts = parseAzureCliArgs(process.argv.slice(2));
  const server = await startAzureKeyVaultServer(opts);
  const lines = [`KEYPORT_AZUREKV_URL=${server.url}`, `KEYPORT_AZUREKV_CA=${server.caFile}`];
  if (!opts.principals) lines.push(`KEYPORT_AZUREKV_TOKEN=${DEFAULT_AZURE_TOKEN}`);
  process.stdout.write(`${lines.join('\n')}\n`);
  const stop = () => {
    server.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

// Run only as the program itself (also through node_modules/.bin symlinks), not when imported.
function invokedScript(): string {
  try {
    return process.argv[1] ? pathToFileURL(realpathSync(process.argv[1])).href : '';
  } catch {
    return '';
  }
}

if (import.meta.url === invokedScript()) {
  main().catch((e: unknown) => {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(2);
  });
}
