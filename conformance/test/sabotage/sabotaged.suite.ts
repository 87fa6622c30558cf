/**
 * Two deliberately broken providers (the local provider with one defect each). Run only by
 * sabotage.test.ts, which checks that the suite FAILS them at the right tests.
 */
import type { DriverCapabilities, KeyRef, KmsProvider, ProviderCallOptions } from '@keyport/core';

/** The local provider implements every capability interface the defects touch. */
type FullDriver = KmsProvider & DriverCapabilities;

import { LOCAL_CAPABILITIES } from '@keyport/local';
import { afterAll } from 'vitest';
import { describeProviderConformance, uniqueKeyNames } from '../../src/index.js';
import { tempKeystore } from '../support/local-keystore.js';

type Defect = Partial<Record<keyof FullDriver, (target: FullDriver, ...args: never[]) => unknown>>;

function broken(provider: KmsProvider, defect: Defect): KmsProvider {
  return new Proxy(provider, {
    get(target, prop, receiver) {
      const replacement = defect[prop as keyof FullDriver];
      if (replacement !== undefined) return (...args: never[]) => replacement(target as FullDriver, ...args);
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

const defects: Record<string, Defect> = {
  // Silently ignores the encryption context.
  'context-dropping': {
    encrypt: (t, ref: KeyRef, pt: Uint8Array, _req: never, o: ProviderCallOptions) =>
      t.encrypt(ref, pt, {}, o),
    decrypt: (t, ref: KeyRef, ct: Uint8Array, _req: never, o: ProviderCallOptions) =>
      t.decrypt(ref, ct, {}, o),
  },
  // Reports the key disabled but keeps using it.
  'disable-ignoring': {
    disableKey: async (t, ref: KeyRef, o: ProviderCallOptions) => ({
      ...(await t.describeKey(ref, o)),
      state: 'disabled',
    }),
    enableKey: (t, ref: KeyRef, o: ProviderCallOptions) => t.describeKey(ref, o),
  },
};

for (const [name, defect] of Object.entries(defects)) {
  const keystore = tempKeystore(`sabotage-${name}`);
  afterAll(() => keystore.remove());
  describeProviderConformance({
    name,
    provider: {
      capabilities: LOCAL_CAPABILITIES,
      open: async () => broken(await keystore.open('owner'), defect),
    },
    fixtures: {
      keyName: uniqueKeyNames(name),
      missingKeyUri: () => keystore.missingKeyUri(),
      keySpecs: ['AES_256'],
      proofs: {
        default: { kind: 'real-provider', name: `@keyport/local (${name})` },
        grants: { kind: 'not-emulated', reason: 'not needed to show the defect' },
        import: { kind: 'not-emulated', reason: 'not needed to show the defect' },
      },
    },
    log: () => {},
  });
}
