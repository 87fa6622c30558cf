/**
 * Vault/OpenBao `batch_input` in migrations, against OpenBao: concurrent wraps share requests,
 * the EDKs are the ones `kmsRecipient` writes (plain Keyport opens them), one bad item fails
 * alone, each item gets its own audit event, and `batch: false` goes back to one call per key.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MemoryAuditSink } from '@keyport/core';
import { kmsRecipient, openEnvelope, sealEnvelope } from '@keyport/envelope';
import { describe, expect, it } from 'vitest';
import { migrateFiles, TransitBatchRecipient } from '../src/index.js';
import { awsToOpenbaoWorkspace } from './support/emulators.js';
import { sealFiles, sha256 } from './support/seal.js';

describe('transit batch_input', () => {
  it('groups concurrent wraps into few requests; EDKs open with the plain recipient; a bad item fails alone', async () => {
    const { keys, vault, baoUri } = await awsToOpenbaoWorkspace('batch');
    const audit = new MemoryAuditSink();
    const batcher = new TransitBatchRecipient({ uri: baoUri, provider: vault, audit: [audit] });
    const dataKeys = Array.from({ length: 40 }, () => randomBytes(32));
    const contexts = dataKeys.map((_, i) => ({ row: String(i) }));
    const edks = await Promise.all(dataKeys.map((k, i) => batcher.wrap(k, contexts[i] as never)));
    expect(batcher.stats.encryptRequests).toBeLessThan(40);
    expect(batcher.stats.items).toBe(40);
    const plain = kmsRecipient(baoUri);
    for (const [i, edk] of edks.entries()) {
      expect(plain.matches(edk)).toBe(true);
      expect(new TextDecoder().decode(edk.providerInfo)).toBe(`${baoUri}?version=1`);
      const back = await plain.unwrap(edk, contexts[i] as never, { keys });
      expect(Buffer.from(back).equals(dataKeys[i] as Buffer)).toBe(true);
    }

    // Unwraps batch too; a wrong context fails that item only.
    const results = await Promise.allSettled(
      edks.map((edk, i) => batcher.unwrap(edk, i === 7 ? { row: 'other' } : (contexts[i] as never))),
    );
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(1);
    expect(results[7]).toMatchObject({ status: 'rejected', reason: { code: 'InvalidCiphertext' } });
    expect(batcher.stats.decryptRequests).toBeLessThan(40);
    const decrypts = audit.events.filter((e) => e.op === 'decrypt');
    expect(decrypts).toHaveLength(40);
    expect(decrypts.filter((e) => e.outcome === 'failure').map((e) => e.errorCode)).toEqual([
      'InvalidCiphertext',
    ]);
    expect(audit.events.filter((e) => e.op === 'encrypt' && e.keyVersion === '1')).toHaveLength(40);
    expect(JSON.stringify(audit.events)).not.toContain('"other"');

    // A whole message: sealed under OpenBao through the batcher, opened by plain Keyport.
    const message = await sealEnvelope(new TextEncoder().encode('batched'), {
      recipients: [batcher],
      keys,
      dataKeySource: 'local',
    });
    expect(new TextDecoder().decode((await openEnvelope(message, { trust: [baoUri], keys })).plaintext)).toBe(
      'batched',
    );
    await keys.close();
  });

  it('runs through a given Keyport client (its audit sinks), and an abort rejects the waiting wraps', async () => {
    const { keys, baoUri } = await awsToOpenbaoWorkspace('client');
    const audit = new MemoryAuditSink();
    keys.addAuditSink(audit);
    const batcher = new TransitBatchRecipient({ uri: baoUri, keys });
    const dataKeys = Array.from({ length: 20 }, () => randomBytes(32));
    const edks = await Promise.all(dataKeys.map((k, i) => batcher.wrap(k, { row: String(i) })));
    expect(batcher.stats.encryptRequests).toBeLessThan(20);
    expect(audit.events.filter((e) => e.op === 'encrypt' && e.outcome === 'success')).toHaveLength(20);
    const back = await Promise.all(edks.map((edk, i) => batcher.unwrap(edk, { row: String(i) })));
    expect(back.every((k, i) => Buffer.from(k).equals(dataKeys[i] as Buffer))).toBe(true);

    const controller = new AbortController();
    controller.abort();
    const aborted = new TransitBatchRecipient({ uri: baoUri, keys, signal: controller.signal });
    const settled = await Promise.allSettled(dataKeys.slice(0, 3).map((k) => aborted.wrap(k, {})));
    expect(settled.map((r) => r.status === 'rejected' && (r.reason as { code: string }).code)).toEqual([
      'Aborted',
      'Aborted',
      'Aborted',
    ]);
    await keys.close();
  });

  it('batch on wraps under OpenBao in fewer calls than files; batch off makes one call per file', async () => {
    const { ws, keys, awsUri, baoUri } = await awsToOpenbaoWorkspace('onoff');
    const on = await sealFiles(keys, awsUri, join(ws.dir, 'on'), 24);
    const off = await sealFiles(keys, awsUri, join(ws.dir, 'off'), 24);
    const run = (dir: string, batch: boolean) =>
      migrateFiles({
        keys,
        from: awsUri,
        to: baoUri,
        target: dir,
        cwd: ws.dir,
        journal: join(ws.dir, `${batch}.journal`),
        removeSource: true,
        jobs: 12,
        batch,
      });
    const a = await run('on', true);
    const b = await run('off', false);
    expect(a).toMatchObject({ migrated: 24, failed: 0 });
    expect(b).toMatchObject({ migrated: 24, failed: 0 });
    expect(a.calls.byOperation['to:encrypt']).toBeUndefined();
    expect(a.calls.wrapPerFile).toBeLessThan(1);
    expect(a.calls.largestBatch).toBeGreaterThan(1);
    expect(b.calls.byOperation).toEqual({ 'from:decrypt': 24, 'to:decrypt': 24, 'to:encrypt': 24 });
    expect(b.calls.wrapPerFile).toBe(1);
    for (const [file, digest] of [...on, ...off]) {
      const opened = await openEnvelope(await readFile(file), {
        trust: [baoUri],
        keys,
      });
      expect(sha256(opened.plaintext)).toBe(digest);
    }
    await keys.close();
  });
});
