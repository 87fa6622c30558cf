/** Shared test helpers: temp keystores with a cheap KDF, a settable clock, error assertions. */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CreateKeyRequest, type ErrorCode, isKeyportError } from '@keyport/core';
import { afterEach, expect } from 'vitest';
import { type LocalProvider, type OpenLocalKeystoreOptions, openLocalKeystore } from '../src/index.js';
import { deriveKeys, readHeader, seal, unseal } from '../src/sealed-file.js';

export const PASSPHRASE = 'correct horse battery staple';
/** The cheapest scrypt cost the keystore accepts: the tests open many keystores. */
export const FAST_KDF = { log2N: 10, r: 8, p: 1 } as const;

export const o: { signal: AbortSignal } = { signal: new AbortController().signal };

const dirs: string[] = [];
const providers: LocalProvider[] = [];

afterEach(async () => {
  await Promise.all(providers.splice(0).map((p) => p.close()));
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

export async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'keyport-local-'));
  dirs.push(dir);
  return dir;
}

export async function tempKeystorePath(): Promise<string> {
  return join(await tempDir(), 'keys.keystore');
}

/** A settable clock, starting at a fixed instant. */
export class FakeClock {
  current = new Date('2030-01-01T00:00:00.000Z');
  readonly now = (): Date => this.current;
  advanceDays(days: number): void {
    this.current = new Date(this.current.getTime() + days * 86_400_000);
  }
  advanceMs(ms: number): void {
    this.current = new Date(this.current.getTime() + ms);
  }
}

export async function open(
  options: Partial<OpenLocalKeystoreOptions> & { path: string },
): Promise<LocalProvider> {
  const provider = await openLocalKeystore({ passphrase: PASSPHRASE, kdf: FAST_KDF, ...options });
  providers.push(provider);
  return provider;
}

/** A fresh keystore opened by its owner. */
export async function newKeystore(
  options: Partial<OpenLocalKeystoreOptions> = {},
): Promise<{ kp: LocalProvider; path: string }> {
  const path = options.path ?? (await tempKeystorePath());
  const kp = await open({ create: true, ...options, path });
  return { kp, path };
}

export async function expectCode(promise: Promise<unknown>, code: ErrorCode): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, `expected a KeyportError ${code}`).toBeDefined();
  if (!isKeyportError(error)) throw error;
  expect(error.code).toBe(code);
  expect(error.provider).toBe('local');
}

export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

export const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
export const text = (b: Uint8Array): string => new TextDecoder().decode(b);

/** A keystore body as sealed in the file, for tests that edit it. */
export type KeystoreBody = {
  keys: Array<Record<string, unknown> & { versions: Array<Record<string, unknown>> }>;
};

/**
 * A keystore with one key `k` made by `request`, whose sealed body was changed by `edit` and
 * sealed again with the passphrase (what someone holding it could write).
 */
export async function keystoreWithBody(
  request: Omit<CreateKeyRequest, 'name'>,
  edit: (body: KeystoreBody) => void,
): Promise<string> {
  const { kp, path } = await newKeystore();
  await kp.createKey({ name: 'k', ...request }, o);
  const file = await readFile(path);
  const header = readHeader(file);
  const keys = await deriveKeys(Buffer.from(PASSPHRASE), header.params, header.salt);
  const body = JSON.parse(unseal(file, keys).toString('utf8')) as KeystoreBody;
  edit(body);
  await writeFile(path, seal(Buffer.from(JSON.stringify(body)), keys));
  return path;
}
