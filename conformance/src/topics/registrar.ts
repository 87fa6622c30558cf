/** What every topic module receives when it registers its tests. */
import { KEY_USAGES, type KeySpec, type KeyUsage, USAGES_BY_SPEC } from '@keyport/core';
import { type ConformancePlan, specsFor } from '../capability-plan.js';
import { type Probe, probeFor } from '../probe.js';
import type { SuiteState } from '../suite-state.js';

export interface Topic {
  /** The live state; only valid inside a test (created in beforeAll). */
  readonly state: () => SuiteState;
  readonly plan: ConformancePlan;
  /** Per-test timeout in ms. */
  readonly timeoutMs: number;
}

/** The spec lifecycle tests use: symmetric encryption if any, else signing, else MAC. */
export function lifecycleSpec(plan: ConformancePlan): { spec: KeySpec; usage: KeyUsage } | undefined {
  for (const usage of ['encrypt_decrypt', 'sign_verify', 'mac'] as const) {
    const specs = specsFor(plan, usage);
    const spec = specs.includes('AES_256') ? 'AES_256' : specs[0];
    if (spec !== undefined) return { spec, usage };
  }
  return undefined;
}

export function lifecycleProbe(t: Topic, chosen: { spec: KeySpec; usage: KeyUsage }): Probe {
  const s = t.state();
  return probeFor(s.client, chosen.spec, chosen.usage, s.capabilities.signingAlgorithms);
}

/** A usage no key of `spec` can serve (always exists: no spec serves every usage). */
export function impossibleUsage(spec: KeySpec): KeyUsage {
  const usage = KEY_USAGES.find((u) => !USAGES_BY_SPEC[spec].includes(u));
  if (usage === undefined) throw new Error(`conformance: ${spec} serves every usage`);
  return usage;
}

export const SYMMETRIC_SPEC: KeySpec = 'AES_256';
