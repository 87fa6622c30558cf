/**
 * A manifest written by someone else, two imports into one target at once, parameters that run
 * out while the import waits: each either refused (typed, the manifest as it was, nothing
 * wrapped) or serialised so the target takes one HSM key and the manifest records one pairing.
 */
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KeyportError } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import {
  type ByokManifest,
  importHsmKey,
  MANIFEST_FORMAT,
  readManifest,
  recordPairing,
} from '../src/index.js';
import {
  countingWraps,
  localKms,
  openLocal,
  samplePairing,
  transitProvider,
  transitUri,
  uniqueName,
  useHsmKeyport,
} from './support.js';

describe('importHsmKey with a manifest someone else wrote', () => {
  const t = useHsmKeyport(async (dir) => [await openLocal(dir), localKms(), transitProvider()]);

  const pendingLocal = async () =>
    (await t.keyport.createKey('local', { name: uniqueName('t'), spec: 'AES_256', external: true })).uri;
  const exportable = async (hint: string) =>
    t.keyport.createKey('pkcs11', { name: uniqueName(hint), spec: 'AES_256', exportable: true } as never);

  /** A pending entry for `targetUri` that calls the key at `hsmUri` by the name `label`. */
  const forged = (hsmUri: string, label: string, targetUri: string): ByokManifest => ({
    format: MANIFEST_FORMAT,
    pairings: [],
    pending: [
      {
        hsm: { uri: hsmUri, label, id: '6b70763100000001', version: '1' },
        target: { uri: targetUri, scheme: 'local', spec: 'AES_256', wrappingAlgorithm: 'RSAES_OAEP_SHA_1' },
        startedAt: new Date().toISOString(),
      },
    ],
  });

  it('a pending entry that gives another HSM key the name being created does not get that key imported', async () => {
    // Before: the entry's label matched hsmKey.create.name, so the run took the entry's URI and
    // wrapped and imported that key (here a production root) instead of generating one.
    const manifestPath = join(t.dir, 'forged-pending.json');
    const uri = await pendingLocal();
    const root = await exportable('prod-root');
    const name = uniqueName('fresh');
    await writeFile(manifestPath, JSON.stringify(forged(root.uri, name, uri)));
    const made = await importHsmKey({
      keyport: t.keyport,
      hsm: t.hsm,
      hsmKey: { create: { name } },
      target: { uri },
      manifestPath,
    });
    expect(made.hsm.uri).not.toBe(root.uri);
    expect(made.hsm.label).toBe(name);
    expect((await readManifest(manifestPath)).pairings).toEqual([made]);
  });

  it('a pending entry for a target that holds material is not recorded as its pairing unless this manifest generated that key for it', async () => {
    // The target holds key A's material (imported and recorded elsewhere).
    const uri = await pendingLocal();
    const a = await importHsmKey({
      keyport: t.keyport,
      hsm: t.hsm,
      hsmKey: { uri: (await exportable('a')).uri },
      target: { uri },
      manifestPath: join(t.dir, 'elsewhere.json'),
    });
    const b = await exportable('b');
    const name = uniqueName('named');
    const manifestPath = join(t.dir, 'forged-finish.json');
    const m = forged(b.uri, name, uri);
    await writeFile(manifestPath, JSON.stringify(m));
    // Before: the run recorded (and returned) the pairing of the target with B, which it does not hold.
    await expect(
      importHsmKey({
        keyport: t.keyport,
        hsm: t.hsm,
        hsmKey: { create: { name } },
        target: { uri },
        manifestPath,
      }),
    ).rejects.toMatchObject({ code: 'KeyStateConflict' });
    expect(JSON.parse(await readFile(manifestPath, 'utf8'))).toEqual(m);
    expect(a.hsm.uri).not.toBe(b.uri);
  });

  it('pending and generating entries of the wrong types are Integrity, not carried into a pairing', async () => {
    const path = join(t.dir, 'types.json');
    const good = forged('pkcs11:token=t;object=k', 'k', 'local:///x#y').pending?.[0];
    const intent = {
      hsm: { scheme: 'pkcs11', name: 'k', marker: '0'.repeat(32) },
      target: { uri: 'local:///x#y' },
      startedAt: new Date(0).toISOString(),
    };
    // Before: each was read as it was, and a rerun finishing the entry returned (and recorded)
    // a pairing imported "yesterday", with wrapping algorithm "NONE" or a numeric version.
    for (const [what, doc] of [
      ['startedAt not a date', { pending: [{ ...good, startedAt: 'yesterday' }] }],
      [
        'wrappingAlgorithm unknown',
        { pending: [{ ...good, target: { ...good?.target, wrappingAlgorithm: 'NONE' } }] },
      ],
      ['version a number', { pending: [{ ...good, hsm: { ...good?.hsm, version: 1 } }] }],
      ['label missing', { pending: [{ ...good, hsm: { uri: good?.hsm.uri } }] }],
      ['generating startedAt a number', { generating: [{ ...intent, startedAt: 0 }] }],
      [
        'generating marker not 32 hex digits',
        { generating: [{ ...intent, hsm: { ...intent.hsm, marker: '' } }] },
      ],
    ] as const) {
      const text = JSON.stringify({ format: MANIFEST_FORMAT, pairings: [], ...doc });
      await writeFile(path, text);
      await expect(readManifest(path), what).rejects.toMatchObject({ code: 'Integrity' });
      await expect(recordPairing(path, samplePairing(1)), what).rejects.toMatchObject({ code: 'Integrity' });
      expect(await readFile(path, 'utf8')).toBe(text);
    }
  });

  it('a manifest nested too deeply to be written again is Integrity when read, not a RangeError on the next write', async () => {
    const path = join(t.dir, 'deep.json');
    const depth = 200_000;
    const text = `{"format":"${MANIFEST_FORMAT}","pairings":[{"hsm":{"uri":"pkcs11:token=t;object=k"},"target":{"uri":"local:///x#y"},"note":${'['.repeat(depth)}${']'.repeat(depth)}}]}`;
    await writeFile(path, text);
    // Before: read fine, then every update threw JSON.stringify's RangeError (not a KeyportError).
    const read = await readManifest(path).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(read).toBeInstanceOf(KeyportError);
    expect(read).toMatchObject({ code: 'Integrity' });
    const written = await recordPairing(path, samplePairing(1)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(written).toBeInstanceOf(KeyportError);
    expect(await readFile(path, 'utf8')).toBe(text);
  });

  it('an update that would make the manifest larger than a read accepts is refused, and the manifest stays readable', async () => {
    const path = join(t.dir, 'large.json');
    const MAX = 16 * 1024 * 1024;
    // Compact JSON under the limit; written back indented, it is well over it.
    const pairings = Array.from({ length: 44_000 }, (_, n) => samplePairing(n));
    const text = JSON.stringify({ format: MANIFEST_FORMAT, pairings });
    expect(text.length).toBeLessThan(MAX);
    expect(JSON.stringify({ format: MANIFEST_FORMAT, pairings }, null, 2).length).toBeGreaterThan(MAX);
    await writeFile(path, text);
    // Before: the update wrote 20 MiB, and every later read (each import's first step) refused
    // the manifest as larger than 16 MiB.
    const error = await recordPairing(path, samplePairing(44_000)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(KeyportError);
    expect(await readFile(path, 'utf8')).toBe(text);
    expect((await readManifest(path)).pairings).toHaveLength(44_000);
  }, 60_000);

  it('parameters that expire while the import waits (lock, generation) are refused before the wrap', async () => {
    const uri = await pendingLocal();
    const params = await t.keyport.getImportParameters(uri, { algorithm: 'RSAES_OAEP_SHA_1' });
    const start = Date.now();
    let calls = 0;
    // The first reading of the clock is before the expiry; every later one is after it.
    const clock = () => new Date(calls++ === 0 ? start : start + 2 * 3600_000);
    const { exporter: counting, wraps } = countingWraps(t.hsm);
    const manifestPath = join(t.dir, 'expiring.json');
    // Before: the expiry was read once, before the HSM key was generated; the key was then
    // wrapped under parameters already expired.
    await expect(
      importHsmKey({
        keyport: t.keyport,
        hsm: counting,
        hsmKey: { uri: (await exportable('exp')).uri },
        target: { uri },
        manifestPath,
        importParameters: { ...params, expiresAt: new Date(start + 3600_000) },
        clock,
      }),
    ).rejects.toMatchObject({ code: 'InvalidArgument', message: expect.stringContaining('expired') });
    expect(wraps()).toBe(0);
    expect((await t.keyport.describeKey(uri)).state).toBe('pending_import');
    expect(await readManifest(manifestPath)).toEqual({ format: MANIFEST_FORMAT, pairings: [] });
  });

  for (const kind of ['aws-kms', 'hcvault'] as const) {
    it(`two imports of different HSM keys into one ${kind} target at once: one lands, one pairing is recorded`, async () => {
      const manifestPath = join(t.dir, `race-${kind}-${randomBytes(4).toString('hex')}.json`);
      let uri: string;
      if (kind === 'hcvault') {
        uri = transitUri(uniqueName('race'));
        await t.keyport.createKey('hcvault', { name: uri, spec: 'AES_256', external: true });
      } else {
        uri = (
          await t.keyport.createKey('aws-kms', { name: uniqueName('race'), spec: 'AES_256', external: true })
        ).uri;
      }
      // Before: both runs saw the target pending_import, both imported (local-kms took the second
      // material over the first, transit added it as version 2), and the manifest paired the one
      // target with both HSM keys.
      const runs = await Promise.allSettled(
        ['x', 'y'].map((h) =>
          importHsmKey({
            keyport: t.keyport,
            hsm: t.hsm,
            hsmKey: { create: { name: uniqueName(h) } },
            target: { uri },
            manifestPath,
          }),
        ),
      );
      const done = runs.filter((r) => r.status === 'fulfilled');
      const refused = runs.filter((r) => r.status === 'rejected').map((r) => r.reason);
      expect(done).toHaveLength(1);
      expect(refused).toMatchObject([{ code: 'KeyStateConflict' }]);
      const manifest = await readManifest(manifestPath);
      expect(manifest.pairings).toEqual([done[0]?.value]);
      expect(manifest.pending).toBeUndefined();
      if (kind === 'hcvault') expect((await t.keyport.describeKey(uri)).primaryVersion).toBe('1');
    });
  }
});
