import { KEY_SPECS, missingCapability, OPERATIONS, USAGES_BY_SPEC } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { LOCAL_CAPABILITIES } from '../src/index.js';
import { newKeystore } from './helpers.js';

describe('capabilities', () => {
  it('declares what the local keystore does (each cell is exercised by the other test files)', () => {
    expect(LOCAL_CAPABILITIES).toEqual({
      keySpecs: USAGES_BY_SPEC,
      context: 'native',
      dataKeys: 'native',
      listKeys: true,
      rotation: 'versioned',
      autoRotation: true,
      enableDisable: true,
      scheduledDeletion: 'native',
      destroyVersion: true,
      grants: 'native',
      grantExpiry: 'native',
      grantConstraints: true,
      import: ['RSAES_OAEP_SHA_256', 'RSAES_OAEP_SHA_1'],
      signingAlgorithms: ['RSASSA_PSS_SHA_256', 'ECDSA_SHA_256', 'ECDSA_SHA_384'],
    });
    expect(Object.keys(LOCAL_CAPABILITIES.keySpecs).sort()).toEqual([...KEY_SPECS].sort());
    for (const op of OPERATIONS) expect(missingCapability(LOCAL_CAPABILITIES, op), op).toBeUndefined();
  });

  it('the provider exposes them and its scheme', async () => {
    const { kp } = await newKeystore();
    expect(kp.capabilities).toBe(LOCAL_CAPABILITIES);
    expect([kp.scheme, kp.name]).toEqual(['local', 'local']);
  });
});
