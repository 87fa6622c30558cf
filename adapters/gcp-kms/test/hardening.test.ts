/**
 * The adapter as a careless caller and an attacker would use it, against keyport's Cloud KMS test
 * server: key versions the ciphertext prefix cannot record, grant records IAM would not hold,
 * least-privilege refusals that say what is missing, arguments of the wrong type, and aborts that
 * must leave nothing behind.
 */
import { randomBytes } from 'node:crypto';
import { GRANT_OPERATIONS } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import {
  type Binding,
  keyportOf,
  kmsSuite,
  type MakeProvider,
  recordCalls,
  resourceOf,
  TRANSPORTS,
} from './support/suite.js';
import { grpcProvider, signal } from './support/targets.js';

const RING = 'projects/keyport-hardening/locations/global/keyRings/hard';
/** Every operation a grant can allow (core's list). */
const ALL_OPERATIONS = GRANT_OPERATIONS;
const suite = kmsSuite(RING);
const { name, policyOf, setBindings } = suite;

/** A provider whose client records each method it calls, and may alter a response or act after it. */
async function watched(
  make: MakeProvider = grpcProvider,
  after: Record<string, (response: Record<string, unknown>) => void> = {},
  extra: object = {},
) {
  const p = suite.providerOn(make, extra);
  const calls = await recordCalls(
    p,
    ['encrypt', 'macSign', 'getCryptoKeyVersion', 'getIamPolicy', 'setIamPolicy', 'getCryptoKey'],
    after,
  );
  return { p, calls, kp: keyportOf(p) };
}

/** Binds roles on the key to a principal, as an administrator would outside keyport. */
async function bind(uri: string, principal: string, roles: readonly string[]) {
  await setBindings(
    uri,
    roles.map((role) => ({ role, members: [principal] })),
  );
  return keyportOf(suite.providerOn(grpcProvider, { principal }));
}

describe('an Encrypt answer from another key or version', () => {
  it("is refused (Integrity), never framed and reported as the requested key's", async () => {
    const key = await suite.kp.createKey('gcp-kms', { name: name('who'), spec: 'AES_256' });
    const other = await suite.kp.createKey('gcp-kms', { name: name('who'), spec: 'AES_256' });
    await suite.kp.rotateKey(key.uri);
    const cases = [
      ['another key', key.uri, `${resourceOf(other.uri)}/cryptoKeyVersions/1`],
      [
        'another version than the pinned one',
        `${key.uri}/cryptoKeyVersions/1`,
        `${resourceOf(key.uri)}/cryptoKeyVersions/2`,
      ],
      ['the key, not a version', key.uri, resourceOf(key.uri)],
    ] as const;
    for (const [what, uri, answered] of cases) {
      const w = await watched(grpcProvider, {
        encrypt: (r) => {
          r.name = answered;
        },
      });
      await expect(w.kp.encrypt(uri, randomBytes(8)), what).rejects.toMatchObject({ code: 'Integrity' });
      await w.kp.close();
    }
    // The honest answers pass: unpinned (the primary, 2) and pinned to 1.
    await expect(suite.kp.encrypt(key.uri, randomBytes(8))).resolves.toMatchObject({ keyVersion: '2' });
    await expect(suite.kp.encrypt(`${key.uri}/cryptoKeyVersions/1`, randomBytes(8))).resolves.toMatchObject({
      keyVersion: '1',
    });
  });
});

describe('a MacSign answer from another key or version', () => {
  it("is refused (Integrity), never reported as the requested version's MAC", async () => {
    const key = await suite.kp.createKey('gcp-kms', { name: name('mac'), spec: 'HMAC_256' });
    const other = await suite.kp.createKey('gcp-kms', { name: name('mac'), spec: 'HMAC_256' });
    for (const answered of [`${resourceOf(other.uri)}/cryptoKeyVersions/1`, resourceOf(key.uri)]) {
      const w = await watched(grpcProvider, {
        macSign: (r) => {
          r.name = answered;
        },
      });
      await expect(w.kp.mac(key.uri, randomBytes(8)), answered).rejects.toMatchObject({ code: 'Integrity' });
      await w.kp.close();
    }
    await expect(suite.kp.mac(key.uri, randomBytes(8))).resolves.toMatchObject({ keyVersion: '1' });
  });
});

describe('key versions beyond the 32 bits of the ciphertext prefix', () => {
  it('a pinned version above 2^32−1 is InvalidArgument before any call, never written modulo 2^32', async () => {
    const key = await suite.kp.createKey('gcp-kms', { name: name('wide'), spec: 'AES_256' });
    const rsa = await suite.kp.createKey('gcp-kms', {
      name: name('wide'),
      spec: 'RSA_2048',
      usage: 'encrypt_decrypt',
    });
    for (const uri of [key.uri, rsa.uri]) {
      const w = await watched();
      for (const version of ['4294967296', '4294967297', '99999999999999999999']) {
        await expect(w.kp.encrypt({ uri, version }, randomBytes(8)), version).rejects.toMatchObject({
          code: 'InvalidArgument',
        });
      }
      expect(w.calls).toEqual([]);
      await w.kp.close();
    }
  });

  it('a version Cloud KMS names above 2^32−1 is refused (Unsupported), not framed as another version', async () => {
    const key = await suite.kp.createKey('gcp-kms', { name: name('wide'), spec: 'AES_256' });
    const w = await watched(grpcProvider, {
      encrypt: (r) => {
        r.name = `${resourceOf(key.uri)}/cryptoKeyVersions/4294967297`;
      },
    });
    await expect(w.kp.encrypt(key.uri, randomBytes(8))).rejects.toMatchObject({ code: 'Unsupported' });
    await w.kp.close();
  });
});

describe('grant records longer than an IAM condition description', () => {
  const soon = () => new Date(Date.now() + 3_600_000);

  for (const [transport, make] of TRANSPORTS) {
    it(`a record over 256 bytes is InvalidArgument before any IAM call over ${transport}, the policy untouched`, async () => {
      const key = await suite.kp.createKey('gcp-kms', { name: name('long'), spec: 'AES_256' });
      const before = await policyOf(key.uri);
      const w = await watched(make);
      for (const [grantName, operations] of [
        ['x'.repeat(64), ALL_OPERATIONS], // 259 bytes as JSON: the longest plain request
        ['"'.repeat(64), ['encrypt', 'decrypt', 'sign', 'verify']], // escaped: 128 characters of name
        ['\u0001'.repeat(40), ['encrypt']], // \u0001 is six characters each
        ['é'.repeat(64), ALL_OPERATIONS], // two bytes each
      ] as const) {
        const error = await w.kp
          .createGrant(key.uri, {
            grantee: 'user:long@example.com',
            operations: [...operations],
            name: grantName,
            expiresAt: soon(),
          })
          .catch((e: unknown) => e);
        expect(error, grantName).toMatchObject({ code: 'InvalidArgument' });
        expect((error as Error).message).toContain('256');
        expect((error as Error).message).not.toContain(grantName.slice(0, 8)); // the name is not echoed
      }
      expect(w.calls).toEqual([]);
      expect((await policyOf(key.uri)).etag).toEqual(before.etag);
      await w.kp.close();
    });
  }

  it('the longest record that fits is accepted, and repeated operations are recorded once', async () => {
    const key = await suite.kp.createKey('gcp-kms', { name: name('long'), spec: 'AES_256' });
    const fits = await suite.kp.createGrant(key.uri, {
      grantee: 'user:fits@example.com',
      operations: [...ALL_OPERATIONS],
      name: 'x'.repeat(61),
      expiresAt: soon(),
    });
    const repeated = await suite.kp.createGrant(key.uri, {
      grantee: 'user:rep@example.com',
      operations: [...ALL_OPERATIONS, ...ALL_OPERATIONS, ...ALL_OPERATIONS, ...ALL_OPERATIONS],
      name: 'x'.repeat(61),
      expiresAt: soon(),
    });
    expect(repeated.operations).toEqual([...ALL_OPERATIONS]);
    const listed = new Map<string, readonly string[]>();
    for await (const g of suite.kp.listGrants(key.uri)) listed.set(g.id, g.operations);
    expect(listed.get(fits.id)).toEqual([...ALL_OPERATIONS]);
    expect(listed.get(repeated.id)).toEqual([...ALL_OPERATIONS]);
    const lengths = (await policyOf(key.uri)).bindings?.map((b) => (b.condition?.description ?? '').length);
    expect(Math.max(...(lengths ?? []))).toBeLessThanOrEqual(256);
  });

  it('a look-alike record someone else wrote into the policy (unknown operations, bad dates) is not listed as a grant', async () => {
    const key = await suite.kp.createKey('gcp-kms', { name: name('forged'), spec: 'AES_256' });
    const real = await suite.kp.createGrant(key.uri, {
      grantee: 'user:real@example.com',
      operations: ['encrypt'],
    });
    const before = await policyOf(key.uri);
    const forged = (title: string, record: Record<string, unknown>) => ({
      role: 'roles/cloudkms.viewer',
      members: ['user:forger@example.com'],
      condition: {
        title,
        description: JSON.stringify(record),
        expression: 'request.time < timestamp("2999-01-01T00:00:00Z")',
      },
    });
    await setBindings(key.uri, [
      ...((before.bindings ?? []) as Binding[]),
      forged('kpg-ops', { k: 'keyport-grant', o: ['encrypt', 'admin'] }),
      forged('kpg-empty', { k: 'keyport-grant', o: [] }),
      forged('kpg-date', { k: 'keyport-grant', o: ['decrypt'], e: 'next tuesday' }),
      forged('kpg-name', { k: 'keyport-grant', o: ['decrypt'], n: { toString: 1 } }),
      forged('kpg-proto', { k: 'keyport-grant', o: ['__proto__'] }),
    ]);
    const listed = await suite.listed(key.uri);
    expect(listed.map((g) => g.id)).toEqual([real.id]);
  });

  it('the test server refuses a condition description over 256 characters, as IAM does', async () => {
    const key = await suite.kp.createKey('gcp-kms', { name: name('long'), spec: 'AES_256' });
    const kms = await suite.provider.client();
    const write = async (description: string) =>
      kms.setIamPolicy({
        resource: resourceOf(key.uri),
        policy: {
          version: 3,
          etag: (await policyOf(key.uri)).etag,
          bindings: [
            {
              role: 'roles/cloudkms.viewer',
              members: ['user:d@example.com'],
              condition: {
                title: 't',
                description,
                expression: 'request.time < timestamp("2999-01-01T00:00:00Z")',
              },
            },
          ],
        },
      } as never);
    await expect(write('d'.repeat(257))).rejects.toMatchObject({ code: 3 });
    await expect(write('d'.repeat(256))).resolves.toBeDefined();
  });

  it('called directly, a grant request of the wrong shape is InvalidArgument, not a TypeError or RangeError', async () => {
    const key = await suite.kp.createKey('gcp-kms', { name: name('shape'), spec: 'AES_256' });
    const grantee = 'user:shape@example.com';
    for (const req of [
      { grantee, operations: ['encrypt'], expiresAt: new Date(Number.NaN) },
      { grantee, operations: 'encrypt' },
      { grantee, operations: ['__proto__'] },
      { grantee, operations: ['encrypt'], name: 42 },
      { grantee, operations: ['encrypt'], expiresAt: '2030-01-01' },
    ]) {
      const error = await suite.provider
        .createGrant({ uri: key.uri }, req as never, signal())
        .catch((e: unknown) => e);
      expect(error, JSON.stringify(req)).toMatchObject({ code: 'InvalidArgument' });
    }
    expect((await policyOf(key.uri)).bindings ?? []).toEqual([]);
  });
});

describe('listGrants reports what the bindings allow, not what their record says', () => {
  /** Rewrites the key's bindings with `change`, as someone holding setIamPolicy could. */
  async function edit(uri: string, change: (b: Binding) => Binding) {
    const before = await policyOf(uri);
    await setBindings(
      uri,
      (before.bindings ?? []).map((b) => change(b as Binding)),
    );
  }
  const { listed } = suite;
  const withExpression = (expression: (old: string) => string) => (b: Binding) => ({
    ...b,
    condition: { ...b.condition, expression: expression(String(b.condition?.expression)) },
  });

  it("the expiry is the condition's: a time limit removed, moved later or rewritten is not the recorded one", async () => {
    const key = await suite.kp.createKey('gcp-kms', { name: name('expiry'), spec: 'AES_256' });
    const expiresAt = new Date(Date.now() + 3_600_000);
    const grant = await suite.kp.createGrant(key.uri, {
      grantee: 'user:e@example.com',
      operations: ['encrypt'],
      expiresAt,
    });
    // untouched, the listing says what createGrant said
    expect(await listed(key.uri)).toMatchObject([{ id: grant.id, operations: ['encrypt'], expiresAt }]);
    const original = String((await policyOf(key.uri)).bindings?.[0]?.condition?.expression);
    const scope = original.slice(0, original.indexOf(' && '));
    const later = '2999-01-01T00:00:00.000Z';
    for (const [what, expression, expected] of [
      ['no time limit', scope, undefined],
      ['a later time limit', `${scope} && request.time < timestamp("${later}")`, new Date(later)],
      [
        'an expression keyport did not write',
        `${original} || request.time > timestamp("2000-01-01T00:00:00Z")`,
        undefined,
      ],
    ] as const) {
      await edit(
        key.uri,
        withExpression(() => expression),
      );
      const [got] = await listed(key.uri);
      expect(got?.id, what).toBe(grant.id);
      expect(got?.expiresAt, what).toEqual(expected);
    }
  });

  it('operations follow the bound roles: a role swapped or added under the record is seen', async () => {
    const key = await suite.kp.createKey('gcp-kms', { name: name('roles'), spec: 'AES_256' });
    const grant = await suite.kp.createGrant(key.uri, {
      grantee: 'user:r@example.com',
      operations: ['encrypt'],
    });
    // The record still says encrypt; IAM now lets the grantee decrypt instead.
    await edit(key.uri, (b) => ({ ...b, role: 'roles/cloudkms.cryptoKeyDecrypter' }));
    expect(await listed(key.uri)).toMatchObject([
      { id: grant.id, operations: [], unmodeledOperations: ['roles/cloudkms.cryptoKeyDecrypter'] },
    ]);
    // A second binding under the grant's condition, for the same grantee: an admin role.
    const before = await policyOf(key.uri);
    const [own] = (before.bindings ?? []) as Binding[];
    await edit(key.uri, (b) => ({ ...b, role: 'roles/cloudkms.cryptoKeyEncrypter' }));
    const now = await policyOf(key.uri);
    await setBindings(key.uri, [
      ...((now.bindings ?? []) as Binding[]),
      { ...own, role: 'roles/cloudkms.admin' },
    ]);
    expect(await listed(key.uri)).toMatchObject([
      { id: grant.id, operations: ['encrypt'], unmodeledOperations: ['roles/cloudkms.admin'] },
    ]);
  });

  it('revokeGrant removes every binding of the grant, also one whose record was edited away', async () => {
    const key = await suite.kp.createKey('gcp-kms', { name: name('revoke'), spec: 'AES_256' });
    const grantee = `user:${name('rv')}@example.com`;
    // re_encrypt: two bindings (encrypter, decrypter) under one condition title
    const grant = await suite.kp.createGrant(key.uri, { grantee, operations: ['re_encrypt'] });
    const { ciphertext } = await suite.kp.encrypt(key.uri, randomBytes(16));
    await edit(key.uri, (b) =>
      b.role === 'roles/cloudkms.cryptoKeyDecrypter'
        ? { ...b, condition: { ...b.condition, description: 'reviewed by ops' } }
        : b,
    );
    expect(await listed(key.uri)).toMatchObject([{ id: grant.id, operations: ['re_encrypt'] }]);
    await suite.kp.revokeGrant(key.uri, grant.id);
    expect((await policyOf(key.uri)).bindings ?? []).toEqual([]);
    const asGrantee = keyportOf(suite.providerOn(grpcProvider, { principal: grantee }));
    await expect(asGrantee.decrypt(key.uri, ciphertext)).rejects.toMatchObject({ code: 'AccessDenied' });
    await asGrantee.close();
  });

  it('a record claiming less than its bindings grant does not hide the rest', async () => {
    const key = await suite.kp.createKey('gcp-kms', { name: name('claims'), spec: 'AES_256' });
    const grant = await suite.kp.createGrant(key.uri, {
      grantee: 'user:c@example.com',
      operations: ['encrypt', 'decrypt'],
    });
    // The description now records a describe-only grant; the encrypter and decrypter roles stay.
    await edit(key.uri, (b) => {
      const record = { ...JSON.parse(String(b.condition?.description)), o: ['describe'] };
      return { ...b, condition: { ...b.condition, description: JSON.stringify(record) } };
    });
    expect(await listed(key.uri)).toMatchObject([
      {
        id: grant.id,
        operations: [],
        unmodeledOperations: ['roles/cloudkms.cryptoKeyDecrypter', 'roles/cloudkms.cryptoKeyEncrypter'],
      },
    ]);
  });
});

describe('least privilege: refusals say what is missing', () => {
  it('RSA encrypt with only roles/cloudkms.publicKeyViewer: AccessDenied naming the permissions it needs', async () => {
    const rsa = await suite.kp.createKey('gcp-kms', {
      name: name('lp'),
      spec: 'RSA_2048',
      usage: 'encrypt_decrypt',
    });
    const grantee = await bind(rsa.uri, 'user:pk@example.com', ['roles/cloudkms.publicKeyViewer']);
    for (const ref of [rsa.uri, { uri: rsa.uri, version: '1' }]) {
      const error = await grantee.encrypt(ref, randomBytes(8)).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'AccessDenied', keyUri: rsa.uri });
      const message = (error as Error).message;
      for (const permission of [
        'cloudkms.cryptoKeyVersions.useToEncrypt',
        'cloudkms.cryptoKeys.get',
        'cloudkms.cryptoKeyVersions.viewPublicKey',
      ]) {
        expect(message).toContain(permission);
      }
      expect((error as Error & { cause?: { code?: unknown } }).cause).toMatchObject({ code: 7 });
    }
    await grantee.close();
  });

  it('RSA encrypt without cloudkms.cryptoKeys.get: the FAILED_PRECONDITION says keyport could not read the key', async () => {
    const rsa = await suite.kp.createKey('gcp-kms', {
      name: name('lp'),
      spec: 'RSA_2048',
      usage: 'encrypt_decrypt',
    });
    const grantee = await bind(rsa.uri, 'user:enc@example.com', [
      'roles/cloudkms.cryptoKeyEncrypter',
      'roles/cloudkms.publicKeyViewer',
    ]);
    const error = await grantee.encrypt(rsa.uri, randomBytes(8)).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'KeyStateConflict' });
    expect((error as Error).message).toContain('cloudkms.cryptoKeys.get');
    await grantee.close();
    // with the viewer role too (get and list), the documented set, it encrypts
    const full = await bind(rsa.uri, 'user:enc2@example.com', [
      'roles/cloudkms.cryptoKeyEncrypter',
      'roles/cloudkms.publicKeyViewer',
      'roles/cloudkms.viewer',
    ]);
    await expect(full.encrypt(rsa.uri, randomBytes(8))).resolves.toMatchObject({ keyVersion: '1' });
    await full.close();
  });

  it('AES encrypt without the permission keeps AccessDenied, and a plaintext never reaches the message', async () => {
    const aes = await suite.kp.createKey('gcp-kms', { name: name('lp'), spec: 'AES_256' });
    const grantee = await bind(aes.uri, 'user:none@example.com', ['roles/cloudkms.viewer']);
    const secret = 'plaintext-9f8e7d6c5b4a';
    const error = await grantee
      .encrypt(aes.uri, new TextEncoder().encode(secret), { context: { tenant: 'ctx-value-1a2b' } })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'AccessDenied' });
    const printed = JSON.stringify({ e: error, cause: (error as Error).cause, m: (error as Error).message });
    expect(printed).not.toContain(secret);
    expect(printed).not.toContain('ctx-value-1a2b');
    await grantee.close();
  });
});

describe('aborts leave nothing behind', () => {
  for (const [transport, make] of TRANSPORTS) {
    it(`createGrant aborted after reading the policy writes no binding over ${transport}`, async () => {
      const key = await suite.kp.createKey('gcp-kms', { name: name('abort'), spec: 'AES_256' });
      const controller = new AbortController();
      const w = await watched(make, { getIamPolicy: () => controller.abort() });
      const error = await w.p
        .createGrant(
          { uri: key.uri },
          { grantee: 'user:late@example.com', operations: ['encrypt'] },
          { signal: controller.signal },
        )
        .catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'Aborted' });
      expect((await policyOf(key.uri)).bindings ?? []).toEqual([]);
      await w.p.close();
    });

    it(`a signal aborted before the call sends nothing over ${transport}`, async () => {
      const key = await suite.kp.createKey('gcp-kms', { name: name('abort'), spec: 'AES_256' });
      const w = await watched(make);
      const error = await w.p
        .createGrant(
          { uri: key.uri },
          { grantee: 'user:never@example.com', operations: ['encrypt'] },
          { signal: AbortSignal.abort() },
        )
        .catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'Aborted' });
      expect((await policyOf(key.uri)).bindings ?? []).toEqual([]);
      await w.p.close();
    });
  }
});
