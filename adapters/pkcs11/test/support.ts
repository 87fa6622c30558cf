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
