/**
 * Test helpers: the SoftHSM2 target the harness started (a missing one FAILS, naming the
 * command), and providers on its token.
 */
import { isolateSofthsmToken, requireTarget } from '@keyport/conformance/harness';
import type { Pkcs11ProviderOptions } from '../src/index.js';
import { Pkcs11Provider } from '../src/index.js';

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
