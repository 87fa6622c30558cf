/**
 * A message whose encryption context has an empty key (ESDK-JS, Python and Go seal `{ "": value }`)
 * rewrapped to a KMS key and opened through it: the KMS calls (Encrypt for the new EDK, Decrypt
 * on open) carry the message's context as it is, through core's Keyport and the real
 * @keyport/local provider (core refuses an empty key only in a context a caller gives it). The
 * raw recipients' case is in rewrap-empty-context-key.test.ts; the aws-kms case, with ESDK-JS's
 * own KmsKeyringNode on both emulators, in adapters/aws-kms/test/esdk-interop.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openEnvelope, rewrapEnvelope, rewrapStream } from '../src/index.js';
import { counting } from './helpers/counting.js';
import { esdkEncrypt, stopEsdk } from './helpers/esdk.js';
import { aes, aesOther, chunked, collect, esdkAesKeyring } from './helpers/keys.js';
import { type LocalKms, localKms } from './helpers/local-kms.js';

const FRAME = 256;
const context = { '': 'empty-key value', Tenant: 't-42', app: 'orders' };

let kms: LocalKms;
beforeAll(async () => {
  kms = await localKms(1);
});
afterAll(async () => {
  await kms?.close();
  stopEsdk();
});

describe.each([
  { suiteId: 0x0478, hex: '0x0478' },
  { suiteId: 0x0578, hex: '0x0578' },
] as const)('an ESDK-JS message with an empty context key and a KMS key ($hex)', ({ suiteId }) => {
  it('rewraps to the KMS key (whole and streamed), and opens through it alone', async () => {
    const uri = kms.uris[0] as string;
    const pt = randomBytes(2 * FRAME + 7);
    const msg = await esdkEncrypt([esdkAesKeyring()], pt, { context, suiteId, frameLength: FRAME });

    const calls = counting(kms.keys);
    const whole = await rewrapEnvelope(msg, { trust: [aes], add: [uri], remove: [aes], keys: calls.keys });
    const streamed = await collect(
      rewrapStream(chunked(msg, 97), { trust: [aes], add: [uri, aesOther], remove: [aes], keys: calls.keys }),
    );
    expect(calls.calls).toEqual({ encrypt: 2 });

    for (const moved of [whole, streamed]) {
      // The old raw key no longer opens it: the KMS EDK is what is opened.
      await expect(openEnvelope(moved, { trust: [aes] })).rejects.toMatchObject({
        name: 'DataKeyUnavailableError',
      });
      const o = await openEnvelope(moved, { trust: [uri], keys: calls.keys });
      expect(Buffer.from(o.plaintext).equals(pt)).toBe(true);
      expect(o.context).toMatchObject(context);
    }
    expect(calls.calls).toEqual({ encrypt: 2, decrypt: 2 });
  });

  it('a context given by a caller still refuses an empty key', async () => {
    await expect(
      kms.keys.encrypt(kms.uris[0] as string, randomBytes(32), { context: { '': 'x' } }),
    ).rejects.toMatchObject({ code: 'InvalidArgument', message: expect.stringMatching(/must not be empty/) });
  });
});
