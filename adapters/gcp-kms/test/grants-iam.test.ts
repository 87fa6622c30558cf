/**
 * Grants as IAM policy writes, against keyport's Cloud KMS test server over both transports: a
 * policy answered without an etag is never written back unconditionally, concurrent grants that
 * outlast the etag re-reads fail as "nothing written" (so core may retry them), bindings keyport
 * did not make (conditional, public members) survive a grant and its revocation untouched, and
 * every member bound under a grant's title is listed, not only the grantee keyport wrote.
 */
import { Keyport } from '@keyport/core';
import type { CloudKmsServer } from '@keyport/test-servers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GcpKmsProvider } from '../src/index.js';
import { grpcProvider, restProvider, startServer } from './support/targets.js';

const RING = 'projects/keyport-grants-iam/locations/global/keyRings/iam';
let server: CloudKmsServer;
let provider: GcpKmsProvider;
let kp: Keyport;
let n = 0;
const name = (hint: string) => `${hint}-${++n}`;
const resourceOf = (uri: string) => uri.slice('gcp-kms://'.length);
const transports = [
  ['gRPC', grpcProvider],
  ['REST', restProvider],
] as const;

type Method = (request: object, options: object) => Promise<unknown[]>;
type Binding = { role?: string | null; members?: string[] | null; condition?: object | null };

beforeAll(async () => {
  server = await startServer();
  provider = grpcProvider(server, { keyRing: RING });
  kp = new Keyport({ providers: [provider], retry: { maxAttempts: 1 } });
});
afterAll(async () => {
  await kp.close();
  await server.stop();
});

async function policyOf(uri: string) {
  const kms = await provider.client();
  const request = { resource: resourceOf(uri), options: { requestedPolicyVersion: 3 } };
  return (await kms.getIamPolicy(request as never))[0];
}

/** Writes the key's bindings as an administrator would outside keyport (conditionally on the etag). */
async function setBindings(uri: string, bindings: readonly Binding[]) {
  const kms = await provider.client();
  const policy = { version: 3, etag: (await policyOf(uri)).etag, bindings };
  await kms.setIamPolicy({ resource: resourceOf(uri), policy } as never);
}

async function listed(k: Keyport, uri: string) {
  const out = [];
  for await (const g of k.listGrants(uri)) out.push(g);
  return out;
}

/**
 * A provider whose GetIamPolicy answers lose their etag (as through a proxy that drops it), and
 * are held until `together` of them have arrived: concurrent writers then all read the same policy.
 */
async function etagless(make: (typeof transports)[number][1], together: number) {
  const p = make(server, { keyRing: RING });
  const kms = (await p.client()) as unknown as Record<string, Method>;
  const real = (kms.getIamPolicy as Method).bind(kms);
  let held: Array<() => void> = [];
  kms.getIamPolicy = async (request, options) => {
    const result = await real(request, options);
    delete (result[0] as Record<string, unknown>).etag;
    await new Promise<void>((resolve) => {
      held.push(resolve);
      if (held.length < together) return;
      for (const release of held) release();
      held = [];
    });
    return result;
  };
  return { p, kp: new Keyport({ providers: [p], retry: { maxAttempts: 1 } }) };
}

describe('a policy answered without an etag', () => {
  for (const [transport, make] of transports) {
    it(`is never written back over ${transport}: two concurrent grants lose nothing silently`, async () => {
      const key = await kp.createKey('gcp-kms', { name: name('etag'), spec: 'AES_256' });
      const { kp: k } = await etagless(make, 2);
      const outcomes = await Promise.allSettled(
        ['user:one@example.com', 'user:two@example.com'].map((grantee) =>
          k.createGrant(key.uri, { grantee, operations: ['encrypt'] }),
        ),
      );
      // Every grant the caller was told about is on the key: none overwritten by the other.
      const made = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value.id] : []));
      const onKey = (await listed(kp, key.uri)).map((g) => g.id);
      expect(onKey.sort()).toEqual(made.sort());
      // And keyport refuses to write at all: the etag is what makes the write safe.
      for (const o of outcomes) {
        expect(o.status).toBe('rejected');
        expect(o.status === 'rejected' && o.reason).toMatchObject({ code: 'Internal', retryable: false });
      }
      expect((await policyOf(key.uri)).bindings ?? []).toEqual([]);
      await k.close();
    });
  }

  it('revokeGrant is refused too, and the grant stays', async () => {
    const key = await kp.createKey('gcp-kms', { name: name('etag-revoke'), spec: 'AES_256' });
    const grant = await kp.createGrant(key.uri, { grantee: 'user:r@example.com', operations: ['encrypt'] });
    const { kp: k } = await etagless(grpcProvider, 1);
    await expect(k.revokeGrant(key.uri, grant.id)).rejects.toMatchObject({ code: 'Internal' });
    expect((await listed(kp, key.uri)).map((g) => g.id)).toEqual([grant.id]);
    await k.close();
  });
});

/**
 * A provider whose next `times` SetIamPolicy calls each meet a concurrent writer: just before the
 * write goes out, an administrator rewrites the policy (same bindings, new etag), so the service
 * answers ABORTED as Cloud IAM does.
 */
async function contended(make: (typeof transports)[number][1], times: number) {
  const p = make(server, { keyRing: RING });
  const kms = (await p.client()) as unknown as Record<string, Method>;
  const real = (kms.setIamPolicy as Method).bind(kms);
  let left = times;
  kms.setIamPolicy = async (request, options) => {
    if (left-- > 0) {
      const uri = `gcp-kms://${(request as { resource: string }).resource}`;
      await setBindings(uri, ((await policyOf(uri)).bindings ?? []) as Binding[]);
    }
    return real(request, options);
  };
  return p;
}

describe('concurrent grants beyond the etag re-reads', () => {
  for (const [transport, make] of transports) {
    it(`a grant that meets a concurrent writer on every re-read is Throttled over ${transport}: nothing written, and core retries it`, async () => {
      const key = await kp.createKey('gcp-kms', { name: name('contended'), spec: 'AES_256' });
      const request = { grantee: 'user:c@example.com', operations: ['encrypt'] } as const;
      const once = new Keyport({ providers: [await contended(make, 3)], retry: { maxAttempts: 1 } });
      const error = await once.createGrant(key.uri, request).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'Throttled', retryable: true, keyUri: key.uri });
      expect((error as Error).message).toContain('nothing was written');
      expect((await policyOf(key.uri)).bindings ?? []).toEqual([]);
      await once.close();
      // Throttled certainly took no effect, so core repeats even createGrant (once, here).
      const p = await contended(make, 3);
      const retried = new Keyport({ providers: [p], retry: { maxAttempts: 2, baseDelayMs: 5 } });
      const grant = await retried.createGrant(key.uri, request);
      expect((await listed(kp, key.uri)).map((g) => g.id)).toEqual([grant.id]);
      await retried.close();
    });
  }

  for (const [transport, make] of transports) {
    it(`six at once over ${transport}: each lands, or fails saying nothing was written (core retries it)`, async () => {
      const key = await kp.createKey('gcp-kms', { name: name('race'), spec: 'AES_256' });
      const p = make(server, { keyRing: RING });
      // Without core retries: an attempt that met the etag conflict every time is Throttled, not
      // "may have taken effect" (createGrant is never repeated after such a failure).
      const once = new Keyport({ providers: [p], retry: { maxAttempts: 1 } });
      const grantees = [1, 2, 3, 4, 5, 6].map((i) => `user:a${i}@example.com`);
      const first = await Promise.allSettled(
        grantees.map((grantee) => once.createGrant(key.uri, { grantee, operations: ['encrypt'] })),
      );
      for (const o of first) {
        if (o.status === 'rejected') expect(o.reason).toMatchObject({ code: 'Throttled', retryable: true });
      }
      // With core's retries every grant lands, and every one is on the key.
      const retried = new Keyport({ providers: [p], retry: { baseDelayMs: 5, maxDelayMs: 50 } });
      const made = await Promise.all(
        grantees.map((grantee) => retried.createGrant(key.uri, { grantee, operations: ['decrypt'] })),
      );
      const onKey = (await listed(kp, key.uri)).map((g) => g.id);
      for (const g of made) expect(onKey).toContain(g.id);
      await retried.close();
    });
  }
});

describe('bindings keyport did not make', () => {
  const foreign: readonly Binding[] = [
    {
      role: 'roles/cloudkms.cryptoKeyDecrypter',
      members: [
        'allUsers',
        'domain:example.com',
        'principalSet://iam.googleapis.com/locations/global/workforcePools/pool/*',
      ],
      condition: {
        title: 'until-2999',
        description: 'set by ops',
        expression: 'request.time < timestamp("2999-01-01T00:00:00Z")',
      },
    },
    { role: 'roles/cloudkms.viewer', members: ['allAuthenticatedUsers'] },
  ];

  for (const [transport, make] of transports) {
    it(`keep their conditions and members through createGrant and revokeGrant over ${transport}`, async () => {
      const key = await kp.createKey('gcp-kms', { name: name('foreign'), spec: 'AES_256' });
      await setBindings(key.uri, foreign);
      const before = (await policyOf(key.uri)).bindings;
      const k = new Keyport({ providers: [make(server, { keyRing: RING })], retry: { maxAttempts: 1 } });
      const grant = await k.createGrant(key.uri, { grantee: 'user:g@example.com', operations: ['decrypt'] });
      expect((await policyOf(key.uri)).bindings?.slice(0, before?.length)).toEqual(before);
      // Not keyport's grants: not listed as such (and never as unconditional ones).
      expect((await listed(k, key.uri)).map((g) => g.grantee)).toEqual(['user:g@example.com']);
      await k.revokeGrant(key.uri, grant.id);
      expect((await policyOf(key.uri)).bindings).toEqual(before);
      await k.close();
    });
  }
});

describe('listGrants names every member a grant binds', () => {
  it('a member added to a grant’s binding (allUsers, another user) is listed under the grant, and revoked with it', async () => {
    const key = await kp.createKey('gcp-kms', { name: name('members'), spec: 'AES_256' });
    const grant = await kp.createGrant(key.uri, {
      grantee: 'user:alice@example.com',
      operations: ['encrypt'],
      name: 'alice',
    });
    const [own] = ((await policyOf(key.uri)).bindings ?? []) as Binding[];
    // Someone with setIamPolicy widens keyport's binding and adds one of their own under its title.
    await setBindings(key.uri, [
      { ...own, members: [...(own?.members ?? []), 'allUsers'] },
      { ...own, role: 'roles/cloudkms.cryptoKeyDecrypter', members: ['user:mallory@example.com'] },
    ]);
    const grants = await listed(kp, key.uri);
    expect(grants).toHaveLength(3);
    expect(grants).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ id: grant.id, grantee: 'user:alice@example.com', operations: ['encrypt'] }),
        expect.objectContaining({
          id: grant.id,
          grantee: 'allUsers',
          operations: ['encrypt'],
          name: 'alice',
        }),
        expect.objectContaining({
          id: grant.id,
          grantee: 'user:mallory@example.com',
          operations: [],
          unmodeledOperations: ['roles/cloudkms.cryptoKeyDecrypter'],
        }),
      ]),
    );
    await kp.revokeGrant(key.uri, grant.id);
    expect((await policyOf(key.uri)).bindings ?? []).toEqual([]);
    expect(await listed(kp, key.uri)).toEqual([]);
  });
});

describe('a grant to everyone', () => {
  for (const grantee of ['allUsers', 'allAuthenticatedUsers']) {
    it(`to ${grantee} is refused before any IAM call, and the policy is unchanged`, async () => {
      const key = await kp.createKey('gcp-kms', { name: name('public'), spec: 'AES_256' });
      const before = await policyOf(key.uri);
      await expect(kp.createGrant(key.uri, { grantee, operations: ['decrypt'] })).rejects.toMatchObject({
        code: 'InvalidArgument',
        message: expect.stringContaining('anyone'),
      });
      const after = await policyOf(key.uri);
      expect(after.bindings ?? []).toEqual(before.bindings ?? []);
      expect(after.etag).toEqual(before.etag);
    });
  }
});
