/**
 * RFC 7512: a PKCS#11 URI names the objects that match ALL its attributes. Besides token=, the
 * token is named by serial=, manufacturer= and model=, its slot by slot-id=, slot-description=
 * and slot-manufacturer=, the module by library-*. A URI naming another token's serial (two
 * tokens often share a label) is another token's key: it is refused, never served by this
 * token's key of the same label — data sealed for that token would otherwise be sealed under
 * this one's key. A URI whose attributes all match (as p11-kit and pkcs11-tool write them,
 * padding or not) works.
 */
import { endianness } from 'node:os';
import { Keyport } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { signal, uniqueName, useProvider } from './support.js';

const t = useProvider();
const o = () => ({ signal: signal() });

/** The module's own answers about the provider's token, slot and library, as RFC 7512 values. */
function identity() {
  const { p11 } = t.provider;
  const slot = p11
    .C_GetSlotList(true)
    .find((s) => p11.C_GetTokenInfo(s).label.trimEnd() === t.provider.tokenLabel) as Buffer;
  const token = p11.C_GetTokenInfo(slot);
  const slotInfo = p11.C_GetSlotInfo(slot);
  const library = p11.C_GetInfo();
  const slotId = endianness() === 'LE' ? slot.readBigUInt64LE() : slot.readBigUInt64BE();
  return {
    token: token.label,
    serial: token.serialNumber,
    manufacturer: token.manufacturerID,
    model: token.model,
    'slot-id': String(slotId),
    'slot-description': slotInfo.slotDescription,
    'slot-manufacturer': slotInfo.manufacturerID,
    'library-manufacturer': library.manufacturerID,
    'library-description': library.libraryDescription,
    'library-version': `${library.libraryVersion.major}.${library.libraryVersion.minor}`,
  };
}

const enc = (v: string) => encodeURIComponent(v);

describe('RFC 7512 attributes that name the token, slot or module', () => {
  it('a URI naming another serial, manufacturer, model, slot or library is InvalidArgument; nothing is sealed', async () => {
    const name = uniqueName('uri-identity');
    await t.provider.createKey({ name, spec: 'AES_256' }, o());
    const keyport = new Keyport({ providers: [t.provider] });
    const others: Array<[string, string]> = [
      ['serial', 'ffffffffffffffff'],
      ['manufacturer', 'Another vendor'],
      ['model', 'Another model'],
      ['slot-id', '4242'],
      ['slot-description', 'another slot'],
      ['slot-manufacturer', 'Another vendor'],
      ['library-manufacturer', 'OpenSC'],
      ['library-description', 'another module'],
      ['library-version', '9.9'],
    ];
    for (const [attribute, value] of others) {
      const uri = `pkcs11:${attribute}=${enc(value)};token=${enc(t.provider.tokenLabel)};object=${enc(name)}`;
      await expect(t.provider.encrypt({ uri }, Buffer.from('x'), {}, o()), attribute).rejects.toMatchObject({
        code: 'InvalidArgument',
        message: expect.stringContaining(`${attribute}=`),
      });
      await expect(keyport.encrypt(uri, Buffer.from('x')), attribute).rejects.toMatchObject({
        code: 'InvalidArgument',
      });
    }
  });

  it('a URI whose every attribute is this token, slot and module works, with or without the blank padding', async () => {
    const name = uniqueName('uri-identity-ok');
    const key = await t.provider.createKey({ name, spec: 'AES_256' }, o());
    const sealed = await t.provider.encrypt({ uri: key.uri }, Buffer.from('ours'), {}, o());
    const values = identity();
    for (const pad of [false, true]) {
      const path = Object.entries(values).map(
        ([attribute, value]) => `${attribute}=${enc(pad ? value : value.trimEnd())}`,
      );
      const uri = `pkcs11:${path.join(';')};object=${enc(name)};type=secret-key`;
      const opened = await t.provider.decrypt({ uri }, sealed.ciphertext, {}, o());
      expect(Buffer.from(opened.plaintext).toString()).toBe('ours');
    }
    // library-version "2" is "2.0": a version this module is not.
    const [major] = values['library-version'].split('.');
    const wrongVersion = `pkcs11:library-version=${Number(major) + 1};object=${enc(name)}`;
    await expect(t.provider.encrypt({ uri: wrongVersion }, Buffer.from('x'), {}, o())).rejects.toMatchObject({
      code: 'InvalidArgument',
    });
  });
});
