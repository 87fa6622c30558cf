/**
 * HSM -> OpenBao transit when the target's material may not be this import's: transit refuses
 * an import into a key that exists (`AlreadyExists`) whether that key holds an earlier import of
 * this very material (one whose answer was lost) or another client's. Neither the error nor the
 * key's state tells the two apart; a test encryption in transit that the HSM key decrypts does.
 * So importHsmKey proves the pairing before it records or drops it:
 *
 * - AlreadyExists, the key holding this HSM key's material: the pairing is recorded (it was
 *   dropped as a refusal, and a rerun met a target with material and no record of it);
 * - AlreadyExists, another client's material: refused, nothing recorded;
 * - a rerun finishing an unfinished import whose target another client imported into meanwhile:
 *   refused, not recorded as a pairing (it was: a false pairing).
 */
import { createServer, request, type Server } from 'node:http';
import { join } from 'node:path';
import { Keyport } from '@keyport/core';
import { VaultTransitProvider } from '@keyport/vault-transit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HsmKeyExporter, importHsmKey, readManifest, transitToHsmCiphertext } from '../src/index.js';
import { openbao, text, transitProvider, transitUri, uniqueName, useHsmKeyport, utf8 } from './support.js';

describe('importHsmKey into transit proves the pairing behind AlreadyExists', () => {
  const t = useHsmKeyport(() => [transitProvider()]);

  /** Another client of the same OpenBao: its own provider, the same key name announced. */
  async function otherClient(uri: string) {
    const transit = transitProvider();
    // Closing it closes its transit provider only: the HSM provider is the fixture's.
    const keyport = Object.assign(new Keyport({ providers: [t.hsm, transit] }), {
      close: () => transit.close(),
    });
    await keyport.createKey('hcvault', { name: uri, spec: 'AES_256', external: true });
    return keyport;
  }

  /** `t.hsm`, whose wrap is followed by `meanwhile` (before importHsmKey sends the import). */
  const wrapThen = (meanwhile: (wrapped: Uint8Array) => Promise<void>): HsmKeyExporter => ({
    scheme: t.hsm.scheme,
    oaepHashes: t.hsm.oaepHashes,
    wrapKeyForExport: async (ref, options, o) => {
      const wrapped = await t.hsm.wrapKeyForExport(ref, options, o);
      await meanwhile(wrapped);
      return wrapped;
    },
  });

  /** Transit's ciphertext opens with the HSM key of `hsmUri`, version `hsmVersion`. */
  async function opensInHsm(uri: string, hsmUri: string, hsmVersion: string): Promise<void> {
    const sealed = await t.keyport.encrypt(uri, utf8('one key'));
    const inHsm = transitToHsmCiphertext(text(sealed.ciphertext), Number(hsmVersion));
    expect(text((await t.keyport.decrypt(hsmUri, inHsm)).plaintext)).toBe('one key');
  }

  it('AlreadyExists over an earlier import of this very material (its answer lost): the pairing is recorded', async () => {
    const uri = transitUri(uniqueName('landed'));
    await t.keyport.createKey('hcvault', { name: uri, spec: 'AES_256', external: true });
    const earlier = await otherClient(uri);
    const manifestPath = join(t.dir, `${uniqueName('m')}.json`);
    try {
      // The same wrapped bytes land first, as a first attempt whose answer was lost would.
      const hsm = wrapThen(async (wrapped) => {
        await earlier.importKeyMaterial(uri, {
          wrappedMaterial: wrapped,
          algorithm: 'RSA_AES_KEY_WRAP_SHA_1',
        });
      });
      // Before: AlreadyExists counted as a refusal, the pending entry was dropped, and the target
      // held the HSM key's material with nothing recording it (a rerun: KeyStateConflict).
      const pairing = await importHsmKey({
        keyport: t.keyport,
        hsm,
        hsmKey: { create: { name: uniqueName('root') } },
        target: { uri },
        manifestPath,
      });
      expect(pairing.target).toMatchObject({
        uri,
        version: '1',
        wrappingAlgorithm: 'RSA_AES_KEY_WRAP_SHA_1',
      });
      const manifest = await readManifest(manifestPath);
      expect(manifest.pairings).toEqual([pairing]);
      expect(manifest.pending).toBeUndefined();
      expect(manifest.generating).toBeUndefined();
      await opensInHsm(uri, pairing.hsm.uri, pairing.hsm.version);
    } finally {
      await earlier.close();
    }
  });

  it("AlreadyExists over another client's material: refused, nothing recorded", async () => {
    const uri = transitUri(uniqueName('theirs'));
    await t.keyport.createKey('hcvault', { name: uri, spec: 'AES_256', external: true });
    const competitor = await otherClient(uri);
    const theirKey = await t.keyport.createKey('pkcs11', {
      name: uniqueName('theirs'),
      spec: 'AES_256',
      exportable: true,
    } as never);
    const manifestPath = join(t.dir, `${uniqueName('m')}.json`);
    try {
      const hsm = wrapThen(async () => {
        await importHsmKey({
          keyport: competitor,
          hsm: t.hsm,
          hsmKey: { uri: theirKey.uri },
          target: { uri },
          manifestPath: join(t.dir, `${uniqueName('theirs')}.json`),
        });
      });
      await expect(
        importHsmKey({
          keyport: t.keyport,
          hsm,
          hsmKey: { create: { name: uniqueName('root') } },
          target: { uri },
          manifestPath,
        }),
      ).rejects.toMatchObject({ code: 'AlreadyExists' });
      const manifest = await readManifest(manifestPath);
      expect(manifest.pairings).toEqual([]);
      expect(manifest.pending).toBeUndefined();
      await opensInHsm(uri, theirKey.uri, theirKey.primaryVersion as string);
    } finally {
      await competitor.close();
    }
  });
});

/** A pass-through proxy to OpenBao that, while `down`, closes every connection unanswered. */
async function switchableProxy(target: string) {
  const up = new URL(target);
  const state = { down: false, downOnImport: false };
  const server: Server = createServer((req, res) => {
    if (req.url?.endsWith('/import') && state.downOnImport) state.down = true;
    if (state.down) {
      req.socket.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const forward = request(
        { host: up.hostname, port: up.port, path: req.url, method: req.method, headers: req.headers },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      forward.on('error', () => req.socket.destroy());
      forward.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { server, state, address: `127.0.0.1:${port}` };
}

describe('importHsmKey into transit: a rerun proves an unfinished import before recording it', () => {
  let proxy: Awaited<ReturnType<typeof switchableProxy>>;
  beforeAll(async () => {
    proxy = await switchableProxy(openbao().endpoint);
  });
  afterAll(() => {
    proxy.server.closeAllConnections();
    proxy.server.close();
  });
  // No retries: OpenBao out of reach fails at once rather than after the retries' backoff.
  const t = useHsmKeyport(
    () => [
      new VaultTransitProvider({
        endpoint: `http://${proxy.address}`,
        auth: openbao().token,
        flavor: 'openbao',
      }),
    ],
    { retry: { maxAttempts: 1 } },
  );

  it("a target another client imported into after this import failed unseen is not recorded as this HSM key's", async () => {
    const uri = `hcvault://${proxy.address}/transit/keys/${uniqueName('unseen')}`;
    await t.keyport.createKey('hcvault', { name: uri, spec: 'AES_256', external: true });
    const manifestPath = join(t.dir, `${uniqueName('m')}.json`);
    const run = {
      hsm: t.hsm,
      hsmKey: { create: { name: uniqueName('root') } },
      target: { uri },
      manifestPath,
    };
    // The import never reaches OpenBao, and OpenBao stays out of reach for the run's own checks:
    // whether it landed is unknown, so its pending entry stays.
    proxy.state.downOnImport = true;
    await expect(importHsmKey({ keyport: t.keyport, ...run })).rejects.toMatchObject({
      code: expect.stringMatching(/^(Unavailable|Timeout)$/),
    });
    proxy.state.downOnImport = false;
    proxy.state.down = false;
    expect((await readManifest(manifestPath)).pending).toMatchObject([{ target: { uri } }]);

    // Meanwhile another client imports its own key under the name, straight to OpenBao.
    const direct = uri.replace(proxy.address, new URL(openbao().endpoint).host);
    const transit = transitProvider();
    const competitor = new Keyport({ providers: [t.hsm, transit] });
    const theirKey = await t.keyport.createKey('pkcs11', {
      name: uniqueName('theirs'),
      spec: 'AES_256',
      exportable: true,
    } as never);
    try {
      await competitor.createKey('hcvault', { name: direct, spec: 'AES_256', external: true });
      await importHsmKey({
        keyport: competitor,
        hsm: t.hsm,
        hsmKey: { uri: theirKey.uri },
        target: { uri: direct },
        manifestPath: join(t.dir, `${uniqueName('theirs')}.json`),
      });
    } finally {
      await transit.close();
    }

    // Before: the target held material it did not generate, so the rerun recorded the pending
    // entry as the pairing: this HSM key paired with a key holding another one's material.
    await expect(importHsmKey({ keyport: t.keyport, ...run })).rejects.toMatchObject({
      code: 'KeyStateConflict',
      message: expect.stringContaining('does not decrypt'),
    });
    expect((await readManifest(manifestPath)).pairings).toEqual([]);
  });
});
