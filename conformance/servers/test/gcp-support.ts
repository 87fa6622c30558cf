import { KeyManagementServiceClient } from '@google-cloud/kms';
import * as grpc from '@grpc/grpc-js';
import { OAuth2Client } from 'google-auth-library';
import { expect } from 'vitest';
import {
  CLOUD_KMS_PRINCIPAL_HEADER,
  type CloudKmsServer,
  type CloudKmsServerOptions,
  startCloudKmsServer,
} from '../src/gcp/index.js';

// Shared set-up for the Cloud KMS server tests: a server on a free port and the official JS
// client pointed at it over an insecure channel, with static credentials so the client never
// looks for GCE metadata.
export const LOCATION = 'projects/keyport-test/locations/us-east1';

export interface Harness {
  server: CloudKmsServer;
  client: KeyManagementServiceClient;
  close(): Promise<void>;
}

export function makeClient(port: number): KeyManagementServiceClient {
  const authClient = new OAuth2Client();
  authClient.setCredentials({ access_token: 'keyport-test-token' });
  return new KeyManagementServiceClient({
    apiEndpoint: '127.0.0.1',
    port,
    sslCreds: grpc.credentials.createInsecure(),
    authClient,
  });
}

export async function startHarness(options: CloudKmsServerOptions = {}): Promise<Harness> {
  const server = await startCloudKmsServer(options);
  const client = makeClient(server.port);
  return {
    server,
    client,
    async close() {
      await client.close();
      await server.stop();
    },
  };
}

/** Call options naming the calling principal (the server's documented departure). */
export const as = (principal: string) => ({
  otherArgs: { headers: { [CLOUD_KMS_PRINCIPAL_HEADER]: principal } },
});

/** Asserts that `promise` fails with gRPC status `code`. */
export async function expectCode(promise: Promise<unknown>, code: grpc.status): Promise<void> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected status ${grpc.status[code]}`).toBeInstanceOf(Error);
  expect((err as { code?: number }).code, (err as Error).message).toBe(code);
}

let counter = 0;
export const uniqueId = (prefix: string): string => `${prefix}-${Date.now().toString(36)}-${counter++}`;

export async function newKeyRing(client: KeyManagementServiceClient): Promise<string> {
  const [ring] = await client.createKeyRing({ parent: LOCATION, keyRingId: uniqueId('ring'), keyRing: {} });
  return ring.name!;
}

/** Bytes fields of responses, typed loosely by the client, as a Buffer. */
export const bytes = (value: string | Uint8Array | null | undefined): Buffer =>
  typeof value === 'string' ? Buffer.from(value, 'base64') : Buffer.from(value ?? new Uint8Array());

// The IAM methods are typed with the protobuf classes (which carry toJSON); tests pass plain
// objects, exactly what the client serialises.
type IamGet = Parameters<KeyManagementServiceClient['getIamPolicy']>[0];
type IamSet = Parameters<KeyManagementServiceClient['setIamPolicy']>[0];
type IamTest = Parameters<KeyManagementServiceClient['testIamPermissions']>[0];
export const iamGet = (r: Omit<IamGet, 'toJSON'>): IamGet => r as IamGet;
export const iamSet = (r: Omit<IamSet, 'toJSON'>): IamSet => r as IamSet;
export const iamTest = (r: Omit<IamTest, 'toJSON'>): IamTest => r as IamTest;

export { grpc };
