/**
 * Rows of the README's error table no other test pinned: a manifest larger than a read accepts,
 * a transit key name taken when announcing it, and transit refusing material that does not
 * unwrap. Against SoftHSM2, a local keystore and OpenBao, as a user runs them.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Keyport } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { checkManifest, type HsmKeyExporter, importHsmKey, readManifest } from '../src/index.js';
import {
  countingWraps,
  openLocal,
  transitProvider,
  transitUri,
  uniqueName,
  useHsmKeyport,
} from './support.js';

describe('README errors: the manifest', () => {
  const t = useHsmKeyport(async (dir) => [await openLocal(dir)]);

  it('a manifest larger than 16 MiB is Integrity before anything: nothing generated or wrapped, the target pending', async () => {
    const path = join(t.dir, 'large.json');
    // Valid JSON, a manifest but for its size: only the size refuses it.
    const body = '{"format":"keyport-byok-manifest/1","pairings":[]}';
    await writeFile(path, body + ' '.repeat(16 * 1024 * 1024 + 1 - body.length));
    await expect(readManifest(path)).rejects.toMatchObject({ code: 'Integrity' });
    await expect(checkManifest(path)).rejects.toMatchObject({ code: 'Integrity' });
    const uri = (
      await t.keyport.createKey('local', { name: uniqueName('t'), spec: 'AES_256', external: true })
    ).uri;
    const { exporter, wraps } = countingWraps(t.hsm);
    const name = uniqueName('root');
    await expect(
      importHsmKey({
        keyport: t.keyport,
        hsm: exporter,
        hsmKey: { create: { name } },
        target: { uri },
        manifestPath: path,
      }),
    ).rejects.toMatchObject({ code: 'Integrity', provider: 'byok' });
    expect(wraps()).toBe(0);
    expect((await t.keyport.describeKey(uri)).state).toBe('pending_import');
    const made: string[] = [];
    for await (const k of t.keyport.listKeys('pkcs11')) if (k.uri.includes(name)) made.push(k.uri);
    expect(made).toEqual([]);
  });
});

describe('README errors: transit', () => {
  const t = useHsmKeyport(() => [transitProvider()]);

  it('a transit key name taken when announcing it is AlreadyExists, before importHsmKey', async () => {
    const uri = transitUri(uniqueName('taken'));
    await t.keyport.createKey('hcvault', { name: uri, spec: 'AES_256' });
    await expect(
      t.keyport.createKey('hcvault', { name: uri, spec: 'AES_256', external: true }),
    ).rejects.toMatchObject({ code: 'AlreadyExists' });
  });

  for (const [part, at] of [
    ['its RSA-OAEP part', (_: Uint8Array) => 10],
    ['its AES-KWP part', (w: Uint8Array) => w.length - 1],
  ] as const) {
    it(`material that does not unwrap (${part} changed) is InvalidCiphertext at the import: no key on the server, no pending entry`, async () => {
      const uri = transitUri(uniqueName('garbled'));
      await t.keyport.createKey('hcvault', { name: uri, spec: 'AES_256', external: true });
      // The HSM's wrap with one byte changed: transit's OAEP decryption fails, or its AES-KWP
      // unwrap ("kwp: unwrap failed integrity check").
      const garbling: HsmKeyExporter = {
        scheme: t.hsm.scheme,
        oaepHashes: t.hsm.oaepHashes,
        wrapKeyForExport: async (ref, options, o) => {
          const wrapped = await t.hsm.wrapKeyForExport(ref, options, o);
          const i = at(wrapped);
          wrapped[i] = (wrapped[i] as number) ^ 1;
          return wrapped;
        },
      };
      const manifestPath = join(t.dir, `${uniqueName('m')}.json`);
      await expect(
        importHsmKey({
          keyport: t.keyport,
          hsm: garbling,
          hsmKey: { create: { name: uniqueName('root') } },
          target: { uri },
          manifestPath,
        }),
      ).rejects.toMatchObject({ code: 'InvalidCiphertext' });
      expect((await readManifest(manifestPath)).pending).toBeUndefined();
      // Transit made no key of it: a fresh provider (nothing announced) does not find one.
      const fresh = new Keyport({ providers: [transitProvider()] });
      try {
        await expect(fresh.describeKey(uri)).rejects.toMatchObject({ code: 'NotFound' });
      } finally {
        await fresh.close();
      }
    });
  }
});
