/**
 * Promises of conformance/README.md that no other test holds the suite to: who closes the
 * provider and the grantees' providers, retries off, the default concurrency of the parallel
 * test, and the default lifetime of the expiring grant when the fixtures give no clock. Two
 * real runs of the suite on the local keystore (AES_256 only), each provider wrapped in a
 * recorder the checks below read after the run.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type GrantRequest, KeyportError, type KmsProvider } from '@keyport/core';
import { LOCAL_CAPABILITIES, localKeystore } from '@keyport/local';
import { afterAll, describe, expect, it } from 'vitest';
import { expectError } from '../src/expect-error.js';
import { describeProviderConformance, planConformance, uniqueKeyNames } from '../src/index.js';
import { SuiteState } from '../src/suite-state.js';
import { tempKeystore } from './support/local-keystore.js';

/** What a provider went through during a run. */
interface Record_ {
  closes: number;
  inFlight: number;
  maxInFlightEncrypts: number;
  /** expiresAt minus the time createGrant was called, per grant with an expiry (ms). */
  readonly grantLifetimesMs: number[];
}

const newRecord = (): Record_ => ({ closes: 0, inFlight: 0, maxInFlightEncrypts: 0, grantLifetimesMs: [] });

/** A transparent wrapper that counts close(), parallel encrypts and grant lifetimes. */
function recorded(provider: KmsProvider, record: Record_): KmsProvider {
  return new Proxy(provider, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      const fn = value as (...args: unknown[]) => unknown;
      if (prop === 'close') {
        return (...args: unknown[]) => {
          record.closes++;
          return fn.apply(target, args);
        };
      }
      if (prop === 'encrypt') {
        return async (...args: unknown[]) => {
          record.inFlight++;
          record.maxInFlightEncrypts = Math.max(record.maxInFlightEncrypts, record.inFlight);
          try {
            return await fn.apply(target, args);
          } finally {
            record.inFlight--;
          }
        };
      }
      if (prop === 'createGrant') {
        return (...args: unknown[]) => {
          const expiresAt = (args[1] as GrantRequest).expiresAt;
          if (expiresAt !== undefined) record.grantLifetimesMs.push(expiresAt.getTime() - Date.now());
          return fn.apply(target, args);
        };
      }
      return fn.bind(target);
    },
  });
}

// Run 1: the provider passed itself. The README: "you close it".
const directDir = mkdtempSync(join(tmpdir(), 'keyport-conformance-readme-direct-'));
const directRecord = newRecord();
const direct = recorded(
  localKeystore({
    path: join(directDir, 'k.kp'),
    passphrase: 'conformance passphrase',
    create: true,
    kdf: { log2N: 10 }, // test speed only
  }),
  directRecord,
);
let missing = 0;
describeProviderConformance({
  name: 'readme: provider passed itself',
  provider: direct,
  fixtures: {
    keyName: uniqueKeyNames('readme-direct'),
    missingKeyUri: () => `local://${join(directDir, 'k.kp')}#no-such-key-${++missing}`,
    keySpecs: ['AES_256'],
    proofs: {
      default: { kind: 'real-provider', name: '@keyport/local' },
      grants: { kind: 'not-emulated', reason: 'not needed here' },
      import: { kind: 'not-emulated', reason: 'not needed here' },
    },
  },
  log: () => {},
});

// Run 2: a factory the suite opens, grantees opened by the fixture, no clock.
const keystore = tempKeystore('readme-lazy');
const ownerRecord = newRecord();
const granteeRecords: Record_[] = [];
describeProviderConformance({
  name: 'readme: factory source',
  provider: {
    capabilities: LOCAL_CAPABILITIES,
    open: async () => recorded(await keystore.open('owner'), ownerRecord),
  },
  fixtures: {
    keyName: uniqueKeyNames('readme-lazy'),
    missingKeyUri: () => keystore.missingKeyUri(),
    keySpecs: ['AES_256'],
    proofs: {
      default: { kind: 'real-provider', name: '@keyport/local' },
      import: { kind: 'not-emulated', reason: 'not needed here' },
    },
    grantee: {
      newPrincipal: (hint) => `grantee-${hint}-${Math.random().toString(36).slice(2, 8)}`,
      providerFor: async (principal) => {
        const record = newRecord();
        granteeRecords.push(record);
        return recorded(await keystore.open(principal), record);
      },
    },
    // No clock and no grantExpiryMs: the expiry test grants for the default and waits in real time.
  },
  log: () => {},
});

afterAll(async () => {
  await direct.close();
  rmSync(directDir, { recursive: true, force: true });
  keystore.remove();
});

// Both runs above have finished, their afterAll hooks included, before these tests start.
describe('conformance README promises', () => {
  it('a provider passed itself is not closed by the suite (the caller closes it)', () => {
    expect(directRecord.maxInFlightEncrypts).toBeGreaterThan(0); // the run did use it
    expect(directRecord.closes).toBe(0);
  });

  it('a provider the suite opened from a factory is closed by the suite', () => {
    expect(ownerRecord.maxInFlightEncrypts).toBeGreaterThan(0);
    expect(ownerRecord.closes).toBe(1);
  });

  it('the suite closes every provider the grantee fixture returns', () => {
    expect(granteeRecords.length).toBeGreaterThan(1);
    expect(granteeRecords.map((r) => r.closes)).toEqual(granteeRecords.map(() => 1));
  });

  it('the concurrency test runs 32 operations in parallel by default', () => {
    expect(ownerRecord.maxInFlightEncrypts).toBe(32);
    expect(directRecord.maxInFlightEncrypts).toBe(32);
  });

  it('without a clock, the expiring grant lives grantExpiryMs (default 1500 ms)', () => {
    expect(ownerRecord.grantLifetimesMs).toHaveLength(1);
    const [lifetime] = ownerRecord.grantLifetimesMs as [number];
    expect(lifetime).toBeGreaterThan(1300);
    expect(lifetime).toBeLessThanOrEqual(1500);
  });

  it('drives the provider with retries off: a retryable failure is reported, not retried', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyport-conformance-readme-retry-'));
    let describes = 0;
    const flaky = new Proxy(
      localKeystore({ path: join(dir, 'k.kp'), passphrase: 'pw', create: true, kdf: { log2N: 10 } }),
      {
        get(target, prop, receiver) {
          const value: unknown = Reflect.get(target, prop, receiver);
          if (typeof value !== 'function') return value;
          if (prop !== 'describeKey') return value.bind(target);
          // Unavailable once, then the real answer: with retries on, the call would succeed.
          return (...args: unknown[]) => {
            describes++;
            if (describes === 1) return Promise.reject(new KeyportError('Unavailable', 'try again'));
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        },
      },
    );
    const fixtures = {
      keyName: uniqueKeyNames('readme-retry'),
      missingKeyUri: () => 'local://unused#missing',
      proofs: { default: { kind: 'real-provider', name: '@keyport/local' } } as const,
    };
    const state = await SuiteState.open(flaky, fixtures, planConformance(LOCAL_CAPABILITIES, fixtures));
    try {
      const key = await state.createKey('AES_256');
      await state.client.encrypt(key.uri, randomBytes(8));
      const error = await expectError(state.client.describeKey(key.uri), 'Unavailable');
      expect(error.retryable).toBe(true);
      expect(describes).toBe(1);
    } finally {
      await state.close();
      await flaky.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
