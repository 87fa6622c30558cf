/**
 * `describeProviderConformance`: registers the whole conformance suite in vitest for one provider.
 * Tests are chosen from the provider's declared capabilities (per key spec); capabilities declared
 * unavailable are checked to throw UnsupportedError; capabilities no target here can prove are
 * declared "not emulated" by the fixtures and left out, and the run prints who proved what.
 */
import type { Capabilities } from '@keyport/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planConformance } from './capability-plan.js';
import type { ConformanceFixtures } from './fixtures.js';
import { formatProofSummary } from './matrix.js';
import { isLazySource, type ProviderSource, SuiteState } from './suite-state.js';
import { registerEncryptionTests } from './topics/encryption.js';
import { registerEnvelopeTests } from './topics/envelope.js';
import { registerGrantTests } from './topics/grants.js';
import { registerImportTests } from './topics/import.js';
import { registerKeyTests } from './topics/keys.js';
import { registerLifecycleTests } from './topics/lifecycle.js';
import type { Topic } from './topics/registrar.js';
import { registerResilienceTests } from './topics/resilience.js';
import { registerSigningTests } from './topics/signing.js';
import { registerUnsupportedTests } from './topics/unsupported.js';

export interface ProviderConformanceOptions {
  /** Shown in test names and the summary, e.g. 'local' or 'aws-kms (moto 5.2.5)'. */
  readonly name: string;
  readonly provider: ProviderSource;
  readonly fixtures: ConformanceFixtures;
  /** Per-test timeout in ms (default 60 000). */
  readonly testTimeoutMs?: number;
  /**
   * Overrides what the provider declares. For the suite's own tests (a provider narrowed to fewer
   * capabilities must get the UnsupportedError checks); an adapter never needs it.
   */
  readonly capabilities?: Capabilities;
  /** Where the proof summary goes; console.log by default. */
  readonly log?: (text: string) => void;
}

export function describeProviderConformance(options: ProviderConformanceOptions): void {
  const { name, provider, fixtures } = options;
  const capabilities = options.capabilities ?? provider.capabilities;
  const plan = planConformance(capabilities, fixtures);
  const timeoutMs = options.testTimeoutMs ?? 60_000;

  describe(`keyport conformance: ${name}`, () => {
    let state: SuiteState | undefined;
    const topic: Topic = {
      plan,
      timeoutMs,
      state: () => {
        if (state === undefined) throw new Error('conformance: the provider failed to open (see beforeAll)');
        return state;
      },
    };

    beforeAll(async () => {
      state = await SuiteState.open(provider, fixtures, plan, options.capabilities);
    }, timeoutMs);

    afterAll(async () => {
      (options.log ?? console.log)(formatProofSummary(name, plan));
      await state?.close();
    }, timeoutMs);

    describe('fixtures', () => {
      it('every capability declared available is proven by a target or declared not emulated with a reason', () => {
        for (const row of plan.rows) {
          if (row.declared === undefined) continue;
          if (row.proof.kind === 'not-emulated') expect(row.proof.reason.trim(), row.capability).not.toBe('');
          else expect(row.proof.name.trim(), row.capability).not.toBe('');
        }
        expect(plan.specs.length, 'no declared key spec is exercised').toBeGreaterThan(0);
      });

      it('every exercised capability has the fixtures it needs', () => {
        const missing = plan.missingFixtures.map((m) => `${m.capability} needs fixtures.${m.fixture}`);
        expect(missing, 'provide the fixture or declare the capability not-emulated').toEqual([]);
      });

      if (isLazySource(provider) && options.capabilities === undefined) {
        it('the opened provider declares the capabilities the tests were chosen by', () => {
          expect(topic.state().capabilities).toEqual(provider.capabilities);
        });
      }
    });

    registerKeyTests(topic);
    registerEncryptionTests(topic);
    registerLifecycleTests(topic);
    registerGrantTests(topic);
    registerImportTests(topic);
    registerSigningTests(topic);
    registerEnvelopeTests(topic);
    registerResilienceTests(topic);
    registerUnsupportedTests(topic);
  });
}
