// The factory and its options: one driver under every name it has had, and options that cannot
// work refused at construction (typed, before any request), not on the first call.
import { KeyportError } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import {
  TransitKmsProvider,
  type VaultTransitOptions,
  VaultTransitProvider,
  vaultTransit,
} from '../src/index.js';

describe('vaultTransit(options)', () => {
  it('makes the one transit driver; the old class names are that driver', () => {
    const driver = vaultTransit({ endpoint: 'http://127.0.0.1:8200', flavor: 'openbao' });
    expect(driver).toBeInstanceOf(VaultTransitProvider);
    expect(TransitKmsProvider).toBe(VaultTransitProvider);
    expect(driver.scheme).toBe('hcvault');
    expect(driver.capabilities.enableDisable).toBe(true);
    expect(vaultTransit({ endpoint: 'https://vault.internal:8200' }).capabilities.enableDisable).toBe(false);
    expect(driver.parseUri('hcvault://127.0.0.1:8200/transit/keys/k')).toEqual({
      uri: 'hcvault://127.0.0.1:8200/transit/keys/k',
    });
  });

  const bad: Array<[string, unknown]> = [
    ['no options', undefined],
    ['an endpoint that is not a URL', { endpoint: 'vault:8200 ' }],
    ['a non-HTTP endpoint', { endpoint: 'file:///etc/passwd' }],
    ['a renewal fraction of NaN', { endpoint: 'http://h:1', renewAfterFraction: Number.NaN }],
    ['a renewal fraction above 1', { endpoint: 'http://h:1', renewAfterFraction: 2 }],
    ['an unknown flavor', { endpoint: 'http://h:1', flavor: 'consul' }],
  ];
  it.each(bad)('refuses %s with InvalidArgument', (_, options) => {
    const make = () => vaultTransit(options as VaultTransitOptions);
    expect(make).toThrow(KeyportError);
    expect(make).toThrow(expect.objectContaining({ code: 'InvalidArgument' }));
  });
});
