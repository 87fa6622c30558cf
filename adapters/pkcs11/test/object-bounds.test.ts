/**
 * Anyone with the PIN (another application, or someone planting objects) can put any number of
 * objects under a key's CKA_LABEL. keyport's searches read at most what it ever makes for one key
 * — a few metadata objects, MAX_KEY_VERSIONS objects of a key class — and refuse more with a
 * typed error naming the label, instead of allocating and holding the session without limit. A
 * search that only needs to know whether a label is taken reads one object. A listing goes on
 * past such a key (listed as unmodeled), and rotation never makes a key too big to read.
 */
import { randomBytes } from 'node:crypto';
import { createKeyport, type UnmodeledKey } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import type { Pkcs11Provider } from '../src/index.js';
import { APPLICATION, versionId } from '../src/objects.js';
import { P } from '../src/p11.js';
import { signal, uniqueName, useProvider, withWrappedP11 } from './support.js';

/** key-store.ts MAX_METADATA_OBJECTS and MAX_KEY_VERSIONS, as documented in the README. */
const MAX_METADATA_OBJECTS = 16;
const MAX_KEY_VERSIONS = 1024;

const t = useProvider({ keyCacheMs: 0 });
const { onToken } = t;

const o = () => ({ signal: signal() });

/**
 * `count` session objects under `name` (cheaper than token objects; they live while the pool's
 * session that made them stays open, and every refusal below keeps its session).
 */
function plant(
  name: string,
  count: number,
  template: (i: number) => Parameters<Pkcs11Provider['p11']['C_CreateObject']>[1],
) {
  return onToken((session) => {
    for (let i = 0; i < count; i++)
      t.provider.p11.C_CreateObject(session, [
        { type: P.CKA_TOKEN, value: false },
        { type: P.CKA_LABEL, value: name },
        ...template(i),
      ]);
  });
}

const junkMetadata = () => [
  { type: P.CKA_CLASS, value: P.CKO_DATA },
  { type: P.CKA_PRIVATE, value: true },
  { type: P.CKA_APPLICATION, value: APPLICATION },
  { type: P.CKA_VALUE, value: Buffer.from('not keyport metadata') },
];

const secretKey = (id: Buffer) => [
  { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
  { type: P.CKA_KEY_TYPE, value: P.CKK_AES },
  { type: P.CKA_PRIVATE, value: true },
  { type: P.CKA_ID, value: id },
  { type: P.CKA_VALUE, value: randomBytes(32) },
];

/** How many object handles C_FindObjects hands back while `fn` runs. */
async function handlesRead(fn: () => Promise<unknown>): Promise<number> {
  let read = 0;
  await withWrappedP11(
    t.provider,
    ['C_FindObjects'],
    (_name, original) =>
      function (this: unknown, ...args: unknown[]) {
        const page = original.apply(this, args);
        read += Array.isArray(page) ? page.length : page === null ? 0 : 1;
        return page;
      },
    fn,
  );
  return read;
}

describe('searches under a key label are bounded', () => {
  it('more metadata objects under a label than keyport makes: describe and encrypt are KeyStateConflict naming the label', async () => {
    const name = uniqueName('many-meta');
    const key = await t.provider.createKey({ name, spec: 'AES_256' }, o());
    await plant(name, MAX_METADATA_OBJECTS, junkMetadata);
    const read = await handlesRead(() =>
      expect(t.provider.describeKey({ uri: key.uri }, o())).rejects.toMatchObject({
        code: 'KeyStateConflict',
        keyUri: key.uri,
        retryable: false,
        message: expect.stringContaining(`"${name}"`),
      }),
    );
    expect(read).toBe(MAX_METADATA_OBJECTS + 1);
    await expect(t.provider.encrypt({ uri: key.uri }, Buffer.from('x'), {}, o())).rejects.toMatchObject({
      code: 'KeyStateConflict',
    });
  });

  it('more secret key objects under a label than versions keyport keeps: encrypt is KeyStateConflict, read no further', async () => {
    const name = uniqueName('many-secret');
    const key = await t.provider.createKey({ name, spec: 'AES_256' }, o());
    // Not versions at all (no keyport CKA_ID): still under the label, still searched.
    await plant(name, MAX_KEY_VERSIONS + 1, () => secretKey(Buffer.from('someone else')));
    const read = await handlesRead(() =>
      expect(t.provider.encrypt({ uri: key.uri }, Buffer.from('x'), {}, o())).rejects.toMatchObject({
        code: 'KeyStateConflict',
        keyUri: key.uri,
        message: expect.stringContaining(`more than ${MAX_KEY_VERSIONS + 1} secret key objects`),
      }),
    );
    // The metadata object, then the bound plus one secret key objects; never all of them.
    expect(read).toBe(1 + MAX_KEY_VERSIONS + 2);
  });

  it('createKey on a label carrying many objects reads one of them before AlreadyExists', async () => {
    const name = uniqueName('taken');
    await plant(name, 200, junkMetadata);
    const read = await handlesRead(() =>
      expect(t.provider.createKey({ name, spec: 'AES_256' }, o())).rejects.toMatchObject({
        code: 'AlreadyExists',
      }),
    );
    expect(read).toBe(1);
  });

  it('a rotation that would pass MAX_KEY_VERSIONS is refused; the key stays readable', async () => {
    const name = uniqueName('many-versions');
    const key = await t.provider.createKey({ name, spec: 'AES_256' }, o());
    // Versions 2..MAX (unrecorded, so never used) fill the key to the bound.
    await plant(name, MAX_KEY_VERSIONS - 1, (i) => secretKey(versionId(i + 2)));
    await expect(t.provider.rotateKey({ uri: key.uri }, o())).rejects.toMatchObject({
      code: 'KeyStateConflict',
      message: expect.stringContaining('destroy old versions'),
    });
    const sealed = await t.provider.encrypt({ uri: key.uri }, Buffer.from('x'), {}, o());
    expect(sealed.keyVersion).toBe('1');
  });

  it('a listing goes on past a key keyport cannot read, reporting it as unmodeled', async () => {
    const keyport = createKeyport({ providers: [t.provider] });
    const bad = await t.provider.createKey({ name: uniqueName('list-bad'), spec: 'AES_256' }, o());
    const good = await t.provider.createKey({ name: uniqueName('list-good'), spec: 'AES_256' }, o());
    await plant(t.provider.target({ uri: bad.uri }).name, MAX_METADATA_OBJECTS, junkMetadata);
    const listed: string[] = [];
    const unmodeled: UnmodeledKey[] = [];
    for await (const k of keyport.listKeys('pkcs11', { onUnmodeledKey: (u) => unmodeled.push(u) }))
      listed.push(k.uri);
    expect(listed).toContain(good.uri);
    expect(listed).not.toContain(bad.uri);
    // (The other keys this file made unreadable are listed so too.)
    expect(unmodeled).toContainEqual({
      uri: bad.uri,
      unmodeled: expect.stringContaining('keyport metadata objects'),
    });
  });
});
