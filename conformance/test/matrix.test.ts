import type { Capabilities } from '@keyport/core';
import { LOCAL_CAPABILITIES } from '@keyport/local';
import { describe, expect, it } from 'vitest';
import {
  CONFORMANCE_CAPABILITIES,
  formatProofSummary,
  planConformance,
  renderCapabilityMatrix,
} from '../src/index.js';

const moto: Capabilities = { ...LOCAL_CAPABILITIES, grants: 'emulated', import: [], grantExpiry: 'swept' };

describe('renderCapabilityMatrix', () => {
  const table = renderCapabilityMatrix([
    {
      provider: 'local',
      capabilities: LOCAL_CAPABILITIES,
      proofs: { default: { kind: 'real-provider', name: '@keyport/local' } },
    },
    {
      provider: 'aws-kms',
      capabilities: moto,
      proofs: {
        default: { kind: 'third-party-emulator', name: 'moto 5.2.5' },
        grants: { kind: 'not-emulated', reason: 'moto records grants but does not enforce them' },
      },
    },
  ]);
  const lines = table.split('\n');

  it('has one row per capability and one column per provider', () => {
    expect(lines[0]).toBe('| capability | local | aws-kms |');
    expect(lines[1]).toBe('|---|---|---|');
    for (const capability of CONFORMANCE_CAPABILITIES) {
      expect(lines.filter((l) => l.startsWith(`| ${capability} |`))).toHaveLength(1);
    }
  });

  it('shows declared values with a numbered proof, — for unavailable, and marks not emulated', () => {
    expect(lines).toContain('| import | RSAES_OAEP_SHA_256, RSAES_OAEP_SHA_1 [1] | — |');
    expect(lines).toContain('| grants | native [1] | emulated (not emulated) [3] |');
    expect(lines).toContain('[1] real provider: @keyport/local');
    expect(lines).toContain('[2] emulator: moto 5.2.5');
    expect(lines).toContain('[3] not emulated: moto records grants but does not enforce them');
  });

  it('is stable: the same input renders the same text', () => {
    const again = renderCapabilityMatrix([
      {
        provider: 'local',
        capabilities: LOCAL_CAPABILITIES,
        proofs: { default: { kind: 'real-provider', name: '@keyport/local' } },
      },
      {
        provider: 'aws-kms',
        capabilities: moto,
        proofs: {
          default: { kind: 'third-party-emulator', name: 'moto 5.2.5' },
          grants: { kind: 'not-emulated', reason: 'moto records grants but does not enforce them' },
        },
      },
    ]);
    expect(again).toBe(table);
  });
});

describe('formatProofSummary', () => {
  it('names the proof of each capability and flags what was not exercised', () => {
    const text = formatProofSummary(
      'aws-kms (moto)',
      planConformance(moto, {
        proofs: {
          default: { kind: 'third-party-emulator', name: 'moto 5.2.5' },
          grants: { kind: 'not-emulated', reason: 'not enforced' },
        },
      }),
    );
    expect(text).toContain('keyport conformance — aws-kms (moto)');
    expect(text).toContain('grants             emulated — NOT EXERCISED, not emulated: not enforced');
    expect(text).toContain('import             unsupported (UnsupportedError checked)');
    expect(text).toContain(
      'encrypt            AES_256, RSA_2048, RSA_3072, RSA_4096 — proven by emulator: moto 5.2.5',
    );
  });
});
