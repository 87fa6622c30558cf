/**
 * `s3://bucket/prefix`, `azblob://account/container/prefix`, `gs://bucket/prefix` → a store
 * and a key prefix. Endpoints for emulators come from options, never from the URI.
 */
import { KeyportError, quote } from '@keyport/core';
import { azureBlobStore } from './azure-blob.js';
import { gcsStore } from './gcs.js';
import { s3Store } from './s3.js';
import type { ObjectStore } from './store.js';

export interface StoreEndpoints {
  /** S3 endpoint override (emulators, S3-compatible stores). */
  readonly s3Endpoint?: string;
  readonly s3Region?: string;
  readonly azureConnectionString?: string;
  readonly azureAccountUrl?: string;
  readonly gcsEndpoint?: string;
  readonly gcsProjectId?: string;
  readonly partSize?: number;
}

export interface ObjectLocation {
  readonly store: ObjectStore;
  readonly prefix: string;
}

const NAME = /^[a-z0-9][a-z0-9.-]{1,62}$/;

export function parseObjectLocation(uri: string, endpoints: StoreEndpoints = {}): ObjectLocation {
  const m = /^(s3|azblob|gs):\/\/([^/]+)(?:\/(.*))?$/.exec(typeof uri === 'string' ? uri : '');
  if (m === null)
    throw new KeyportError(
      'InvalidArgument',
      `not an object location: ${quote(uri)} (s3://, azblob:// or gs://)`,
    );
  const [, scheme, first, rest = ''] = m as unknown as [string, string, string, string | undefined];
  if (scheme === 'azblob') {
    const slash = rest.indexOf('/');
    const container = slash < 0 ? rest : rest.slice(0, slash);
    if (!/^[a-z0-9]{3,24}$/.test(first) || !/^[a-z0-9](?:[a-z0-9-]{1,61})[a-z0-9]$/.test(container))
      throw new KeyportError(
        'InvalidArgument',
        `azblob location needs azblob://account/container[/prefix]: ${quote(uri)}`,
      );
    return {
      store: azureBlobStore({
        account: first,
        container,
        ...(endpoints.azureConnectionString !== undefined
          ? { connectionString: endpoints.azureConnectionString }
          : {}),
        ...(endpoints.azureAccountUrl !== undefined ? { accountUrl: endpoints.azureAccountUrl } : {}),
        ...(endpoints.partSize !== undefined ? { blockSize: endpoints.partSize } : {}),
      }),
      prefix: slash < 0 ? '' : rest.slice(slash + 1),
    };
  }
  if (!NAME.test(first)) throw new KeyportError('InvalidArgument', `bad bucket name in ${quote(uri)}`);
  if (scheme === 's3') {
    return {
      store: s3Store({
        bucket: first,
        ...(endpoints.s3Endpoint !== undefined ? { endpoint: endpoints.s3Endpoint } : {}),
        ...(endpoints.s3Region !== undefined ? { region: endpoints.s3Region } : {}),
        ...(endpoints.partSize !== undefined ? { partSize: endpoints.partSize } : {}),
      }),
      prefix: rest,
    };
  }
  return {
    store: gcsStore({
      bucket: first,
      ...(endpoints.gcsEndpoint !== undefined ? { apiEndpoint: endpoints.gcsEndpoint } : {}),
      ...(endpoints.gcsProjectId !== undefined ? { projectId: endpoints.gcsProjectId } : {}),
      ...(endpoints.partSize !== undefined ? { partSize: endpoints.partSize } : {}),
    }),
    prefix: rest,
  };
}
