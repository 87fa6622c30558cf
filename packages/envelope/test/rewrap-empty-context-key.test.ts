/**
 * Rewrap of a message whose encryption context has an empty key (ESDK-JS, Python and Go seal
 * `{ "": value }`; keyport opens such messages). A rewrap is not a new seal: it binds the new
 * EDKs (and, signed, the new header) to the message's context as it is. It failed as
 * InvalidArgument whenever it had to serialize that context under a caller's rules: a raw AES or
 * raw ECDH recipient wrapping the data key (`add`, or every kept EDK of a signed message), and
 * the new header of a signed message. Only ESDK-JS (a child Node process) is needed here.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { parseHeader } from '../src/header.js';
import {
  openEnvelope,
  rawAesRecipient,
  rawEcdhRecipient,
  rewrapEnvelope,
  rewrapStream,
  sealEnvelope,
} from '../src/index.js';
import { resolveLimits } from '../src/limits.js';
import { esdkDecrypt, esdkEncrypt, stopEsdk } from './helpers/esdk.js';
import { aes, chunked, collect, esdkAesKeyring } from './helpers/keys.js';

afterAll(() => stopEsdk());

const FRAME = 256;
// 'Tenant' and 'app' sort differently by localeCompare than by UTF-8 bytes: ESDK-JS's default
// raw AES order is the legacy one, so the kept EDK opens only by the second AAD keyport tries.
const context = { '': 'empty-key value', Tenant: 't-42', app: 'orders' };

const otherKey = randomBytes(32);
const other = rawAesRecipient({ namespace: 'keyport-test', name: 'aes-3', key: otherKey });
const esdkOther = {
  type: 'aes' as const,
  namespace: 'keyport-test',
  name: 'aes-3',
  key: otherKey.toString('base64'),
  utf8Sorting: true,
};

const { privateKey: bobKey, publicKey: bobPublic } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const toBob = rawEcdhRecipient({ scheme: 'ephemeral', recipientPublicKey: bobPublic });
const bob = rawEcdhRecipient({ scheme: 'discovery', recipientPrivateKey: bobKey });

function contextOf(msg: Uint8Array): Record<string, string> {
  const h = parseHeader(msg, resolveLimits());
  if (h === undefined) throw new Error('no header');
  return h.context;
}

describe.each([
  { suiteId: 0x0478, hex: '0x0478' },
  { suiteId: 0x0578, hex: '0x0578' },
] as const)('rewrap of an ESDK-JS message with an empty context key ($hex)', ({ suiteId }) => {
  const sealed = async (pt: Uint8Array) => {
    const msg = await esdkEncrypt([esdkAesKeyring()], pt, { context, suiteId, frameLength: FRAME });
    expect(contextOf(msg)).toMatchObject(context);
    return msg;
  };

  it('adds a raw AES recipient; the context is kept as it is and ESDK-JS opens the result', async () => {
    const pt = randomBytes(2 * FRAME + 7);
    const msg = await sealed(pt);
    const out = await rewrapEnvelope(msg, { trust: [aes], add: [other] });
    expect(contextOf(out)).toMatchObject(context);
    for (const trust of [[aes], [other]]) {
      const o = await openEnvelope(out, { trust });
      expect(Buffer.from(o.plaintext).equals(pt)).toBe(true);
      expect(o.context).toMatchObject(context);
    }
    // The new EDK is bound to the context as the format serializes it: another ESDK opens it.
    expect((await esdkDecrypt([esdkOther], out)).plaintext.equals(pt)).toBe(true);
    // Unsigned, the kept EDK is ESDK-JS's own (its default order); signed, keyport wrapped it
    // again in the format's order.
    const kept = esdkAesKeyring(suiteId === 0x0578 ? true : undefined);
    expect((await esdkDecrypt([kept], out)).plaintext.equals(pt)).toBe(true);
  });

  it('adds a raw ECDH recipient (the context is in its KDF input), streamed', async () => {
    const pt = randomBytes(3 * FRAME);
    const msg = await sealed(pt);
    const out = await collect(rewrapStream(chunked(msg, 97), { trust: [aes], add: [toBob], remove: [aes] }));
    expect(contextOf(out)).toMatchObject(context);
    const o = await openEnvelope(out, { trust: [bob] });
    expect(Buffer.from(o.plaintext).equals(pt)).toBe(true);
    await expect(openEnvelope(out, { trust: [aes] })).rejects.toMatchObject({ code: 'InvalidCiphertext' });
  });
});

describe('keyport still refuses an empty key in a context it is given', () => {
  it.each([
    ['raw AES', aes],
    ['raw ECDH', toBob],
  ])('seal with %s: InvalidArgument', async (_name, recipient) => {
    await expect(sealEnvelope(randomBytes(10), { recipients: [recipient], context })).rejects.toMatchObject({
      code: 'InvalidArgument',
    });
    await expect(
      sealEnvelope(randomBytes(10), { recipients: [recipient], context, suite: 0x0578 }),
    ).rejects.toMatchObject({ code: 'InvalidArgument' });
  });

  it('a recipient asked to wrap directly, outside a rewrap, refuses it too', async () => {
    await expect(aes.wrap(randomBytes(32), context, {})).rejects.toMatchObject({ code: 'InvalidArgument' });
    await expect(toBob.wrap(randomBytes(32), context, {})).rejects.toMatchObject({ code: 'InvalidArgument' });
  });
});
