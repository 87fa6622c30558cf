/**
 * Providers for the tests: a fresh local keystore with a settable clock, and AWS KMS on moto
 * (the vitest global setup starts it; a missing endpoint fails the test, never skips it).
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AwsKmsProvider } from '@keyport/aws-kms';
import { JsonlAuditSink, Keyport, type KeyportOptions, loadOrCreateAuditKey } from '@keyport/core';
import { type LocalProvider, openLocalKeystore } from '@keyport/local';
import { afterEach } from 'vitest';

export const PASSPHRASE = 'policy tests passphrase';
const FAST_KDF = { log2N: 10, r: 8, p: 1 } as const;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

export class FakeClock {
  current: Date;
  constructor(start = '2030-01-01T00:00:00.000Z') {
    this.current = new Date(start);
  }
  readonly now = (): Date => this.current;
  advanceDays(days: number): void {
    this.current = new Date(this.current.getTime() + days * 86_400_000);
  }
}

export async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'keyport-policy-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

export async function localProvider(clock?: FakeClock, principal?: string): Promise<LocalProvider> {
  const path = join(await tempDir(), 'keys.keystore');
  const kp = await openLocalKeystore({
    path,
    passphrase: PASSPHRASE,
    kdf: FAST_KDF,
    create: true,
    ...(clock !== undefined ? { clock: clock.now } : {}),
    ...(principal !== undefined ? { principal } : {}),
  });
  cleanups.push(() => kp.close());
  return kp;
}

export function motoEndpoint(): string {
  const endpoint = process.env.KEYPORT_MOTO_ENDPOINT;
  if (endpoint === undefined || endpoint === '') {
    throw new Error('moto is not running: run "pnpm emulators up moto" (KEYPORT_MOTO_ENDPOINT is not set)');
  }
  return endpoint;
}

export function motoProvider(endpoint = motoEndpoint()): AwsKmsProvider {
  return new AwsKmsProvider({
    region: 'us-east-1',
    endpoint,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  });
}

export function client(options: KeyportOptions): Keyport {
  const kp = new Keyport(options);
  cleanups.push(() => kp.close());
  return kp;
}

/** A client whose every call is recorded in a fresh JSONL audit log (what "last used" is read from). */
export async function auditedClient(
  providers: KeyportOptions['providers'],
): Promise<{ kp: Keyport; logPath: string; auditKey: Uint8Array }> {
  const dir = await tempDir();
  const logPath = join(dir, 'audit.jsonl');
  const { key: auditKey } = await loadOrCreateAuditKey(join(dir, 'audit.key'));
  const sink = await JsonlAuditSink.open(logPath, { hmacKey: auditKey });
  return { kp: client({ providers, audit: [sink] }), logPath, auditKey };
}

export const unique = (hint: string): string => `kp-pol-${hint}-${randomUUID().slice(0, 8)}`;

/** AWS KMS on local-kms (account 111122223333), the harness's second AWS emulator. */
export function localKmsProvider(): AwsKmsProvider {
  const endpoint = process.env.KEYPORT_LOCALKMS_ENDPOINT;
  if (endpoint === undefined || endpoint === '') {
    throw new Error(
      'target local-kms is not running: run "pnpm emulators up local-kms" (KEYPORT_LOCALKMS_ENDPOINT is not set)',
    );
  }
  return motoProvider(endpoint);
}

/**
 * A check's findings as sorted `rule key status` lines, keys shown by the test's own names,
 * so an assertion lists exactly the expected violations and unknowns — no more, no less.
 */
export function outcomesOf(
  findings: readonly { ruleId: string; keyUri?: string; status: string }[],
  names: Readonly<Record<string, string>>,
): string[] {
  const byUri = new Map(Object.entries(names).map(([name, uri]) => [uri, name]));
  return findings.map((f) => `${f.ruleId} ${byUri.get(f.keyUri ?? '') ?? f.keyUri} ${f.status}`).sort();
}
