/**
 * The suite's selection logic at run time: the local provider narrowed to declare far less than
 * it can. Core must refuse every operation declared unavailable with UnsupportedError before the
 * provider is called, and capabilities declared "not emulated" are left out.
 */
import { type Capabilities, UnsupportedError } from '@keyport/core';
import { LOCAL_CAPABILITIES } from '@keyport/local';
import { afterAll, describe, expect, it } from 'vitest';
import { describeProviderConformance, planConformance, uniqueKeyNames } from '../src/index.js';
import { tempKeystore } from './support/local-keystore.js';

const keystore = tempKeystore('narrowed');
afterAll(() => keystore.remove());

const narrowed: Capabilities = {
  ...LOCAL_CAPABILITIES,
  listKeys: false,
  rotation: 'none',
  autoRotation: false,
  enableDisable: false,
  scheduledDeletion: 'none',
  destroyVersion: false,
  grants: 'none',
  grantExpiry: 'none',
  grantConstraints: false,
  import: [],
  dataKeys: 'none',
};
const fixtures = {
  keyName: uniqueKeyNames('narrow'),
  missingKeyUri: () => keystore.missingKeyUri(),
  keySpecs: ['AES_256', 'HMAC_256'] as const,
  proofs: {
    default: { kind: 'real-provider', name: '@keyport/local (narrowed)' },
    mac: { kind: 'not-emulated', reason: 'left out to test not-emulated handling' },
  } as const,
};
const summaries: string[] = [];

describeProviderConformance({
  name: 'local, narrowed',
  provider: { capabilities: narrowed, open: () => keystore.open('owner') },
  capabilities: narrowed,
  fixtures,
  log: (text) => summaries.push(text),
});

describe('the narrowed plan', () => {
  const plan = planConformance(narrowed, fixtures);
  it('checks UnsupportedError for every capability declared unavailable', () => {
    expect(plan.unsupported).toEqual([
      'listKeys',
      'dataKeys',
      'rotation',
      'autoRotation',
      'enableDisable',
      'scheduledDeletion',
      'destroyVersion',
      'grants',
      'grantExpiry',
      'grantConstraints',
      'import',
    ]);
    expect(new UnsupportedError('grants').code).toBe('Unsupported');
  });

  it('leaves the not-emulated capability out and says why', () => {
    expect(plan.exercised.has('mac')).toBe(false);
    expect(plan.notEmulated).toEqual([
      { capability: 'mac', reason: 'left out to test not-emulated handling' },
    ]);
  });
});

afterAll(() => {
  // The suite's own afterAll has run by now and printed through `log`.
  expect(summaries.join('\n')).toContain('mac                HMAC_256 — NOT EXERCISED, not emulated');
});
