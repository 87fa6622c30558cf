/**
 * A version's private and public key objects are found by label and CKA_ID, and each passes the
 * provenance checks alone (generated in the token, on the key's curve). Anyone with the PIN can
 * destroy one half and put a half of another pair generated in the token in its place — a public
 * key whose private half they made extractable and read: getPublicKey would hand out their key and
 * verify accept their signatures. keyport proves an EC version's halves are one pair before it uses
 * them (the private key signs a fixed probe, the public key must verify it; SoftHSM2 keeps no
 * public point on a private key), once per pair of handles, and refuses a mismatch (Integrity).
 * RSA halves are compared by CKA_MODULUS (version-provenance.test.ts).
 */
import { createPrivateKey, sign as nodeSign } from 'node:crypto';
import type { KeyInfo } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { CURVES } from '../src/der.js';
import { findObjects, versionId } from '../src/objects.js';
import { type Handle, P } from '../src/p11.js';
import { countCalls, keptKeyTemplate, signal, uniqueName, useProvider, withWrappedP11 } from './support.js';

const t = useProvider({ keyCacheMs: 0 });
const { onToken, nameOf } = t;

const o = () => ({ signal: signal() });
const message = Buffer.from('pay 100 to mallory');

/** The key's version-1 object of class `cls`, destroyed. */
function destroyHalf(key: KeyInfo, cls: number) {
  return onToken((session) => {
    const found = findObjects(
      t.provider.p11,
      session,
      [
        { type: P.CKA_CLASS, value: cls },
        { type: P.CKA_LABEL, value: nameOf(key) },
      ],
      1,
    );
    expect(found).toHaveLength(1);
    for (const h of found) t.provider.p11.C_DestroyObject(session, h);
  });
}

/**
 * A pair generated in the token on `spec`'s curve with one half under the key's label as its
 * version 1 (`half`) and the other under another label. The half under the key's label is as
 * keyport makes it (local, sensitive, never extractable); the other private half is readable.
 */
function plantHalf(key: KeyInfo, spec: keyof typeof CURVES, half: 'publicKey' | 'privateKey') {
  const name = nameOf(key);
  const elsewhere = `${name}-elsewhere`;
  const pubLabel = half === 'publicKey' ? name : elsewhere;
  const privLabel = half === 'privateKey' ? name : elsewhere;
  return onToken((session) =>
    t.provider.p11.C_GenerateKeyPairAsync(
      session,
      { mechanism: P.CKM_EC_KEY_PAIR_GEN },
      [
        { type: P.CKA_TOKEN, value: true },
        { type: P.CKA_LABEL, value: pubLabel },
        { type: P.CKA_ID, value: versionId(1) },
        { type: P.CKA_VERIFY, value: true },
        { type: P.CKA_EC_PARAMS, value: CURVES[spec].oid },
      ],
      half === 'privateKey'
        ? [...keptKeyTemplate(privLabel, versionId(1)), { type: P.CKA_SIGN, value: true }]
        : [
            { type: P.CKA_TOKEN, value: true },
            { type: P.CKA_PRIVATE, value: true },
            { type: P.CKA_LABEL, value: privLabel },
            { type: P.CKA_ID, value: versionId(1) },
            { type: P.CKA_SENSITIVE, value: false },
            { type: P.CKA_EXTRACTABLE, value: true },
            { type: P.CKA_SIGN, value: true },
          ],
    ),
  );
}

/** The planted pair's private key, read off the token as whoever planted it can. */
function readPrivate(pair: { privateKey: Handle; publicKey: Handle }) {
  return onToken((session) => {
    const [d] = t.provider.p11.C_GetAttributeValue(session, pair.privateKey, [{ type: P.CKA_VALUE }]);
    const [point] = t.provider.p11.C_GetAttributeValue(session, pair.publicKey, [{ type: P.CKA_EC_POINT }]);
    if (d === undefined || point === undefined) throw new Error('unreadable planted pair');
    const xy = point.value.subarray(point.value.length - 64);
    const b64 = (b: Buffer) => b.toString('base64url');
    return createPrivateKey({
      key: {
        kty: 'EC',
        crv: 'P-256',
        d: b64(d.value),
        x: b64(xy.subarray(0, 32)),
        y: b64(xy.subarray(32)),
      },
      format: 'jwk',
    });
  });
}

const notPaired = {
  code: 'Integrity',
  retryable: false,
  message: expect.stringMatching(/version 1 .*public key object is not the pair of the private key object/),
};

describe("an EC version's public and private key objects must be one pair", () => {
  it("another pair's public key in place of a version's: getPublicKey, verify and sign are Integrity; a forged signature is not accepted", async () => {
    const key = await t.provider.createKey({ name: uniqueName('ec-pub'), spec: 'EC_P256' }, o());
    const genuine = await t.provider.sign({ uri: key.uri }, message, { algorithm: 'ECDSA_SHA_256' }, o());
    await destroyHalf(key, P.CKO_PUBLIC_KEY);
    const planted = await plantHalf(key, 'EC_P256', 'publicKey');
    const forged = nodeSign('sha256', message, await readPrivate(planted));

    await expect(t.provider.getPublicKey({ uri: key.uri }, o())).rejects.toMatchObject(notPaired);
    await expect(
      t.provider.verify({ uri: key.uri }, message, forged, { algorithm: 'ECDSA_SHA_256' }, o()),
    ).rejects.toMatchObject(notPaired);
    await expect(
      t.provider.verify({ uri: key.uri }, message, genuine.signature, { algorithm: 'ECDSA_SHA_256' }, o()),
    ).rejects.toMatchObject(notPaired);
    const refused = t.provider.sign({ uri: key.uri }, message, { algorithm: 'ECDSA_SHA_256' }, o());
    await expect(refused).rejects.toMatchObject(notPaired);
    // The message names the objects, never a key's bytes.
    const error = await refused.catch((e: Error) => e);
    const [point] = await onToken((session) =>
      t.provider.p11.C_GetAttributeValue(session, planted.publicKey, [{ type: P.CKA_EC_POINT }]),
    );
    for (const encoding of ['hex', 'base64', 'base64url'] as const)
      expect(String(error)).not.toContain(point?.value.subarray(-32).toString(encoding));
    // The key is still described, and a rotation recovers it.
    expect((await t.provider.describeKey({ uri: key.uri }, o())).primaryVersion).toBe('1');
    await t.provider.rotateKey({ uri: key.uri }, o());
    const signed = await t.provider.sign({ uri: key.uri }, message, { algorithm: 'ECDSA_SHA_256' }, o());
    expect(signed.keyVersion).toBe('2');
    expect(
      await t.provider.verify(
        { uri: key.uri },
        message,
        signed.signature,
        { algorithm: 'ECDSA_SHA_256' },
        o(),
      ),
    ).toBe(true);
  });

  it("another pair's private key in place of a version's (P-384): sign and getPublicKey are Integrity", async () => {
    const key = await t.provider.createKey({ name: uniqueName('ec-priv'), spec: 'EC_P384' }, o());
    await destroyHalf(key, P.CKO_PRIVATE_KEY);
    await plantHalf(key, 'EC_P384', 'privateKey');
    await expect(
      t.provider.sign({ uri: key.uri }, message, { algorithm: 'ECDSA_SHA_384' }, o()),
    ).rejects.toMatchObject(notPaired);
    await expect(t.provider.getPublicKey({ uri: key.uri }, o())).rejects.toMatchObject(notPaired);
  });

  it('the pair is proven once per pair of handles: one probe signature, then none', async () => {
    const key = await t.provider.createKey({ name: uniqueName('ec-once'), spec: 'EC_P256' }, o());
    const use = async () => {
      const signed = await t.provider.sign({ uri: key.uri }, message, { algorithm: 'ECDSA_SHA_256' }, o());
      await t.provider.verify(
        { uri: key.uri },
        message,
        signed.signature,
        { algorithm: 'ECDSA_SHA_256' },
        o(),
      );
      await t.provider.getPublicKey({ uri: key.uri }, o());
    };
    // The first use signs twice: the probe, then the message.
    expect((await countCalls(t.provider, ['C_SignInit'], use)).C_SignInit).toBe(2);
    // keyCacheMs 0: the key is read again on every call, with the same handles.
    expect((await countCalls(t.provider, ['C_SignInit'], use)).C_SignInit).toBe(1);
  });

  it('a module that keeps CKA_EC_POINT on private keys: the points are compared, nothing is signed', async () => {
    // SoftHSM2 answers CKA_EC_POINT of a private key with CKR_ATTRIBUTE_TYPE_INVALID; this stands
    // in for a module that answers it, with the point of the key's own (genuine) pair.
    const key = await t.provider.createKey({ name: uniqueName('ec-point'), spec: 'EC_P256' }, o());
    const genuine = Buffer.from(await t.provider.getPublicKey({ uri: key.uri }, o())).subarray(-65);
    const ecPoint = Buffer.concat([Buffer.from([0x04, 0x41]), genuine]);
    await destroyHalf(key, P.CKO_PUBLIC_KEY);
    await plantHalf(key, 'EC_P256', 'publicKey');
    const calls = await countCalls(t.provider, ['C_SignInit'], () =>
      withWrappedP11(
        t.provider,
        ['C_GetAttributeValue'],
        (_name, original) =>
          function (this: unknown, ...args: unknown[]) {
            const [session, handle, template] = args as [Handle, Handle, Array<{ type: number }>];
            if (template.length === 1 && template[0]?.type === P.CKA_EC_POINT) {
              const [cls] = original.call(this, session, handle, [{ type: P.CKA_CLASS }]) as Array<{
                value: Buffer;
              }>;
              if (cls?.value.readUInt32LE(0) === P.CKO_PRIVATE_KEY)
                return [{ type: P.CKA_EC_POINT, value: ecPoint }];
            }
            return original.apply(this, args);
          },
        async () => {
          await expect(t.provider.getPublicKey({ uri: key.uri }, o())).rejects.toMatchObject({
            code: 'Integrity',
            message: expect.stringMatching(
              /not the pair of the private key object \(their CKA_EC_POINT differ\)/,
            ),
          });
        },
      ),
    );
    expect(calls.C_SignInit).toBe(0);
  });

  it('a disabled key whose pair was never proven: getPublicKey is KeyStateConflict until it is enabled', async () => {
    const key = await t.provider.createKey({ name: uniqueName('ec-disabled'), spec: 'EC_P256' }, o());
    await t.provider.disableKey({ uri: key.uri }, o());
    await expect(t.provider.getPublicKey({ uri: key.uri }, o())).rejects.toMatchObject({
      code: 'KeyStateConflict',
      message: expect.stringMatching(/the key is disabled/),
    });
    await t.provider.enableKey({ uri: key.uri }, o());
    expect((await t.provider.getPublicKey({ uri: key.uri }, o())).length).toBeGreaterThan(0);
  });
});
