/**
 * Raw RSA PKCS#1 v1.5, open-only (the published vectors cover the format): an unwrap that never
 * fails (implicit rejection) must neither stop open from trying the next EDK or recipient nor
 * tell a well-padded forgery from a badly padded one.
 */
import { constants, generateKeyPairSync, publicEncrypt, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { openEnvelope, type Recipient, rawRsaRecipient, sealEnvelope } from '../src/index.js';
import { rsaPair } from './helpers/keys.js';

const pt = randomBytes(2000);
const rsaWith = (padding: 'oaep-sha256' | 'pkcs1', privateKey = rsaPair.privateKey) =>
  rawRsaRecipient({ namespace: 'review', name: 'rsa', privateKey, padding });

describe('raw RSA PKCS#1 v1.5 (implicit rejection never fails an unwrap)', () => {
  it('a PKCS#1 recipient trusted before an OAEP one does not stop open from reaching the OAEP one', async () => {
    const msg = await sealEnvelope(pt, { recipients: [rsaWith('oaep-sha256')] });
    // Migration: messages of both paddings under one key; the EDK does not say which it is.
    const out = await openEnvelope(msg, { trust: [rsaWith('pkcs1'), rsaWith('oaep-sha256')] });
    expect(Buffer.from(out.plaintext).equals(pt)).toBe(true);
  });

  it('two PKCS#1 recipients of one name (a rotated key): the second one opens what it wrapped', async () => {
    const old = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const msg = await sealEnvelope(pt, { recipients: [pkcs1Sealer] });
    const out = await openEnvelope(msg, { trust: [rsaWith('pkcs1', old), rsaWith('pkcs1')] });
    expect(Buffer.from(out.plaintext).equals(pt)).toBe(true);
  });

  it('a well-padded 32-byte ciphertext fails like a badly padded one (no padding oracle in the error)', async () => {
    const failure = async (wrap: (dataKey: Uint8Array) => Uint8Array) => {
      const msg = await sealEnvelope(pt, {
        recipients: [{ ...pkcs1Sealer, wrap: async (k) => edkOf(wrap(k)) }],
      });
      const e = await openEnvelope(msg, { trust: [rsaWith('pkcs1')] }).catch((x: unknown) => x);
      const { code, message } = e as { code: string; message: string };
      return { code, message };
    };
    // Valid PKCS#1 v1.5 padding around 32 bytes that are not the data key (what an attacker's
    // modified ciphertext yields when its padding happens to conform), and a ciphertext whose
    // padding is wrong (implicit rejection: a key of a random length). Telling them apart is the
    // Bleichenbacher oracle.
    const conforming = await failure(() =>
      publicEncrypt({ key: rsaPair.publicKey, padding: constants.RSA_PKCS1_PADDING }, randomBytes(32)),
    );
    const badPadding = await failure(() => randomBytes(255));
    expect(conforming.code).toBe('InvalidCiphertext');
    expect(conforming).toEqual(badPadding);
  });
});

/** Seals PKCS#1 v1.5 EDKs, as another ESDK's raw RSA keyring does (keyport never writes them). */
const edkOf = (ciphertext: Uint8Array) => ({
  providerId: 'review',
  providerInfo: Buffer.from('rsa'),
  ciphertext,
});
const pkcs1Sealer: Recipient = {
  id: 'review-pkcs1-sealer',
  async wrap(dataKey) {
    return edkOf(publicEncrypt({ key: rsaPair.publicKey, padding: constants.RSA_PKCS1_PADDING }, dataKey));
  },
  matches: () => false,
  unwrap: () => Promise.reject(new Error('seal only')),
};
