/**
 * Hostile policy text never escapes as anything but a PolicyError (no TypeError, no prototype
 * pollution), and whatever validates is plain, prototype-free data that checkPolicy accepts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkPolicy, type Inventory, PolicyError, parsePolicyText, UNKNOWN } from '../src/index.js';

const RUNS = Number(process.env.KEYPORT_FUZZ_RUNS ?? 200);
const EMPTY: Inventory = {
  generatedAt: '2030-01-01T00:00:00.000Z',
  sources: [],
  auditLogSince: UNKNOWN,
  keys: [],
};

const ruleish = fc.record(
  {
    type: fc.constantFrom(
      'max-rotation-period',
      'owner-label',
      'min-key-size',
      'required-protection',
      'x',
      '__proto__',
    ),
    severity: fc.constantFrom('low', 'high', 'critical', 'nope'),
    maxDays: fc.oneof(fc.integer({ min: -5, max: 40_000 }), fc.double(), fc.string()),
    label: fc.string(),
    minBits: fc.dictionary(fc.constantFrom('RSA', 'EC', '__proto__', 'constructor'), fc.integer()),
    protection: fc.array(fc.constantFrom('hsm', 'software', 'x')),
    match: fc.record(
      { labels: fc.dictionary(fc.string(), fc.oneof(fc.string(), fc.integer())) },
      { requiredKeys: [] },
    ),
  },
  { requiredKeys: [] },
);

function expectContained(text: string): void {
  try {
    const p = parsePolicyText(text);
    for (const r of p.rules) expect(Object.getPrototypeOf(r)).toBeNull();
    checkPolicy(EMPTY, p);
  } catch (e) {
    if (!(e instanceof PolicyError)) throw e;
    expect(typeof e.path).toBe('string');
  }
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
}

describe('policy file fuzz', () => {
  it('structured near-misses: a policy or a PolicyError, nothing else', () => {
    fc.assert(
      fc.property(fc.array(ruleish, { maxLength: 4 }), fc.constantFrom(1, 2, '1'), (rules, version) => {
        expectContained(JSON.stringify({ version, rules }));
      }),
      { numRuns: RUNS },
    );
  });

  it('arbitrary JSON and arbitrary text', () => {
    fc.assert(
      fc.property(fc.oneof(fc.json(), fc.string(), fc.string({ unit: 'binary' })), (text) =>
        expectContained(text),
      ),
      { numRuns: RUNS },
    );
  });
});
