import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  as,
  bytes,
  expectCode,
  grpc,
  type Harness,
  iamGet,
  iamSet,
  iamTest,
  newKeyRing,
  startHarness,
} from './gcp-support.js';

const ALICE = 'user:alice@example.com';
const BOB = 'user:bob@example.com';
const ENC = 'cloudkms.cryptoKeyVersions.useToEncrypt';
const DEC = 'cloudkms.cryptoKeyVersions.useToDecrypt';

describe('Cloud KMS server: IAM policies', () => {
  let h: Harness;
  let key: string;
  beforeAll(async () => {
    h = await startHarness();
    const ring = await newKeyRing(h.client);
    const [k] = await h.client.createCryptoKey({
      parent: ring,
      cryptoKeyId: 'guarded',
      cryptoKey: { purpose: 'ENCRYPT_DECRYPT' },
    });
    key = k.name!;
  });
  afterAll(async () => {
    await h.close();
  });

  it('stores a policy with an etag and refuses a stale etag with ABORTED', async () => {
    const [empty] = await h.client.getIamPolicy(iamGet({ resource: key }));
    expect(empty.bindings ?? []).toHaveLength(0);
    const [set] = await h.client.setIamPolicy(
      iamSet({
        resource: key,
        policy: {
          bindings: [{ role: 'roles/cloudkms.cryptoKeyEncrypter', members: [ALICE] }],
          etag: empty.etag,
        },
      }),
    );
    expect(Buffer.from(set.etag as Uint8Array)).not.toEqual(Buffer.from(empty.etag as Uint8Array));
    const [got] = await h.client.getIamPolicy(iamGet({ resource: key }));
    expect(got.bindings?.map((b) => [b.role, b.members])).toEqual([
      ['roles/cloudkms.cryptoKeyEncrypter', [ALICE]],
    ]);
    await expectCode(
      h.client.setIamPolicy(iamSet({ resource: key, policy: { bindings: [], etag: empty.etag } })),
      grpc.status.ABORTED,
    );
  });

  it('enforces the policy for a named principal', async () => {
    const [enc] = await h.client.encrypt({ name: key, plaintext: Buffer.from('x') }, as(ALICE));
    await expectCode(
      h.client.decrypt({ name: key, ciphertext: bytes(enc.ciphertext) }, as(ALICE)),
      grpc.status.PERMISSION_DENIED,
    );
    await expectCode(
      h.client.encrypt({ name: key, plaintext: Buffer.from('x') }, as(BOB)),
      grpc.status.PERMISSION_DENIED,
    );
    await expectCode(h.client.getCryptoKey({ name: key }, as(ALICE)), grpc.status.PERMISSION_DENIED);
    // A missing key is PERMISSION_DENIED too for someone without access: existence is not revealed.
    await expectCode(
      h.client.getCryptoKey({ name: `${key}-absent` }, as(BOB)),
      grpc.status.PERMISSION_DENIED,
    );
    const [tested] = await h.client.testIamPermissions(
      iamTest({ resource: key, permissions: [ENC, DEC] }),
      as(ALICE),
    );
    expect(tested.permissions).toEqual([ENC]);
  });

  it('revokes the way the Cloud KMS samples do: a binding written back without members is dropped', async () => {
    const [created] = await h.client.createCryptoKey({
      parent: key.slice(0, key.indexOf('/cryptoKeys/')),
      cryptoKeyId: 'revoked',
      cryptoKey: { purpose: 'ENCRYPT_DECRYPT' },
    });
    const resource = created.name as string;
    const [granted] = await h.client.setIamPolicy(
      iamSet({
        resource,
        policy: {
          bindings: [
            { role: 'roles/cloudkms.cryptoKeyEncrypterDecrypter', members: [ALICE] },
            { role: 'roles/cloudkms.publicKeyViewer', members: [ALICE, BOB] },
          ],
        },
      }),
    );
    await h.client.encrypt({ name: resource, plaintext: Buffer.from('x') }, as(ALICE));
    // Read, take the member out of its bindings, write back: one binding is left empty.
    for (const b of granted.bindings ?? []) b.members = (b.members ?? []).filter((m) => m !== ALICE);
    const [revoked] = await h.client.setIamPolicy(iamSet({ resource, policy: granted }));
    const expected = [['roles/cloudkms.publicKeyViewer', [BOB]]];
    expect(revoked.bindings?.map((b) => [b.role, b.members])).toEqual(expected);
    const [read] = await h.client.getIamPolicy(iamGet({ resource }));
    expect(read.bindings?.map((b) => [b.role, b.members])).toEqual(expected);
    await expectCode(
      h.client.encrypt({ name: resource, plaintext: Buffer.from('x') }, as(ALICE)),
      grpc.status.PERMISSION_DENIED,
    );
    // An empty binding still names a role the resource knows.
    await expectCode(
      h.client.setIamPolicy(
        iamSet({ resource, policy: { bindings: [{ role: 'roles/cloudkms.nope', members: [] }] } }),
      ),
      grpc.status.INVALID_ARGUMENT,
    );
  });

  it('honours a request.time condition (policy version 3)', async () => {
    const [current] = await h.client.getIamPolicy(
      iamGet({ resource: key, options: { requestedPolicyVersion: 3 } }),
    );
    const until = new Date(h.server.clock.now().getTime() + 3600_000).toISOString();
    await expectCode(
      h.client.setIamPolicy(
        iamSet({
          resource: key,
          policy: {
            version: 1,
            etag: current.etag,
            bindings: [
              {
                role: 'roles/cloudkms.cryptoKeyDecrypter',
                members: [BOB],
                condition: { expression: `request.time < timestamp("${until}")` },
              },
            ],
          },
        }),
      ),
      grpc.status.INVALID_ARGUMENT,
    );
    await h.client.setIamPolicy(
      iamSet({
        resource: key,
        policy: {
          version: 3,
          etag: current.etag,
          bindings: [
            ...(current.bindings ?? []),
            {
              role: 'roles/cloudkms.cryptoKeyEncrypterDecrypter',
              members: [BOB],
              condition: { title: 'temp', expression: `request.time < timestamp("${until}")` },
            },
          ],
        },
      }),
    );
    const [enc] = await h.client.encrypt({ name: key, plaintext: Buffer.from('y') }, as(BOB));
    const [dec] = await h.client.decrypt({ name: key, ciphertext: bytes(enc.ciphertext) }, as(BOB));
    expect(Buffer.from(dec.plaintext as Uint8Array).toString()).toBe('y');
    const [v3] = await h.client.getIamPolicy(
      iamGet({ resource: key, options: { requestedPolicyVersion: 3 } }),
    );
    expect(v3.version).toBe(3);
    expect(v3.bindings?.find((b) => b.condition)?.condition?.expression).toContain('request.time');
    const [v1] = await h.client.getIamPolicy(iamGet({ resource: key }));
    expect(v1.bindings?.some((b) => b.role?.includes('_withcond_'))).toBe(true);
    h.server.clock.advance(3600_000 + 1000);
    await expectCode(
      h.client.decrypt({ name: key, ciphertext: bytes(enc.ciphertext) }, as(BOB)),
      grpc.status.PERMISSION_DENIED,
    );
  });

  it('inherits key ring bindings and knows the predefined roles', async () => {
    const ring = key.replace(/\/cryptoKeys\/.*$/, '');
    await h.client.setIamPolicy(
      iamSet({
        resource: ring,
        policy: { bindings: [{ role: 'roles/cloudkms.viewer', members: ['user:carol@example.com'] }] },
      }),
    );
    const [k] = await h.client.getCryptoKey({ name: key }, as('user:carol@example.com'));
    expect(k.name).toBe(key);
    await expectCode(
      h.client.encrypt({ name: key, plaintext: Buffer.from('x') }, as('user:carol@example.com')),
      grpc.status.PERMISSION_DENIED,
    );
    const [admin] = await h.client.testIamPermissions(
      iamTest({ resource: key, permissions: [ENC, 'cloudkms.cryptoKeys.setIamPolicy'] }),
      as('user:carol@example.com'),
    );
    expect(admin.permissions ?? []).toEqual([]);
  });

  it('refuses unknown roles, bad members, bad conditions and missing resources', async () => {
    const bad = [
      { bindings: [{ role: 'roles/cloudkms.nope', members: [ALICE] }] },
      { bindings: [{ role: 'roles/cloudkms.viewer', members: ['alice'] }] },
      {
        version: 3,
        bindings: [
          {
            role: 'roles/cloudkms.viewer',
            members: [ALICE],
            condition: { expression: 'request.auth.claims.x == 1' },
          },
        ],
      },
    ];
    for (const policy of bad)
      await expectCode(
        h.client.setIamPolicy(iamSet({ resource: key, policy })),
        grpc.status.INVALID_ARGUMENT,
      );
    await expectCode(h.client.getIamPolicy(iamGet({ resource: `${key}-absent` })), grpc.status.NOT_FOUND);
    await expectCode(
      h.client.testIamPermissions(iamTest({ resource: key, permissions: ['cloudkms.*'] })),
      grpc.status.INVALID_ARGUMENT,
    );
  });

  it('maps bearer tokens to principals when configured', async () => {
    const h2 = await startHarness({ principals: {} });
    try {
      // Over an insecure channel the JS client sends no token, so the caller is the owner;
      // a bearer token the mapping does not know is UNAUTHENTICATED.
      const [ring] = await h2.client.createKeyRing({
        parent: 'projects/p/locations/l',
        keyRingId: 'r',
        keyRing: {},
      });
      expect(ring.name).toBe('projects/p/locations/l/keyRings/r');
      await expectCode(
        h2.client.getKeyRing(
          { name: ring.name! },
          { otherArgs: { headers: { authorization: 'Bearer unknown' } } },
        ),
        grpc.status.UNAUTHENTICATED,
      );
    } finally {
      await h2.close();
    }
  });
});
