/**
 * The driver's own methods called directly (not through a Keyport, which checks arguments first),
 * against keyport's Cloud KMS test server over gRPC and REST: every public method refuses each
 * kind of bad argument with InvalidArgument naming it and sends no request (the client's methods
 * are counted), good direct calls still work, and a public key the server sends as malformed PEM
 * is a typed error saying so, never Node's own.
 */
import { KeyportError } from '@keyport/core';
import type { CloudKmsServer } from '@keyport/test-servers';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { GcpKmsProvider } from '../src/index.js';
import { crc32c } from '../src/rpc.js';
import { type MakeProvider, recordCalls, TRANSPORTS } from './support/suite.js';
import { grpcProvider, signal, startServer } from './support/targets.js';

const RING = 'projects/keyport-arguments/locations/global/keyRings/args';
/** Every client method the adapter calls. */
const CLIENT_METHODS = [
  'asymmetricDecrypt',
  'asymmetricSign',
  'createCryptoKey',
  'createCryptoKeyVersion',
  'createImportJob',
  'createKeyRing',
  'decrypt',
  'destroyCryptoKeyVersion',
  'encrypt',
  'getCryptoKey',
  'getCryptoKeyVersion',
  'getIamPolicy',
  'getImportJob',
  'getPublicKey',
  'importCryptoKeyVersion',
  'listCryptoKeyVersions',
  'listCryptoKeys',
  'macSign',
  'macVerify',
  'restoreCryptoKeyVersion',
  'setIamPolicy',
  'updateCryptoKey',
  'updateCryptoKeyPrimaryVersion',
  'updateCryptoKeyVersion',
] as const;

/** A provider whose client counts every request it sends, and may alter a method's response. */
async function counted(
  make: MakeProvider,
  after: Record<string, (response: Record<string, unknown>) => void> = {},
) {
  const p = make(server, { keyRing: RING });
  const sent = await recordCalls(p, CLIENT_METHODS, after);
  return { p, sent };
}

/** The outcome of a call: its rejection (an iterable is iterated), or a synchronous throw. */
async function outcome(run: () => unknown): Promise<{ error?: unknown; sync?: unknown }> {
  let pending: unknown;
  try {
    pending = run();
  } catch (sync) {
    return { sync };
  }
  try {
    if (pending !== null && typeof pending === 'object' && Symbol.asyncIterator in pending) {
      for await (const _ of pending as AsyncIterable<unknown>);
    } else await pending;
  } catch (error) {
    return { error };
  }
  return {};
}

// Bad values of each kind, with the argument name the message must carry.
const BAD = {
  ref: [null, 42, {}, { uri: 42 }, { version: '1' }, [`gcp-kms://${RING}/cryptoKeys/k`]],
  bytes: ['text', null, 42, [1, 2, 3], new ArrayBuffer(4), { length: 1 }],
  req: ['x', 42, null, { context: 42 }, { context: { a: 1 } }, { context: ['a'] }, { unknown: true }],
  o: ['x', 42, null, { signal: 'no' }, { signal: { aborted: false } }],
  list: [{ signal: 'no' }, { pageSize: Number.NaN }, { pageSize: 0 }, { pageSize: 1.5 }, { pageSize: '10' }],
  sign: ['x', null, { algorithm: 'NOPE' }, { messageType: 5 }, { unknown: 1 }],
  createKey: [
    null,
    'x',
    { name: 42, spec: 'AES_256' },
    { name: 'k', spec: 'NOPE' },
    { name: 'k', spec: 'AES_256', rotation: { periodDays: Number.NaN } },
    { name: 'k', spec: 'AES_256', rotation: { periodDays: 30, nextRotationAt: new Date(Number.NaN) } },
    { name: 'k', spec: 'AES_256', labels: { a: 1 } },
  ],
  policy: [
    null,
    'x',
    { periodDays: Number.NaN },
    { periodDays: '30' },
    { periodDays: 30, nextRotationAt: new Date(Number.NaN) },
    { periodDays: 30, nextRotationAt: '2030-01-01' },
  ],
  grant: [
    null,
    { grantee: 42, operations: ['encrypt'] },
    { grantee: 'user:a@example.com', operations: 'encrypt' },
    { grantee: 'user:a@example.com', operations: ['encrypt'], expiresAt: new Date(Number.NaN) },
  ],
  grantId: [42, null, { id: 'x' }],
  importParameters: ['x', { algorithm: 'NOPE' }],
  importMaterial: [null, 'x', {}, { wrappedMaterial: 'x', algorithm: 'RSA_AES_KEY_WRAP_SHA_256' }],
} as const;
type Kind = keyof typeof BAD;
const NAMED: Record<Kind, RegExp> = {
  ref: /\bref\b/,
  bytes: /plaintext|ciphertext|message|signature|mac/,
  req: /\breq\b/,
  o: /\bo\b/,
  list: /\bo\.(signal|pageSize)\b/,
  sign: /\breq\b/,
  createKey: /\breq\b/,
  policy: /\bpolicy\b/,
  grant: /\breq\b/,
  grantId: /\bgrantId\b/,
  importParameters: /\breq\b/,
  importMaterial: /\breq\b/,
};

/** Each public method: its good arguments and which position holds which kind of argument. */
type Method = { good: () => unknown[]; kinds: Array<[number, Kind]> };
/** A key that does not exist: a request that got out would be counted (and answered NotFound). */
const ref = () => ({ uri: `gcp-kms://${RING}/cryptoKeys/never-made` });
const pinned = () => ({ ...ref(), version: '1' });
const one = () => new Uint8Array([1]);
const METHODS: Record<string, Method> = {
  createKey: {
    good: () => [{ name: 'made', spec: 'AES_256' }, signal()],
    kinds: [
      [0, 'createKey'],
      [1, 'o'],
    ],
  },
  describeKey: {
    good: () => [ref(), signal()],
    kinds: [
      [0, 'ref'],
      [1, 'o'],
    ],
  },
  listKeys: { good: () => [signal()], kinds: [[0, 'list']] },
  rotateKey: {
    good: () => [ref(), signal()],
    kinds: [
      [0, 'ref'],
      [1, 'o'],
    ],
  },
  setRotationPolicy: {
    good: () => [ref(), { periodDays: 30 }, signal()],
    kinds: [
      [0, 'ref'],
      [1, 'policy'],
      [2, 'o'],
    ],
  },
  enableKey: {
    good: () => [ref(), signal()],
    kinds: [
      [0, 'ref'],
      [1, 'o'],
    ],
  },
  disableKey: {
    good: () => [ref(), signal()],
    kinds: [
      [0, 'ref'],
      [1, 'o'],
    ],
  },
  destroyKeyVersion: {
    good: () => [pinned(), signal()],
    kinds: [
      [0, 'ref'],
      [1, 'o'],
    ],
  },
  restoreKeyVersion: {
    good: () => [pinned(), signal()],
    kinds: [
      [0, 'ref'],
      [1, 'o'],
    ],
  },
  encrypt: {
    good: () => [ref(), one(), {}, signal()],
    kinds: [
      [0, 'ref'],
      [1, 'bytes'],
      [2, 'req'],
      [3, 'o'],
    ],
  },
  decrypt: {
    good: () => [ref(), one(), {}, signal()],
    kinds: [
      [0, 'ref'],
      [1, 'bytes'],
      [2, 'req'],
      [3, 'o'],
    ],
  },
  sign: {
    good: () => [ref(), one(), {}, signal()],
    kinds: [
      [0, 'ref'],
      [1, 'bytes'],
      [2, 'sign'],
      [3, 'o'],
    ],
  },
  verify: {
    good: () => [ref(), one(), one(), { algorithm: 'ECDSA_SHA_256' }, signal()],
    kinds: [
      [0, 'ref'],
      [1, 'bytes'],
      [2, 'bytes'],
      [3, 'sign'],
      [4, 'o'],
    ],
  },
  getPublicKey: {
    good: () => [ref(), signal()],
    kinds: [
      [0, 'ref'],
      [1, 'o'],
    ],
  },
  mac: {
    good: () => [ref(), one(), signal()],
    kinds: [
      [0, 'ref'],
      [1, 'bytes'],
      [2, 'o'],
    ],
  },
  verifyMac: {
    good: () => [ref(), one(), one(), signal()],
    kinds: [
      [0, 'ref'],
      [1, 'bytes'],
      [2, 'bytes'],
      [3, 'o'],
    ],
  },
  createGrant: {
    good: () => [ref(), { grantee: 'user:a@example.com', operations: ['encrypt'] }, signal()],
    kinds: [
      [0, 'ref'],
      [1, 'grant'],
      [2, 'o'],
    ],
  },
  listGrants: {
    good: () => [ref(), signal()],
    kinds: [
      [0, 'ref'],
      [1, 'list'],
    ],
  },
  revokeGrant: {
    good: () => [ref(), 'keyport-0', signal()],
    kinds: [
      [0, 'ref'],
      [1, 'grantId'],
      [2, 'o'],
    ],
  },
  getImportParameters: {
    good: () => [ref(), {}, signal()],
    kinds: [
      [0, 'ref'],
      [1, 'importParameters'],
      [2, 'o'],
    ],
  },
  importKeyMaterial: {
    good: () => [ref(), { wrappedMaterial: one(), algorithm: 'RSA_AES_KEY_WRAP_SHA_256' }, signal()],
    kinds: [
      [0, 'ref'],
      [1, 'importMaterial'],
      [2, 'o'],
    ],
  },
};

let server: CloudKmsServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server.stop();
});

describe.each(TRANSPORTS)('over %s', (_, make) => {
  let p: GcpKmsProvider;
  let sent: string[];
  beforeAll(async () => {
    ({ p, sent } = await counted(make));
  });
  afterAll(async () => {
    await p.close();
  });
  beforeEach(() => {
    sent.length = 0;
  });

  it.each(Object.keys(METHODS))('%s refuses bad arguments before sending anything', async (name) => {
    const method = METHODS[name] as Method;
    const fn = (p as unknown as Record<string, (...a: unknown[]) => unknown>)[name] as (
      ...a: unknown[]
    ) => unknown;
    const wrong: string[] = [];
    for (const [at, kind] of method.kinds) {
      const values: readonly unknown[] = BAD[kind];
      for (const [i, bad] of values.entries()) {
        const args = method.good();
        args[at] = bad;
        const { error, sync } = await outcome(() => fn.apply(p, args));
        const label = `${kind} #${i} at ${at}`;
        if (sync !== undefined) wrong.push(`${label}: threw synchronously`);
        else if (!(error instanceof KeyportError) || error.code !== 'InvalidArgument') {
          wrong.push(`${label}: ${error instanceof KeyportError ? error.code : String(error)}`);
        } else if (!NAMED[kind].test(error.message)) wrong.push(`${label}: message "${error.message}"`);
        else if (error.provider !== p.name) wrong.push(`${label}: provider ${error.provider}`);
      }
    }
    expect(wrong).toEqual([]);
    expect(sent).toEqual([]);
  });

  it('good direct calls work: a URI string, a Map context, omitted options, a page size', async () => {
    const key = await p.createKey({ name: `good-${_.toLowerCase()}`, spec: 'AES_256' }, signal());
    const context = new Map([['tenant', 'a']]) as unknown as Record<string, string>;
    const uri = key.uri as unknown as { uri: string };
    const sealed = await p.encrypt(uri, new TextEncoder().encode('hello'), { context }, undefined as never);
    const opened = await p.decrypt(
      { uri: key.uri },
      sealed.ciphertext,
      { context: { tenant: 'a' } },
      signal(),
    );
    expect(new TextDecoder().decode(opened.plaintext)).toBe('hello');
    const listed: string[] = [];
    for await (const k of p.listKeys({ ...signal(), pageSize: 1 })) listed.push(k.uri);
    expect(listed).toContain(key.uri);
    const rotated = await p.setRotationPolicy(
      { uri: key.uri },
      { periodDays: 30, nextRotationAt: new Date(Date.UTC(2030, 0, 1)) },
      signal(),
    );
    expect(rotated.rotation?.nextRotationAt?.toISOString()).toBe('2030-01-01T00:00:00.000Z');
    expect(sent.length).toBeGreaterThan(0);
  });
});

describe('a public key the server sends as malformed PEM', () => {
  const MALFORMED = '-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n';

  it('a key version’s (checksum intact) is Internal saying the public key could not be read', async () => {
    const { p: owner } = await counted(grpcProvider);
    const key = await owner.createKey({ name: 'pem-bad', spec: 'EC_P256' }, signal());
    await owner.close();
    const { p } = await counted(grpcProvider, {
      getPublicKey: (r) => {
        r.pem = MALFORMED;
        r.pemCrc32c = { value: crc32c(new TextEncoder().encode(MALFORMED)) };
      },
    });
    try {
      for (const call of [
        () => p.getPublicKey({ uri: key.uri }, signal()),
        () =>
          p.verify(
            { uri: key.uri },
            new Uint8Array(1),
            new Uint8Array(64),
            { algorithm: 'ECDSA_SHA_256' },
            signal(),
          ),
      ]) {
        const error = await call().catch((e: unknown) => e);
        expect(error).toBeInstanceOf(KeyportError);
        expect(error).toMatchObject({
          code: 'Internal',
          retryable: false,
          provider: p.name,
          keyUri: key.uri,
          message: expect.stringMatching(/public key.*could not be read/),
        });
      }
    } finally {
      await p.close();
    }
  });

  it('an import job’s wrapping key is Internal saying it could not be read', async () => {
    const { p: owner } = await counted(grpcProvider);
    const key = await owner.createKey({ name: 'pem-job', spec: 'AES_256', external: true }, signal());
    await owner.close();
    const bad = (r: Record<string, unknown>) => {
      if (r.publicKey) r.publicKey = { pem: MALFORMED };
    };
    const { p } = await counted(grpcProvider, { createImportJob: bad, getImportJob: bad });
    try {
      const error = await p.getImportParameters({ uri: key.uri }, {}, signal()).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(KeyportError);
      expect(error).toMatchObject({
        code: 'Internal',
        retryable: false,
        keyUri: key.uri,
        message: expect.stringMatching(/wrapping key.*could not be read/),
      });
    } finally {
      await p.close();
    }
  });
});
