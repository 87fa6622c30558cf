/**
 * HSM -> OpenBao transit where the import lands but its answer is lost: a proxy in front of the
 * real OpenBao drops the connection once OpenBao has answered `/import`. The README promises that
 * such an import leaves its pending entry and that a rerun with the same HSM key and target
 * records the pairing — in the same process (whose transit provider announced the key) and in a
 * new one. Proof that the pairing is right: transit's ciphertext opens inside the HSM.
 */
import { join } from 'node:path';
import { Keyport } from '@keyport/core';
import { VaultTransitProvider } from '@keyport/vault-transit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { droppingProxy } from '../../../adapters/vault-transit/test/support/dropping-proxy.js';
import { importHsmKey, readManifest, transitToHsmCiphertext } from '../src/index.js';
import { openbao, text, uniqueName, useHsmKeyport, utf8 } from './support.js';

let proxy: Awaited<ReturnType<typeof droppingProxy>>;
beforeAll(async () => {
  proxy = await droppingProxy(openbao().endpoint);
});
afterAll(() => {
  proxy.server.closeAllConnections();
  proxy.server.close();
});

const throughProxy = () =>
  new VaultTransitProvider({ endpoint: `http://${proxy.address}`, auth: openbao().token, flavor: 'openbao' });

describe('importHsmKey into transit when the import lands and its answer is lost', () => {
  const t = useHsmKeyport(() => [throughProxy()]);

  /** Announces a target, runs an import whose answer is lost, and checks what it leaves. */
  async function lostImport(hint: string) {
    const uri = `hcvault://${proxy.address}/transit/keys/${uniqueName(hint)}`;
    await t.keyport.createKey('hcvault', { name: uri, spec: 'AES_256', external: true });
    const manifestPath = join(t.dir, `${uniqueName('m')}.json`);
    const run = {
      hsm: t.hsm,
      hsmKey: { create: { name: uniqueName('root') } },
      target: { uri },
      manifestPath,
    };
    proxy.state.dropImports = 1;
    await expect(importHsmKey({ keyport: t.keyport, ...run })).rejects.toMatchObject({ code: 'Unavailable' });
    // The target holds the material: the pending entry stays for a rerun to finish.
    expect((await readManifest(manifestPath)).pending).toMatchObject([{ target: { uri } }]);
    expect(await t.keyport.describeKey(uri)).toMatchObject({ state: 'enabled', origin: 'external' });
    return { uri, manifestPath, run };
  }

  /** The pairing is the only record left, and transit's ciphertext opens with its HSM key. */
  async function paired(keyport: Keyport, uri: string, manifestPath: string) {
    const manifest = await readManifest(manifestPath);
    expect(manifest.pending).toBeUndefined();
    expect(manifest.pairings).toHaveLength(1);
    const pairing = manifest.pairings[0];
    expect(pairing?.target).toMatchObject({ uri, version: '1' });
    const sealed = await keyport.encrypt(uri, utf8('landed once'));
    const inHsm = transitToHsmCiphertext(text(sealed.ciphertext), Number(pairing?.hsm.version));
    const opened = await t.keyport.decrypt(pairing?.hsm.uri as string, inHsm);
    expect(text(opened.plaintext)).toBe('landed once');
  }

  it('a rerun in the same process records the pairing', async () => {
    const { uri, manifestPath, run } = await lostImport('same');
    const pairing = await importHsmKey({ keyport: t.keyport, ...run });
    expect(pairing.target).toMatchObject({ uri, version: '1' });
    await paired(t.keyport, uri, manifestPath);
  });

  it('a rerun in a new process (a new transit provider) records the pairing', async () => {
    const { uri, manifestPath, run } = await lostImport('new');
    const transit = throughProxy();
    // The HSM provider is the fixture's (closed with it); only the new transit provider is closed here.
    const fresh = new Keyport({ providers: [t.hsm, transit] });
    try {
      await importHsmKey({ keyport: fresh, ...run });
      await paired(fresh, uri, manifestPath);
    } finally {
      await transit.close();
    }
  });
});
