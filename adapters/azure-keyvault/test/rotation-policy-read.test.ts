/**
 * Rotation policies as the portal and the CLI write them: `timeAfterCreate` in years, months and
 * weeks as well as days. Read as days only, a key rotating every year was described as never
 * rotating (and a policy check then found automatic rotation off).
 */
import type { KeyRotationLifetimeAction } from '@azure/keyvault-keys';
import { Keyport } from '@keyport/core';
import type { AzureKeyVaultServer } from '@keyport/test-servers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rotationOfPolicy } from '../src/keys.js';
import { providerFor, sdkClient, startServer, uniqueName } from './support/server.js';

const rotateAfter = (timeAfterCreate: string): KeyRotationLifetimeAction[] => [
  { action: 'Notify', timeBeforeExpiry: 'P30D' },
  { action: 'Rotate', timeAfterCreate },
];
const created = new Date('2030-01-31T10:00:00.000Z');

describe('rotationOfPolicy', () => {
  it('reads days, weeks, months and years, the next rotation on the calendar', () => {
    expect(rotationOfPolicy(rotateAfter('P90D'), created)).toEqual({
      periodDays: 90,
      nextRotationAt: new Date('2030-05-01T10:00:00.000Z'),
    });
    expect(rotationOfPolicy(rotateAfter('P1Y'), created)).toEqual({
      periodDays: 365,
      nextRotationAt: new Date('2031-01-31T10:00:00.000Z'),
    });
    expect(rotationOfPolicy(rotateAfter('P18M'), created)?.periodDays).toBe(540);
    expect(rotationOfPolicy(rotateAfter('P18M'), created)?.nextRotationAt?.toISOString().slice(0, 7)).toBe(
      '2031-07',
    );
    expect(rotationOfPolicy(rotateAfter('P2W'), created)?.periodDays).toBe(14);
    expect(rotationOfPolicy(rotateAfter('p1y6m'), undefined)).toEqual({ periodDays: 545 });
  });

  it('states no schedule for what is none: no rotate action, a time part, zero, or absurd lengths', () => {
    expect(rotationOfPolicy(undefined, created)).toBeUndefined();
    expect(rotationOfPolicy([{ action: 'Notify', timeBeforeExpiry: 'P30D' }], created)).toBeUndefined();
    for (const bad of ['P', 'P0D', 'PT12H', 'P1DT1H', 'P-1D', 'P1.5Y', 'P9999Y', 'P99999999D', '90', ''])
      expect(rotationOfPolicy(rotateAfter(bad), created), bad).toBeUndefined();
  });
});

describe('describeKey of a key whose policy the portal wrote in years (test server)', () => {
  let server: AzureKeyVaultServer;
  let keyport: Keyport;
  beforeAll(async () => {
    server = await startServer('vault');
    keyport = new Keyport({ providers: [providerFor(server)], retry: { maxAttempts: 1 } });
  });
  afterAll(async () => {
    await keyport.close();
    await server.stop();
  });

  it('reports the yearly rotation', async () => {
    const key = await keyport.createKey('azurekeyvault', { name: uniqueName('yearly'), spec: 'RSA_2048' });
    const name = key.uri.split('/').at(-1) as string;
    await sdkClient(server).updateKeyRotationPolicy(name, {
      lifetimeActions: [{ action: 'Rotate', timeAfterCreate: 'P1Y' }],
    });
    expect((await keyport.describeKey(key.uri)).rotation?.periodDays).toBe(365);
  });
});
