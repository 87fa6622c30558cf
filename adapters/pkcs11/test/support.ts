/**
 * Test helpers: the SoftHSM2 target the harness started (a missing one FAILS, naming the
 * command), and providers on its token.
 */
import { isolateSofthsmToken, requireTarget } from '@keyport/conformance/harness';
import type { KeyInfo } from '@keyport/core';
import { afterAll, beforeAll } from 'vitest';
import type { Pkcs11ProviderOptions } from '../src/index.js';
import { Pkcs11Provider } from '../src/index.js';
import { type KeyMetadata, readMetadata, writeMetadata } from '../src/key-store.js';
import { APPLICATION } from '../src/objects.js';
import { type Handle, P, type Template } from '../src/p11.js';

/** The SoftHSM target, with a token of this process's own (see isolateSofthsmToken). */
export function softhsm() {
  isolateSofthsmToken();
  return requireTarget('softhsm');
}

export function providerOptions(overrides: Partial<Pkcs11ProviderOptions> = {}): Pkcs11ProviderOptions {
  const env = softhsm();
  return {
    modulePath: env.KEYPORT_SOFTHSM_MODULE,
    token: { label: env.KEYPORT_SOFTHSM_TOKEN },
    pin: { env: 'KEYPORT_SOFTHSM_PIN' },
    ...overrides,
  };
}

export function openProvider(overrides: Partial<Pkcs11ProviderOptions> = {}): Promise<Pkcs11Provider> {
  return Pkcs11Provider.open(providerOptions(overrides));
}

export const signal = (): AbortSignal => new AbortController().signal;

/** A provider a test file opens once, and what tests that reach past it to the token use. */
export interface TokenFixture {
  /** The provider (opened in beforeAll: read it inside tests and hooks, not at file level). */
  readonly provider: Pkcs11Provider;
  /** Runs `fn` on a session of the provider's pool. */
  onToken<T>(fn: (session: Handle) => T | Promise<T>): Promise<T>;
  /** The CKA_LABEL of the key at `ref.uri`. */
  nameOf(ref: { readonly uri: string }): string;
  /**
   * Writes a newer metadata object for `key` recording `version` (and `changes`), as anyone with
   * the PIN can: no key object for the version is made.
   */
  forgeMetadata(key: KeyInfo, version: number, changes?: Partial<KeyMetadata>): Promise<void>;
}

/** Opens a provider (with `overrides`) before the file's tests and closes it after them. */
export function useProvider(overrides: Partial<Pkcs11ProviderOptions> = {}): TokenFixture {
  let opened: Pkcs11Provider | undefined;
  beforeAll(async () => {
    opened = await openProvider(overrides);
  });
  afterAll(() => opened?.close());
  const fixture: TokenFixture = {
    get provider() {
      if (opened === undefined) throw new Error('the provider is opened in beforeAll; read it inside a test');
      return opened;
    },
    onToken: (fn) => fixture.provider.pool.run(signal(), async (session) => fn(session)),
    nameOf: (ref) => fixture.provider.target({ uri: ref.uri }).name,
    forgeMetadata: (key, version, changes = {}) =>
      fixture.onToken((session) => {
        const { p11 } = fixture.provider;
        const name = fixture.nameOf(key);
        const current = readMetadata(p11, session, name, key.uri);
        if (current === undefined) throw new Error('no metadata');
        const { seq: _seq, format: _format, ...meta } = current.meta;
        const versions = { ...meta.versions, [String(version)]: { createdAt: new Date().toISOString() } };
        writeMetadata(p11, session, name, { ...meta, ...changes, versions }, current);
      }),
  };
  return fixture;
}

/**
 * The template of a keyport metadata object (CKO_DATA, CKA_APPLICATION "keyport") under `label`
 * holding `value`, as anyone with the PIN can make one: a token object, or a session object.
 */
export function metadataTemplate(label: string | Buffer, value: Buffer, token: boolean): Template {
  return [
    { type: P.CKA_CLASS, value: P.CKO_DATA },
    { type: P.CKA_TOKEN, value: token },
    { type: P.CKA_PRIVATE, value: true },
    { type: P.CKA_LABEL, value: label },
    { type: P.CKA_APPLICATION, value: APPLICATION },
    { type: P.CKA_VALUE, value },
  ];
}

let counter = 0;
const run = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
export function uniqueName(hint: string): string {
  counter++;
  return `t-${run}-${counter}-${hint}`;
}

type P11Function = (...args: unknown[]) => unknown;

/**
 * Runs `fn` with the named pkcs11js functions of the provider's (shared) module replaced by
 * what `wrap` makes of each, and puts the originals back afterwards: pkcs11js makes its wrapped
 * functions own properties of each instance, so deleting a replacement would leave the raw
 * native method for the rest of the file.
 */
export async function withWrappedP11(
  provider: Pkcs11Provider,
  names: readonly string[],
  wrap: (name: string, original: P11Function) => P11Function,
  fn: () => Promise<unknown>,
): Promise<void> {
  const p11 = provider.p11 as unknown as Record<string, P11Function>;
  const originals = names.map((n) => [n, p11[n] as P11Function] as const);
  for (const [name, original] of originals) p11[name] = wrap(name, original);
  try {
    await fn();
  } finally {
    for (const [name, original] of originals) p11[name] = original;
  }
}

/** Counts calls of the named pkcs11js functions on the provider's (shared) module while `fn` runs. */
export async function countCalls(
  provider: Pkcs11Provider,
  names: readonly string[],
  fn: () => Promise<unknown>,
): Promise<Record<string, number>> {
  const counts: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0]));
  await withWrappedP11(
    provider,
    names,
    (name, original) =>
      function (this: unknown, ...args: unknown[]) {
        counts[name] = (counts[name] ?? 0) + 1;
        return original.apply(this, args);
      },
    fn,
  );
  return counts;
}

/**
 * The template of a private token object under `label` with CKA_ID `id`, sensitive and never
 * extractable: how keyport keeps the keys it generates.
 */
export function keptKeyTemplate(label: string, id: Buffer): Template {
  return [
    { type: P.CKA_TOKEN, value: true },
    { type: P.CKA_PRIVATE, value: true },
    { type: P.CKA_LABEL, value: label },
    { type: P.CKA_ID, value: id },
    { type: P.CKA_SENSITIVE, value: true },
    { type: P.CKA_EXTRACTABLE, value: false },
  ];
}
