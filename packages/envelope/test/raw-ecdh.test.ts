/**
 * rawEcdhRecipient on its own (the published vectors and the Python ESDK cover the format):
 * every curve and schema round trip, careless options, and EDKs built to mislead it.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseHeader } from '../src/header.js';
import { openEnvelope, rawEcdhRecipient, sealEnvelope } from '../src/index.js';
import { resolveLimits } from '../src/limits.js';
import type { Recipient } from '../src/recipients/recipient.js';

const pair = (namedCurve: string) => generateKeyPairSync('ec', { namedCurve });
const pt = randomBytes(1500);

describe.each(['prime256v1', 'secp384r1', 'secp521r1'])('curve %s', (curve) => {
  const alice = pair(curve);
  const bob = pair(curve);
  const carol = pair(curve);
  const aliceToBob = rawEcdhRecipient({
    scheme: 'static',
    senderPrivateKey: alice.privateKey,
    recipientPublicKey: bob.publicKey,
  });
  const bobToAlice = rawEcdhRecipient({
    scheme: 'static',
    senderPrivateKey: bob.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    recipientPublicKey: alice.publicKey.export({ type: 'spki', format: 'der' }),
  });
  const bobDiscovery = rawEcdhRecipient({ scheme: 'discovery', recipientPrivateKey: bob.privateKey });
  const toBob = rawEcdhRecipient({ scheme: 'ephemeral', recipientPublicKey: bob.publicKey });
  const carolDiscovery = rawEcdhRecipient({ scheme: 'discovery', recipientPrivateKey: carol.privateKey });
  const opens = async (msg: Uint8Array, r: Recipient, reproducedContext?: Record<string, string>) =>
    Buffer.from(
      (await openEnvelope(msg, { trust: [r], ...(reproducedContext ? { reproducedContext } : {}) }))
        .plaintext,
    ).equals(pt);

  it('static seals; both parties and the recipient by discovery open; a third party cannot', async () => {
    const msg = await sealEnvelope(pt, { recipients: [aliceToBob], context: { a: '1' } });
    for (const r of [aliceToBob, bobToAlice, bobDiscovery]) expect(await opens(msg, r)).toBe(true);
    await expect(openEnvelope(msg, { trust: [carolDiscovery] })).rejects.toMatchObject({
      name: 'DataKeyUnavailableError',
    });
  });

  it('ephemeral seals a fresh key pair per message; only the recipient opens', async () => {
    const one = await sealEnvelope(pt, { recipients: [toBob] });
    const two = await sealEnvelope(pt, { recipients: [toBob] });
    const sender = (m: Uint8Array) =>
      Buffer.from(parseHeader(m, resolveLimits())?.encryptedDataKeys[0]?.providerInfo ?? []).toString('hex');
    expect(sender(one)).not.toBe(sender(two));
    expect(await opens(one, bobDiscovery)).toBe(true);
    for (const r of [toBob, aliceToBob, carolDiscovery]) {
      await expect(openEnvelope(one, { trust: [r] })).rejects.toMatchObject({
        name: 'DataKeyUnavailableError',
      });
    }
  });

  it('the context is bound into the derivation: unstored pairs must be reproduced exactly', async () => {
    const msg = await sealEnvelope(pt, {
      recipients: [aliceToBob],
      context: { tenant: 't', user: 'u' },
      contextNotStored: ['user'],
    });
    expect(await opens(msg, bobDiscovery, { user: 'u' })).toBe(true);
    await expect(
      openEnvelope(msg, { trust: [bobDiscovery], reproducedContext: { user: 'v' } }),
    ).rejects.toMatchObject({
      name: 'DataKeyUnavailableError',
    });
  });

  it('a tampered EDK fails cleanly: commitment, wrapped key, tag, provider info, another point', async () => {
    const msg = Buffer.from(await sealEnvelope(pt, { recipients: [aliceToBob] }));
    const edk = parseHeader(msg, resolveLimits())?.encryptedDataKeys[0];
    if (edk === undefined) throw new Error('no EDK');
    const ctAt = msg.indexOf(Buffer.from(edk.ciphertext));
    const infoAt = msg.indexOf(Buffer.from(edk.providerInfo));
    const n = edk.providerInfo.length;
    for (const [what, at] of [
      ['salt', ctAt + 3],
      ['commitment key', ctAt + 40],
      ['wrapped key', ctAt + 70],
      ['tag', ctAt + edk.ciphertext.length - 2],
      ['version', infoAt],
      ['recipient point', infoAt + 10],
      ['sender point', infoAt + n - 3],
    ] as const) {
      const bad = Buffer.from(msg);
      bad[at] = (bad[at] as number) ^ 1;
      await expect(openEnvelope(bad, { trust: [bobDiscovery] }), what).rejects.toMatchObject({
        name: 'DataKeyUnavailableError',
      });
    }
  });
});

describe('rawEcdhRecipient options', () => {
  const p256 = pair('prime256v1');
  const p384 = pair('secp384r1');
  const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const ed = generateKeyPairSync('ed25519');
  const secp256k1 = pair('secp256k1');
  it('careless or hostile options are InvalidArgument, never a TypeError', () => {
    for (const bad of [
      undefined,
      null,
      'static',
      {},
      { scheme: 'Static', senderPrivateKey: p256.privateKey, recipientPublicKey: p256.publicKey },
      { scheme: 'static', senderPrivateKey: p256.privateKey, recipientPublicKey: p384.publicKey },
      { scheme: 'static', senderPrivateKey: p256.privateKey, recipientPublickey: p256.publicKey },
      { scheme: 'static', senderPrivateKey: p256.publicKey, recipientPublicKey: p256.publicKey },
      { scheme: 'static', senderPrivateKey: rsa.privateKey, recipientPublicKey: rsa.publicKey },
      { scheme: 'ephemeral', recipientPublicKey: ed.publicKey },
      { scheme: 'ephemeral', recipientPublicKey: secp256k1.publicKey },
      { scheme: 'ephemeral', recipientPublicKey: 'not a key' },
      { scheme: 'ephemeral', recipientPublicKey: new Uint8Array(91) },
      {
        scheme: 'discovery',
        recipientPrivateKey: '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----',
      },
      { scheme: 'discovery', recipientPrivateKey: p256.privateKey, senderPrivateKey: p256.privateKey },
      { scheme: '__proto__', recipientPrivateKey: p256.privateKey },
    ]) {
      expect(() => rawEcdhRecipient(bad as never), JSON.stringify(bad)).toThrow(
        expect.objectContaining({ code: 'InvalidArgument' }),
      );
    }
  });
  it('a discovery recipient refuses to seal', async () => {
    const r = rawEcdhRecipient({ scheme: 'discovery', recipientPrivateKey: p256.privateKey });
    await expect(sealEnvelope(pt, { recipients: [r] })).rejects.toMatchObject({ code: 'InvalidArgument' });
  });
});
