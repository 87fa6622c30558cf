/**
 * Refusals: each is a typed KeyportError, and nothing is imported half-way — the target key
 * stays pending_import (or, in transit, does not exist) and the manifest is unchanged.
 */
import { writeFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Keyport, KeyportError } from '@keyport/core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type ByokPairing,
  type ImportHsmKeyOptions,
  importHsmKey,
  readManifest,
  recordPairing,
} from '../src/index.js';
import { localKms, openLocal, transitProvider, transitUri, uniqueName, useHsmKeyport } from './support.js';

describe('importHsmKey refusals', () => {
  const t = useHsmKeyport(async (dir) => [localKms(), await openLocal(dir), transitProvider()], {
    retry: { maxAttempts: 1 },
  });
  let manifestPath: string;
  beforeAll(() => {
    manifestPath = join(t.dir, 'manifest.json');
  });

  const pendingAwsKey = async () =>
    (await t.keyport.createKey('aws-kms', { name: uniqueName('aws'), spec: 'AES_256', external: true })).uri;
  const exportableHsmKey = async () =>
    (
      await t.keyport.createKey('pkcs11', {
        name: uniqueName('hsm'),
        spec: 'AES_256',
        exportable: true,
      } as never)
    ).uri;

  async function refused(options: Omit<ImportHsmKeyOptions, 'keyport' | 'hsm' | 'manifestPath'>) {
    const error = await importHsmKey({ keyport: t.keyport, hsm: t.hsm, manifestPath, ...options }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeDefined();
    // No pairing, and no pending import either: a refused import is taken back.
    expect(await readManifest(manifestPath)).toEqual({ format: 'keyport-byok-manifest/1', pairings: [] });
    return error;
  }

  async function expectPending(uri: string) {
    expect((await t.keyport.describeKey(uri)).state).toBe('pending_import');
  }

  it("a wrong import token (from another key's parameters) is refused by AWS; the key stays pending", async () => {
    const uri = await pendingAwsKey();
    const other = await pendingAwsKey();
    const mine = await t.keyport.getImportParameters(uri, { algorithm: 'RSAES_OAEP_SHA_1' });
    const theirs = await t.keyport.getImportParameters(other, { algorithm: 'RSAES_OAEP_SHA_1' });
    const error = await refused({
      hsmKey: { uri: await exportableHsmKey() },
      target: { uri },
      importParameters: { ...mine, importToken: theirs.importToken as Uint8Array },
    });
    expect(error).toMatchObject({
      code: 'InvalidArgument',
      provider: 'aws-kms',
      message: expect.stringContaining('InvalidImportTokenException'),
    });
    await expectPending(uri);
  });

  it('expired import parameters are refused before the HSM wraps anything (clock 25 h ahead)', async () => {
    const uri = await pendingAwsKey();
    const error = await refused({
      hsmKey: { uri: await exportableHsmKey() },
      target: { uri },
      clock: () => new Date(Date.now() + 25 * 3600_000),
    });
    expect(error).toMatchObject({ code: 'InvalidArgument', message: expect.stringContaining('expired') });
    await expectPending(uri);
  });

  it('parameters tampered to another algorithm or a past expiry are refused', async () => {
    const uri = await pendingAwsKey();
    const params = await t.keyport.getImportParameters(uri, { algorithm: 'RSAES_OAEP_SHA_1' });
    const hsmKey = { uri: await exportableHsmKey() };
    await refused({
      hsmKey,
      target: { uri },
      importParameters: { ...params, expiresAt: new Date(Date.now() - 1000) },
    }).then((e) => expect(e).toMatchObject({ code: 'InvalidArgument' }));
    await refused({
      hsmKey,
      target: { uri },
      importParameters: { ...params, algorithm: 'RSAES_OAEP_SHA_256' },
    }).then((e) => expect(e).toMatchObject({ code: 'InvalidArgument' }));
    await expectPending(uri);
  });

  it('a non-extractable HSM key is refused with KeyStateConflict; the target stays pending', async () => {
    const uri = await pendingAwsKey();
    const locked = await t.keyport.createKey('pkcs11', { name: uniqueName('locked'), spec: 'AES_256' });
    const error = await refused({ hsmKey: { uri: locked.uri }, target: { uri } });
    expect(error).toMatchObject({ code: 'KeyStateConflict', message: expect.stringContaining('exportable') });
    await expectPending(uri);
  });

  it('an HSM key that is not AES_256 is refused (Unsupported)', async () => {
    const uri = await pendingAwsKey();
    const ec = await t.keyport.createKey('pkcs11', { name: uniqueName('ec'), spec: 'EC_P256' });
    expect(await refused({ hsmKey: { uri: ec.uri }, target: { uri } })).toMatchObject({
      code: 'Unsupported',
    });
    await expectPending(uri);
  });

  it('a target that already has material is refused (KeyStateConflict)', async () => {
    const live = await t.keyport.createKey('aws-kms', { name: uniqueName('live'), spec: 'AES_256' });
    expect(
      await refused({ hsmKey: { create: { name: uniqueName('x') } }, target: { uri: live.uri } }),
    ).toMatchObject({ code: 'KeyStateConflict' });
  });

  it('the local keystore refuses a token of other parameters, and parameters for SHA-256; the key stays pending', async () => {
    const pendingLocal = async () =>
      (await t.keyport.createKey('local', { name: uniqueName('local'), spec: 'AES_256', external: true }))
        .uri;
    const uri = await pendingLocal();
    const other = await pendingLocal();
    const hsmKey = { uri: await exportableHsmKey() };
    // The keystore records each key's current parameters; a token of another key's is refused.
    const theirs = await t.keyport.getImportParameters(other, { algorithm: 'RSAES_OAEP_SHA_1' });
    const mine = await t.keyport.getImportParameters(uri, { algorithm: 'RSAES_OAEP_SHA_1' });
    expect(
      await refused({
        hsmKey,
        target: { uri },
        importParameters: { ...mine, importToken: theirs.importToken as Uint8Array },
      }),
    ).toMatchObject({
      code: 'InvalidArgument',
      provider: 'local',
      message: expect.stringContaining('token'),
    });
    await expectPending(uri);
    // Parameters issued for OAEP SHA-256, which SoftHSM2 cannot wrap with: refused before the wrap.
    const sha256 = await t.keyport.getImportParameters(uri, { algorithm: 'RSAES_OAEP_SHA_256' });
    expect(await refused({ hsmKey, target: { uri }, importParameters: sha256 })).toMatchObject({
      code: 'InvalidArgument',
      provider: 'byok',
      message: expect.stringContaining('RSAES_OAEP_SHA_256'),
    });
    await expectPending(uri);
  });

  it('a transit key that already holds material is refused (KeyStateConflict) and keeps its one version', async () => {
    const uri = transitUri(uniqueName('exists'));
    await t.keyport.createKey('hcvault', { name: uri, spec: 'AES_256' });
    const error = await refused({ hsmKey: { create: { name: uniqueName('y') } }, target: { uri } });
    expect(error).toMatchObject({ code: 'KeyStateConflict' });
    expect((await t.keyport.describeKey(uri)).primaryVersion).toBe('1');
  });

  it('a non-extractable HSM key never creates the transit key', async () => {
    const uri = transitUri(uniqueName('never'));
    await t.keyport.createKey('hcvault', { name: uri, spec: 'AES_256', external: true });
    const locked = await t.keyport.createKey('pkcs11', { name: uniqueName('locked'), spec: 'AES_256' });
    const error = await refused({ hsmKey: { uri: locked.uri }, target: { uri } });
    expect(error).toMatchObject({ code: 'KeyStateConflict' });
    await expectPending(uri);
    // Nothing reached the server: a provider without the pending entry does not find the key.
    const fresh = new Keyport({ providers: [transitProvider()] });
    try {
      await expect(fresh.describeKey(uri)).rejects.toMatchObject({ code: 'NotFound' });
    } finally {
      await fresh.close();
    }
  });

  it('careless options are refused typed before anything is touched; the target stays pending', async () => {
    const uri = await pendingAwsKey();
    const hsmKey = { uri: await exportableHsmKey() };
    const throwing: Record<string, unknown> = { keyport: t.keyport, hsm: t.hsm, hsmKey, target: { uri } };
    Object.defineProperty(throwing, 'manifestPath', {
      enumerable: true,
      get() {
        throw new Error('a getter that throws');
      },
    });
    const params = await t.keyport.getImportParameters(uri, { algorithm: 'RSAES_OAEP_SHA_1' });
    const careless: [string, unknown][] = [
      ['no manifestPath', { keyport: t.keyport, hsm: t.hsm, hsmKey, target: { uri } }],
      [
        'a manifestPath that is not a string',
        { keyport: t.keyport, hsm: t.hsm, hsmKey, target: { uri }, manifestPath: 5 },
      ],
      [
        'an empty manifestPath',
        { keyport: t.keyport, hsm: t.hsm, hsmKey, target: { uri }, manifestPath: '' },
      ],
      ['a manifestPath getter that throws', throwing],
      ['hsmKey null', { keyport: t.keyport, hsm: t.hsm, hsmKey: null, target: { uri }, manifestPath }],
      ['hsmKey empty', { keyport: t.keyport, hsm: t.hsm, hsmKey: {}, target: { uri }, manifestPath }],
      [
        'hsmKey with both create and uri',
        {
          keyport: t.keyport,
          hsm: t.hsm,
          hsmKey: { ...hsmKey, create: { name: 'x' } },
          target: { uri },
          manifestPath,
        },
      ],
      ['target null', { keyport: t.keyport, hsm: t.hsm, hsmKey, target: null, manifestPath }],
      ['target.uri a number', { keyport: t.keyport, hsm: t.hsm, hsmKey, target: { uri: 5 }, manifestPath }],
      [
        'a misspelt option',
        { keyport: t.keyport, hsm: t.hsm, hsmKey, target: { uri }, manifestPath, importParams: params },
      ],
      [
        'an own __proto__ key',
        {
          ...JSON.parse('{"__proto__": {}}'),
          keyport: t.keyport,
          hsm: t.hsm,
          hsmKey,
          target: { uri },
          manifestPath,
        },
      ],
      [
        'a clock that answers an invalid Date (which would pass any expiry)',
        {
          keyport: t.keyport,
          hsm: t.hsm,
          hsmKey,
          target: { uri },
          manifestPath,
          clock: () => new Date(Number.NaN),
        },
      ],
      [
        'parameters expiring at an invalid Date',
        {
          keyport: t.keyport,
          hsm: t.hsm,
          hsmKey,
          target: { uri },
          manifestPath,
          importParameters: { ...params, expiresAt: new Date(Number.NaN) },
        },
      ],
      ['options null', null],
    ];
    for (const [name, options] of careless) {
      const error = await importHsmKey(options as ImportHsmKeyOptions).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error, name).toBeInstanceOf(KeyportError);
      expect(error, name).toMatchObject({ code: 'InvalidArgument' });
      await expectPending(uri);
    }
    expect((await readManifest(manifestPath)).pairings).toEqual([]);
  });

  it('a damaged manifest is refused before the import: the target stays pending, the file as it was', async () => {
    const uri = await pendingAwsKey();
    const damaged = join(t.dir, 'damaged.json');
    for (const text of ['not json', '{"format":"keyport-byok-manifest/1","pairings":[null]}']) {
      await writeFile(damaged, text);
      await expect(
        importHsmKey({
          keyport: t.keyport,
          hsm: t.hsm,
          hsmKey: { uri: await exportableHsmKey() },
          target: { uri },
          manifestPath: damaged,
        }),
      ).rejects.toMatchObject({ code: 'Integrity' });
      await expectPending(uri);
      expect(await readFile(damaged, 'utf8')).toBe(text);
    }
  });

  it('a manifest in a directory that does not exist is refused before the import: the target stays pending', async () => {
    // Before: the import went through and only the manifest write failed (Unavailable), leaving
    // the target holding material with no pairing recorded.
    const uri = await pendingAwsKey();
    const hsmKey = { uri: await exportableHsmKey() };
    for (const path of [join(t.dir, 'no-such-dir', 'm.json'), join(manifestPath, 'm.json')]) {
      await writeFile(manifestPath, `{"format":"keyport-byok-manifest/1","pairings":[]}`);
      await expect(
        importHsmKey({ keyport: t.keyport, hsm: t.hsm, hsmKey, target: { uri }, manifestPath: path }),
        path,
      ).rejects.toMatchObject({ code: 'InvalidArgument', message: expect.stringContaining('directory') });
      await expectPending(uri);
    }
  });

  it('a manifest damaged after it was read and before the import: Integrity, nothing imported', async () => {
    const uri = await pendingAwsKey();
    const path = join(t.dir, 'damaged-before.json');
    await writeFile(path, '{"format":"keyport-byok-manifest/1","pairings":[]}');
    await expect(
      importHsmKey({
        keyport: t.keyport,
        hsm: t.hsm,
        hsmKey: { uri: await exportableHsmKey() },
        target: { uri },
        manifestPath: path,
        // Runs after the manifest was read and before the wrap: another hand damages the file.
        clock: () => {
          writeFileSync(path, 'not json');
          return new Date();
        },
      }),
    ).rejects.toMatchObject({ code: 'Integrity' });
    // The pending entry written before the import could not be written: the import was not sent.
    await expectPending(uri);
    expect(await readFile(path, 'utf8')).toBe('not json');
  });

  it('a manifest that cannot be written after the import: Unavailable, saying the import happened, with the pairing', async () => {
    const uri = await pendingAwsKey();
    const path = join(t.dir, 'replaced.json');
    await writeFile(path, '{"format":"keyport-byok-manifest/1","pairings":[]}');
    // Another hand damages the file while the import is on its way (after the pending entry).
    const damaging = new Proxy(t.keyport, {
      get(k, name) {
        if (name === 'importKeyMaterial')
          return (...args: Parameters<Keyport['importKeyMaterial']>) => {
            writeFileSync(path, 'not json');
            return k.importKeyMaterial(...args);
          };
        const value: unknown = Reflect.get(k, name, k);
        return typeof value === 'function' ? value.bind(k) : value;
      },
    });
    const error = await importHsmKey({
      keyport: damaging,
      hsm: t.hsm,
      hsmKey: { uri: await exportableHsmKey() },
      target: { uri },
      manifestPath: path,
    }).then(
      () => undefined,
      (e: unknown) => e as KeyportError,
    );
    // Before: the manifest's own Integrity error, which does not say the target now holds material.
    expect(error).toMatchObject({ code: 'Unavailable', retryable: false, keyUri: uri });
    expect((await t.keyport.describeKey(uri)).state).toBe('enabled');
    const json = error?.message.slice(error.message.indexOf('{')) ?? '';
    const pairing = JSON.parse(json) as ByokPairing;
    expect(pairing.target.uri).toBe(uri);
    const fresh = join(t.dir, 'recorded.json');
    await recordPairing(fresh, pairing);
    expect((await readManifest(fresh)).pairings).toEqual([pairing]);
  });
});
