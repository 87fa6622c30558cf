/**
 * A token the module left out of its slot list. SoftHSM2 reads its tokens once, at C_Initialize
 * (SlotManager's constructor), and skips one whose `token.object` it read empty — which another
 * process's C_Login makes happen for an instant: that process's provider then found "no slot
 * holds the configured token" however often it looked again. The provider now initialises a
 * module it alone uses again between looks.
 */
import { describe, expect, it } from 'vitest';
import { moduleRefs, Pkcs11Provider } from '../src/index.js';
import { acquireModule, reinitializeIfSole, releaseModule } from '../src/module-registry.js';
import type { Pkcs11 } from '../src/p11.js';
import { findSlot } from '../src/provider.js';
import { providerOptions, signal, softhsm } from './support.js';

const tokenInfo = {
  label: 'keyport'.padEnd(32),
  serialNumber: 'c0ffee'.padEnd(16),
  maxSessionCount: 0,
  sessionCount: 0,
  maxRwSessionCount: 0,
  rwSessionCount: 0,
};

/** A module whose slot list holds the token only once it was initialised `needed` times. */
function moduleMissingTheToken(needed: number) {
  let initialisations = 1;
  const module = {
    C_GetSlotList: () => (initialisations >= needed ? [Buffer.from([7])] : []),
    C_GetTokenInfo: () => tokenInfo,
  } as unknown as Pkcs11;
  return { module, reload: () => void initialisations++ };
}

describe('a token missing from the slot list the module built at initialisation', () => {
  it('is found once the module is initialised again between looks', () => {
    const { module, reload } = moduleMissingTheToken(3);
    const found = findSlot(module, { label: 'keyport' }, reload);
    expect(found.label).toBe('keyport');
    expect(found.serial).toBe('c0ffee');
  });

  it('is still "no slot holds the configured token" (Unavailable) when it never appears', () => {
    const { module } = moduleMissingTheToken(Number.POSITIVE_INFINITY);
    expect(() => findSlot(module, { label: 'keyport' }, () => undefined)).toThrow(
      expect.objectContaining({ code: 'Unavailable', message: 'no slot holds the configured token' }),
    );
  });

  it('a module is initialised again only by its sole user: never under another provider', async () => {
    const path = softhsm().KEYPORT_SOFTHSM_MODULE;
    expect(moduleRefs(path), 'another provider is open in this process').toBe(0);
    const first = acquireModule(path);
    try {
      expect(reinitializeIfSole(first)).toBe(true);
      // Initialised again, it still serves: a provider opens and lists on it.
      const provider = await Pkcs11Provider.open(providerOptions(), signal());
      try {
        expect(moduleRefs(path)).toBe(2);
        expect(reinitializeIfSole(first)).toBe(false);
        await provider.listKeys({ signal: signal() })[Symbol.asyncIterator]().next();
      } finally {
        await provider.close();
      }
    } finally {
      releaseModule(first);
    }
    expect(moduleRefs(path)).toBe(0);
  });
});
