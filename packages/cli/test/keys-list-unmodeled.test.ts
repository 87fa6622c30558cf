/**
 * `keyport keys list` on a Vault transit mount holding a key keyport has no spec for (ed25519):
 * the key is shown apart, with why, in the table and in the JSON, never dropped in silence.
 */
import { VaultTransitProvider } from '@keyport/vault-transit';
import { describe, expect, it } from 'vitest';
import { localWorkspace, requireEmulator, runCli } from './support/cli.js';

describe('keys list and keys keyport has no spec for', () => {
  it('shows an ed25519 transit key apart, with the reason, in text and JSON', async () => {
    const bao = requireEmulator('openbao');
    const provider = new VaultTransitProvider({
      endpoint: bao.KEYPORT_OPENBAO_ADDR,
      auth: bao.KEYPORT_OPENBAO_TOKEN,
      flavor: 'openbao',
    });
    const name = `cli-ed-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
    try {
      await provider.createTransitKey(name, 'ed25519');
    } finally {
      await provider.close();
    }
    const uri = `hcvault://${new URL(bao.KEYPORT_OPENBAO_ADDR).host}/transit/keys/${name}`;
    const ws = await localWorkspace({
      hcvault: { address: bao.KEYPORT_OPENBAO_ADDR, flavor: 'openbao', tokenEnv: 'BAO_TOKEN' },
    });
    const env = { BAO_TOKEN: bao.KEYPORT_OPENBAO_TOKEN };
    const json = await runCli(['--json', 'keys', 'list', 'hcvault'], { cwd: ws.dir, env });
    expect(json.code).toBe(0);
    const listed = JSON.parse(json.stdout) as { keys: { uri: string }[]; unmodeled: unknown[] };
    expect(listed.keys.map((k) => k.uri)).not.toContain(uri);
    expect(listed.unmodeled).toContainEqual({
      uri,
      reason: 'keyport has no key spec for transit ed25519 keys',
    });
    const text = await runCli(['keys', 'list', 'hcvault'], { cwd: ws.dir, env });
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('keys keyport cannot describe (listed, not usable through keyport):');
    expect(text.stdout).toMatch(new RegExp(`${uri}\\s+keyport has no key spec for transit ed25519 keys`));
  });
});
