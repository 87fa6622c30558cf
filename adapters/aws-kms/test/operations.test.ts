/**
 * AWS-only operations through Keyport: one call path with the neutral operations — the named
 * instance resolved, errors mapped, abort honoured, one audit event `aws-kms:<name>` each.
 */
import { createKeyport, type Keyport, MemoryAuditSink } from '@keyport/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateDataKeyWithoutPlaintext, reEncrypt } from '../src/index.js';
import { providerFor, target, uniqueName } from './support/targets.js';

const spec = { spec: 'AES_256', usage: 'encrypt_decrypt' } as const;

describe('aws-kms operations on the core call path', () => {
  const audit = new MemoryAuditSink();
  let keys: Keyport;
  let a: string;
  let b: string;
  let grantKey: string;

  beforeAll(async () => {
    keys = createKeyport({
      providers: { dr: providerFor(target('local-kms')), grants: providerFor(target('moto')) },
      audit: [audit],
      retry: { maxAttempts: 2, baseDelayMs: 1 },
    });
    a = (await keys.createKey('dr', { ...spec, name: uniqueName('op-a') })).uri;
    b = (await keys.createKey('dr', { ...spec, name: uniqueName('op-b') })).uri;
    grantKey = (await keys.createKey('grants', { ...spec, name: uniqueName('op-g') })).uri;
  });
  afterAll(() => keys.close());

  it('reEncrypt moves a ciphertext between two keys of one instance, audited as aws-kms:reEncrypt', async () => {
    const sealed = await keys.encrypt(a, new TextEncoder().encode('moving'), { context: { k: 'v' } });
    const moved = await reEncrypt(keys, a, sealed.ciphertext, {
      sourceContext: { k: 'v' },
      destination: b,
      destinationContext: { to: 'b' },
    });
    expect(b).toBe(`aws-kms+dr://${moved.keyArn}`);
    const opened = await keys.decrypt(b, moved.ciphertext, { context: { to: 'b' } });
    expect(new TextDecoder().decode(opened.plaintext)).toBe('moving');
    expect(audit.events.at(-2)).toMatchObject({
      op: 'aws-kms:reEncrypt',
      keyUri: a,
      outcome: 'success',
      provider: 'aws-kms',
    });
  });

  it('maps and audits a failure; refuses a destination of another instance before any call', async () => {
    const sealed = await keys.encrypt(a, new Uint8Array([1]));
    await expect(reEncrypt(keys, a, sealed.ciphertext, { destination: grantKey })).rejects.toMatchObject({
      code: 'InvalidArgument',
      message: expect.stringMatching(/not served by instance "dr"/),
    });
    // local-kms answers NotFound for a blob naming no key; AWS answers InvalidCiphertext.
    const failure = await reEncrypt(keys, a, new Uint8Array(40), { destination: b }).catch((e: unknown) => e);
    expect(failure).toMatchObject({
      code: expect.stringMatching(/^(InvalidCiphertext|NotFound)$/),
      keyUri: a,
    });
    expect(audit.events.at(-1)).toMatchObject({
      op: 'aws-kms:reEncrypt',
      outcome: 'failure',
      errorCode: (failure as { code: string }).code,
    });
  });

  it('honours the caller abort signal', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(
      generateDataKeyWithoutPlaintext(keys, a, { bytes: 32 }, { signal: controller.signal }),
    ).rejects.toMatchObject({ code: 'Aborted' });
    const wrappedOnly = await generateDataKeyWithoutPlaintext(keys, a, { bytes: 32, context: { c: '1' } });
    expect((await keys.decrypt(a, wrappedOnly.wrapped, { context: { c: '1' } })).plaintext).toHaveLength(32);
    expect(audit.events.at(-2)).toMatchObject({
      op: 'aws-kms:generateDataKeyWithoutPlaintext',
      contextKeys: ['c'],
    });
  });

  it("core sweeps AWS grants past their keyport expiry (grantExpiry: 'swept'), each call audited", async () => {
    const soon = await keys.createGrant(grantKey, {
      grantee: 'arn:aws:iam::123456789012:role/sweeper',
      operations: ['encrypt'],
      expiresAt: new Date(Date.now() + 60_000),
    });
    const before = audit.events.length;
    expect(await keys.sweepExpiredGrants([grantKey])).toEqual([]);
    const swept = await keys.sweepExpiredGrants([grantKey], { now: new Date(Date.now() + 3_600_000) });
    expect(swept).toEqual([expect.objectContaining({ grantId: soon.id, keyUri: grantKey })]);
    expect(audit.events.slice(before).map((e) => e.op)).toEqual(['listGrants', 'listGrants', 'revokeGrant']);
    const left = [];
    for await (const g of keys.listGrants(grantKey)) left.push(g.id);
    expect(left).not.toContain(soon.id);
  });
});
