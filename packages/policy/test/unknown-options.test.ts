/**
 * Every options object of the package refuses what it does not know and what is of the wrong
 * type: InvalidArgument naming the option (never a value: the audit key is a secret), before
 * any call on the client (a fake records them).
 */
import { KeyportError } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import {
  applyFixes,
  checkPolicy,
  collectInventory,
  type Fix,
  type FixClient,
  type Inventory,
  type InventoryClient,
  type InventoryOptions,
  parsePolicyText,
  readAuditLastUse,
  streamInventory,
  toHtml,
  toSarif,
  UNKNOWN,
} from '../src/index.js';

async function refusal(run: () => unknown): Promise<KeyportError> {
  let error: unknown;
  try {
    await run();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(KeyportError);
  expect((error as KeyportError).code).toBe('InvalidArgument');
  return error as KeyportError;
}

const policy = parsePolicyText('version: 1\nrules:\n  - { type: owner-label, severity: low }\n');
const inventory: Inventory = {
  generatedAt: '2030-01-01T00:00:00.000Z',
  sources: [],
  auditLogSince: UNKNOWN,
  keys: [],
};
const result = checkPolicy(inventory, policy);

describe('checkPolicy options', () => {
  it('a misspelt `now` is refused, naming it', async () => {
    const e = await refusal(() => checkPolicy(inventory, policy, { nwo: new Date() } as never));
    expect(e.message).toContain('"nwo"');
  });
  it('a `now` that is a string or an invalid Date is refused, naming options.now', async () => {
    for (const now of ['2030-01-01', new Date(Number.NaN), 0]) {
      const e = await refusal(() => checkPolicy(inventory, policy, { now } as never));
      expect(e.message).toContain('options.now');
    }
  });
  it('a valid `now` is still used', () => {
    const now = new Date('2031-02-03T00:00:00.000Z');
    expect(checkPolicy(inventory, policy, { now }).checkedAt).toBe(now.toISOString());
  });
});

describe('collectInventory / streamInventory options', () => {
  function fakeClient(calls: string[]): InventoryClient {
    return {
      capabilities: () => ({ autoRotation: false, rotation: 'none', grants: 'none' }) as never,
      listKeys(source: string) {
        calls.push(`listKeys ${source}`);
        return (async function* () {})();
      },
      describeKey: async () => {
        calls.push('describeKey');
        throw new Error('not reached');
      },
      listGrants: () => (async function* () {})(),
    } as unknown as InventoryClient;
  }
  const bad: [string, Record<string, unknown>, string][] = [
    ['a misspelt concurrency', { concurency: 2 }, '"concurency"'],
    ['a misspelt timeoutMs', { timeout: 5_000 }, '"timeout"'],
    ['pageSize a string', { pageSize: '10' }, 'options.pageSize'],
    ['pageSize NaN', { pageSize: Number.NaN }, 'options.pageSize'],
    ['timeoutMs NaN', { timeoutMs: Number.NaN }, 'options.timeoutMs'],
    ['signal a string', { signal: 'abort' }, 'options.signal'],
    ['now a Date instead of a function', { now: new Date() }, 'options.now'],
    ['a protection level that does not exist', { protection: { local: 'hardware' } }, 'options.protection'],
    [
      'a misspelt audit log field',
      { auditLog: { path: '/nonexistent/audit.log', kye: new Uint8Array(32).fill(7) } },
      '"kye"',
    ],
    [
      'an audit log path that is a number',
      { auditLog: { path: 5, key: new Uint8Array(32) } },
      'options.auditLog.path',
    ],
  ];
  const runs: [string, (c: InventoryClient, o: InventoryOptions) => Promise<unknown>][] = [
    ['collectInventory', collectInventory],
    [
      'streamInventory',
      async (c, o) => {
        for await (const _ of streamInventory(c, o)) {
          // drained
        }
      },
    ],
  ];
  for (const [fn, run] of runs) {
    for (const [name, extra, named] of bad) {
      it(`${fn}: ${name} is refused naming ${named}, before any listing`, async () => {
        const calls: string[] = [];
        const e = await refusal(() =>
          run(fakeClient(calls), { sources: ['local'], ...extra } as unknown as InventoryOptions),
        );
        expect(e.message).toContain(named);
        expect(calls).toEqual([]);
      });
    }
  }
  it('collectInventory: a clock that answers an invalid Date is refused', async () => {
    await refusal(() =>
      collectInventory(fakeClient([]), { sources: ['local'], now: () => new Date(Number.NaN) }),
    );
  });
  it('known options still work', async () => {
    const calls: string[] = [];
    const inv = await collectInventory(fakeClient(calls), {
      sources: ['local'],
      concurrency: 2,
      pageSize: 10,
      timeoutMs: 5_000,
      protection: { local: 'software' },
      now: () => new Date('2030-01-01T00:00:00.000Z'),
    });
    expect(inv.generatedAt).toBe('2030-01-01T00:00:00.000Z');
    expect(calls).toEqual(['listKeys local']);
  });
});

describe('report options', () => {
  it('toHtml: a misspelt title, or one that is not a string, is refused', async () => {
    expect(
      (await refusal(() => toHtml(inventory, policy, result, { titel: 'x' } as never))).message,
    ).toContain('"titel"');
    expect((await refusal(() => toHtml(inventory, policy, result, { title: 5 } as never))).message).toContain(
      'options.title',
    );
    expect(await toHtml(inventory, policy, result, { title: 'Keys <of> us' })).toContain(
      'Keys &lt;of&gt; us',
    );
  });
  it('toSarif: a misspelt policyUri, or a version that is not a string, is refused', async () => {
    expect(
      (await refusal(() => toSarif(result, policy, { policyURI: 'p.yaml' } as never))).message,
    ).toContain('"policyURI"');
    expect((await refusal(() => toSarif(result, policy, { toolVersion: 1 } as never))).message).toContain(
      'options.toolVersion',
    );
    expect(JSON.stringify(toSarif(result, policy, { policyUri: 'p.yaml', toolVersion: '1.0.0' }))).toContain(
      '"semanticVersion":"1.0.0"',
    );
  });
});

describe('applyFixes options', () => {
  const fixes: Fix[] = [
    {
      keyUri: 'local:///k.kp#a',
      provider: 'local',
      ruleId: 'r',
      action: { kind: 'set-rotation-period', periodDays: 90 },
    },
  ];
  const client = (calls: string[]): FixClient =>
    ({
      capabilities: () => ({ autoRotation: true }),
      setRotationPolicy: async () => {
        calls.push('setRotationPolicy');
      },
    }) as unknown as FixClient;
  for (const [name, o, named] of [
    ['a misspelt timeoutMs', { timeout: 5 }, '"timeout"'],
    ['timeoutMs NaN', { timeoutMs: Number.NaN }, 'options.timeoutMs'],
    ['signal a string', { signal: 'x' }, 'options.signal'],
  ] as const) {
    it(`${name} is refused before any fix is applied`, async () => {
      const calls: string[] = [];
      const e = await refusal(() => applyFixes(client(calls), fixes, o as never));
      expect(e.message).toContain(named);
      expect(calls).toEqual([]);
    });
  }
});

describe('readAuditLastUse', () => {
  it('a misspelt field is refused naming it, never echoing the key', async () => {
    const secret = new TextEncoder().encode('an-audit-hmac-key-of-32-bytes!!!');
    const e = await refusal(() => readAuditLastUse({ path: '/nonexistent.log', kye: secret } as never));
    expect(e.message).toContain('"kye"');
    expect(e.message).not.toContain('an-audit-hmac-key');
  });
});
