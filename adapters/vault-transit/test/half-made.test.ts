// A key creation is two requests: the create (with keyport's creation marker, a 200-year
// auto_rotate_period plus random seconds) and the config that sets the period asked for. A
// process killed between them leaves the marker. The half-made state is made here directly on
// OpenBao, as the first request of a creator in another process would leave it.
import { isUnmodeledKey } from '@keyport/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VaultTransitProvider } from '../src/index.js';
import { call, keyName, provider, rejection, rootClient } from './helpers.js';

const root = rootClient();
const MARKER = 200 * 365 * 86_400 + 12_345;

async function halfMade(name: string): Promise<void> {
  await root.write(`transit/keys/${name}`, { type: 'aes256-gcm96', auto_rotate_period: `${MARKER}s` });
}
const periodOnServer = async (name: string) =>
  ((await root.read(`transit/keys/${name}`)) as { data: { auto_rotate_period: number } }).data
    .auto_rotate_period;

describe('a key whose creation did not finish (it still carries the creation marker)', () => {
  let p: VaultTransitProvider;
  const made: string[] = [];
  beforeAll(() => {
    p = provider();
  });
  afterAll(async () => {
    for (const name of made) {
      await root.write(`transit/keys/${name}/config`, { deletion_allowed: true });
      await root.delete(`transit/keys/${name}`);
    }
    await p.close();
  });

  it('describeKey refuses it with KeyStateConflict naming the fix, and changes nothing on the server', async () => {
    const name = keyName('half');
    made.push(name);
    await halfMade(name);
    const uri = `hcvault://${p.session.address}/transit/keys/${name}`;
    const error = await rejection(p, p.describeKey({ uri }, call()));
    expect(error.code).toBe('KeyStateConflict');
    expect(error.keyUri).toBe(uri);
    expect(error.message).toMatch(/creation did not finish/);
    expect(error.message).toMatch(/setRotationPolicy/);
    // The creator in the other process may be about to set its period: a reader must not race it.
    expect(await periodOnServer(name)).toBe(MARKER);
    // ... which it then does, and the key is whole.
    await root.write(`transit/keys/${name}/config`, { auto_rotate_period: `${7 * 86_400}s` });
    expect((await p.describeKey({ uri }, call())).rotation).toEqual({ periodDays: 7 });
  });

  it('is listed, changed and refused as a name without ever showing the marker as a rotation period', async () => {
    const name = keyName('half-list');
    made.push(name);
    await halfMade(name);
    const uri = `hcvault://${p.session.address}/transit/keys/${name}`;
    let listed: { rotation?: unknown } | undefined;
    for await (const info of p.listKeys(call())) if (info.uri === uri && !isUnmodeledKey(info)) listed = info;
    expect(listed).toBeDefined();
    expect(listed?.rotation).toBeUndefined();
    // A change is made and its result shown (no rotation period), not refused after the fact.
    const rotated = await p.rotateKey({ uri }, call());
    expect(rotated.primaryVersion).toBe('2');
    expect(rotated.rotation).toBeUndefined();
    const taken = await rejection(p, p.createKey({ name, spec: 'AES_256' }, call()));
    expect(taken.code).toBe('AlreadyExists');
    expect(taken.message).toMatch(/did not finish/);
    expect(await periodOnServer(name)).toBe(MARKER);
    // setRotationPolicy finishes it.
    expect((await p.setRotationPolicy({ uri }, { periodDays: 30 }, call())).rotation).toEqual({
      periodDays: 30,
    });
    expect((await p.describeKey({ uri }, call())).rotation).toEqual({ periodDays: 30 });
  });
});
