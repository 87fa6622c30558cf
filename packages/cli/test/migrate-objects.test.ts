/**
 * `keyport migrate s3://…` and `keyport migrate status s3://…` through the CLI against moto's S3:
 * the wiring of @keyport/object-migrate (whose own tests cover Azurite and fake-gcs-server,
 * shards, kills and conflicts). Objects sealed under one local key end up opening with the other
 * key alone; status counts them from the journals and the headers.
 */
import { randomBytes } from 'node:crypto';
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { openEnvelope, sealEnvelope } from '@keyport/envelope';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localWorkspace, requireEmulator, runCli } from './support/cli.js';
import { localKeys, sha256 } from './support/seal.js';

let s3: S3Client;
let endpoint: string;
beforeAll(() => {
  endpoint = requireEmulator('moto').KEYPORT_MOTO_ENDPOINT;
  // moto takes any credentials; the SDK's chain only needs some.
  process.env.AWS_ACCESS_KEY_ID ??= 'testing';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'testing';
  process.env.AWS_REGION ??= 'us-east-1';
  s3 = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true });
});
afterAll(() => s3?.destroy());

describe('migrate over object storage (moto S3)', () => {
  it('rewraps every object to the target key, verified, and reports status', async () => {
    const ws = await localWorkspace();
    const cwd = ws.dir;
    for (const k of ['a', 'b']) expect((await runCli(['keys', 'create', ws.uri(k)], { cwd })).code).toBe(0);
    const keys = await localKeys(ws.keystore);
    const bucket = `kp${randomBytes(6).toString('hex')}`;
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    const digests = new Map<string, string>();
    for (let i = 0; i < 6; i++) {
      const plaintext = randomBytes(100 + i * 500);
      const body = await sealEnvelope(plaintext, { recipients: [ws.uri('a')], keys });
      await s3.send(
        new PutObjectCommand({ Bucket: bucket, Key: `p/o${i}`, Body: body, ContentType: 'application/x-kp' }),
      );
      digests.set(`p/o${i}`, sha256(plaintext));
    }
    const env = { KEYPORT_S3_ENDPOINT: endpoint };
    const location = `s3://${bucket}/p/`;

    const bad = await runCli(
      ['--json', 'migrate', location, '--from', ws.uri('a'), '--to', ws.uri('b'), '--max-rps', 'NaN'],
      {
        cwd,
        env,
      },
    );
    expect(bad.code, bad.stderr).toBe(2);

    const r = await runCli(
      [
        '--json',
        'migrate',
        location,
        '--from',
        ws.uri('a'),
        '--to',
        ws.uri('b'),
        '--remove-source',
        '--verify',
        'all',
      ],
      { cwd, env },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, counts: { migrated: 6, failed: 0 } });

    const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'p/o' }));
    expect(listed.Contents?.length).toBe(6);
    for (const [key, digest] of digests) {
      const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      expect(got.ContentType).toBe('application/x-kp');
      const body = await got.Body?.transformToByteArray();
      const opened = await openEnvelope(body as Uint8Array, { trust: [ws.uri('b')], keys });
      expect(sha256(opened.plaintext)).toBe(digest);
      await expect(openEnvelope(body as Uint8Array, { trust: [ws.uri('a')], keys })).rejects.toMatchObject({
        code: 'InvalidCiphertext',
      });
    }

    // A second run finds every header naming the target: nothing to do.
    const again = await runCli(['--json', 'migrate', location, '--from', ws.uri('a'), '--to', ws.uri('b')], {
      cwd,
      env,
    });
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ counts: { migrated: 0, already: 6 } });

    const status = await runCli(
      ['--json', 'migrate', 'status', location, '--from', ws.uri('a'), '--to', ws.uri('b')],
      { cwd, env },
    );
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({
      failed: 0,
      left: 0,
      headers: { target: 6, source: 0 },
    });
    await keys.close();
  }, 120_000);

  it('--reproduced-context reaches every object: sealed with an unstored pair they migrate (verified); one bound to another pair fails alone, untouched', async () => {
    const ws = await localWorkspace();
    const cwd = ws.dir;
    for (const k of ['a', 'b']) expect((await runCli(['keys', 'create', ws.uri(k)], { cwd })).code).toBe(0);
    const keys = await localKeys(ws.keystore);
    const bucket = `kp${randomBytes(6).toString('hex')}`;
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    const secret = 'u-secret-9c1';
    const sealed = new Map<string, Uint8Array>();
    for (const [key, user] of [
      ['p/o1', secret],
      ['p/o2', secret],
      ['p/other', 'u-other'],
    ] as const) {
      const body = await sealEnvelope(Buffer.from(`row of ${key}`), {
        recipients: [ws.uri('a')],
        keys,
        context: { table: 'orders', user },
        contextNotStored: ['user'],
      });
      sealed.set(key, body);
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
    }
    const env = { KEYPORT_S3_ENDPOINT: endpoint };
    const location = `s3://${bucket}/p/`;
    const r = await runCli(
      [
        '--json',
        'migrate',
        location,
        '--from',
        ws.uri('a'),
        '--to',
        ws.uri('b'),
        '--remove-source',
        '--verify',
        'all',
        '--reproduced-context',
        `user=${secret}`,
      ],
      { cwd, env },
    );
    expect(r.code, r.stderr).toBe(1);
    const result = JSON.parse(r.stdout) as { failures: Array<{ key: string; code: string }> };
    expect(result).toMatchObject({ ok: false, counts: { migrated: 2, verified: 2, failed: 1 } });
    expect(result.failures).toEqual([
      { key: 'p/other', code: 'InvalidCiphertext', message: expect.any(String) },
    ]);
    expect(r.stdout + r.stderr).not.toContain(secret);
    const bodyOf = async (key: string) =>
      (await (
        await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))
      ).Body?.transformToByteArray()) as Uint8Array;
    for (const key of ['p/o1', 'p/o2']) {
      const body = await bodyOf(key);
      expect(Buffer.from(body).includes(secret)).toBe(false);
      const opened = await openEnvelope(body, {
        trust: [ws.uri('b')],
        keys,
        reproducedContext: { user: secret },
      });
      expect(Buffer.from(opened.plaintext).toString()).toBe(`row of ${key}`);
      await expect(openEnvelope(body, { trust: [ws.uri('b')], keys })).rejects.toMatchObject({
        code: 'InvalidCiphertext',
      });
    }
    expect(
      Buffer.from(await bodyOf('p/other')).equals(Buffer.from(sealed.get('p/other') as Uint8Array)),
    ).toBe(true);
    // The journal in the bucket holds nothing of the pair.
    const journal = await bodyOf('p/.keyport-migrate/shard-0-of-1.json');
    expect(Buffer.from(journal).toString()).not.toContain(secret);
    // Run again with the other object's pair: it migrates, the others are done.
    const again = await runCli(
      [
        '--json',
        'migrate',
        location,
        '--from',
        ws.uri('a'),
        '--to',
        ws.uri('b'),
        '--remove-source',
        '--reproduced-context',
        'user=u-other',
      ],
      { cwd, env },
    );
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({
      ok: true,
      counts: { already: 2, migrated: 1, failed: 0 },
    });
    await keys.close();
  }, 120_000);

  it('a flag the kind of migration does not read is a usage error: --dry-run never rewrites objects', async () => {
    const ws = await localWorkspace();
    const cwd = ws.dir;
    for (const k of ['a', 'b']) expect((await runCli(['keys', 'create', ws.uri(k)], { cwd })).code).toBe(0);
    const keys = await localKeys(ws.keystore);
    const bucket = `kp${randomBytes(6).toString('hex')}`;
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    const body = await sealEnvelope(randomBytes(300), { recipients: [ws.uri('a')], keys });
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'p/o', Body: body }));
    const env = { KEYPORT_S3_ENDPOINT: endpoint };
    const base = ['--json', 'migrate', `s3://${bucket}/p/`, '--from', ws.uri('a'), '--to', ws.uri('b')];
    for (const extra of [
      ['--dry-run'],
      ['--remove-source', '--dry-run'],
      ['--journal', 'j'],
      ['--follow-symlinks'],
      ['--break-lock'],
      ['--no-batch'],
      ['--progress-every', '100'],
      ['--jobs', '1.5'],
      ['--jobs', '0x10'],
      ['--jobs', '65'],
    ]) {
      const r = await runCli([...base, ...extra], { cwd, env });
      expect(r.code, `${extra.join(' ')}: ${r.stderr}`).toBe(2);
      expect(JSON.parse(r.stderr).error).toMatchObject({ code: 'InvalidArgument', exitCode: 2 });
      expect(JSON.parse(r.stderr).error.message).toContain(
        extra[0] === '--remove-source' ? '--dry-run' : extra[0],
      );
    }
    // Nothing was written: the object still opens with the source key, and no journal exists.
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'p/o' }));
    expect(
      Buffer.from((await got.Body?.transformToByteArray()) as Uint8Array).equals(Buffer.from(body)),
    ).toBe(true);
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
    expect(listed.Contents?.map((c) => c.Key)).toEqual(['p/o']);

    // And the other way: object-store flags on a directory are refused, not ignored.
    for (const extra of [
      ['--shard', '0/2'],
      ['--verify', 'all'],
      ['--max-rps', '5'],
      ['--journal-dir', 'd'],
      ['--journal-prefix', 'x/'],
    ]) {
      const r = await runCli(
        ['--json', 'migrate', cwd, '--from', ws.uri('a'), '--to', ws.uri('b'), ...extra],
        { cwd },
      );
      expect(r.code, `${extra.join(' ')}: ${r.stderr}`).toBe(2);
      expect(JSON.parse(r.stderr).error.message).toContain(extra[0]);
    }
    // A valid --jobs still reaches the object migration.
    const ok = await runCli([...base, '--jobs', '2'], { cwd, env });
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ ok: true, counts: { migrated: 1 } });
    await keys.close();
  }, 120_000);
});
