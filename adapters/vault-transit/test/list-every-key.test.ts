// A key listing never leaves a key out. Transit's own API takes only names a key URI can carry,
// but its LIST answers whatever is stored under the mount's `policy/` prefix: here storage is
// written around transit through `sys/raw` (which dev servers enable), as a restored storage
// snapshot or another tool could, and every such key must reach an inventory as unmodeled.
import { Keyport, parseKeyUri } from '@keyport/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VaultTransitProvider } from '../src/index.js';
import { bytes, call, keyName, openbao, provider, rootClient, text } from './helpers.js';

/** Stored names (`a/b` is listed as `a/`) and the URI a listing shows for each. */
const planted: ReadonlyArray<readonly [string, string]> = [
  ['a b', 'a%20b'],
  ['\u00e9', '%C3%A9'],
  ['a%2Fb', 'a%252Fb'],
  ['a?b', 'a%3Fb'],
  ['a#b', 'a%23b'],
  ['a:b', 'a%3Ab'],
  ['a/b', 'a%2F'],
  // A name a key URI carries but transit's API refuses (404 "unsupported path").
  ['-lead', '-lead'],
];

describe('listKeys on a mount holding keys transit cannot address (OpenBao, sys/raw)', () => {
  const mount = keyName('odd-names');
  let p: VaultTransitProvider;
  let base: string;

  beforeAll(async () => {
    const root = rootClient();
    await root.write(`sys/mounts/${mount}`, { type: 'transit' });
    p = provider({ mount });
    base = `hcvault://${p.session.address}/${mount}/keys`;
    await p.createKey({ name: 'good', spec: 'AES_256' }, call());
    const uuid = ((await root.read(`sys/mounts/${mount}`)) as { data: { uuid: string } }).data.uuid;
    const { addr, token } = openbao();
    const raw = (name: string) =>
      `${addr}/v1/sys/raw/logical/${uuid}/policy/${encodeURI(name).replace(/[?#]/g, encodeURIComponent)}`;
    const stored = (await (await fetch(raw('good'), { headers: { 'X-Vault-Token': token } })).json()) as {
      data: { value: string };
    };
    for (const [name] of planted) {
      const value = JSON.stringify({ ...JSON.parse(stored.data.value), name });
      const response = await fetch(raw(name), {
        method: 'PUT',
        headers: { 'X-Vault-Token': token, 'Content-Type': 'application/json' },
        body: JSON.stringify({ value }),
      });
      expect(response.status, name).toBe(204);
    }
  });
  afterAll(async () => {
    await p.close();
    await rootClient().delete(`sys/mounts/${mount}`);
  });

  it("transit's own API takes none of these names (so only storage written around it holds them)", async () => {
    const { addr, token } = openbao();
    for (const name of ['a b', '\u00e9', 'a/b', 'a:b', '-lead', 'lead.', '..', '../../sys/x']) {
      const response = await fetch(`${addr}/v1/${mount}/keys/${encodeURIComponent(name)}`, {
        method: 'POST',
        headers: { 'X-Vault-Token': token, 'Content-Type': 'application/json' },
        body: '{}',
      });
      expect([400, 404], name).toContain(response.status);
    }
  });

  it('lists every key LIST answers: the addressable one as KeyInfo, the rest as unmodeled', async () => {
    const names = ((await rootClient().list(`${mount}/keys`)) as { data: { keys: string[] } }).data.keys;
    expect(names).toHaveLength(planted.length + 1);
    const listed: Array<{ uri: string; unmodeled?: string }> = [];
    for await (const entry of p.listKeys(call())) listed.push(entry);
    expect(listed).toHaveLength(names.length);
    expect(new Set(listed.map((e) => e.uri))).toEqual(
      new Set([`${base}/good`, ...planted.map(([, shown]) => `${base}/${shown}`)]),
    );
    for (const entry of listed) {
      if (entry.uri === `${base}/good`) expect(entry.unmodeled).toBeUndefined();
      else expect(entry.unmodeled).toMatch(/^transit cannot address a key of this name/);
    }
  });

  it('Keyport.listKeys hands each one to onUnmodeledKey; the shown URIs never make a request', async () => {
    const keyport = new Keyport({ providers: [provider({ mount })] });
    try {
      const yielded: string[] = [];
      const heard: string[] = [];
      for await (const info of keyport.listKeys('hcvault', { onUnmodeledKey: (k) => heard.push(k.uri) }))
        yielded.push(info.uri);
      expect(yielded).toEqual([`${base}/good`]);
      expect(heard.sort()).toEqual(planted.map(([, shown]) => `${base}/${shown}`).sort());
      // The listed URI of the addressable key is the key.
      const sealed = await keyport.encrypt(`${base}/good`, bytes('listed'));
      expect(text((await keyport.decrypt(`${base}/good`, sealed.ciphertext)).plaintext)).toBe('listed');
      // A percent-encoded one does not parse: refused before any request.
      for (const uri of heard.filter((u) => u.includes('%'))) {
        expect(() => parseKeyUri(uri), uri).toThrow(expect.objectContaining({ code: 'InvalidArgument' }));
        await expect(keyport.describeKey(uri), uri).rejects.toMatchObject({ code: 'InvalidArgument' });
      }
    } finally {
      await keyport.close();
    }
  });
});
