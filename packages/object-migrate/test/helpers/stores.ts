/** A fresh bucket / container on each running emulator, reached through the package's own stores. */
import { randomBytes } from 'node:crypto';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { BlobServiceClient } from '@azure/storage-blob';
import { Storage } from '@google-cloud/storage';
import { requireTarget } from '../../../../conformance/harness/env.js';
import type { StoreEndpoints } from '../../src/location.js';

export type EmulatorName = 'moto' | 'azurite' | 'fake-gcs-server';
export const EMULATORS: readonly EmulatorName[] = ['moto', 'azurite', 'fake-gcs-server'];

export function endpointsFor(name: EmulatorName): StoreEndpoints {
  if (name === 'moto')
    return { s3Endpoint: requireTarget('moto').KEYPORT_MOTO_ENDPOINT, s3Region: 'us-east-1' };
  if (name === 'azurite')
    return { azureConnectionString: requireTarget('azurite').KEYPORT_AZURITE_CONNECTION_STRING };
  return {
    gcsEndpoint: requireTarget('fake-gcs-server').KEYPORT_FAKEGCS_ENDPOINT,
    gcsProjectId: 'keyport-test',
  };
}

/** Creates a bucket (container) with a random name; returns its location URI (no prefix). */
export async function freshBucket(name: EmulatorName): Promise<string> {
  const id = `kp${randomBytes(6).toString('hex')}`;
  const e = endpointsFor(name);
  if (name === 'moto') {
    const s3 = new S3Client({ endpoint: e.s3Endpoint as string, region: 'us-east-1', forcePathStyle: true });
    await s3.send(new CreateBucketCommand({ Bucket: id }));
    s3.destroy();
    return `s3://${id}`;
  }
  if (name === 'azurite') {
    await BlobServiceClient.fromConnectionString(e.azureConnectionString as string)
      .getContainerClient(id)
      .create();
    return `azblob://devstoreaccount1/${id}`;
  }
  await new Storage({ apiEndpoint: e.gcsEndpoint as string, projectId: 'keyport-test' }).createBucket(id);
  return `gs://${id}`;
}

/** A body read to the end, as one buffer. */
export async function readAll(body: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of body) parts.push(Buffer.from(p));
  return Buffer.concat(parts);
}
