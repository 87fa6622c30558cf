/**
 * `KeyInfo.materialCreatedAt`: when the key's current material was made. AWS names no versions;
 * describeKey reads the newest completed rotation (ListKeyRotations), else the key's creation for
 * material AWS made. moto records on-demand rotations; local-kms has no ListKeyRotations (501), so
 * there the date is left out. Paging, refusals and odd answers are shown with a stubbed transport.
 */
import { ListKeyRotationsCommand } from '@aws-sdk/client-kms';
import { describe, expect, it } from 'vitest';
import { AwsKmsProvider } from '../src/index.js';
import { keyMetadata, type StubAnswer, stubTransport } from './support/stub-transport.js';
import { call, providerFor, sdkClientFor, TEST_CREDENTIALS, target, uniqueName } from './support/targets.js';

const KEY = 'aws-kms://arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const CREATED = 1_600_000_000; // 2020-09-13, in AWS's epoch seconds

function stubbed(
  rotations: (body: Record<string, unknown>) => StubAnswer | 'hang',
  meta: Record<string, unknown> = {},
) {
  const stub = stubTransport((op, body) => {
    if (op === 'DescribeKey') {
      const { KeyMetadata } = keyMetadata('SYMMETRIC_DEFAULT');
      return { json: { KeyMetadata: { ...KeyMetadata, CreationDate: CREATED, ...meta } } };
    }
    if (op === 'GetKeyRotationStatus')
      return { json: { KeyRotationEnabled: true, RotationPeriodInDays: 365 } };
    if (op === 'ListResourceTags') return { json: { Tags: [], Truncated: false } };
    if (op === 'ListKeyRotations') return rotations(body);
    return { json: {} };
  });
  const provider = new AwsKmsProvider({
    region: 'us-east-1',
    credentials: TEST_CREDENTIALS,
    clientConfig: stub.clientConfig,
  });
  return { provider, requests: stub.requests };
}

const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => 'resolved',
    (e: unknown) => new AwsKmsProvider().mapError(e)?.code ?? String(e),
  );

describe('material date on moto', () => {
  it('is the creation until the key rotates, then the rotation AWS lists', async () => {
    const provider = providerFor(target('moto'));
    try {
      const key = await provider.createKey({ name: uniqueName('material'), spec: 'AES_256' }, call());
      const fresh = await provider.describeKey({ uri: key.uri }, call());
      expect(fresh.createdAt).toBeInstanceOf(Date);
      expect(fresh.materialCreatedAt).toEqual(fresh.createdAt);

      const rotated = await provider.rotateKey({ uri: key.uri }, call());
      const listed = await sdkClientFor(target('moto')).send(
        new ListKeyRotationsCommand({ KeyId: key.uri.slice('aws-kms://'.length) }),
      );
      const rotationDate = listed.Rotations?.[0]?.RotationDate;
      expect(rotationDate).toBeInstanceOf(Date);
      expect(rotated.materialCreatedAt).toEqual(rotationDate);
      expect((await provider.describeKey({ uri: key.uri }, call())).materialCreatedAt).toEqual(rotationDate);
      expect(rotated.materialCreatedAt?.getTime()).toBeGreaterThanOrEqual(fresh.createdAt?.getTime() ?? NaN);
    } finally {
      await provider.close();
    }
  });

  it('keys that cannot rotate keep their creation; imported material is left out', async () => {
    const provider = providerFor(target('moto'));
    try {
      const hmac = await provider.createKey({ name: uniqueName('material-hmac'), spec: 'HMAC_256' }, call());
      const described = await provider.describeKey({ uri: hmac.uri }, call());
      expect(described.materialCreatedAt).toEqual(described.createdAt);
      const imported = await provider.createKey(
        { name: uniqueName('material-ext'), spec: 'AES_256', external: true },
        call(),
      );
      expect((await provider.describeKey({ uri: imported.uri }, call())).materialCreatedAt).toBeUndefined();
      // a listing leaves it out, as it leaves out the rotation status
      for await (const entry of provider.listKeys(call()))
        if (entry.uri === hmac.uri) expect('materialCreatedAt' in entry).toBe(false);
    } finally {
      await provider.close();
    }
  });
});

describe('material date on local-kms (no ListKeyRotations)', () => {
  it('is left out, and the describe still answers', async () => {
    const provider = providerFor(target('local-kms'));
    try {
      const key = await provider.createKey(
        { name: uniqueName('material'), spec: 'AES_256', rotation: { periodDays: 365 } },
        call(),
      );
      const described = await provider.describeKey({ uri: key.uri }, call());
      expect(described.rotation?.periodDays).toBeGreaterThan(0);
      expect(described.materialCreatedAt).toBeUndefined();
    } finally {
      await provider.close();
    }
  });
});

describe('material date (stubbed transport)', () => {
  it('follows every page and takes the newest rotation, in whatever order AWS lists them', async () => {
    const { provider, requests } = stubbed((body) =>
      body.Marker === undefined
        ? {
            json: {
              Rotations: [
                { RotationDate: 1_700_000_000, RotationType: 'AUTOMATIC' },
                { RotationDate: 1_750_000_000, RotationType: 'ON_DEMAND' },
              ],
              Truncated: true,
              NextMarker: 'page-2',
            },
          }
        : {
            json: {
              Rotations: [{ RotationDate: 1_720_000_000, RotationType: 'AUTOMATIC' }],
              Truncated: false,
            },
          },
    );
    const info = await provider.describeKey({ uri: KEY }, call());
    expect(info.materialCreatedAt).toEqual(new Date(1_750_000_000_000));
    expect(info.createdAt).toEqual(new Date(CREATED * 1000));
    expect(requests.filter((r) => r.operation === 'ListKeyRotations').map((r) => r.body)).toEqual([
      { KeyId: '1234abcd-12ab-34cd-56ef-1234567890ab', Limit: 1000 },
      { KeyId: '1234abcd-12ab-34cd-56ef-1234567890ab', Limit: 1000, Marker: 'page-2' },
    ]);
  });

  it('a key that never rotated: its creation, when AWS made the material and it is no replica', async () => {
    const none = () => ({ json: { Rotations: [], Truncated: false } });
    expect((await stubbed(none).provider.describeKey({ uri: KEY }, call())).materialCreatedAt).toEqual(
      new Date(CREATED * 1000),
    );
    // a replica shares material its primary made before the replica existed
    const replica = stubbed(none, {
      MultiRegion: true,
      MultiRegionConfiguration: { MultiRegionKeyType: 'REPLICA' },
    });
    expect((await replica.provider.describeKey({ uri: KEY }, call())).materialCreatedAt).toBeUndefined();
    // imported material was made outside AWS: not even asked
    const imported = stubbed(none, { Origin: 'EXTERNAL' });
    expect((await imported.provider.describeKey({ uri: KEY }, call())).materialCreatedAt).toBeUndefined();
    expect(imported.requests.map((r) => r.operation)).not.toContain('ListKeyRotations');
  });

  it('a rotation listed without its date leaves the date out instead of falling back to the creation', async () => {
    const { provider } = stubbed(() => ({
      json: { Rotations: [{ RotationDate: 1_700_000_000 }, { RotationType: 'ON_DEMAND' }], Truncated: false },
    }));
    expect((await provider.describeKey({ uri: KEY }, call())).materialCreatedAt).toBeUndefined();
  });

  it('a refused or missing ListKeyRotations leaves the date out; the rest of the describe stands', async () => {
    const refusals: StubAnswer[] = [
      {
        status: 400,
        json: { __type: 'AccessDeniedException', message: 'not allowed: kms:ListKeyRotations' },
      },
      { status: 400, json: { __type: 'KMSInvalidStateException', message: 'pending deletion' } },
      { status: 501, raw: '<html>not implemented</html>' },
    ];
    for (const refusal of refusals) {
      const info = await stubbed(() => refusal).provider.describeKey({ uri: KEY }, call());
      expect(info.materialCreatedAt, JSON.stringify(refusal)).toBeUndefined();
      expect(info.rotation).toEqual({ periodDays: 365 });
    }
    // anything else fails the describe as before (core retries what is retryable)
    const down = stubbed(() => ({
      status: 400,
      json: { __type: 'ThrottlingException', message: 'slow down' },
    }));
    expect(await codeOf(down.provider.describeKey({ uri: KEY }, call()))).toBe('Throttled');
  });

  it('a repeated page marker ends Internal instead of looping', async () => {
    const { provider, requests } = stubbed(() => ({
      json: { Rotations: [{ RotationDate: 1_700_000_000 }], Truncated: true, NextMarker: 'again' },
    }));
    expect(await codeOf(provider.describeKey({ uri: KEY }, call()))).toBe('Internal');
    expect(requests.filter((r) => r.operation === 'ListKeyRotations')).toHaveLength(2);
  });

  it("passes the caller's signal: an abort cuts the listing off", async () => {
    const { provider, requests } = stubbed(() => 'hang');
    const controller = new AbortController();
    const pending = provider.describeKey({ uri: KEY }, { signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    expect(await codeOf(pending)).toBe('Aborted');
    expect(requests.find((r) => r.operation === 'ListKeyRotations')?.aborted).toBe(true);
  });
});
