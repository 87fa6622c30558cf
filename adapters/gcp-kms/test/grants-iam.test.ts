/**
 * Grants as IAM policy writes, against keyport's Cloud KMS test server over both transports: a
 * policy answered without an etag is never written back unconditionally, concurrent grants that
 * outlast the etag re-reads fail as "nothing written" (so core may retry them), bindings keyport
 * did not make (conditional, public members) survive a grant and its revocation untouched, and
 * every member bound under a grant's title is listed, not only the grantee keyport wrote, and a
 * condition keyport did not write is shown with the grant, never read as plain access.
 */
import { Keyport } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import {
  alterAnswer,
  type Binding,
  keyportOf,
  kmsSuite,
  type MakeProvider,
  resourceOf,
  TRANSPORTS,
  wrapClient,
} from './support/suite.js';
import { grpcProvider } from './support/targets.js';

const RING = 'projects/keyport-grants-iam/locations/global/keyRings/iam';
const suite = kmsSuite(RING);
const { name, policyOf, setBindings, listed } = suite;

/**
 * A provider whose GetIamPolicy answers lose their etag (as through a proxy that drops it), and
 * are held until `together` of them have arrived: concurrent writers then all read the same policy.
 */
async function etagless(make: MakeProvider, together: number) {
  const p = suite.providerOn(make);
  let held: Array<() => void> = [];
  await wrapClient(p, {
    getIamPolicy: (real) => async (request, options) => {
      const result = await real(request, options);
      delete (result[0] as Record<string, unknown>).etag;
      await new Promise<void>((resolve) => {
        held.push(resolve);
        if (held.length < together) return;
        for (const release of held) release();
        held = [];
      });
      return result;
    },
  });
  return { p, kp: keyportOf(p) };
}

describe('a policy answered without an etag', () => {
  for (const [transport, make] of TRANSPORTS) {
    it(`is never written back over ${transport}: two concurrent grants lose nothing silently`, async () => {
      const key = await suite.kp.createKey('gcp-kms', { name: name('etag'), spec: 'AES_256' });
      const { kp: k } = await etagless(make, 2);
      const outcomes = await Promise.allSettled(
        ['user:one@example.com', 'user:two@example.com'].map((grantee) =>
          k.createGrant(key.uri, { grantee, operations: ['encrypt'] }),
        ),
      );
      // Every grant the caller was told about is on the key: none overwritten by the other.
      const made = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value.id] : []));
      const onKey = (await listed(key.uri)).map((g) => g.id);
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
    const key = await suite.kp.createKey('gcp-kms', { name: name('etag-revoke'), spec: 'AES_256' });
    const grant = await suite.kp.createGrant(key.uri, {
      grantee: 'user:r@example.com',
      operations: ['encrypt'],
    });
    const { kp: k } = await etagless(grpcProvider, 1);
    await expect(k.revokeGrant(key.uri, grant.id)).rejects.toMatchObject({ code: 'Internal' });
    expect((await listed(key.uri)).map((g) => g.id)).toEqual([grant.id]);
    await k.close();
  });
});

/**
 * A provider whose next `times` SetIamPolicy calls each meet a concurrent writer: just before the
 * write goes out, an administrator rewrites the policy (same bindings, new etag), so the service
 * answers ABORTED as Cloud IAM does.
 */
async function contended(make: MakeProvider, times: number) {
  const p = suite.providerOn(make);
  let left = times;
  await wrapClient(p, {
    setIamPolicy: (real) => async (request, options) => {
      if (left-- > 0) {
        const uri = `gcp-kms://${(request as { resource: string }).resource}`;
        await setBindings(uri, ((await policyOf(uri)).bindings ?? []) as Binding[]);
      }
      return real(request, options);
    },
  });
  return p;
}

describe('concurrent grants beyond the etag re-reads', () => {
  for (const [transport, make] of TRANSPORTS) {
    it(`a grant that meets a concurrent writer on every re-read is Throttled over ${transport}: nothing written, and core retries it`, async () => {
      const key = await suite.kp.createKey('gcp-kms', { name: name('contended'), spec: 'AES_256' });
      const request = { grantee: 'user:c@example.com', operations: ['encrypt'] } as const;
      const once = keyportOf(await contended(make, 3));
      const error = await once.createGrant(key.uri, request).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'Throttled', retryable: true, keyUri: key.uri });
      expect((error as Error).message).toContain('nothing was written');
      expect((await policyOf(key.uri)).bindings ?? []).toEqual([]);
      await once.close();
      // Throttled certainly took no effect, so core repeats even createGrant (once, here).
      const p = await contended(make, 3);
      const retried = new Keyport({ providers: [p], retry: { maxAttempts: 2, baseDelayMs: 5 } });
      const grant = await retried.createGrant(key.uri, request);
      expect((await listed(key.uri)).map((g) => g.id)).toEqual([grant.id]);
      await retried.close();
    });
  }

  for (const [transport, make] of TRANSPORTS) {
    it(`six at once over ${transport}: each lands, or fails saying nothing was written (core retries it)`, async () => {
      const key = await suite.kp.createKey('gcp-kms', { name: name('race'), spec: 'AES_256' });
      const p = suite.providerOn(make);
      // Without core retries: an attempt that met the etag conflict every time is Throttled, not
      // "may have taken effect" (createGrant is never repeated after such a failure).
      const once = keyportOf(p);
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
      const onKey = (await listed(key.uri)).map((g) => g.id);
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

  for (const [transport, make] of TRANSPORTS) {
    it(`keep their conditions and members through createGrant and revokeGrant over ${transport}`, async () => {
      const key = await suite.kp.createKey('gcp-kms', { name: name('foreign'), spec: 'AES_256' });
      await setBindings(key.uri, foreign);
      const before = (await policyOf(key.uri)).bindings;
      const k = keyportOf(suite.providerOn(make));
      const grant = await k.createGrant(key.uri, { grantee: 'user:g@example.com', operations: ['decrypt'] });
      expect((await policyOf(key.uri)).bindings?.slice(0, before?.length)).toEqual(before);
      // Not keyport's grants: not listed as such (and never as unconditional ones).
      expect((await listed(key.uri, k)).map((g) => g.grantee)).toEqual(['user:g@example.com']);
      await k.revokeGrant(key.uri, grant.id);
      expect((await policyOf(key.uri)).bindings).toEqual(before);
      await k.close();
    });
  }
});

describe('listGrants names every member a grant binds', () => {
  it('a member added to a grant’s binding (allUsers, another user) is listed under the grant, and revoked with it', async () => {
    const key = await suite.kp.createKey('gcp-kms', { name: name('members'), spec: 'AES_256' });
    const grant = await suite.kp.createGrant(key.uri, {
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
    const grants = await listed(key.uri);
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
    await suite.kp.revokeGrant(key.uri, grant.id);
    expect((await policyOf(key.uri)).bindings ?? []).toEqual([]);
    expect(await listed(key.uri)).toEqual([]);
  });
});

describe('a grant to everyone', () => {
  for (const grantee of ['allUsers', 'allAuthenticatedUsers']) {
    it(`to ${grantee} is refused before any IAM call, and the policy is unchanged`, async () => {
      const key = await suite.kp.createKey('gcp-kms', { name: name('public'), spec: 'AES_256' });
      const before = await policyOf(key.uri);
      await expect(suite.kp.createGrant(key.uri, { grantee, operations: ['decrypt'] })).rejects.toMatchObject(
        {
          code: 'InvalidArgument',
          message: expect.stringContaining('anyone'),
        },
      );
      const after = await policyOf(key.uri);
      expect(after.bindings ?? []).toEqual(before.bindings ?? []);
      expect(after.etag).toEqual(before.etag);
    });
  }
});

describe('a grant whose IAM condition keyport did not write', () => {
  /** The key's bindings with each condition expression rewritten by `to` (as setIamPolicy could). */
  async function rewrite(uri: string, to: (expression: string) => string) {
    const bindings = ((await policyOf(uri)).bindings ?? []) as Binding[];
    await setBindings(
      uri,
      bindings.map((b) => ({
        ...b,
        condition: { ...b.condition, expression: to(String(b.condition?.expression)) },
      })),
    );
  }

  it('is listed with the condition, in IAM’s words: never as plain access with no expiry', async () => {
    const key = await suite.kp.createKey('gcp-kms', { name: name('cond'), spec: 'AES_256' });
    const expiresAt = new Date(Date.now() + 3_600_000);
    const grant = await suite.kp.createGrant(key.uri, {
      grantee: 'user:c@example.com',
      operations: ['encrypt'],
      expiresAt,
    });
    // As keyport wrote it: nothing unmodeled, and the expiry it set.
    const [own] = await listed(key.uri);
    expect(own).toMatchObject({ id: grant.id, operations: ['encrypt'], expiresAt });
    expect(own?.unmodeledOperations).toBeUndefined();
    expect(own?.unmodeledConditions).toBeUndefined();
    const original = String((await policyOf(key.uri)).bindings?.[0]?.condition?.expression);
    const scope = original.slice(0, original.indexOf(' && '));
    for (const [what, expression] of [
      [
        'a resource restriction added',
        `${scope} && resource.name == "${resourceOf(key.uri)}/cryptoKeyVersions/1"`,
      ],
      ['the expiry written another way', `${scope} && request.time < timestamp("2999-01-01T00:00:00Z")`],
      ['a start time added', `${original} && request.time > timestamp("2000-01-01T00:00:00Z")`],
      ['another key’s scope', `resource.name.startsWith("${resourceOf(key.uri)}-other")`],
    ] as const) {
      await rewrite(key.uri, () => expression);
      const grants = await listed(key.uri);
      expect(grants, what).toHaveLength(1);
      // The roles are bound, so the operation stays; the condition is shown and the expiry is not guessed.
      expect(grants[0], what).toMatchObject({
        id: grant.id,
        operations: ['encrypt'],
        unmodeledConditions: [expression],
      });
      expect(grants[0]?.expiresAt, what).toBeUndefined();
    }
  });

  it('on one binding of several: the others’ roles stay, and only the foreign condition is shown', async () => {
    const key = await suite.kp.createKey('gcp-kms', { name: name('cond-one'), spec: 'AES_256' });
    const grant = await suite.kp.createGrant(key.uri, {
      grantee: 'user:r@example.com',
      operations: ['re_encrypt'],
    });
    const bindings = ((await policyOf(key.uri)).bindings ?? []) as Binding[];
    const foreign = `${String(bindings[0]?.condition?.expression)} || request.time > timestamp("2000-01-01T00:00:00Z")`;
    await setBindings(key.uri, [
      ...bindings.map((b) =>
        b.role === 'roles/cloudkms.cryptoKeyDecrypter'
          ? { ...b, condition: { ...b.condition, expression: foreign } }
          : b,
      ),
    ]);
    const [got] = await listed(key.uri);
    expect(got).toMatchObject({
      id: grant.id,
      operations: ['re_encrypt'],
      unmodeledConditions: [foreign],
    });
    expect(got?.expiresAt).toBeUndefined();
  });

  it('one the test server cannot hold (request attributes, an empty expression) is shown too', async () => {
    // A stand-in answer: Cloud IAM accepts conditions on attributes the test server does not model.
    const key = await suite.kp.createKey('gcp-kms', { name: name('cond-attr'), spec: 'AES_256' });
    const grant = await suite.kp.createGrant(key.uri, {
      grantee: 'user:a@example.com',
      operations: ['decrypt'],
    });
    const scope = String((await policyOf(key.uri)).bindings?.[0]?.condition?.expression);
    for (const [expression, shown] of [
      [
        `${scope} && "accessPolicies/1/accessLevels/corp" in request.auth.access_levels`,
        `${scope} && "accessPolicies/1/accessLevels/corp" in request.auth.access_levels`,
      ],
      ['', ''],
    ] as const) {
      const p = suite.providerOn();
      await wrapClient(p, {
        getIamPolicy: alterAnswer((policy) => {
          for (const b of (policy.bindings ?? []) as Binding[]) {
            if (b.condition?.title === grant.id) b.condition.expression = expression;
          }
        }),
      });
      const k = keyportOf(p);
      expect(await listed(key.uri, k)).toEqual([
        expect.objectContaining({ id: grant.id, operations: ['decrypt'], unmodeledConditions: [shown] }),
      ]);
      expect((await listed(key.uri, k))[0]?.expiresAt).toBeUndefined();
      await k.close();
    }
  });
});
