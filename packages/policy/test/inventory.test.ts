import { join } from 'node:path';
import { JsonlAuditSink, loadOrCreateAuditKey } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { collectInventory, type InventoryKey, streamInventory, UNKNOWN } from '../src/index.js';
import {
  client,
  FakeClock,
  localProvider,
  motoEndpoint,
  motoProvider,
  tempDir,
  unique,
} from './support/targets.js';

const byName = (keys: readonly InventoryKey[], name: string): InventoryKey => {
  const k = keys.find((x) => x.uri.endsWith(`#${name}`));
  if (k === undefined) throw new Error(`no key ${name} in the inventory`);
  return k;
};

describe('inventory on the local provider', () => {
  it('reports every field the local keystore knows, seeded by a settable clock', async () => {
    const clock = new FakeClock('2030-01-01T00:00:00.000Z');
    const kp = client({ providers: [await localProvider(clock)] });
    const a = await kp.createKey('local', {
      name: 'orders',
      spec: 'AES_256',
      labels: { owner: 'team-a', env: 'prod' },
      rotation: { periodDays: 90 },
    });
    await kp.createKey('local', { name: 'signer', spec: 'EC_P384', usage: 'sign_verify' });
    clock.advanceDays(10);
    await kp.rotateKey(a.uri);
    await kp.createGrant(a.uri, {
      grantee: 'app',
      operations: ['encrypt'],
      expiresAt: new Date('2030-02-01T00:00:00.000Z'),
      constraints: { contextSubset: { tenant: 't1' } },
    });
    await kp.createGrant(a.uri, {
      grantee: 'batch',
      operations: ['decrypt'],
      expiresAt: new Date('2030-03-01T00:00:00.000Z'),
    });
    const doomed = await kp.createKey('local', { name: 'doomed', spec: 'AES_256' });
    await kp.scheduleKeyDeletion(doomed.uri, { days: 7 });

    const inv = await collectInventory(kp, { sources: ['local'], now: clock.now });
    expect(inv.sources).toEqual([{ source: 'local', keys: 3 }]);
    expect(inv.auditLogSince).toBe(UNKNOWN);
    const orders = byName(inv.keys, 'orders');
    expect(orders).toMatchObject({
      provider: 'local',
      algorithm: 'AES_256',
      keyBits: 256,
      purpose: 'encrypt_decrypt',
      protection: 'software',
      state: 'enabled',
      createdAt: '2030-01-01T00:00:00.000Z',
      lastRotatedAt: '2030-01-11T00:00:00.000Z',
      versions: 2,
      pendingDeletionAt: null,
      rotation: { enabled: true, periodDays: 90 },
      lastUsedAt: UNKNOWN,
      errors: [],
    });
    expect({ ...orders.labels }).toEqual({ owner: 'team-a', env: 'prod' });
    expect(orders.grants).toMatchObject({
      count: 2,
      earliestExpiry: '2030-02-01T00:00:00.000Z',
      latestExpiry: '2030-03-01T00:00:00.000Z',
    });
    const items = orders.grants.items === UNKNOWN ? [] : orders.grants.items;
    expect(items.map((g) => [g.grantee, g.constrained]).sort()).toEqual([
      ['app', true],
      ['batch', false],
    ]);
    const signer = byName(inv.keys, 'signer');
    expect(signer).toMatchObject({ algorithm: 'EC_P384', keyBits: 384, purpose: 'sign_verify', versions: 1 });
    expect(signer.rotation).toEqual({ enabled: false, periodDays: null, nextRotationAt: null });
    expect(signer.grants).toMatchObject({ count: 0, earliestExpiry: null, latestExpiry: null });
    expect(byName(inv.keys, 'doomed')).toMatchObject({
      state: 'pending_deletion',
      pendingDeletionAt: '2030-01-18T00:00:00.000Z',
    });
  });

  it('a grant that never expires makes the latest expiry null (never), not the latest date', async () => {
    const kp = client({ providers: [await localProvider()] });
    const k = await kp.createKey('local', { name: 'k', spec: 'AES_256' });
    await kp.createGrant(k.uri, {
      grantee: 'a',
      operations: ['encrypt'],
      expiresAt: new Date(Date.now() + 86_400_000),
    });
    await kp.createGrant(k.uri, { grantee: 'b', operations: ['encrypt'] });
    const inv = await collectInventory(kp, { sources: ['local'] });
    expect(inv.keys[0]?.grants.count).toBe(2);
    expect(inv.keys[0]?.grants.latestExpiry).toBeNull();
    expect(inv.keys[0]?.grants.earliestExpiry).not.toBeNull();
  });

  it('takes last use from a verified audit log, and refuses a tampered one', async () => {
    const dir = await tempDir();
    const logPath = join(dir, 'audit.jsonl');
    const { key } = await loadOrCreateAuditKey(join(dir, 'audit.key'));
    const sink = await JsonlAuditSink.open(logPath, { hmacKey: key });
    const kp = client({ providers: [await localProvider()], audit: [sink] });
    const used = await kp.createKey('local', { name: 'used', spec: 'AES_256' });
    await kp.createKey('local', { name: 'idle', spec: 'AES_256' });
    const before = Date.now();
    await kp.encrypt(used.uri, new Uint8Array([1, 2, 3]));
    const inv = await collectInventory(kp, { sources: ['local'], auditLog: { path: logPath, key } });
    const lastUsed = byName(inv.keys, 'used').lastUsedAt;
    expect(typeof lastUsed === 'string' && lastUsed !== UNKNOWN && Date.parse(lastUsed) >= before - 5).toBe(
      true,
    );
    expect(byName(inv.keys, 'idle').lastUsedAt).toBeNull();
    expect(inv.auditLogSince).not.toBe(UNKNOWN);

    const { readFile, writeFile } = await import('node:fs/promises');
    const text = await readFile(logPath, 'utf8');
    await writeFile(logPath, text.replace('"op":"encrypt"', '"op":"decrypt"'));
    await expect(
      collectInventory(kp, { sources: ['local'], auditLog: { path: logPath, key } }),
    ).rejects.toMatchObject({ code: 'Integrity' });
  });

  it('a source that cannot be listed ends with its error; the others are still read', async () => {
    const kp = client({ providers: [await localProvider()] });
    await kp.createKey('local', { name: 'k', spec: 'AES_256' });
    const inv = await collectInventory(kp, { sources: ['local', 'gcp-kms'] });
    expect(inv.keys).toHaveLength(1);
    expect(inv.sources.find((s) => s.source === 'gcp-kms')?.error?.code).toBeDefined();
  });

  it('rejects bad options with InvalidArgument before any call', async () => {
    const kp = client({ providers: [await localProvider()] });
    for (const bad of [
      { sources: 'local' },
      { sources: ['local', 'local'] },
      { sources: [''] },
      { sources: ['local'], concurrency: 0 },
      { sources: ['local'], concurrency: Number.NaN },
      { sources: ['local'], concurrency: '4' },
    ]) {
      // biome-ignore lint/suspicious/noExplicitAny: hostile input on purpose
      await expect(collectInventory(kp, bad as any)).rejects.toMatchObject({ code: 'InvalidArgument' });
    }
  });

  it('streams lazily and stops listing when the consumer stops', async () => {
    const kp = client({ providers: [await localProvider()] });
    for (let i = 0; i < 5; i++) await kp.createKey('local', { name: `k${i}`, spec: 'AES_256' });
    let seen = 0;
    for await (const item of streamInventory(kp, { sources: ['local'], concurrency: 2 })) {
      if (item.kind === 'key') seen++;
      if (seen === 2) break;
    }
    expect(seen).toBe(2);
  });
});

describe('inventory on AWS KMS (moto)', () => {
  it('reads rotation and the material date through describeKey, labels from tags, grants; unknown what AWS does not report', {
    timeout: 180_000,
  }, async () => {
    motoEndpoint();
    const kp = client({ providers: [motoProvider()] });
    const rotated = await kp.createKey('aws-kms', {
      name: unique('rot'),
      spec: 'AES_256',
      labels: { owner: 'team-b' },
      rotation: { periodDays: 365 }, // moto answers 365 whatever period was set
    });
    const plain = await kp.createKey('aws-kms', { name: unique('plain'), spec: 'AES_256' });
    const rsa = await kp.createKey('aws-kms', {
      name: unique('rsa'),
      spec: 'RSA_2048',
      usage: 'sign_verify',
    });
    await kp.createGrant(plain.uri, {
      grantee: 'arn:aws:iam::123456789012:role/app',
      operations: ['encrypt', 'decrypt'],
      constraints: { contextEquals: { app: 'x' } },
    });
    const ours = new Set([rotated.uri, plain.uri, rsa.uri].map((u) => u));
    // moto is shared by the whole run (and benchmarks): only our keys are read in detail
    const inv = await collectInventory(kp, {
      sources: ['aws-kms'],
      concurrency: 4,
      filter: (k) => ours.has(k.uri),
    });
    expect(inv.sources[0]?.error).toBeUndefined();
    const mine = inv.keys.filter((k) => ours.has(k.uri));
    expect(mine).toHaveLength(3);
    expect(inv.keys).toHaveLength(3);
    const r = mine.find((k) => k.uri === rotated.uri) as InventoryKey;
    expect(r).toMatchObject({
      provider: 'aws-kms',
      protection: 'hsm',
      algorithm: 'AES_256',
      state: 'enabled',
      rotation: { enabled: true, periodDays: 365 },
      // AWS rotation is transparent: no versions; the material date is the key's creation
      // (ListKeyRotations lists none yet, and AWS made the material)
      versions: UNKNOWN,
    });
    expect({ ...r.labels }).toEqual({ owner: 'team-b' });
    expect(r.createdAt).not.toBe(UNKNOWN);
    expect(r.lastRotatedAt).toBe(r.createdAt);
    const p = mine.find((k) => k.uri === plain.uri) as InventoryKey;
    expect(p.rotation).toMatchObject({ enabled: false, periodDays: null });
    expect(p.grants.count).toBe(1);
    expect(p.grants.latestExpiry).toBeNull();
    const s = mine.find((k) => k.uri === rsa.uri) as InventoryKey;
    expect(s).toMatchObject({ algorithm: 'RSA_2048', keyBits: 2048, purpose: 'sign_verify' });
    // AWS cannot rotate asymmetric keys automatically: described, the schedule is off
    expect(s.rotation).toEqual({ enabled: false, periodDays: null, nextRotationAt: null });
  });
});
