#!/usr/bin/env node
// keyport-azure-keyvault: the Key Vault test server from a shell (see README-azure.md).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { isMain, parsePort, runCli, type Started, UsageError } from '../shared/cli.js';
import type { PrincipalAccess } from './auth.js';
import { type AzureKeyVaultServerOptions, DEFAULT_AZURE_TOKEN, startAzureKeyVaultServer } from './server.js';

export const AZURE_USAGE = `usage: keyport-azure-keyvault [options]

Serves the Azure Key Vault keys REST API over HTTPS on loopback, for offline tests.

options:
  --mode vault|hsm        a key vault (default) or a Managed HSM
  --host 127.0.0.1|localhost
                          interface and host name of the vault URL (default 127.0.0.1)
  --port N                port (default 0: a free one)
  --principals FILE       JSON: { "<bearer token>": "all" | ["get", "sign", ...] }; without it the
                          token ${DEFAULT_AZURE_TOKEN} has every permission
  --tls-cert FILE --tls-key FILE
                          serve this PEM certificate and key instead of a generated one
  --state FILE            keep the keys in FILE (read at start, rewritten after each change);
                          it holds private keys in the clear: test keys only
  --soft-delete-days N    soft-delete retention, 7-90 (default 90)
  -h, --help              this text

Prints KEYPORT_AZUREKV_URL=, KEYPORT_AZUREKV_CA= (and KEYPORT_AZUREKV_TOKEN=) lines, the
IDENTITY_ENDPOINT= and IDENTITY_HEADER= that DefaultAzureCredential reads, then
"keyport-azure-keyvault ready url=<url> ca=<pem> token=<token>". SIGTERM or SIGINT stops it.`;

export function parseAzureCliArgs(argv: readonly string[]): AzureKeyVaultServerOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      mode: { type: 'string', default: 'vault' },
      host: { type: 'string' },
      port: { type: 'string', default: '0' },
      principals: { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      state: { type: 'string' },
      'soft-delete-days': { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.mode !== 'vault' && values.mode !== 'hsm') throw new UsageError('--mode must be vault or hsm');
  const opts: AzureKeyVaultServerOptions = { mode: values.mode, port: parsePort('--port', values.port) };
  if (values.host !== undefined) {
    if (values.host !== '127.0.0.1' && values.host !== 'localhost')
      throw new UsageError('--host must be 127.0.0.1 or localhost (the server listens on loopback only)');
    opts.host = values.host;
  }
  if (values.principals) {
    opts.principals = JSON.parse(readFileSync(values.principals, 'utf8')) as Record<string, PrincipalAccess>;
  }
  if ((values['tls-cert'] === undefined) !== (values['tls-key'] === undefined))
    throw new UsageError('--tls-cert and --tls-key go together');
  if (values['tls-cert'] && values['tls-key'])
    opts.tls = { certFile: values['tls-cert'], keyFile: values['tls-key'] };
  if (values.state) opts.stateFile = values.state;
  if (values['soft-delete-days'] !== undefined) {
    const days = Number(values['soft-delete-days']);
    if (!Number.isInteger(days) || days < 7 || days > 90)
      throw new UsageError('--soft-delete-days must be 7-90');
    opts.softDeleteRetentionDays = days;
  }
  return opts;
}

export async function startAzureFromArgs(argv: string[]): Promise<Started> {
  const opts = parseAzureCliArgs(argv);
  const server = await startAzureKeyVaultServer(opts);
  const token = opts.principals ? '(see --principals)' : DEFAULT_AZURE_TOKEN;
  const env: Record<string, string> = { KEYPORT_AZUREKV_URL: server.url, KEYPORT_AZUREKV_CA: server.caFile };
  if (!opts.principals) env.KEYPORT_AZUREKV_TOKEN = DEFAULT_AZURE_TOKEN;
  // What DefaultAzureCredential / ManagedIdentityCredential read (README-azure.md, "Credentials").
  env.IDENTITY_ENDPOINT = server.identity.endpoint;
  env.IDENTITY_HEADER = server.identity.header;
  return {
    env,
    ready: `keyport-azure-keyvault ready url=${server.url} ca=${server.caFile} token=${token}`,
    stop: () => server.stop(),
  };
}

if (isMain(import.meta.url)) void runCli(AZURE_USAGE, process.argv.slice(2), startAzureFromArgs);
