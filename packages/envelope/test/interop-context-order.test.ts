/**
 * Context order and ESDK-JS's raw AES keyring. The raw AES keyring authenticates the wrapped
 * data key with the serialized context as AAD; the spec sorts the pairs by the keys' UTF-8
 * bytes, but ESDK-JS 5.0.2's RawAesKeyringNode sorts them with `localeCompare` unless it is
 * built with `utf8Sorting: true`. For contexts such as `{ Tenant, app }` the two orders differ,
 * and before keyport tried the legacy order too, ESDK-JS messages sealed with default settings
 * did not open here.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { serializeContext, serializeContextEsdkJsLegacy } from '../src/context-codec.js';
import { openEnvelope, sealEnvelope } from '../src/index.js';
import { esdkDecrypt, esdkEncrypt, stopEsdk } from './helpers/esdk.js';
import { aes, esdkAesKeyring } from './helpers/keys.js';

afterAll(stopEsdk);

const contexts = {
  'mixed-case ASCII keys': { Tenant: 't-42', app: 'orders' },
  'non-ASCII keys': { ｱ: 'half-width katakana', '😀': 'astral', é: 'latin', z: 'ascii' },
};

describe('context order against ESDK-JS raw AES keyrings', () => {
  it('the two orders really differ for these contexts (the test would prove nothing otherwise)', () => {
    for (const context of Object.values(contexts)) {
      const legacy = serializeContextEsdkJsLegacy(context);
      expect(legacy).toBeDefined();
      expect(Buffer.from(legacy as Uint8Array).equals(Buffer.from(serializeContext(context)))).toBe(false);
    }
    expect(serializeContextEsdkJsLegacy({ a: '1', b: '2' })).toBeUndefined();
  });

  for (const [name, context] of Object.entries(contexts)) {
    for (const suiteId of [0x0478, 0x0578] as const) {
      it(`${name}, 0x0${suiteId.toString(16)}: ESDK-JS (default and utf8Sorting) -> keyport`, async () => {
        const pt = randomBytes(300);
        for (const sorting of [undefined, true]) {
          const msg = await esdkEncrypt([esdkAesKeyring(sorting)], pt, {
            context,
            suiteId,
            frameLength: 128,
          });
          const out = await openEnvelope(msg, { trust: [aes], requiredContext: context });
          expect(Buffer.from(out.plaintext).equals(pt), `utf8Sorting ${sorting}`).toBe(true);
        }
      });

      it(`${name}, 0x0${suiteId.toString(16)}: keyport -> ESDK-JS with utf8Sorting: true`, async () => {
        const pt = randomBytes(300);
        const msg = await sealEnvelope(pt, { recipients: [aes], context, suite: suiteId, frameLength: 128 });
        const out = await esdkDecrypt([esdkAesKeyring(true)], msg);
        expect(out.plaintext.equals(pt)).toBe(true);
      });
    }
  }

  it('a wrong key still fails after both orders were tried', async () => {
    const context = contexts['mixed-case ASCII keys'];
    const msg = await esdkEncrypt(
      [{ ...esdkAesKeyring(), key: randomBytes(32).toString('base64') }],
      randomBytes(10),
      { context },
    );
    await expect(openEnvelope(msg, { trust: [aes] })).rejects.toMatchObject({ code: 'InvalidCiphertext' });
  });
});
