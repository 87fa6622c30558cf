/**
 * Key names: every name createKey accepts can be addressed afterwards by its URI (core's
 * `local://<path>#<name>` grammar, through the Keyport client), and every name that grammar
 * cannot address is refused as InvalidArgument before anything is written to the keystore.
 */
import { readFile } from 'node:fs/promises';
import { Keyport, parseKeyUri } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { bytes, collect, expectCode, newKeystore, o, text } from './helpers.js';

describe('key names', () => {
  it('a key of any accepted name is addressable by its URI: describe, encrypt, decrypt, list', async () => {
    const { kp } = await newKeystore();
    const keyport = new Keyport({ providers: [kp] });
    // `.` and `..` sit in the URI's fragment (`#..`), not in a path segment, so no URL resolver
    // folds them away: core's local grammar takes them like any other name.
    const names = ['.', '..', '...', '.hidden', 'a..b', '-', '_', 'A-Z_0.9', 'x'.repeat(256)];
    for (const name of names) {
      const key = await kp.createKey({ name, spec: 'AES_256' }, o);
      expect(parseKeyUri(key.uri)).toMatchObject({ scheme: 'local', name });
      expect(await keyport.describeKey(key.uri)).toEqual(key);
      const { ciphertext } = await keyport.encrypt(key.uri, bytes(name));
      expect(text((await keyport.decrypt(key.uri, ciphertext)).plaintext)).toBe(name);
    }
    const listed = await collect(kp.listKeys(o));
    expect(listed.map((k) => parseKeyUri(k.uri)).map((u) => (u.scheme === 'local' ? u.name : ''))).toEqual(
      names,
    );
  });

  it('a name the URI grammar cannot address is InvalidArgument and the keystore is not written', async () => {
    const { kp, path } = await newKeystore();
    await kp.createKey({ name: 'k', spec: 'AES_256' }, o);
    const before = await readFile(path);
    const refused = [
      '',
      'a/b',
      'a\\b',
      'a%2Fb',
      '%',
      'a b',
      ' a',
      'a\tb',
      'a\nb',
      'a\u0000b',
      'a\u007f',
      'é',
      'a#b',
      'a?b',
      'a:b',
      'x'.repeat(257),
    ];
    for (const name of refused) {
      await expectCode(kp.createKey({ name, spec: 'AES_256' }, o), 'InvalidArgument');
    }
    expect((await readFile(path)).equals(before)).toBe(true);
    expect((await collect(kp.listKeys(o))).length).toBe(1);
  });
});
