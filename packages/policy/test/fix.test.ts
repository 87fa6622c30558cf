import { MemoryAuditSink } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import {
  applyFixes,
  checkPolicy,
  collectInventory,
  describeFix,
  type Fix,
  parsePolicyText,
  planFixes,
} from '../src/index.js';
import { client, FakeClock, localProvider, motoProvider, unique } from './support/targets.js';

const POLICY = parsePolicyText(`
version: 1
rules:
  - { id: rotation, type: max-rotation-period, severity: high, maxDays: 180 }
  - { id: owner, type: owner-label, severity: low }
`);

describe('policy fix', () => {
  it('plans and applies rotation fixes through the audited client; never deletes or disables; re-check passes', async () => {
    const clock = new FakeClock();
    const audit = new MemoryAuditSink();
    const kp = client({ providers: [await localProvider(clock)], audit: [audit] });
    await kp.createKey('local', { name: 'off', spec: 'AES_256', labels: { owner: 'a' } });
    await kp.createKey('local', {
      name: 'long',
      spec: 'AES_256',
      labels: { owner: 'a' },
      rotation: { periodDays: 400 },
    });
    await kp.createKey('local', {
      name: 'fine',
      spec: 'AES_256',
      labels: { owner: 'a' },
      rotation: { periodDays: 90 },
    });
    await kp.createKey('local', { name: 'nobody', spec: 'AES_256', rotation: { periodDays: 90 } });
    const inv = await collectInventory(kp, { sources: ['local'], now: clock.now });
    const result = checkPolicy(inv, POLICY);
    const fixes = planFixes(inv, POLICY, result, kp);
    const shown = fixes
      .map(
        (f) =>
          `${f.keyUri.split('#')[1]} ${f.action.kind}${f.action.kind === 'set-rotation-period' ? ` ${f.action.periodDays}` : ''}`,
      )
      .sort();
    expect(shown).toEqual(['long set-rotation-period 180', 'nobody manual', 'off set-rotation-period 180']);

    audit.events.length = 0;
    const outcomes = await applyFixes(kp, fixes);
    expect(outcomes.filter((o) => o.applied)).toHaveLength(2);
    // The owner label cannot be set through the neutral API: reported as not auto-fixable, not as a failure.
    const label = outcomes.find((o) => o.ruleId === 'owner');
    expect(label).toMatchObject({ applied: false, action: { kind: 'manual' } });
    expect(label?.error).toBeUndefined();
    expect(describeFix(label as Fix)).toMatch(
      /#nobody: manual \(rule owner\), not auto-fixable: add the "owner" label in the provider: keyport's neutral API sets labels only when a key is created/,
    );
    expect(audit.events.map((e) => `${e.op} ${e.outcome}`)).toEqual([
      'setRotationPolicy success',
      'setRotationPolicy success',
    ]);
    expect(audit.events.every((e) => !/delete|disable|revoke|destroy/i.test(e.op))).toBe(true);

    const after = checkPolicy(await collectInventory(kp, { sources: ['local'], now: clock.now }), POLICY);
    expect(after.findings.map((f) => `${f.ruleId} ${f.keyUri?.split('#')[1]}`)).toEqual(['owner nobody']);
  });

  it('a fix the provider refuses is reported for its key and the others still apply (moto: AWS periods are 90-2560 days)', async () => {
    const kp = client({ providers: [motoProvider()] });
    const k = await kp.createKey('aws-kms', { name: unique('fix'), spec: 'AES_256' });
    const tooShort = {
      keyUri: k.uri,
      provider: 'aws-kms',
      ruleId: 'r',
      action: { kind: 'set-rotation-period', periodDays: 30 },
    } as const;
    const ok = { ...tooShort, action: { kind: 'set-rotation-period', periodDays: 365 } } as const;
    const out = await applyFixes(kp, [tooShort, ok]);
    expect(out.map((o) => o.applied)).toEqual([false, true]);
    expect(out[0]?.error?.code).toBe('InvalidArgument');
    expect((await kp.describeKey(k.uri)).rotation?.periodDays).toBe(365);
  });
});
