import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AzureKeyVaultServer, startAzureKeyVaultServer } from '../src/azure/index.js';
import { ADMIN, CRYPTO_ONLY, cryptoClient, failure, keyClient, PRINCIPALS, READER } from './azure-helpers.js';

let server: AzureKeyVaultServer;
beforeAll(async () => {
  server = await startAzureKeyVaultServer({ principals: PRINCIPALS, softDeleteRetentionDays: 7 });
});
afterAll(() => server?.stop());

const POLL = { intervalInMs: 10 };

describe('soft delete, deleted keys, recover, purge', () => {
  it('delete -> get/list deleted -> recover restores every version', async () => {
    const client = keyClient(server, ADMIN);
    await client.createEcKey('soft');
    await client.createEcKey('soft');
    const poller = await client.beginDeleteKey('soft', POLL);
    const deleted = await poller.pollUntilDone();
    expect(deleted.properties.recoveryId).toBe(`${server.url}/deletedkeys/soft`);
    expect(deleted.properties.recoveryLevel).toBe('CustomizedRecoverable+Purgeable');
    expect(deleted.properties.recoverableDays).toBe(7);
    expect(deleted.properties.scheduledPurgeDate?.getTime()).toBe(
      (deleted.properties.deletedOn?.getTime() ?? 0) + 7 * 86_400_000,
    );
    expect(await failure(client.getKey('soft'))).toMatchObject({ status: 404, code: 'KeyNotFound' });
    expect((await client.getDeletedKey('soft')).name).toBe('soft');
    const names: string[] = [];
    for await (const d of client.listDeletedKeys()) names.push(d.name);
    expect(names).toContain('soft');

    // A deleted name cannot be reused: 409 Conflict.
    expect(await failure(client.createEcKey('soft'))).toMatchObject({ status: 409, code: 'Conflict' });

    const recovered = await (await client.beginRecoverDeletedKey('soft', POLL)).pollUntilDone();
    expect(recovered.name).toBe('soft');
    let versions = 0;
    for await (const _ of client.listPropertiesOfKeyVersions('soft')) versions++;
    expect(versions).toBe(2);
    expect(await failure(client.getDeletedKey('soft'))).toMatchObject({ status: 404, code: 'KeyNotFound' });
  });

  it('purge removes a deleted key for good; purge of a live key is 404', async () => {
    const client = keyClient(server, ADMIN);
    await client.createRsaKey('purge-me');
    expect(await failure(client.purgeDeletedKey('purge-me'))).toMatchObject({ status: 404 });
    await (await client.beginDeleteKey('purge-me', POLL)).pollUntilDone();
    expect(await failure(keyClient(server, READER).purgeDeletedKey('purge-me'))).toMatchObject({
      status: 403,
    });
    await client.purgeDeletedKey('purge-me');
    expect(await failure(client.getDeletedKey('purge-me'))).toMatchObject({ status: 404 });
    await expect(client.createRsaKey('purge-me')).resolves.toBeDefined();
  });

  it('the service purges a deleted key itself after the retention period', async () => {
    const client = keyClient(server, ADMIN);
    await client.createEcKey('auto-purge');
    await (await client.beginDeleteKey('auto-purge', POLL)).pollUntilDone();
    server.clock.advance(8 * 86_400);
    expect(await failure(client.getDeletedKey('auto-purge'))).toMatchObject({ status: 404 });
  });

  it('operations on a deleted key are 404; recover of a name never deleted is 404', async () => {
    const client = keyClient(server, ADMIN);
    const key = await client.createRsaKey('gone');
    await (await client.beginDeleteKey('gone', POLL)).pollUntilDone();
    const crypto = cryptoClient(server, key.id ?? '', CRYPTO_ONLY);
    expect(
      await failure(crypto.encrypt({ algorithm: 'RSA-OAEP', plaintext: Buffer.from('x') })),
    ).toMatchObject({ status: 404, code: 'KeyNotFound' });
    expect(await failure(client.beginRecoverDeletedKey('never-there', POLL))).toMatchObject({ status: 404 });
    expect(await failure(client.beginDeleteKey('never-there', POLL))).toMatchObject({ status: 404 });
  });
});

describe('rotate and the rotation policy', () => {
  it('rotate adds a version of the same type, ops and tags', async () => {
    const client = keyClient(server, ADMIN);
    const first = await client.createRsaKey('rotate-me', {
      keyOps: ['wrapKey', 'unwrapKey'],
      tags: { a: 'b' },
    });
    const rotated = await client.rotateKey('rotate-me');
    expect(rotated.properties.version).not.toBe(first.properties.version);
    expect(rotated.keyOperations).toEqual(['wrapKey', 'unwrapKey']);
    expect(rotated.properties.tags).toEqual({ a: 'b' });
    expect(rotated.key?.n).not.toEqual(first.key?.n);
    expect(await failure(client.rotateKey('nope'))).toMatchObject({ status: 404 });
    expect(await failure(keyClient(server, READER).rotateKey('rotate-me'))).toMatchObject({ status: 403 });
  });

  it('the default policy, then a set policy, is returned; bad policies are 400', async () => {
    const client = keyClient(server, ADMIN);
    await client.createEcKey('policy');
    const initial = await client.getKeyRotationPolicy('policy');
    expect(initial.lifetimeActions).toEqual([{ action: 'Notify', timeBeforeExpiry: 'P30D' }]);
    const set = await client.updateKeyRotationPolicy('policy', {
      expiresIn: 'P90D',
      lifetimeActions: [
        { action: 'Rotate', timeAfterCreate: 'P30D' },
        { action: 'Notify', timeBeforeExpiry: 'P10D' },
      ],
    });
    expect(set.expiresIn).toBe('P90D');
    expect(set.lifetimeActions).toHaveLength(2);
    // Without a Notify action the service keeps its default one.
    const rotateOnly = await client.updateKeyRotationPolicy('policy', {
      lifetimeActions: [{ action: 'Rotate', timeAfterCreate: 'P30D' }],
    });
    expect(rotateOnly.lifetimeActions).toEqual([
      { action: 'Rotate', timeAfterCreate: 'P30D' },
      { action: 'Notify', timeBeforeExpiry: 'P30D' },
    ]);
    await client.updateKeyRotationPolicy('policy', set);
    expect((await client.getKeyRotationPolicy('policy')).lifetimeActions).toEqual(set.lifetimeActions);
    expect(await failure(client.updateKeyRotationPolicy('policy', { expiresIn: 'P1D' }))).toMatchObject({
      status: 400,
      code: 'BadParameter',
    });
    expect(
      await failure(
        client.updateKeyRotationPolicy('policy', {
          lifetimeActions: [{ action: 'Rotate', timeAfterCreate: 'soon' }],
        }),
      ),
    ).toMatchObject({ status: 400 });
    expect(
      await failure(
        client.updateKeyRotationPolicy('policy', {
          lifetimeActions: [{ action: 'Rotate', timeAfterCreate: 'P1D' }],
        }),
      ),
    ).toMatchObject({ status: 400 });
    expect(await failure(keyClient(server, READER).getKeyRotationPolicy('policy'))).toMatchObject({
      status: 403,
    });
  });

  it('auto-rotation follows the clock, and rotated versions get the policy expiry', async () => {
    const other = await startAzureKeyVaultServer({ principals: PRINCIPALS });
    try {
      const client = keyClient(other, ADMIN);
      const first = await client.createEcKey('auto');
      await client.updateKeyRotationPolicy('auto', {
        expiresIn: 'P60D',
        lifetimeActions: [{ action: 'Rotate', timeAfterCreate: 'P30D' }],
      });
      other.clock.advance(29 * 86_400);
      expect((await client.getKey('auto')).properties.version).toBe(first.properties.version);
      other.clock.advance(2 * 86_400);
      const rotated = await client.getKey('auto');
      expect(rotated.properties.version).not.toBe(first.properties.version);
      const created = rotated.properties.createdOn?.getTime() ?? 0;
      expect(rotated.properties.expiresOn?.getTime()).toBe(created + 60 * 86_400_000);
    } finally {
      await other.stop();
    }
  });
});

describe('backup and restore', () => {
  it('restores a deleted-and-purged key with all versions; the blob is opaque', async () => {
    const client = keyClient(server, ADMIN);
    const v1 = await client.createRsaKey('backed-up');
    await client.rotateKey('backed-up');
    const blob = await client.backupKey('backed-up');
    expect(blob).toBeInstanceOf(Uint8Array);
    const n = Buffer.from(v1.key?.n ?? []);
    expect(Buffer.from(blob ?? []).includes(n.subarray(0, 16))).toBe(false);
    expect(await failure(client.restoreKeyBackup(blob ?? new Uint8Array()))).toMatchObject({
      status: 409,
      code: 'Conflict',
    });
    await (await client.beginDeleteKey('backed-up', POLL)).pollUntilDone();
    await client.purgeDeletedKey('backed-up');
    const restored = await client.restoreKeyBackup(blob ?? new Uint8Array());
    expect(restored.name).toBe('backed-up');
    const old = await client.getKey('backed-up', { version: v1.properties.version ?? '' });
    expect(old.key?.n).toEqual(v1.key?.n);
  });

  it('another server cannot restore the blob; garbage is 400', async () => {
    const client = keyClient(server, ADMIN);
    await client.createEcKey('portable');
    const blob = await client.backupKey('portable');
    const other = await startAzureKeyVaultServer({ principals: PRINCIPALS });
    try {
      expect(await failure(keyClient(other, ADMIN).restoreKeyBackup(blob ?? new Uint8Array()))).toMatchObject(
        { status: 400, code: 'BadParameter' },
      );
    } finally {
      await other.stop();
    }
    expect(await failure(client.restoreKeyBackup(Buffer.from('not a backup')))).toMatchObject({
      status: 400,
    });
    expect(await failure(keyClient(server, READER).backupKey('portable'))).toMatchObject({ status: 403 });
    expect(await failure(client.backupKey('missing'))).toMatchObject({ status: 404 });
  });

  it('servers sharing a backup secret restore each other’s backups', async () => {
    const backupSecret = Buffer.alloc(32, 9);
    const a = await startAzureKeyVaultServer({ principals: PRINCIPALS, backupSecret });
    const b = await startAzureKeyVaultServer({ principals: PRINCIPALS, backupSecret });
    try {
      const key = await keyClient(a, ADMIN).createEcKey('moved');
      const blob = await keyClient(a, ADMIN).backupKey('moved');
      const restored = await keyClient(b, ADMIN).restoreKeyBackup(blob ?? new Uint8Array());
      expect(restored.key?.x).toEqual(key.key?.x);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });
});
