/**
 * An import interrupted between `importKeyMaterial` and the manifest's rename: a child process
 * SIGKILLs itself right after the local keystore took the HSM key's material (and, for the other
 * kill point, right before it is sent), and answers lost in process. Before, the manifest said
 * nothing of the import: the target held the HSM key's material with no pairing recorded, and the
 * same command rerun was refused with KeyStateConflict ("needs a key created with external:
 * true"), or, killed before the import, met AlreadyExists for the HSM key it had just generated.
 * Now a pending entry is written before the import and a rerun finishes it. A third kill point,
 * right after the HSM key was generated (before the pending entry), left a key no one recorded,
 * and the rerun met AlreadyExists for it: now the generation is recorded first, with a marker the
 * key carries, and the rerun imports that key (never one of that name without the marker).
 */
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type KeyOperations, Keyport, KeyportError } from '@keyport/core';
import { type LocalProvider, openLocalKeystore } from '@keyport/local';
import type { Pkcs11Provider } from '@keyport/pkcs11';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ByokManifest,
  hsmToLocalCiphertext,
  importHsmKey,
  MANIFEST_FORMAT,
  readManifest,
} from '../src/index.js';
import { env, openHsm, tempDir, text, transitProvider, transitUri, uniqueName, utf8 } from './support.js';

const HOOKS = fileURLToPath(new URL('../../cli/test/support/register-ts.mjs', import.meta.url));
const CHILD = fileURLToPath(new URL('./import-interrupted-child.mjs', import.meta.url));
const PASSPHRASE = 'byok test passphrase';

interface Killed {
  readonly hsmName: string;
  readonly targetUri: string;
  readonly manifestPath: string;
}

/** Runs the child to its kill point; the target URI it announced, the names it used. */
async function killedImport(dir: string, keystore: string, point: string): Promise<Killed> {
  const hsmName = uniqueName(`root-${point}`);
  const manifestPath = join(dir, `${point}.json`);
  const { signal, stdout, stderr } = await new Promise<{
    signal: NodeJS.Signals | null;
    stdout: string;
    stderr: string;
  }>((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', HOOKS, CHILD, keystore, manifestPath, hsmName, uniqueName('copy'), point],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      err += c.toString();
    });
    child.once('error', reject);
    child.once('close', (_code, s) => resolve({ signal: s, stdout: out, stderr: err }));
  });
  expect({ signal, stdout, stderr }).toMatchObject({ signal: 'SIGKILL' });
  return { hsmName, targetUri: stdout.trim().split('\n')[0] as string, manifestPath };
}

/** `keyport` as importHsmKey sees it, with `importKeyMaterial` replaced. */
function withImport(
  keyport: Keyport,
  importKeyMaterial: (
    ...args: Parameters<Keyport['importKeyMaterial']>
  ) => ReturnType<Keyport['importKeyMaterial']>,
): KeyOperations {
  return new Proxy(keyport, {
    get(k, name) {
      if (name === 'importKeyMaterial') return importKeyMaterial;
      const value: unknown = Reflect.get(k, name, k);
      return typeof value === 'function' ? value.bind(k) : value;
    },
  });
}

describe('importHsmKey interrupted between the import and the manifest', () => {
  let dir: string;
  let afterImport: Killed;
  let beforeImport: Killed;
  let afterGeneration: Killed;
  let hsm: Pkcs11Provider;
  let local: LocalProvider;
  let keyport: Keyport;

  beforeAll(async () => {
    // This process's own token, inherited by the children through SOFTHSM2_CONF: the HSM key a
    // child generated is there for the rerun.
    env('softhsm');
    dir = await tempDir();
    const keystore = join(dir, 'keystore.kp');
    afterImport = await killedImport(dir, keystore, 'after-import');
    beforeImport = await killedImport(dir, keystore, 'before-import');
    afterGeneration = await killedImport(dir, keystore, 'after-generation');
    hsm = await openHsm();
    local = await openLocalKeystore({
      path: keystore,
      passphrase: PASSPHRASE,
      kdf: { log2N: 10, r: 8, p: 1 },
    });
    keyport = new Keyport({ providers: [hsm, local] });
  }, 120_000);
  afterAll(() => keyport?.close());

  it('killed after the target took the material: the manifest names the import, and the same command rerun records the pairing', async () => {
    const { hsmName, targetUri, manifestPath } = afterImport;
    expect((await keyport.describeKey(targetUri)).state).toBe('enabled');
    const manifest = await readManifest(manifestPath);
    expect(manifest.pairings).toEqual([]);
    expect(manifest.pending).toEqual([
      {
        hsm: expect.objectContaining({ label: hsmName, version: '1' }),
        target: { uri: targetUri, scheme: 'local', spec: 'AES_256', wrappingAlgorithm: 'RSAES_OAEP_SHA_1' },
        startedAt: expect.any(String),
      },
    ]);
    const hsmUri = manifest.pending?.[0]?.hsm.uri as string;

    // Another HSM key for this target: refused, naming the key the target may hold.
    const other = await keyport.createKey('pkcs11', {
      name: uniqueName('other'),
      spec: 'AES_256',
      exportable: true,
    } as never);
    await expect(
      importHsmKey({ keyport, hsm, hsmKey: { uri: other.uri }, target: { uri: targetUri }, manifestPath }),
    ).rejects.toMatchObject({ code: 'KeyStateConflict', message: expect.stringContaining(hsmUri) });
    expect(await readManifest(manifestPath)).toEqual(manifest);

    // The command as it was run: no second HSM key, the pairing recorded.
    const pairing = await importHsmKey({
      keyport,
      hsm,
      hsmKey: { create: { name: hsmName } },
      target: { uri: targetUri },
      manifestPath,
    });
    expect(pairing).toEqual({
      hsm: manifest.pending?.[0]?.hsm,
      target: {
        uri: targetUri,
        version: '1',
        scheme: 'local',
        spec: 'AES_256',
        wrappingAlgorithm: 'RSAES_OAEP_SHA_1',
      },
      importedAt: manifest.pending?.[0]?.startedAt,
    });
    expect(await readManifest(manifestPath)).toEqual({ format: MANIFEST_FORMAT, pairings: [pairing] });
    // The pairing is true: what the HSM key seals, the target opens.
    const fromHsm = await keyport.encrypt(hsmUri, utf8('sealed before the kill'), { context: { k: 'v' } });
    const inLocal = hsmToLocalCiphertext(fromHsm.ciphertext, 1);
    expect(text((await keyport.decrypt(targetUri, inLocal, { context: { k: 'v' } })).plaintext)).toBe(
      'sealed before the kill',
    );
    // Recorded: a third run is the plain refusal of a target with material.
    await expect(
      importHsmKey({
        keyport,
        hsm,
        hsmKey: { create: { name: hsmName } },
        target: { uri: targetUri },
        manifestPath,
      }),
    ).rejects.toMatchObject({ code: 'KeyStateConflict' });
    expect((await readManifest(manifestPath)).pairings).toEqual([pairing]);
  });

  it('killed before the material was sent: a rerun takes the HSM key it generated instead of meeting AlreadyExists', async () => {
    const { hsmName, targetUri, manifestPath } = beforeImport;
    expect((await keyport.describeKey(targetUri)).state).toBe('pending_import');
    const manifest = await readManifest(manifestPath);
    expect(manifest.pending).toHaveLength(1);
    const hsmUri = manifest.pending?.[0]?.hsm.uri as string;

    // Rerun announcing a new target (as a script that creates the target each run does): the
    // HSM key's name is taken, and the error says which target its unfinished import went to.
    const fresh = await keyport.createKey('local', {
      name: uniqueName('fresh'),
      spec: 'AES_256',
      external: true,
    });
    await expect(
      importHsmKey({
        keyport,
        hsm,
        hsmKey: { create: { name: hsmName } },
        target: { uri: fresh.uri },
        manifestPath,
      }),
    ).rejects.toMatchObject({ code: 'AlreadyExists', message: expect.stringContaining(targetUri) });

    const pairing = await importHsmKey({
      keyport,
      hsm,
      hsmKey: { create: { name: hsmName } },
      target: { uri: targetUri },
      manifestPath,
    });
    expect(pairing.hsm.uri).toBe(hsmUri);
    expect(await readManifest(manifestPath)).toEqual({ format: MANIFEST_FORMAT, pairings: [pairing] });
    expect((await keyport.describeKey(targetUri)).state).toBe('enabled');
  });

  it('killed after the HSM key was generated, before anything was wrapped: the manifest records the generation, and the same command rerun imports that key', async () => {
    const { hsmName, targetUri, manifestPath } = afterGeneration;
    expect((await keyport.describeKey(targetUri)).state).toBe('pending_import');
    const manifest = await readManifest(manifestPath);
    expect(manifest).toEqual({
      format: MANIFEST_FORMAT,
      pairings: [],
      generating: [
        {
          hsm: { scheme: 'pkcs11', name: hsmName, marker: expect.stringMatching(/^[0-9a-f]{32}$/) },
          target: { uri: targetUri },
          startedAt: expect.any(String),
        },
      ],
    });
    const marker = manifest.generating?.[0]?.hsm.marker;

    // Before: the rerun met AlreadyExists for the HSM key the killed run had generated.
    const pairing = await importHsmKey({
      keyport,
      hsm,
      hsmKey: { create: { name: hsmName } },
      target: { uri: targetUri },
      manifestPath,
    });
    expect(pairing.hsm.label).toBe(hsmName);
    expect((await keyport.describeKey(pairing.hsm.uri)).labels).toEqual({ 'keyport-byok-import': marker });
    expect(await readManifest(manifestPath)).toEqual({ format: MANIFEST_FORMAT, pairings: [pairing] });
    const fromHsm = await keyport.encrypt(pairing.hsm.uri, utf8('generated before the kill'));
    expect(
      text((await keyport.decrypt(targetUri, hsmToLocalCiphertext(fromHsm.ciphertext, 1))).plaintext),
    ).toBe('generated before the kill');
  });

  it('an HSM key of that name that this manifest did not record generating for the target is never imported', async () => {
    const manifestPath = join(dir, 'not-ours.json');
    const target = await keyport.createKey('local', {
      name: uniqueName('t'),
      spec: 'AES_256',
      external: true,
    });
    // Someone else's key under the name (exportable, so only the marker tells it apart).
    const name = uniqueName('theirs');
    const theirs = await keyport.createKey('pkcs11', { name, spec: 'AES_256', exportable: true } as never);
    const run = () =>
      importHsmKey({ keyport, hsm, hsmKey: { create: { name } }, target: { uri: target.uri }, manifestPath });
    await expect(run()).rejects.toMatchObject({
      code: 'AlreadyExists',
      keyUri: theirs.uri,
      message: expect.stringContaining('does not record generating it'),
    });
    // Nothing was generated: the record of the generation is taken back.
    expect(await readManifest(manifestPath)).toEqual({ format: MANIFEST_FORMAT, pairings: [] });

    // A run killed while generating recorded the name for this target, and someone else took the
    // name: still refused (the marker differs), the manifest as it was.
    const recorded: ByokManifest = {
      format: MANIFEST_FORMAT,
      pairings: [],
      generating: [
        {
          hsm: { scheme: 'pkcs11', name, marker: '0'.repeat(32) },
          target: { uri: target.uri },
          startedAt: new Date().toISOString(),
        },
      ],
    };
    await writeFile(manifestPath, JSON.stringify(recorded));
    await expect(run()).rejects.toMatchObject({ code: 'AlreadyExists', keyUri: theirs.uri });
    expect(await readManifest(manifestPath)).toEqual(recorded);
    expect((await keyport.describeKey(target.uri)).state).toBe('pending_import');

    // The marker is importHsmKey's to set.
    await expect(
      importHsmKey({
        keyport,
        hsm,
        hsmKey: { create: { name: uniqueName('x'), labels: { 'keyport-byok-import': '0'.repeat(32) } } },
        target: { uri: target.uri },
        manifestPath,
      }),
    ).rejects.toMatchObject({ code: 'InvalidArgument' });
    expect(await readManifest(manifestPath)).toEqual(recorded);
  });

  it('an import whose answer is lost (it landed) leaves the pending entry; one the target refused leaves only the record of the HSM key it generated, which a rerun imports', async () => {
    const manifestPath = join(dir, 'answers.json');
    const pendingLocal = async () =>
      (await keyport.createKey('local', { name: uniqueName('ans'), spec: 'AES_256', external: true })).uri;

    // Landed, then the connection dropped: Unavailable, and the record of what was sent stays.
    const landed = await pendingLocal();
    const name = uniqueName('lost');
    const lost = withImport(keyport, async (...args) => {
      await keyport.importKeyMaterial(...args);
      throw new KeyportError('Unavailable', 'connection reset', { provider: 'local' });
    });
    await expect(
      importHsmKey({
        keyport: lost,
        hsm,
        hsmKey: { create: { name } },
        target: { uri: landed },
        manifestPath,
      }),
    ).rejects.toMatchObject({ code: 'Unavailable', message: 'connection reset' });
    expect((await readManifest(manifestPath)).pending).toMatchObject([{ target: { uri: landed } }]);
    const pairing = await importHsmKey({
      keyport,
      hsm,
      hsmKey: { create: { name } },
      target: { uri: landed },
      manifestPath,
    });
    expect(await readManifest(manifestPath)).toEqual({ format: MANIFEST_FORMAT, pairings: [pairing] });

    // Refused by the target (or stopped before it sent anything, the target still pending): the
    // pending entry is taken back. The HSM key generated for it stays recorded (it is in the
    // token), so the same command rerun imports that key instead of meeting its name taken.
    const pairings = [pairing];
    for (const error of [
      new KeyportError('InvalidArgument', 'bad import token', { provider: 'local' }),
      new KeyportError('Aborted', 'the operation was aborted'),
    ]) {
      const uri = await pendingLocal();
      const refusing = withImport(keyport, async () => {
        throw error;
      });
      const refusedName = uniqueName('refused');
      const run = (k: KeyOperations) =>
        importHsmKey({
          keyport: k,
          hsm,
          hsmKey: { create: { name: refusedName } },
          target: { uri },
          manifestPath,
        });
      await expect(run(refusing)).rejects.toBe(error);
      expect(await readManifest(manifestPath)).toEqual({
        format: MANIFEST_FORMAT,
        pairings,
        generating: [
          {
            hsm: { scheme: 'pkcs11', name: refusedName, marker: expect.stringMatching(/^[0-9a-f]{32}$/) },
            target: { uri },
            startedAt: expect.any(String),
          },
        ],
      });
      const again = await run(keyport);
      expect(again.hsm.label).toBe(refusedName);
      pairings.push(again);
      expect(await readManifest(manifestPath)).toEqual({ format: MANIFEST_FORMAT, pairings });
    }
  });

  it('two runs of one import at once (two HSM sessions, as two processes): one HSM key, one pairing, nothing left pending', async () => {
    const manifestPath = join(dir, 'together.json');
    const target = await keyport.createKey('local', {
      name: uniqueName('both'),
      spec: 'AES_256',
      external: true,
    });
    const otherHsm = await openHsm();
    const other = new Keyport({ providers: [otherHsm, local] });
    try {
      const name = uniqueName('once');
      const runs = await Promise.allSettled(
        [
          { k: keyport, h: hsm },
          { k: other, h: otherHsm },
        ].map(({ k, h }) =>
          importHsmKey({
            keyport: k,
            hsm: h,
            hsmKey: { create: { name } },
            target: { uri: target.uri },
            manifestPath,
          }),
        ),
      );
      const done = runs.filter((r) => r.status === 'fulfilled').map((r) => r.value);
      expect(done.length, JSON.stringify(runs)).toBeGreaterThanOrEqual(1);
      const manifest = await readManifest(manifestPath);
      // Both runs took the one key the first generated (the second found its marker on it).
      expect(new Set(done.map((p) => p.hsm.uri)).size).toBe(1);
      expect(manifest.pairings.map((p) => p.hsm.uri)).toEqual([done[0]?.hsm.uri]);
      expect(manifest.generating).toBeUndefined();
      expect(manifest.pending).toBeUndefined();
    } finally {
      // Not other.close(): it would close the local keystore the other tests share.
      await otherHsm.close();
    }
  });

  it('__proto__ as the HSM key name, the target name and a label is a name like any other', async () => {
    const manifestPath = join(dir, 'proto.json');
    const target = await keyport.createKey('local', { name: '__proto__', spec: 'AES_256', external: true });
    const labels = JSON.parse('{"__proto__":"kept"}') as Record<string, string>;
    const pairing = await importHsmKey({
      keyport,
      hsm,
      hsmKey: { create: { name: '__proto__', labels } },
      target: { uri: target.uri },
      manifestPath,
    });
    expect(pairing.hsm.label).toBe('__proto__');
    const described = await keyport.describeKey(pairing.hsm.uri);
    expect(Object.hasOwn(described.labels, '__proto__')).toBe(true);
    expect(Object.keys(described.labels).sort()).toEqual(['__proto__', 'keyport-byok-import']);
    expect(await readManifest(manifestPath)).toEqual({ format: MANIFEST_FORMAT, pairings: [pairing] });
  });

  it('an unfinished import is not recorded over a pairing of the target with another HSM key', async () => {
    const manifestPath = join(dir, 'conflict.json');
    const target = await keyport.createKey('local', {
      name: uniqueName('paired'),
      spec: 'AES_256',
      external: true,
    });
    const paired = await importHsmKey({
      keyport,
      hsm,
      hsmKey: { create: { name: uniqueName('real') } },
      target: { uri: target.uri },
      manifestPath,
    });
    const stray = await keyport.createKey('pkcs11', {
      name: uniqueName('stray'),
      spec: 'AES_256',
      exportable: true,
    } as never);
    // A pending entry naming another HSM key, as a lost race between two importers could leave.
    const m: ByokManifest = {
      ...(await readManifest(manifestPath)),
      pending: [
        {
          hsm: { uri: stray.uri, label: 'stray', id: '6b70763100000001', version: '1' },
          target: {
            uri: target.uri,
            scheme: 'local',
            spec: 'AES_256',
            wrappingAlgorithm: 'RSAES_OAEP_SHA_1',
          },
          startedAt: new Date().toISOString(),
        },
      ],
    };
    await writeFile(manifestPath, JSON.stringify(m));
    await expect(
      importHsmKey({ keyport, hsm, hsmKey: { uri: stray.uri }, target: { uri: target.uri }, manifestPath }),
    ).rejects.toMatchObject({ code: 'KeyStateConflict', message: expect.stringContaining(paired.hsm.uri) });
    expect(JSON.parse(await readFile(manifestPath, 'utf8'))).toEqual(m);
  });
});

describe('importHsmKey into transit, its answer lost', () => {
  it('a rerun through a new provider (a new process: nothing announced again, the key is on the server) records the pairing', async () => {
    const hsm = await openHsm();
    const first = new Keyport({ providers: [hsm, transitProvider()] });
    const second = new Keyport({ providers: [hsm, transitProvider()] });
    try {
      const manifestPath = join(await tempDir(), 'transit.json');
      const uri = transitUri(uniqueName('bao'));
      await first.createKey('hcvault', { name: uri, spec: 'AES_256', external: true });
      const name = uniqueName('root');
      const lost = withImport(first, async (...args) => {
        await first.importKeyMaterial(...args);
        throw new KeyportError('Timeout', 'no answer', { provider: 'hcvault' });
      });
      await expect(
        importHsmKey({ keyport: lost, hsm, hsmKey: { create: { name } }, target: { uri }, manifestPath }),
      ).rejects.toMatchObject({ code: 'Timeout' });
      const pairing = await importHsmKey({
        keyport: second,
        hsm,
        hsmKey: { create: { name } },
        target: { uri },
        manifestPath,
      });
      expect(pairing).toMatchObject({
        hsm: { label: name },
        target: { uri, version: '1', scheme: 'hcvault', wrappingAlgorithm: 'RSA_AES_KEY_WRAP_SHA_1' },
      });
      expect(await readManifest(manifestPath)).toEqual({ format: MANIFEST_FORMAT, pairings: [pairing] });
    } finally {
      await first.close();
      await second.close();
    }
  });
});
