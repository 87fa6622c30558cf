/**
 * The README's configuration sample, run as written (its code block is read from README.md and
 * evaluated: it is plain JavaScript), and the module-sharing promise under two spellings of the
 * module's path — the README's own `/usr/lib/softhsm/libsofthsm2.so` is a symlink on Debian.
 */
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Keyport } from '@keyport/core';
import { afterAll, describe, expect, it } from 'vitest';
import { moduleRefs, Pkcs11Provider, pkcs11 } from '../src/index.js';
import { providerOptions, signal, softhsm } from './support.js';

const dir = mkdtempSync(join(tmpdir(), 'keyport-p11-readme-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The first ```ts block of the README, without its import lines. */
function configurationSample(): string {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const block = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  if (block === undefined) throw new Error('no ts block in README.md');
  return block
    .split('\n')
    .filter((line) => !line.startsWith('import '))
    .join('\n');
}

describe('README', () => {
  it('the configuration sample runs as written against the SoftHSM2 token', async () => {
    const env = softhsm();
    process.env.HSM_USER_PIN = env.KEYPORT_SOFTHSM_PIN;
    let body = configurationSample();
    expect(body).toContain(`modulePath: '/usr/lib/softhsm/libsofthsm2.so'`);
    expect(body).toContain(`token: { label: 'keyport' }`);
    // This machine's module and token, where they differ from the README's.
    body = body
      .replace(`'/usr/lib/softhsm/libsofthsm2.so'`, JSON.stringify(env.KEYPORT_SOFTHSM_MODULE))
      .replace(`{ label: 'keyport' }`, `{ label: ${JSON.stringify(env.KEYPORT_SOFTHSM_TOKEN)} }`);
    const AsyncFunction = (async () => undefined).constructor as new (
      ...args: string[]
    ) => (...args: unknown[]) => Promise<{ key: { uri: string }; ciphertext: Uint8Array }>;
    const run = new AsyncFunction('Keyport', 'pkcs11', 'data', `${body}\nreturn { key, ciphertext };`);
    const data = Buffer.from('order #1');
    const { key, ciphertext } = await run(Keyport, pkcs11, data);
    expect(key.uri).toBe(`pkcs11:token=${env.KEYPORT_SOFTHSM_TOKEN};object=orders`);
    expect(moduleRefs(env.KEYPORT_SOFTHSM_MODULE)).toBe(0); // keyport.close() released the module
    const again = await Pkcs11Provider.open(providerOptions());
    try {
      const opened = await again.decrypt(
        { uri: key.uri },
        ciphertext,
        { context: { table: 'orders' } },
        { signal: signal() },
      );
      expect(Buffer.from(opened.plaintext).equals(data)).toBe(true);
    } finally {
      await again.close();
      delete process.env.HSM_USER_PIN;
    }
  });

  it('providers on two spellings of one module path (a symlink and its target) share one C_Initialize', async () => {
    const real = softhsm().KEYPORT_SOFTHSM_MODULE;
    const link = join(dir, 'libsofthsm2.so');
    symlinkSync(real, link);
    const viaLink = await Pkcs11Provider.open(providerOptions({ modulePath: link }));
    const viaReal = await Pkcs11Provider.open(providerOptions({ modulePath: real }));
    try {
      const key = await viaReal.createKey(
        { name: `readme-link-${Date.now()}`, spec: 'AES_256' },
        { signal: signal() },
      );
      // The first provider's close must not finalise the module under the second.
      await viaLink.close();
      const sealed = await viaReal.encrypt(
        { uri: key.uri },
        Buffer.from('still here'),
        {},
        { signal: signal() },
      );
      expect(sealed.keyVersion).toBe('1');
      expect(moduleRefs(real)).toBe(1);
      expect(moduleRefs(link)).toBe(1);
    } finally {
      await viaLink.close();
      await viaReal.close();
    }
    expect(moduleRefs(real)).toBe(0);
  });
});
