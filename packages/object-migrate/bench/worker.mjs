// One benchmark worker process: `node worker.mjs <json>`. Mode "migrate" runs a shard of the
// real migration (dist); mode "copy" is the baseline: the same shard's objects read and
// written back unchanged with bare S3 GetObject + PutObject, the same number in flight.
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Keyport } from '@keyport/core';
import { openLocalKeystore } from '@keyport/local';
import { runShard, shardOf } from '../dist/index.js';

const o = JSON.parse(process.argv[2]);
if (o.mode === 'migrate') {
  const provider = await openLocalKeystore({ path: o.keystore, passphrase: o.passphrase, kdf: o.kdf });
  const keys = new Keyport({ providers: [provider], onAuditError: () => {} });
  const report = await runShard({
    location: `s3://${o.bucket}/${o.prefix}`,
    endpoints: { s3Endpoint: o.endpoint, s3Region: 'us-east-1' },
    from: o.from,
    to: o.to,
    keys,
    shard: o.shard,
    concurrency: o.concurrency,
    journalEveryMs: 1000,
  });
  await provider.close();
  if (report.counts.migrated !== report.counts.listed)
    throw new Error(`migrated ${report.counts.migrated} of ${report.counts.listed}`);
} else {
  const s3 = new S3Client({ endpoint: o.endpoint, region: 'us-east-1', forcePathStyle: true });
  const mine = [];
  let token;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: o.bucket, Prefix: o.prefix, ContinuationToken: token }),
    );
    for (const c of page.Contents ?? [])
      if (shardOf(c.Key, o.shard.count) === o.shard.index) mine.push(c.Key);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
  let next = 0;
  await Promise.all(
    Array.from({ length: o.concurrency }, async () => {
      while (next < mine.length) {
        const key = mine[next++];
        const got = await s3.send(new GetObjectCommand({ Bucket: o.bucket, Key: key }));
        const body = await got.Body.transformToByteArray();
        await s3.send(
          new PutObjectCommand({
            Bucket: o.bucket,
            Key: key,
            Body: body,
            ContentType: got.ContentType,
            Metadata: got.Metadata,
          }),
        );
      }
    }),
  );
  s3.destroy();
}
