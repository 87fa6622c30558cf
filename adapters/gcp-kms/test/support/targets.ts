/**
 * How the tests reach their targets: keyport's Cloud KMS gRPC server started in-process (its
 * clock and faults are then ours to drive), and drongo over REST from the harness's environment.
 */
import { credentials } from '@grpc/grpc-js';
import { requireTarget } from '@keyport/conformance/harness';
import { CLOUD_KMS_PRINCIPAL_HEADER, type CloudKmsServer, startCloudKmsServer } from '@keyport/test-servers';
import { OAuth2Client } from 'google-auth-library';
import { GcpKmsProvider } from '../../src/index.js';
import type { GcpKmsProviderOptions } from '../../src/options.js';

/** A static access token: the client never looks for real credentials or GCE metadata. */
export function staticAuth(token = 'keyport-test'): OAuth2Client {
  const auth = new OAuth2Client();
  auth.setCredentials({ access_token: token, expiry_date: Date.now() + 3_600_000 });
  return auth;
}

export async function startServer(): Promise<CloudKmsServer> {
  return startCloudKmsServer();
}

export function grpcProvider(
  server: { port: number },
  extra: Partial<GcpKmsProviderOptions> & { principal?: string } = {},
): GcpKmsProvider {
  const { principal, ...rest } = extra;
  return new GcpKmsProvider({
    apiEndpoint: '127.0.0.1',
    port: server.port,
    sslCreds: credentials.createInsecure(),
    authClient: staticAuth(),
    ...(principal !== undefined ? { headers: { [CLOUD_KMS_PRINCIPAL_HEADER]: principal } } : {}),
    ...rest,
  });
}

/** The adapter's REST path (the client's fallback mode) against the test server's HTTP/JSON surface. */
export function restProvider(
  server: CloudKmsServer,
  extra: Partial<GcpKmsProviderOptions> & { principal?: string } = {},
): GcpKmsProvider {
  const { principal, ...rest } = extra;
  if (server.restUrl === undefined) throw new Error('the Cloud KMS test server was started without REST');
  const url = new URL(server.restUrl);
  return new GcpKmsProvider({
    transport: 'rest',
    protocol: 'http',
    apiEndpoint: url.hostname,
    port: Number(url.port),
    authClient: staticAuth(),
    ...(principal !== undefined ? { headers: { [CLOUD_KMS_PRINCIPAL_HEADER]: principal } } : {}),
    ...rest,
  });
}

/** drongo as the harness started it (fails, never skips, when it is not running). */
export function drongoProvider(extra: Partial<GcpKmsProviderOptions> = {}): GcpKmsProvider {
  const endpoint = new URL(requireTarget('drongo').KEYPORT_DRONGO_ENDPOINT);
  return new GcpKmsProvider({
    transport: 'rest',
    protocol: 'http',
    apiEndpoint: endpoint.hostname,
    port: Number(endpoint.port),
    authClient: staticAuth(),
    ...extra,
  });
}

export const signal = (): { signal: AbortSignal } => ({ signal: new AbortController().signal });
