/**
 * Another user of the token (anyone with the PIN, or a careless operator with pkcs11-tool) can
 * create a secret key under a keyport key's CKA_LABEL with a CKA_ID that reads as a newer
 * version — here one made from bytes known outside the token, extractable and not sensitive.
 * keyport's versions are the ones its metadata records: such an object is never the primary
 * (encrypt would seal new data under material that exists in the clear elsewhere), never opens
 * a ciphertext that names it, and never counts as the live version that keeps the last real one
 * from being destroyed.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { encryptAesGcm } from '../src/mechanisms.js';
import { APPLICATION, versionId } from '../src/objects.js';
import { type Handle, P } from '../src/p11.js';
import { signal, uniqueName, useProvider } from './support.js';

const t = useProvider({ keyCacheMs: 0 });
const { onToken } = t;

const o = () => ({ signal: signal() });

/** An AES key with known bytes under `name`, claiming `version`, as another token user makes it. */
function plant(name: string, version: number): Promise<Handle> {
  return onToken((session) =>
    t.provider.p11.C_CreateObject(session, [
      { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
      { type: P.CKA_KEY_TYPE, value: P.CKK_AES },
      { type: P.CKA_TOKEN, value: true },
      { type: P.CKA_PRIVATE, value: true },
      { type: P.CKA_LABEL, value: name },
      { type: P.CKA_ID, value: versionId(version) },
      { type: P.CKA_VALUE, value: randomBytes(32) },
      { type: P.CKA_SENSITIVE, value: false },
      { type: P.CKA_EXTRACTABLE, value: true },
      { type: P.CKA_ENCRYPT, value: true },
      { type: P.CKA_DECRYPT, value: true },
    ]),
  );
}

describe('a key version object the metadata does not record is not a version', () => {
  it('encrypt keeps using the recorded primary; describe does not report the planted one', async () => {
    const name = uniqueName('planted-primary');
    const key = await t.provider.createKey({ name, spec: 'AES_256' }, o());
    await plant(name, 99);
    const sealed = await t.provider.encrypt({ uri: key.uri }, Buffer.from('secret'), {}, o());
    expect(sealed.keyVersion).toBe('1');
    const info = await t.provider.describeKey({ uri: key.uri }, o());
    expect(info.primaryVersion).toBe('1');
    expect(info.state).toBe('enabled');
    const opened = await t.provider.decrypt({ uri: key.uri }, sealed.ciphertext, {}, o());
    expect(Buffer.from(opened.plaintext).toString()).toBe('secret');
    // A rotation still makes a new version, numbered past the planted object's ID.
    const rotated = await t.provider.rotateKey({ uri: key.uri }, o());
    expect(rotated.primaryVersion).toBe('100');
    expect((await t.provider.encrypt({ uri: key.uri }, Buffer.from('x'), {}, o())).keyVersion).toBe('100');
  });

  it('a ciphertext sealed by the planted object, naming its version, is InvalidCiphertext', async () => {
    const name = uniqueName('planted-decrypt');
    const key = await t.provider.createKey({ name, spec: 'AES_256' }, o());
    const planted = await plant(name, 7);
    const forged = await onToken((session) =>
      encryptAesGcm(
        t.provider.p11,
        session,
        planted,
        7,
        Buffer.from('chosen by someone else'),
        Buffer.alloc(0),
      ),
    );
    await expect(t.provider.decrypt({ uri: key.uri }, forged.ciphertext, {}, o())).rejects.toMatchObject({
      code: 'InvalidCiphertext',
    });
    await expect(
      t.provider.encrypt({ uri: key.uri, version: '7' }, Buffer.from('x'), {}, o()),
    ).rejects.toMatchObject({ code: 'NotFound' });
  });

  it('the last recorded live version cannot be destroyed because a planted object looks alive', async () => {
    const name = uniqueName('planted-last');
    const key = await t.provider.createKey({ name, spec: 'AES_256' }, o());
    await plant(name, 5);
    await expect(t.provider.destroyKeyVersion({ uri: key.uri, version: '1' }, o())).rejects.toMatchObject({
      code: 'KeyStateConflict',
    });
    // Nor is the planted object keyport's to destroy, or to record as a destroyed version.
    await expect(t.provider.destroyKeyVersion({ uri: key.uri, version: '5' }, o())).rejects.toMatchObject({
      code: 'NotFound',
    });
    expect((await t.provider.describeKey({ uri: key.uri }, o())).versions?.map((v) => v.version)).toEqual([
      '1',
    ]);
    const sealed = await t.provider.encrypt({ uri: key.uri }, Buffer.from('still here'), {}, o());
    expect(sealed.keyVersion).toBe('1');
  });

  it("a newer metadata object with malformed entries is not the key's metadata (no TypeError on every call)", async () => {
    const name = uniqueName('planted-meta');
    const key = await t.provider.createKey({ name, spec: 'AES_256' }, o());
    for (const damage of [
      { versions: { '1': null } },
      { versions: { x: { createdAt: 'now' } } },
      { labels: 5 },
    ]) {
      const planted = await onToken((session) =>
        t.provider.p11.C_CreateObject(session, [
          { type: P.CKA_CLASS, value: P.CKO_DATA },
          { type: P.CKA_TOKEN, value: true },
          { type: P.CKA_PRIVATE, value: true },
          { type: P.CKA_LABEL, value: name },
          { type: P.CKA_APPLICATION, value: APPLICATION },
          {
            type: P.CKA_VALUE,
            value: Buffer.from(
              JSON.stringify({
                format: 1,
                seq: 1000,
                spec: 'AES_256',
                usage: 'encrypt_decrypt',
                labels: {},
                origin: 'provider',
                versions: { '1': { createdAt: new Date().toISOString() } },
                ...damage,
              }),
            ),
          },
        ]),
      );
      const info = await t.provider.describeKey({ uri: key.uri }, o());
      expect(info.primaryVersion, JSON.stringify(damage)).toBe('1');
      const sealed = await t.provider.encrypt({ uri: key.uri }, Buffer.from('x'), {}, o());
      expect(sealed.keyVersion).toBe('1');
      await onToken((session) => t.provider.p11.C_DestroyObject(session, planted));
    }
  });
});
