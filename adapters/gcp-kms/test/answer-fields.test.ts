/**
 * Answers whose timestamps and periods are not dates or periods, from a stand-in Cloud KMS gRPC
 * server (the test server only sends real ones): the value comes over the wire as the client
 * decodes it, and KeyInfo never carries an Invalid Date (getTime() NaN, toISOString() throwing)
 * nor a NaN, zero or negative rotation period.
 */
import { protos } from '@google-cloud/kms';
import {
  credentials,
  Server,
  ServerCredentials,
  type ServiceDefinition,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import type { KeyInfo } from '@keyport/core';
import { afterEach, describe, expect, it } from 'vitest';
import { GcpKmsProvider } from '../src/index.js';
import { type Answer, alterAnswer, kmsSuite, TRANSPORTS, wrapClient } from './support/suite.js';
import { signal, staticAuth } from './support/targets.js';

type Codec = {
  encode(m: object): { finish(): Uint8Array };
  decode(b: Uint8Array): object;
  fromObject(o: object): object;
};
const v1 = protos.google.cloud.kms.v1 as unknown as Record<string, Codec>;

/** One unary KeyManagementService method answering `answer` to every request. */
function unary(method: string, request: string, response: string) {
  const [req, res] = [v1[request] as Codec, v1[response] as Codec];
  return {
    path: `/google.cloud.kms.v1.KeyManagementService/${method}`,
    requestStream: false,
    responseStream: false,
    requestSerialize: (m: object) => Buffer.from(req.encode(m).finish()),
    requestDeserialize: (b: Buffer) => req.decode(b),
    responseSerialize: (m: object) => Buffer.from(res.encode(res.fromObject(m)).finish()),
    responseDeserialize: (b: Buffer) => res.decode(b),
  };
}

const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
});

/** A stand-in server answering GetCryptoKey and ListCryptoKeyVersions as given; a provider on it. */
async function standIn(key: object, versions: object[]): Promise<GcpKmsProvider> {
  const definition: Record<string, unknown> = {
    GetCryptoKey: unary('GetCryptoKey', 'GetCryptoKeyRequest', 'CryptoKey'),
    ListCryptoKeyVersions: unary(
      'ListCryptoKeyVersions',
      'ListCryptoKeyVersionsRequest',
      'ListCryptoKeyVersionsResponse',
    ),
  };
  const answer = (value: object) => (_call: unknown, done: (e: null, v: object) => void) => done(null, value);
  const implementation: UntypedServiceImplementation = {
    GetCryptoKey: answer(key),
    ListCryptoKeyVersions: answer({ cryptoKeyVersions: versions, totalSize: versions.length }),
  };
  const server = new Server();
  server.addService(definition as ServiceDefinition, implementation);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) =>
      e ? reject(e) : resolve(p),
    ),
  );
  const p = new GcpKmsProvider({
    apiEndpoint: '127.0.0.1',
    port,
    sslCreds: credentials.createInsecure(),
    authClient: staticAuth(),
  });
  stops.push(async () => {
    await p.close();
    server.forceShutdown();
  });
  return p;
}

const KEY = 'projects/p/locations/global/keyRings/r/cryptoKeys/k';
const URI = `gcp-kms://${KEY}`;
/** Seconds past any Date (±8.64e15 ms), but a valid int64 on the wire. */
const [LATEST, EARLIEST] = ['9223372036854775807', '-9223372036854775807'];

/** Every Date in the KeyInfo, which must each be a date. */
function dates(info: KeyInfo): Date[] {
  const all = [info.createdAt, info.rotation?.nextRotationAt];
  for (const v of info.versions ?? []) all.push(v.createdAt, v.destroyAt);
  return all.filter((d): d is Date => d !== undefined);
}

describe('timestamps and periods that are not dates or periods', () => {
  it('are left out of KeyInfo over gRPC, never an Invalid Date or a negative period', async () => {
    const version = (id: number, state: string, at: string) => ({
      name: `${KEY}/cryptoKeyVersions/${id}`,
      state,
      algorithm: 'EC_SIGN_P256_SHA256',
      createTime: { seconds: at },
      ...(state === 'DESTROY_SCHEDULED' && { destroyTime: { seconds: LATEST } }),
    });
    for (const period of ['-86400', '0']) {
      const p = await standIn(
        {
          name: KEY,
          purpose: 'ASYMMETRIC_SIGN',
          versionTemplate: { algorithm: 'EC_SIGN_P256_SHA256' },
          createTime: { seconds: EARLIEST },
          rotationPeriod: { seconds: period },
          nextRotationTime: { seconds: LATEST },
        },
        [version(1, 'DESTROY_SCHEDULED', LATEST), version(2, 'ENABLED', EARLIEST)],
      );
      const info = await p.describeKey({ uri: URI }, signal());
      expect(info.versions?.map((v) => v.version)).toEqual(['1', '2']);
      expect(info.primaryVersion).toBe('2');
      for (const d of dates(info)) expect(Number.isNaN(d.getTime()), String(d)).toBe(false);
      expect(info.createdAt).toBeUndefined();
      expect(info.rotation, period).toBeUndefined();
      expect(() => JSON.stringify(info)).not.toThrow();
    }
  });

  it('a readable date and period next to them are kept', async () => {
    const p = await standIn(
      {
        name: KEY,
        purpose: 'ENCRYPT_DECRYPT',
        primary: {
          name: `${KEY}/cryptoKeyVersions/1`,
          state: 'ENABLED',
          algorithm: 'GOOGLE_SYMMETRIC_ENCRYPTION',
        },
        createTime: { seconds: '1700000000', nanos: 5_000_000 },
        rotationPeriod: { seconds: String(30 * 86_400) },
        nextRotationTime: { seconds: LATEST },
      },
      [{ name: `${KEY}/cryptoKeyVersions/1`, state: 'ENABLED', createTime: { seconds: '1700000000' } }],
    );
    const info = await p.describeKey({ uri: URI }, signal());
    expect(info.createdAt?.getTime()).toBe(1_700_000_000_005);
    expect(info.rotation).toEqual({ periodDays: 30 });
  });
});

const RING = 'projects/keyport-fields/locations/global/keyRings/fields';
const suite = kmsSuite(RING);

describe('text where Cloud KMS sends numbers', () => {
  for (const [transport, make] of TRANSPORTS) {
    it(`a rotation period or time that is not a number is no period or date over ${transport}`, async () => {
      const key = await suite.kp.createKey('gcp-kms', {
        name: suite.name('rot'),
        spec: 'AES_256',
        rotation: { periodDays: 30 },
      });
      const p = suite.providerOn(make);
      await wrapClient(p, {
        getCryptoKey: alterAnswer((r: Answer) => {
          r.rotationPeriod = { seconds: 'thirty days' };
          r.nextRotationTime = { seconds: 'soon', nanos: 0 };
          r.createTime = { seconds: '1700000000', nanos: 'NaN' };
        }),
      });
      const info = await p.describeKey({ uri: key.uri }, signal());
      expect(info.rotation).toBeUndefined();
      expect(info.createdAt).toBeUndefined();
      await p.close();
    });
  }
});

describe('an import job expiry that is no date', () => {
  it('is left out of the import parameters', async () => {
    const key = await suite.kp.createKey('gcp-kms', {
      name: suite.name('imp'),
      spec: 'AES_256',
      external: true,
    });
    const p = suite.providerOn();
    const noDate = alterAnswer((r: Answer) => {
      r.expireTime = { seconds: LATEST };
    });
    await wrapClient(p, { createImportJob: noDate, getImportJob: noDate });
    const params = await p.getImportParameters(
      { uri: key.uri },
      { algorithm: 'RSA_AES_KEY_WRAP_SHA_256' },
      signal(),
    );
    expect(params.expiresAt).toBeUndefined();
    expect(params.wrappingPublicKey.length).toBeGreaterThan(0);
    await p.close();
  });
});
