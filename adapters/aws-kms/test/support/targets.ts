/**
 * The two AWS KMS emulators, read from the environment the harness writes (.emulators/env).
 * A missing variable fails the test that needs it — it never skips.
 */
import { randomUUID } from 'node:crypto';
import { KMSClient } from '@aws-sdk/client-kms';
import { AwsKmsProvider } from '../../src/index.js';

export type TargetName = 'moto' | 'local-kms';

export interface Target {
  readonly name: TargetName;
  readonly endpoint: string;
  readonly account: string;
}

const VARIABLES: Record<TargetName, { variable: string; account: string }> = {
  moto: { variable: 'KEYPORT_MOTO_ENDPOINT', account: '123456789012' },
  'local-kms': { variable: 'KEYPORT_LOCALKMS_ENDPOINT', account: '111122223333' },
};

export const TARGET_NAMES: readonly TargetName[] = ['moto', 'local-kms'];

export function target(name: TargetName): Target {
  const { variable, account } = VARIABLES[name];
  const endpoint = process.env[variable];
  if (endpoint === undefined || endpoint === '') {
    throw new Error(
      `target ${name} is not running: run "pnpm emulators up ${name}" (${variable} is not set)`,
    );
  }
  return { name, endpoint, account };
}

/** Emulators accept any credentials; these are the harness's. */
export const TEST_CREDENTIALS = { accessKeyId: 'testing', secretAccessKey: 'testing' };

export function providerFor(t: Target): AwsKmsProvider {
  return new AwsKmsProvider({ region: 'us-east-1', endpoint: t.endpoint, credentials: TEST_CREDENTIALS });
}

/** A bare SDK client against the same emulator, for checks made behind the adapter's back. */
export function sdkClientFor(t: Target): KMSClient {
  return new KMSClient({
    region: 'us-east-1',
    endpoint: t.endpoint,
    credentials: TEST_CREDENTIALS,
    maxAttempts: 1,
  });
}

/** Alias names unique per run (the emulators live for the whole test run). */
export function uniqueName(hint: string): string {
  return `kp-${hint}-${randomUUID().slice(0, 8)}`;
}

/** What core hands every provider call. */
export function call(): { signal: AbortSignal } {
  return { signal: new AbortController().signal };
}

export const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
export const text = (b: Uint8Array): string => new TextDecoder().decode(b);
