/**
 * Every rule against seeded local keys that break it and keys that satisfy it: the exact set of
 * findings is asserted, so a false positive and a miss both fail. Each rule matches only the
 * keys seeded for it (label `case`), which keeps the expected set readable.
 */
import { join } from 'node:path';
import { JsonlAuditSink, loadOrCreateAuditKey } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { type CheckResult, checkPolicy, collectInventory, parsePolicyText } from '../src/index.js';
import { client, FakeClock, localProvider, tempDir } from './support/targets.js';

const POLICY = `
version: 1
rules:
  - { id: rotation, type: max-rotation-period, severity: high, maxDays: 365, match: { labels: { case: rotation } } }
  - { id: pci-hsm, type: required-protection, severity: critical, protection: [hsm], match: { labels: { case: protection, classification: pci } } }
  - { id: dev-any, type: required-protection, severity: low, protection: [software, hsm], match: { labels: { case: protection, classification: dev } } }
  - { id: no-rsa2048, type: forbidden-algorithms, severity: medium, algorithms: [RSA_2048], match: { labels: { case: algorithm } } }
  - { id: key-size, type: min-key-size, severity: medium, minBits: { RSA: 3072, EC: 384 }, match: { labels: { case: algorithm } } }
  - { id: grant-life, type: max-grant-lifetime, severity: high, maxDays: 30, match: { labels: { case: grants } } }
  - { id: grant-context, type: grant-context-constraint, severity: medium, match: { labels: { case: grants } } }
  - { id: deletion-window, type: min-pending-deletion-window, severity: high, minDays: 14, match: { labels: { case: deletion } } }
  - { id: owner, type: owner-label, severity: low, match: { labels: { case: owner } } }
`;

const name = (uri: string | undefined): string => uri?.slice(uri.indexOf('#') + 1) ?? '(source)';
const outcomes = (r: CheckResult): string[] =>
  r.findings
    .map((f) => `${f.ruleId} ${name(f.keyUri)}${f.grantId !== undefined ? ' grant' : ''} ${f.status}`)
    .sort();

describe('checkPolicy on seeded local keys', () => {
  it('finds every violation and nothing else', async () => {
    const clock = new FakeClock('2030-01-01T00:00:00.000Z');
    const kp = client({ providers: [await localProvider(clock)] });
    const create = (n: string, labels: Record<string, string>, extra: object = {}) =>
      kp.createKey('local', { name: n, spec: 'AES_256', labels, ...extra });

    // rotation: a schedule within the limit passes; off, too long, or material too old break it
    await create('rot-ok', { case: 'rotation' }, { rotation: { periodDays: 90 } });
    await create('rot-exact', { case: 'rotation' }, { rotation: { periodDays: 365 } });
    await create('rot-off', { case: 'rotation' });
    await create('rot-long', { case: 'rotation' }, { rotation: { periodDays: 366 } });
    // protection: local keys are software
    await create('pci', { case: 'protection', classification: 'pci' });
    await create('dev', { case: 'protection', classification: 'dev' });
    // algorithms and sizes
    for (const [n, spec] of [
      ['rsa2048', 'RSA_2048'],
      ['rsa3072', 'RSA_3072'],
      ['p256', 'EC_P256'],
      ['p384', 'EC_P384'],
      ['aes', 'AES_256'],
    ] as const) {
      await kp.createKey('local', {
        name: n,
        spec,
        usage: spec === 'AES_256' ? 'encrypt_decrypt' : 'sign_verify',
        labels: { case: 'algorithm' },
      });
    }
    // grants
    const day = 86_400_000;
    const at = (days: number) => new Date(clock.current.getTime() + days * day);
    const g1 = await create('grants-ok', { case: 'grants' });
    await kp.createGrant(g1.uri, {
      grantee: 'a',
      operations: ['encrypt'],
      expiresAt: at(30),
      constraints: { contextEquals: { t: '1' } },
    });
    const g2 = await create('grants-bad', { case: 'grants' });
    await kp.createGrant(g2.uri, {
      grantee: 'b',
      operations: ['encrypt'],
      expiresAt: at(31),
      constraints: { contextSubset: { t: '1' } },
    });
    await kp.createGrant(g2.uri, { grantee: 'c', operations: ['decrypt'], expiresAt: at(5) });
    await kp.createGrant(g2.uri, {
      grantee: 'd',
      operations: ['decrypt'],
      constraints: { contextEquals: { t: '2' } },
    });
    await create('grants-none', { case: 'grants' });
    // deletion windows
    const d1 = await create('delete-soon', { case: 'deletion' });
    await kp.scheduleKeyDeletion(d1.uri, { days: 7 });
    const d2 = await create('delete-later', { case: 'deletion' });
    await kp.scheduleKeyDeletion(d2.uri, { days: 14 });
    await create('not-deleted', { case: 'deletion' });
    // owners
    await create('owned', { case: 'owner', owner: 'team-a' });
    await create('unowned', { case: 'owner' });
    await create('blank-owner', { case: 'owner', owner: ' ' });
    // an old key: material age beyond the limit even though it is labelled for the rotation rule
    clock.advanceDays(-400);
    await create('rot-old', { case: 'rotation' });
    clock.advanceDays(400);

    const inv = await collectInventory(kp, { sources: ['local'], now: clock.now });
    const result = checkPolicy(inv, parsePolicyText(POLICY));
    expect(outcomes(result)).toEqual(
      [
        'rotation rot-off violation',
        'rotation rot-long violation',
        'rotation rot-old violation',
        'pci-hsm pci violation',
        'no-rsa2048 rsa2048 violation',
        'key-size rsa2048 violation',
        'key-size p256 violation',
        'grant-life grants-bad grant violation', // 31 days
        'grant-life grants-bad grant violation', // never expires
        'grant-context grants-bad grant violation', // grantee c
        'deletion-window delete-soon violation',
        'owner unowned violation',
        'owner blank-owner violation',
      ].sort(),
    );
    expect(result.summary.violations).toBe(13);
    expect(result.summary.unknown).toBe(0);
    // each rule saw its keys: passes are counted, not silently skipped
    expect(result.summary.passed).toBeGreaterThanOrEqual(12);
    // messages name the facts
    expect(result.findings.find((f) => name(f.keyUri) === 'rot-old')?.message).toMatch(/400 days old/);
  });

  it('keys unused for N days, from a verified audit log; short logs give unknown, not a pass', async () => {
    const dir = await tempDir();
    const logPath = join(dir, 'audit.jsonl');
    const { key } = await loadOrCreateAuditKey(join(dir, 'audit.key'));
    // The keystore's clock is 200 days behind: "old" is created 200 days before the log starts.
    const clock = new FakeClock(new Date(Date.now() - 200 * 86_400_000).toISOString());
    const local = await localProvider(clock);
    const old = await client({ providers: [local] }).createKey('local', { name: 'old', spec: 'AES_256' });
    clock.current = new Date();
    const sink = await JsonlAuditSink.open(logPath, { hmacKey: key });
    const kp = client({ providers: [local], audit: [sink] });
    const used = await kp.createKey('local', { name: 'used', spec: 'AES_256' });
    await kp.createKey('local', { name: 'fresh', spec: 'AES_256' });
    await kp.encrypt(used.uri, new Uint8Array(8));
    const policy = parsePolicyText(
      '{"version":1,"rules":[{"type":"max-unused-days","severity":"medium","maxDays":90}]}',
    );
    const inv = await collectInventory(kp, { sources: ['local'], auditLog: { path: logPath, key } });
    expect(old.uri).toMatch(/#old$/);

    const soon = checkPolicy(inv, policy, { now: new Date(Date.now() + 10 * 86_400_000) });
    expect(outcomes(soon)).toEqual(['max-unused-days old unknown']);
    const later = checkPolicy(inv, policy, { now: new Date(Date.now() + 100 * 86_400_000) });
    expect(outcomes(later)).toEqual([
      'max-unused-days fresh violation',
      'max-unused-days old violation',
      'max-unused-days used violation',
    ]);
    // A key used under a name the inventory does not list (here: filtered out; in life an alias
    // or another spelling of the path) might be any key of that scheme: unknown, not a violation.
    const partial = await collectInventory(kp, {
      sources: ['local'],
      auditLog: { path: logPath, key },
      filter: (k) => !k.uri.endsWith('#used'),
    });
    expect(partial.auditUnmatched).toEqual([used.uri]);
    const hedged = checkPolicy(partial, policy, { now: new Date(Date.now() + 100 * 86_400_000) });
    expect(outcomes(hedged)).toEqual(['max-unused-days fresh unknown', 'max-unused-days old unknown']);
    expect(hedged.findings[0]?.message).toMatch(/not in the inventory/);
    // without a log, last use is unknown for every key: never a pass
    const blind = checkPolicy(await collectInventory(kp, { sources: ['local'] }), policy);
    expect(outcomes(blind)).toEqual([
      'max-unused-days fresh unknown',
      'max-unused-days old unknown',
      'max-unused-days used unknown',
    ]);
  });
});
