/**
 * What writers that keyport's lock does not reach (processes on other hosts sharing a network
 * HSM) can leave behind is refused, never one of two picked: two metadata objects of one
 * generation, two objects for one version. A createKey that another such writer raced is
 * refused with its own objects removed. The other writer is played here by objects created on
 * the same token through pkcs11js, at the moment such a writer would write them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Pkcs11Provider } from '../src/index.js';
import { findObjects, versionId } from '../src/objects.js';
import { type Handle, P } from '../src/p11.js';
import { openProvider, signal, uniqueName, withWrappedP11 } from './support.js';

let provider: Pkcs11Provider;
beforeAll(async () => {
  provider = await openProvider({ keyCacheMs: 0 });
});
afterAll(() => provider.close());

const o = () => ({ signal: signal() });

/** A keyport metadata object of generation `seq` for an AES_256 key `name`, as another writer makes it. */
function foreignMetadata(session: Handle, name: string, seq: number): Handle {
  const now = new Date().toISOString();
  const meta = {
    format: 1,
    seq,
    spec: 'AES_256',
    usage: 'encrypt_decrypt',
    labels: {},
    createdAt: now,
    origin: 'provider',
    versions: { '1': { createdAt: now } },
  };
  return provider.p11.C_CreateObject(session, [
    { type: P.CKA_CLASS, value: P.CKO_DATA },
    { type: P.CKA_LABEL, value: name },
    { type: P.CKA_APPLICATION, value: 'keyport' },
    { type: P.CKA_TOKEN, value: true },
    { type: P.CKA_PRIVATE, value: true },
    { type: P.CKA_VALUE, value: Buffer.from(JSON.stringify(meta)) },
  ]);
}

const onToken = <T>(fn: (session: Handle) => T): Promise<T> =>
  provider.pool.run(signal(), async (session) => fn(session));

function labelled(name: string, cls: number): Promise<number> {
  return onToken(
    (session) =>
      findObjects(
        provider.p11,
        session,
        [
          { type: P.CKA_LABEL, value: name },
          { type: P.CKA_CLASS, value: cls },
        ],
        1000,
      ).length,
  );
}

describe('a key two unlocked writers wrote is refused, not guessed', () => {
  it('two metadata objects of one generation: KeyStateConflict saying what to do', async () => {
    const name = uniqueName('two-meta');
    const info = await provider.createKey({ name, spec: 'AES_256' }, o());
    await onToken((session) => foreignMetadata(session, name, 1));
    const conflict = {
      code: 'KeyStateConflict',
      retryable: false,
      message: expect.stringMatching(/two keyport metadata objects under this label.*destroy the others/),
    };
    await expect(provider.describeKey({ uri: info.uri }, o())).rejects.toMatchObject(conflict);
    await expect(provider.encrypt({ uri: info.uri }, Buffer.from('x'), {}, o())).rejects.toMatchObject(
      conflict,
    );
    // Refused, not repaired: both objects are still there for the operator to judge.
    expect(await labelled(name, P.CKO_DATA)).toBe(2);
  });

  it('two objects for one version: KeyStateConflict naming the version', async () => {
    const name = uniqueName('two-v1');
    const info = await provider.createKey({ name, spec: 'AES_256' }, o());
    await onToken((session) =>
      provider.p11.C_GenerateKey(session, { mechanism: P.CKM_AES_KEY_GEN }, [
        { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
        { type: P.CKA_KEY_TYPE, value: P.CKK_AES },
        { type: P.CKA_VALUE_LEN, value: 32 },
        { type: P.CKA_TOKEN, value: true },
        { type: P.CKA_PRIVATE, value: true },
        { type: P.CKA_LABEL, value: name },
        { type: P.CKA_ID, value: versionId(1) },
        { type: P.CKA_ENCRYPT, value: true },
        { type: P.CKA_DECRYPT, value: true },
      ]),
    );
    await expect(provider.describeKey({ uri: info.uri }, o())).rejects.toMatchObject({
      code: 'KeyStateConflict',
      message: expect.stringContaining('two objects for version 1 under this label'),
    });
  });

  it('an older generation left by an interrupted write is read past and removed by the next writer, not by readers', async () => {
    const name = uniqueName('leftover');
    const info = await provider.createKey({ name, spec: 'AES_256' }, o());
    await onToken((session) => foreignMetadata(session, name, 0));
    // A reader that destroyed it could pull it from under a writer in another process.
    await provider.describeKey({ uri: info.uri }, o());
    expect(await labelled(name, P.CKO_DATA)).toBe(2);
    await provider.rotateKey({ uri: info.uri }, o());
    expect(await labelled(name, P.CKO_DATA)).toBe(1);
  });
});

describe('createKey raced by a writer the lock does not reach', () => {
  // The other writer's metadata appears after this call's generation (before its metadata is
  // written), or right after its metadata write: both are caught, and this call's objects removed.
  const moments = [
    ['after the generation', 'C_GenerateKeyAsync'],
    ['after the metadata write', 'C_CreateObject'],
  ] as const;
  for (const [moment, fn] of moments) {
    it(`fails with AlreadyExists when the other's metadata appears ${moment}`, async () => {
      const name = uniqueName('raced');
      let injected = false;
      await withWrappedP11(
        provider,
        [fn],
        (_, original) =>
          function (this: unknown, ...args: unknown[]) {
            const result = original.apply(this, args);
            if (injected) return result;
            injected = true;
            const session = args[0] as Handle;
            if (fn === 'C_CreateObject') {
              foreignMetadata(session, name, 1);
              return result;
            }
            return (result as Promise<unknown>).then((r) => {
              foreignMetadata(session, name, 1);
              return r;
            });
          },
        () =>
          expect(provider.createKey({ name, spec: 'AES_256' }, o())).rejects.toMatchObject({
            code: 'AlreadyExists',
            retryable: false,
            message: expect.stringContaining("this call's objects were removed"),
          }),
      );
      expect(injected).toBe(true);
      // Only the other writer's object is left: no secret key, no metadata of this call.
      expect(await labelled(name, P.CKO_DATA)).toBe(1);
      expect(await labelled(name, P.CKO_SECRET_KEY)).toBe(0);
    });
  }
});
