/**
 * A createKey whose answer is lost after OpenBao made the key (a dropped connection): core repeats
 * it (transit names keys, so a repeat cannot make a second one), and the repeat must answer with
 * that key, finished, not AlreadyExists for the caller's own new key. A key someone else made
 * under the name stays AlreadyExists.
 */
import { Keyport } from '@keyport/core';
import { afterAll, describe, expect, it } from 'vitest';
import { keyName, provider } from './helpers.js';

describe('createKey whose answer is lost', () => {
  const p = provider();
  const keyport = new Keyport({ providers: [p], retry: { maxAttempts: 3, baseDelayMs: 0 } });
  afterAll(() => keyport.close());

  /** Loses the answer of the next write to `path` (the server handled it). */
  function loseNextAnswer(path: string): void {
    const write = p.session.write.bind(p.session);
    let armed = true;
    p.session.write = (async (signal: AbortSignal, at: string, ...rest: unknown[]) => {
      const answer = await (write as (...a: unknown[]) => Promise<unknown>)(signal, at, ...rest);
      if (armed && at === path) {
        armed = false;
        throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
      }
      return answer;
    }) as typeof p.session.write;
  }

  it("the repeat answers with the key the lost attempt made, finished (its rotation period, not keyport's marker)", async () => {
    const name = keyName('lost');
    loseNextAnswer(`transit/keys/${name}`);
    const info = await keyport.createKey('hcvault', { name, spec: 'AES_256', rotation: { periodDays: 30 } });
    expect(info).toMatchObject({
      spec: 'AES_256',
      state: 'enabled',
      primaryVersion: '1',
      rotation: { periodDays: 30 },
    });
    const sealed = await keyport.encrypt(info.uri, new Uint8Array([1, 2, 3]));
    expect((await keyport.decrypt(info.uri, sealed.ciphertext)).plaintext).toEqual(new Uint8Array([1, 2, 3]));
  });

  it('a key made by someone else under the name is still AlreadyExists', async () => {
    const name = keyName('taken');
    const other = provider();
    try {
      await other.createKey({ name, spec: 'AES_256' }, { signal: AbortSignal.timeout(20_000) });
    } finally {
      await other.close();
    }
    await expect(keyport.createKey('hcvault', { name, spec: 'AES_256' })).rejects.toMatchObject({
      code: 'AlreadyExists',
    });
  });
});
