/** Provider configuration: which vaults, which kind, and which hosts a key URI may name. */
import { describe, expect, it } from 'vitest';
import { derToRaw, rawToDer } from '../src/crypto.js';
import { AzureKeyVaultProvider } from '../src/index.js';
import { staticToken } from './support/server.js';

const credential = staticToken('unused');
const call = { signal: new AbortController().signal };

describe('vault configuration', () => {
  it('reads the vault kind from the host and declares capabilities per kind', () => {
    const vault = new AzureKeyVaultProvider({ vaultUrl: 'https://kp.vault.azure.net', credential });
    const hsm = new AzureKeyVaultProvider({ vaultUrl: 'https://kp.managedhsm.azure.net', credential });
    expect(vault.vaultKind).toBe('vault');
    expect(vault.capabilities.context).toBe('emulated');
    expect(vault.capabilities.keySpecs.AES_256).toBeUndefined();
    expect(hsm.vaultKind).toBe('managedHsm');
    expect(hsm.capabilities.context).toBe('native');
    expect(hsm.capabilities.keySpecs.AES_256).toEqual(['encrypt_decrypt']);
  });

  it('refuses http URLs, no vault at all, and a vault and an HSM in one provider', () => {
    expect(() => new AzureKeyVaultProvider({ vaultUrl: 'http://kp.vault.azure.net', credential })).toThrow(
      /https/,
    );
    expect(() => new AzureKeyVaultProvider({ credential })).toThrow(/at least one vault/);
    expect(
      () =>
        new AzureKeyVaultProvider({
          vaultUrl: ['https://a.vault.azure.net', 'https://b.managedhsm.azure.net'],
          credential,
        }),
    ).toThrow(/one vault kind/);
  });

  it('a key URI naming a vault the provider was not given is refused before any request', async () => {
    const p = new AzureKeyVaultProvider({ vaultUrl: 'https://kp.vault.azure.net', credential });
    await expect(
      p.describeKey({ uri: 'azurekeyvault://evil.vault.azure.net/keys/k' }, call),
    ).rejects.toMatchObject({ code: 'InvalidArgument' });
    await expect(p.createKey({ name: 'bad name!', spec: 'RSA_2048' }, call)).rejects.toMatchObject({
      code: 'InvalidArgument',
    });
    // A version given beside the URI reaches the request path only if it is a Key Vault version id.
    for (const version of ['..', '../../keys/other', 'a/b', 'v?x=1']) {
      await expect(
        p.encrypt({ uri: 'azurekeyvault://kp.vault.azure.net/keys/k', version }, new Uint8Array(1), {}, call),
      ).rejects.toMatchObject({ code: 'InvalidArgument' });
    }
  });

  it('remembers resolved refs per URI and version, and never lets a bad ref match a good one', () => {
    const p = new AzureKeyVaultProvider({ vaultUrl: 'https://kp.vault.azure.net', credential });
    const rpc = (p as unknown as { rpc: { resolve(ref: { uri: string; version?: string }): unknown } }).rpc;
    const uri = 'azurekeyvault://kp.vault.azure.net/keys/k';
    expect(rpc.resolve({ uri })).toMatchObject({ name: 'k', version: undefined });
    expect(rpc.resolve({ uri, version: 'v1' })).toMatchObject({ name: 'k', version: 'v1' });
    expect(rpc.resolve({ uri: `${uri}/v2` })).toMatchObject({ name: 'k', version: 'v2' });
    expect(rpc.resolve({ uri })).toMatchObject({ version: undefined });
    // Strings that would spell a remembered entry's id if ids were joined naively.
    for (const bad of [`${uri}\nv1`, JSON.stringify([uri, 'v1']), `["${uri}","v1"]`]) {
      expect(() => rpc.resolve({ uri: bad })).toThrow(expect.objectContaining({ code: 'InvalidArgument' }));
    }
    expect(() => rpc.resolve({ uri, version: 'v1/../x' })).toThrow(
      expect.objectContaining({ code: 'InvalidArgument' }),
    );
  });
});

describe('ECDSA signature encoding', () => {
  it('raw r||s and DER convert both ways, including leading zero and high-bit halves', () => {
    for (const [r0, s0] of [
      [0x00, 0x80],
      [0x7f, 0x01],
      [0xff, 0x00],
    ] as const) {
      const raw = new Uint8Array(64).fill(0x11);
      raw[0] = r0;
      raw[32] = s0;
      const der = rawToDer(raw);
      expect(der[0]).toBe(0x30);
      expect(Buffer.from(derToRaw(der, 32) ?? []).equals(Buffer.from(raw))).toBe(true);
    }
  });

  it('malformed DER is not a signature', () => {
    expect(derToRaw(new Uint8Array([0x30, 0x02, 0x02, 0x00]), 32)).toBeUndefined();
    expect(derToRaw(new Uint8Array([0x31, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01]), 32)).toBeUndefined();
    expect(derToRaw(new Uint8Array([0x30, 0x06, 0x02, 0x01, 0x81, 0x02, 0x01, 0x01]), 32)).toBeUndefined();
  });
});
