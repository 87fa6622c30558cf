#!/usr/bin/env node
// keyport-cloud-kms: the Cloud KMS test server from a shell (see README-gcp.md).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { isMain, parsePort, runCli, type Started, UsageError } from '../shared/cli.js';
import { type CloudKmsServerOptions, startCloudKmsServer } from './server.js';

export const GCP_USAGE = `usage: keyport-cloud-kms [options]

Serves google.cloud.kms.v1.KeyManagementService (and IAMPolicy, Operations) over gRPC, and the
same service over HTTP/JSON (REST), on loopback, for offline tests.

options:
  --host H                interface to listen on (default 127.0.0.1)
  --port N                gRPC port (default 0: a free one)
  --rest-port N           REST (HTTP/JSON) port (default 0: a free one)
  --no-rest               serve gRPC only
  --tls                   serve gRPC and REST over TLS with a generated loopback certificate
  --tls-cert FILE --tls-key FILE
                          serve TLS with this PEM certificate and key
  --principals FILE       JSON: { "<bearer token>": "user:alice@example.com" }; calls naming no
                          principal act as the project owner
  --state FILE            keep the state in FILE (read at start, rewritten after each change);
                          it holds key material in the clear: test keys only
  -h, --help              this text

Prints KEYPORT_GCPKMS_GRPC=host:port, KEYPORT_GCPKMS_REST=<url> (and KEYPORT_GCPKMS_CA=) lines,
then "keyport-cloud-kms ready grpc=<host:port> rest=<url> ca=<pem|none> token=<token>".
SIGTERM or SIGINT stops it.`;

export interface CloudKmsCliOptions extends CloudKmsServerOptions {
  rest: boolean;
}

export function parseGcpCliArgs(argv: readonly string[]): CloudKmsCliOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      'rest-port': { type: 'string' },
      'no-rest': { type: 'boolean' },
      tls: { type: 'boolean' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      principals: { type: 'string' },
      state: { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  const opts: CloudKmsCliOptions = { port: parsePort('--port', values.port), rest: !values['no-rest'] };
  if (values.host !== undefined) opts.host = values.host;
  if (opts.rest) opts.restPort = parsePort('--rest-port', values['rest-port']);
  if ((values['tls-cert'] === undefined) !== (values['tls-key'] === undefined))
    throw new UsageError('--tls-cert and --tls-key go together');
  if (values['tls-cert'] && values['tls-key'])
    opts.tls = { certFile: values['tls-cert'], keyFile: values['tls-key'] };
  else if (values.tls) opts.tls = true;
  if (values.principals) {
    opts.principals = JSON.parse(readFileSync(values.principals, 'utf8')) as Record<string, string>;
  }
  if (values.state) opts.stateFile = values.state;
  return opts;
}

/** Any bearer token is accepted when no principals are configured; clients need one to send. */
export const CLOUD_KMS_ANY_TOKEN = 'keyport-test-token';

export async function startGcpFromArgs(argv: string[]): Promise<Started> {
  const opts = parseGcpCliArgs(argv);
  const server = await startCloudKmsServer(opts);
  const env: Record<string, string> = { KEYPORT_GCPKMS_GRPC: server.address };
  if (server.restUrl) env.KEYPORT_GCPKMS_REST = server.restUrl;
  if (server.caFile) env.KEYPORT_GCPKMS_CA = server.caFile;
  const token = opts.principals ? '(see --principals)' : CLOUD_KMS_ANY_TOKEN;
  return {
    env,
    ready: `keyport-cloud-kms ready grpc=${server.address} rest=${server.restUrl ?? 'none'} ca=${server.caFile ?? 'none'} token=${token}`,
    stop: () => server.stop(),
  };
}

if (isMain(import.meta.url)) void runCli(GCP_USAGE, process.argv.slice(2), startGcpFromArgs);
