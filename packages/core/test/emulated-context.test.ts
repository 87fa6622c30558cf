import { constants, generateKeyPairSync, privateDecrypt, publicEncrypt } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { openBoundToContext, parseBoundBody, sealBoundToContext } from '../src/index.js';

const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const oaep = { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' };
const wrap = async (k: Uint8Array) => new Uint8Array(publicEncrypt({ key: publicKey, ...oaep }, k));
const unwrap = async (w: Uint8Array) => new Uint8Array(privateDecrypt({ key: privateKey, ...oaep }, w));

describe('context bound by keyport for keys without AAD', () => {
  it('opens with the same context in any order, and fails on any other context', async () => {
    const plaintext = new Uint8Array(100_000).fill(3); // far beyond what RSA-OAEP carries
    const body = await sealBoundToContext(plaintext, { a: '1', b: '2' }, wrap);
    expect(parseBoundBody(body).wrappedKey).toHaveLength(256);
    expect(await openBoundToContext(body, { b: '2', a: '1' }, unwrap)).toEqual(plaintext);
    for (const wrong of [{ a: '1' }, { a: '1', b: '3' }, undefined]) {
      await expect(openBoundToContext(body, wrong, unwrap)).rejects.toMatchObject({
        code: 'InvalidCiphertext',
      });
    }
  });

  it('refuses truncated bodies and a wrong content key length before any AES work', async () => {
    const body = await sealBoundToContext(new Uint8Array(4), undefined, wrap);
    for (const cut of [0, 1, 2, 200, body.length - 1]) {
      await expect(openBoundToContext(body.subarray(0, cut), undefined, unwrap)).rejects.toMatchObject({
        code: 'InvalidCiphertext',
      });
    }
    await expect(openBoundToContext(body, undefined, async () => new Uint8Array(16))).rejects.toMatchObject({
      code: 'InvalidCiphertext',
    });
  });

  it("zeroes the provider's content key bytes once used, whether the body opens or not", async () => {
    const body = await sealBoundToContext(new Uint8Array(40).fill(9), { a: '1' }, wrap);
    const handed: Uint8Array[] = [];
    const keeping = async (w: Uint8Array) => {
      const k = await unwrap(w);
      handed.push(k);
      return k;
    };
    expect(await openBoundToContext(body, { a: '1' }, keeping)).toEqual(new Uint8Array(40).fill(9));
    await expect(openBoundToContext(body, { a: '2' }, keeping)).rejects.toMatchObject({
      code: 'InvalidCiphertext',
    });
    expect(handed).toHaveLength(2);
    for (const k of handed) expect(k).toEqual(new Uint8Array(32));
  });
});
