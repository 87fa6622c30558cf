import { MemoryAuditSink } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import {
  applyFixes,
  checkPolicy,
  collectInventory,
  describeFix,
  type Fix,
  type FixClient,
  FixesStoppedError,
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

  it('acts only on keys the rule it is planned with matches: a check of another policy does not widen it (local keystore)', async () => {
    const clock = new FakeClock();
    const audit = new MemoryAuditSink();
    const kp = client({ providers: [await localProvider(clock)], audit: [audit] });
    await kp.createKey('local', { name: 'dev', spec: 'AES_256', labels: { env: 'dev' } });
    await kp.createKey('local', { name: 'prod', spec: 'AES_256', labels: { owner: 'a', env: 'prod' } });
    const inv = await collectInventory(kp, { sources: ['local'], now: clock.now });
    // The whole estate checked, then fixed with the team's own file, whose rule has the same id
    // but is scoped to dev keys: prod's rotation is not this policy's to change.
    const broad = checkPolicy(inv, POLICY);
    expect(broad.findings.map((f) => `${f.ruleId} ${f.keyUri?.split('#')[1]}`).sort()).toEqual([
      'owner dev',
      'rotation dev',
      'rotation prod',
    ]);
    const devOnly = parsePolicyText(`
version: 1
rules:
  - { id: rotation, type: max-rotation-period, severity: high, maxDays: 180, match: { labels: { env: dev } } }
  - { id: owner, type: max-rotation-period, severity: low, maxDays: 30, match: { labels: { env: dev } } }
`);
    const fixes = planFixes(inv, devOnly, broad, kp);
    // Only the dev key, and only by the rotation rule (the finding of the other policy's owner
    // rule is no rotation finding, whatever this policy's rule of that id is).
    expect(fixes.map((f) => `${f.keyUri.split('#')[1]} ${f.ruleId} ${f.action.kind}`)).toEqual([
      'dev rotation set-rotation-period',
    ]);
    audit.events.length = 0;
    await applyFixes(kp, fixes);
    expect(audit.events.map((e) => `${e.op} ${e.keyUri?.split('#')[1]}`)).toEqual(['setRotationPolicy dev']);
    const prod = inv.keys.find((k) => k.uri.endsWith('#prod'));
    expect((await kp.describeKey(prod?.uri as string)).rotation).toBeUndefined();
  });

  it('a stop reports the fixes applied before it, the one it cut off and those not started (local keystore)', async () => {
    // Before: the abort was rethrown as it came, and the caller never learnt of the fixes applied.
    const kp = client({ providers: [await localProvider()] });
    const uris: string[] = [];
    for (const name of ['a', 'b', 'c'])
      uris.push((await kp.createKey('local', { name, spec: 'AES_256' })).uri);
    const [a, b, c] = uris as [string, string, string];
    const rotate = (keyUri: string): Fix => ({
      keyUri,
      provider: 'local',
      ruleId: 'rotation',
      action: { kind: 'set-rotation-period', periodDays: 180 },
    });
    const manual: Fix = { ...rotate(a), ruleId: 'owner', action: { kind: 'manual', reason: 'by hand' } };
    const fixes = [rotate(a), manual, rotate(b), rotate(c)];

    /** The client, with `onCall(n)` run as the n-th fix call starts (before it reaches kp). */
    const watched = (onCall: (n: number) => void): FixClient => {
      let n = 0;
      return {
        capabilities: (p) => kp.capabilities(p),
        setRotationPolicy: (uri, rotation, o) => {
          onCall(++n);
          return kp.setRotationPolicy(uri, rotation, o);
        },
      };
    };
    const stop = async (run: Promise<unknown>): Promise<FixesStoppedError> => {
      const e = await run.then(
        () => undefined,
        (x: unknown) => x,
      );
      // The record of what was done comes first: the old rethrow had none.
      expect(e).toHaveProperty('outcomes');
      expect(e).toBeInstanceOf(FixesStoppedError);
      return e as FixesStoppedError;
    };

    // Stopped while the second rotation fix was in its call: that one is cut off.
    const during = new AbortController();
    const e = await stop(
      applyFixes(
        watched((n) => {
          if (n === 2) during.abort();
        }),
        fixes,
        { signal: during.signal },
      ),
    );
    expect(e.code).toBe('Aborted');
    expect(e.outcomes).toEqual([
      { ...rotate(a), applied: true },
      { ...manual, applied: false },
    ]);
    expect(e.cutOff).toEqual(rotate(b));
    expect(e.notStarted).toEqual([rotate(c)]);
    expect(e.message).toContain('1 applied before the stop');
    expect((await kp.describeKey(a)).rotation?.periodDays).toBe(180);
    expect((await kp.describeKey(c)).rotation).toBeUndefined();

    // Stopped between two fixes (as the first call returns): nothing is cut off, no call follows.
    const between = new AbortController();
    let calls = 0;
    const e2 = await stop(
      applyFixes(
        {
          capabilities: (p) => kp.capabilities(p),
          setRotationPolicy: async (uri, rotation, o) => {
            calls++;
            const info = await kp.setRotationPolicy(uri, rotation, o);
            between.abort();
            return info;
          },
        },
        [rotate(c), rotate(b)],
        { signal: between.signal },
      ),
    );
    expect(e2.code).toBe('Aborted');
    expect(e2.outcomes).toEqual([{ ...rotate(c), applied: true }]);
    expect(e2.cutOff).toBeUndefined();
    expect(e2.notStarted).toEqual([rotate(b)]);
    expect(calls).toBe(1);
    expect((await kp.describeKey(c)).rotation?.periodDays).toBe(180);
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
