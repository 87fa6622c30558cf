/**
 * Promises of the README that no other test held the code to: one test per promise, named after
 * it. Provider answers a real target cannot give (a third-party driver's key, a version list
 * without a primary, a slow listing) come from a stand-in client; the rest run on the local
 * keystore through the real Keyport client.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Capabilities, Grant, KeyInfo } from '@keyport/core';
import { MemoryAuditSink } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import {
  checkPolicy,
  collectInventory,
  type FixClient,
  type Inventory,
  type InventoryClient,
  type InventoryKey,
  MAX_CHART_KEYS,
  MAX_POLICY_BYTES,
  PolicyError,
  parsePolicyText,
  planFixes,
  readAuditLastUse,
  readPolicyFile,
  reportCharts,
  toSarif,
  UNKNOWN,
} from '../src/index.js';
import { auditedClient, client, localProvider } from './support/targets.js';

const NOW = '2030-01-01T00:00:00.000Z';
const DAY_MS = 86_400_000;

const base: InventoryKey = {
  uri: 'local:///ks#k',
  provider: 'local',
  algorithm: 'AES_256',
  keyBits: 256,
  purpose: 'encrypt_decrypt',
  protection: 'software',
  state: 'enabled',
  createdAt: '2029-12-01T00:00:00.000Z',
  lastRotatedAt: '2029-12-01T00:00:00.000Z',
  rotation: { enabled: true, periodDays: 90, nextRotationAt: UNKNOWN },
  versions: 1,
  pendingDeletionAt: null,
  grants: { count: 0, earliestExpiry: null, latestExpiry: null, items: [] },
  labels: { owner: 'team' },
  origin: 'provider',
  lastUsedAt: UNKNOWN,
  errors: [],
};

const inventoryOf = (keys: InventoryKey[]): Inventory => ({
  generatedAt: NOW,
  sources: [{ source: 'local', keys: keys.length }],
  auditLogSince: UNKNOWN,
  keys,
});

/** A stand-in driver listing `keys` under the source `acme` (describe answers the listed key). */
function standIn(
  keys: readonly KeyInfo[],
  caps: Partial<Capabilities> = {},
  listGrants: (uri: string) => AsyncIterable<Grant> = async function* () {},
): InventoryClient {
  return {
    capabilities: () =>
      ({ autoRotation: false, rotation: 'none', grants: 'native', ...caps }) as Capabilities,
    async *listKeys() {
      yield* keys;
    },
    describeKey: async (uri: string) => keys.find((k) => k.uri === uri),
    listGrants,
  } as unknown as InventoryClient;
}

const acmeKey = (name: string, fields: Record<string, unknown> = {}): KeyInfo =>
  ({
    uri: `acme:${name}`,
    spec: 'AES_256',
    usage: 'encrypt_decrypt',
    state: 'enabled',
    labels: { owner: 'o' },
    createdAt: new Date('2029-01-01T00:00:00.000Z'),
    ...fields,
  }) as unknown as KeyInfo;

describe('README: Inventory', () => {
  it('every inventory call goes through the client and is audited', async () => {
    const audit = new MemoryAuditSink();
    const kp = client({ providers: [await localProvider()], audit: [audit] });
    const k = await kp.createKey('local', { name: 'k', spec: 'AES_256' });
    audit.events.length = 0;
    await collectInventory(kp, { sources: ['local'] });
    const ops = audit.events.map((e) => e.op);
    expect(ops).toContain('listKeys');
    expect(audit.events.filter((e) => e.op === 'listGrants').map((e) => e.keyUri)).toEqual([k.uri]);
  });

  it('`filter` keeps only the keys it accepts before any per-key call', async () => {
    const kp = client({ providers: [await localProvider()] });
    const keep = await kp.createKey('local', { name: 'keep', spec: 'AES_256' });
    for (const name of ['skip1', 'skip2', 'skip3']) await kp.createKey('local', { name, spec: 'AES_256' });
    const perKey: string[] = [];
    const watched: InventoryClient = {
      capabilities: (p) => kp.capabilities(p),
      listKeys: (p, o) => kp.listKeys(p, o),
      describeKey: (uri, o) => {
        perKey.push(`describeKey ${uri}`);
        return kp.describeKey(uri, o);
      },
      listGrants: (uri, o) => {
        perKey.push(`listGrants ${uri}`);
        return kp.listGrants(uri, o);
      },
    };
    const inv = await collectInventory(watched, { sources: ['local'], filter: (k) => k.uri === keep.uri });
    expect(inv.keys.map((k) => k.uri)).toEqual([keep.uri]);
    expect(perKey.length).toBeGreaterThan(0);
    expect(perKey.every((c) => c.endsWith(` ${keep.uri}`))).toBe(true);
  });

  it('each source is listed page by page with the given `pageSize`', async () => {
    const kp = client({ providers: [await localProvider()] });
    for (let i = 0; i < 5; i++) await kp.createKey('local', { name: `k${i}`, spec: 'AES_256' });
    const asked: (number | undefined)[] = [];
    const watched: InventoryClient = {
      capabilities: (p) => kp.capabilities(p),
      listKeys: (p, o) => {
        asked.push(o?.pageSize);
        return kp.listKeys(p, o);
      },
      describeKey: (uri, o) => kp.describeKey(uri, o),
      listGrants: (uri, o) => kp.listGrants(uri, o),
    };
    const inv = await collectInventory(watched, { sources: ['local'], pageSize: 2 });
    expect(asked).toEqual([2]);
    expect(inv.keys).toHaveLength(5);
  });

  it('per-key reads run at most `concurrency` (default 8) at a time per source', async () => {
    const keys = Array.from({ length: 30 }, (_, i) => acmeKey(`k${i}`));
    let inFlight = 0;
    let most = 0;
    const slowGrants = async function* (): AsyncIterable<Grant> {
      inFlight++;
      most = Math.max(most, inFlight);
      try {
        await new Promise((r) => setTimeout(r, 5));
      } finally {
        inFlight--;
      }
    };
    const c = standIn(keys, {}, slowGrants);
    expect((await collectInventory(c, { sources: ['acme'] })).keys).toHaveLength(30);
    expect(most).toBe(8);
    most = 0;
    await collectInventory(c, { sources: ['acme'], concurrency: 3 });
    expect(most).toBe(3);
  });

  it('an abort stops everything: the inventory fails with Aborted, not a source listing error', async () => {
    const kp = client({ providers: { a: await localProvider(), b: await localProvider() } });
    for (const p of ['a', 'b'])
      for (let i = 0; i < 3; i++) await kp.createKey(p, { name: `k${i}`, spec: 'AES_256' });
    const stop = new AbortController();
    const run = collectInventory(kp, {
      sources: ['a', 'b'],
      signal: stop.signal,
      filter: () => {
        stop.abort();
        return true;
      },
    });
    await expect(run).rejects.toMatchObject({ code: 'Aborted' });
  });

  it('labels are {} where a provider has none', async () => {
    const inv = await collectInventory(standIn([acmeKey('bare', { labels: undefined })]), {
      sources: ['acme'],
    });
    expect({ ...inv.keys[0]?.labels }).toEqual({});
    const r = checkPolicy(
      inv,
      parsePolicyText('version: 1\nrules:\n  - { type: owner-label, severity: low }'),
    );
    expect(r.findings.map((f) => f.status)).toEqual(['violation']);
  });

  it('lastRotatedAt is the primary version’s creation, the newest version’s where there is no primary', async () => {
    const versions = [
      { version: '1', state: 'enabled', createdAt: new Date('2029-01-01T00:00:00.000Z') },
      { version: '3', state: 'enabled', createdAt: new Date('2029-11-01T00:00:00.000Z') },
      { version: '2', state: 'enabled', createdAt: new Date('2029-06-01T00:00:00.000Z') },
    ];
    const inv = await collectInventory(
      standIn([acmeKey('primary', { versions, primaryVersion: '2' }), acmeKey('none', { versions })], {
        rotation: 'versioned',
      }),
      { sources: ['acme'] },
    );
    const at = (name: string) => inv.keys.find((k) => k.uri === `acme:${name}`)?.lastRotatedAt;
    expect(at('primary')).toBe('2029-06-01T00:00:00.000Z');
    expect(at('none')).toBe('2029-11-01T00:00:00.000Z');
    expect(inv.keys.map((k) => k.versions)).toEqual([3, 3]);
  });

  it("a third-party driver's keys are of unknown protection unless stated per source", async () => {
    const c = standIn([acmeKey('k')]);
    expect((await collectInventory(c, { sources: ['acme'] })).keys[0]?.protection).toBe(UNKNOWN);
    const stated = await collectInventory(c, { sources: ['acme'], protection: { acme: 'hsm' } });
    expect(stated.keys[0]?.protection).toBe('hsm');
    // What the driver reports for the key itself wins over the statement.
    const reported = await collectInventory(standIn([acmeKey('k', { protection: 'software' })]), {
      sources: ['acme'],
      protection: { acme: 'hsm' },
    });
    expect(reported.keys[0]?.protection).toBe('software');
  });
});

describe('README: last use from the audit log', () => {
  it('a successful encrypt, sign or public-key read is a use; describe and list calls are not', async () => {
    const { kp, logPath, auditKey } = await auditedClient([await localProvider()]);
    const sym = await kp.createKey('local', { name: 'sym', spec: 'AES_256' });
    const signer = await kp.createKey('local', { name: 'signer', spec: 'EC_P256', usage: 'sign_verify' });
    const verifier = await kp.createKey('local', { name: 'verifier', spec: 'EC_P256', usage: 'sign_verify' });
    const idle = await kp.createKey('local', { name: 'idle', spec: 'AES_256' });
    await kp.encrypt(sym.uri, new Uint8Array(4));
    await kp.sign(signer.uri, new Uint8Array(4));
    // An application that verifies offline fetches the public key: that key is in use.
    await kp.getPublicKey(verifier.uri);
    await kp.describeKey(idle.uri);
    const { lastUse } = await readAuditLastUse({ path: logPath, key: auditKey });
    expect([...lastUse.keys()].sort()).toEqual([signer.uri, sym.uri, verifier.uri].sort());
  });
});

describe('README: Policy files', () => {
  it('a JSON policy may carry a "$schema" member for editor completion', () => {
    const p = parsePolicyText(
      JSON.stringify({
        $schema: './node_modules/@keyport/policy/schema/policy.schema.json',
        version: 1,
        rules: [{ type: 'owner-label', severity: 'low' }],
      }),
    );
    expect(p.rules.map((r) => r.id)).toEqual(['owner-label']);
  });

  it('a policy file larger than 1 MiB is refused', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'keyport-policy-big-'));
    try {
      const path = join(dir, 'policy.yaml');
      const head = 'version: 1\nrules:\n  - { type: owner-label, severity: low }\n';
      // A comment fills the rest: small in tokens, large in bytes.
      await writeFile(path, `${head}#${'x'.repeat(MAX_POLICY_BYTES - head.length)}\n`);
      const e = await readPolicyFile(path).then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(PolicyError);
      expect((e as PolicyError).message).toMatch(/larger than 1048576 bytes/);
      // One byte less reads.
      await writeFile(path, `${head}#${'x'.repeat(MAX_POLICY_BYTES - head.length - 2)}\n`);
      expect((await readPolicyFile(path)).rules).toHaveLength(1);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('README: rules', () => {
  it('destroyed keys are not checked', () => {
    const destroyed: InventoryKey = {
      ...base,
      state: 'destroyed',
      protection: UNKNOWN,
      labels: {},
      rotation: { enabled: false, periodDays: null, nextRotationAt: null },
    };
    const policy = parsePolicyText(`
version: 1
rules:
  - { id: rotation, type: max-rotation-period, severity: high, maxDays: 30 }
  - { id: hsm, type: required-protection, severity: high, protection: [hsm] }
  - { id: owner, type: owner-label, severity: low }
  - { id: window, type: min-pending-deletion-window, severity: low, minDays: 7 }
`);
    const r = checkPolicy(inventoryOf([destroyed]), policy);
    expect(r.findings).toEqual([]);
    expect(r.summary.evaluated).toBe(0);
  });

  it('owner-label checks the label its `label` names (default `owner`)', () => {
    const policy = parsePolicyText(
      'version: 1\nrules:\n  - { id: team, type: owner-label, severity: low, label: team }',
    );
    const ownerOnly = { ...base, uri: 'local:///ks#owner-only', labels: { owner: 'a' } };
    const team = { ...base, uri: 'local:///ks#team', labels: { team: 'payments' } };
    const r = checkPolicy(inventoryOf([ownerOnly, team]), policy);
    expect(r.findings.map((f) => [f.keyUri, f.status, f.message])).toEqual([
      ['local:///ks#owner-only', 'violation', 'has no "team" label'],
    ]);
  });
});

describe('README: Reports (SARIF)', () => {
  const policy = parsePolicyText(`
version: 1
rules:
  - { id: c, type: owner-label, severity: critical }
  - { id: h, type: owner-label, severity: high, label: h }
  - { id: m, type: owner-label, severity: medium, label: m }
  - { id: l, type: owner-label, severity: low, label: l }
  - { id: u, type: max-unused-days, severity: critical, maxDays: 30 }
`);
  const inv = inventoryOf([{ ...base, labels: {} }]);
  type SarifRun = {
    tool: { driver: { rules: { id: string; properties: Record<string, unknown> }[] } };
    results: { ruleId: string; kind: string; level: string; partialFingerprints: Record<string, string> }[];
  };
  const runOf = (sarif: Record<string, unknown>): SarifRun => (sarif.runs as SarifRun[])[0] as SarifRun;

  it('a violation is kind fail at level error/error/warning/note by severity, with a security-severity; an unknown is review at level none', () => {
    const run = runOf(toSarif(checkPolicy(inv, policy), policy));
    expect(run.results.map((r) => [r.ruleId, r.kind, r.level])).toEqual([
      ['c', 'fail', 'error'],
      ['h', 'fail', 'error'],
      ['m', 'fail', 'warning'],
      ['l', 'fail', 'note'],
      ['u', 'review', 'none'],
    ]);
    const scores = run.tool.driver.rules.map((r) => Number(r.properties['security-severity']));
    for (const s of scores) expect(s >= 0 && s <= 10).toBe(true);
    // Higher severity, higher score (critical > high > medium > low).
    expect(scores.slice(0, 4)).toEqual([...scores.slice(0, 4)].sort((a, b) => b - a));
    expect(new Set(scores.slice(0, 4)).size).toBe(4);
  });

  it('partialFingerprints keep results stable across runs', () => {
    const stale = { ...base, labels: {}, lastRotatedAt: '2028-01-01T00:00:00.000Z' };
    const rotation = parsePolicyText(
      'version: 1\nrules:\n  - { id: r, type: max-rotation-period, severity: high, maxDays: 90 }\n  - { id: o, type: owner-label, severity: low }',
    );
    const fingerprints = (now: Date): string[] =>
      runOf(toSarif(checkPolicy(inventoryOf([stale]), rotation, { now }), rotation)).results.map(
        (r) => r.partialFingerprints['keyportFinding/v1'] as string,
      );
    const first = fingerprints(new Date(NOW));
    // A later run: the messages say other ages, the findings are the same ones.
    const later = fingerprints(new Date(Date.parse(NOW) + 30 * DAY_MS));
    expect(later).toEqual(first);
    expect(new Set(first).size).toBe(2);
  });
});

describe('README: Reports (HTML charts)', () => {
  it('charts draw at most 60 keys (240 grants); the captions say what is left out', async () => {
    const keys: InventoryKey[] = Array.from({ length: 100 }, (_, i) => {
      const created = new Date(Date.parse(NOW) - (i + 1) * DAY_MS).toISOString();
      return {
        ...base,
        uri: `local:///ks#k${i}`,
        createdAt: created,
        lastRotatedAt: created,
        grants: {
          count: 3,
          earliestExpiry: UNKNOWN,
          latestExpiry: UNKNOWN,
          items: Array.from({ length: 3 }, (_, g) => ({
            id: `g${i}-${g}`,
            grantee: 'app',
            operations: ['encrypt' as const],
            createdAt: NOW,
            expiresAt: new Date(Date.parse(NOW) + (i * 3 + g + 1) * DAY_MS).toISOString(),
            constrained: true,
          })),
        },
      };
    });
    const policy = parsePolicyText(
      'version: 1\nrules:\n  - { id: r, type: max-rotation-period, severity: high, maxDays: 365 }',
    );
    const [age, , grants] = await reportCharts(inventoryOf(keys), policy);
    const marks = (svg: string, kind: string): number =>
      svg.split(`aria-roledescription="${kind}"`).length - 1;
    expect(MAX_CHART_KEYS).toBe(60);
    expect(marks(age?.svg ?? '', 'bar')).toBe(60);
    expect(age?.caption).toMatch(/^60 oldest of 100 keys/);
    expect(marks(grants?.svg ?? '', 'point')).toBe(240);
    expect(grants?.caption).toMatch(/^240 of 300 expiring grants drawn/);
  });
});

describe('README: Fixes', () => {
  it('fixes are planned for violations only: an unknown finding gets none', () => {
    const blind: InventoryKey = {
      ...base,
      createdAt: UNKNOWN,
      lastRotatedAt: UNKNOWN,
      rotation: { enabled: UNKNOWN, periodDays: UNKNOWN, nextRotationAt: UNKNOWN },
    };
    const policy = parsePolicyText(
      'version: 1\nrules:\n  - { id: r, type: max-rotation-period, severity: high, maxDays: 90 }',
    );
    const inv = inventoryOf([blind]);
    const result = checkPolicy(inv, policy);
    expect(result.findings.map((f) => f.status)).toEqual(['unknown']);
    const fixClient: FixClient = {
      capabilities: () => ({ autoRotation: true }) as Capabilities,
      setRotationPolicy: async () => {
        throw new Error('not applied in this test');
      },
    };
    expect(planFixes(inv, policy, result, fixClient)).toEqual([]);
  });
});
