/**
 * `keyport import` (BYOK) against SoftHSM2 (the HSM), local-kms (AWS KMS import) and OpenBao
 * (transit import): the key is generated in the HSM, wrapped inside it, imported, recorded in the
 * manifest, and an envelope sealed to the HSM key opens with the cloud copy alone.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { localWorkspace, requireEmulator, runCli } from './support/cli.js';

const run = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e4).toString(36)}`;

async function byokWorkspace() {
  const hsm = requireEmulator('softhsm');
  const kms = requireEmulator('local-kms');
  const bao = requireEmulator('openbao');
  const ws = await localWorkspace({
    pkcs11: { module: hsm.KEYPORT_SOFTHSM_MODULE, token: hsm.KEYPORT_SOFTHSM_TOKEN },
    'aws-kms': { region: 'us-east-1', endpoint: kms.KEYPORT_LOCALKMS_ENDPOINT },
    hcvault: { address: bao.KEYPORT_OPENBAO_ADDR, flavor: 'openbao' },
  });
  const env = {
    KEYPORT_PKCS11_PIN: hsm.KEYPORT_SOFTHSM_PIN,
    KEYPORT_VAULT_TOKEN: bao.KEYPORT_OPENBAO_TOKEN,
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
    AWS_REGION: 'us-east-1',
  };
  return { ws, env, baoHost: new URL(bao.KEYPORT_OPENBAO_ADDR).host, pin: hsm.KEYPORT_SOFTHSM_PIN };
}

describe('keyport import (BYOK)', () => {
  it('generates a key in the HSM, imports it into AWS KMS (local-kms), and either side opens alone', async () => {
    const { ws, env } = await byokWorkspace();
    const cwd = ws.dir;
    const r = await runCli(
      [
        '--json',
        'import',
        `cli-aws-${run}`,
        '--create-target',
        '--provider',
        'aws-kms',
        '--new-hsm-key',
        `cli-root-${run}`,
        '--manifest',
        'byok.json',
      ],
      { cwd, env },
    );
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const pairing = JSON.parse(r.stdout);
    expect(pairing.target).toMatchObject({ scheme: 'aws-kms', wrappingAlgorithm: 'RSAES_OAEP_SHA_1' });
    const hsmUri = pairing.hsm.uri as string;
    const awsUri = pairing.target.uri as string;
    expect(hsmUri).toMatch(/^pkcs11:/);
    const manifest = JSON.parse(await readFile(join(cwd, 'byok.json'), 'utf8'));
    expect(manifest.pairings.map((p: { target: { uri: string } }) => p.target.uri)).toEqual([awsUri]);
    expect(
      JSON.parse((await runCli(['--json', 'keys', 'describe', awsUri], { cwd, env })).stdout).state,
    ).toBe('enabled');

    await writeFile(join(cwd, 'p'), 'born in the HSM');
    const enc = await runCli(['encrypt', 'p', '-o', 'm', '-r', hsmUri, '--context', 'app=byok'], {
      cwd,
      env,
    });
    expect(enc.code, enc.stderr).toBe(0);
    // An envelope to both recipients opens with either key alone.
    const both = await runCli(['encrypt', 'p', '-o', 'm2', '-r', hsmUri, '-r', awsUri], { cwd, env });
    expect(both.code, both.stderr).toBe(0);
    for (const k of [hsmUri, awsUri]) {
      const dec = await runCli(['decrypt', 'm2', '-k', k], { cwd, env });
      expect(dec.code, dec.stderr).toBe(0);
      expect(dec.stdout).toBe('born in the HSM');
    }
    const byHsm = await runCli(['decrypt', 'm', '-k', hsmUri, '--context', 'app=byok'], { cwd, env });
    expect(byHsm.stdout).toBe('born in the HSM');
  });

  it('refuses a non-exportable HSM key (nothing imported), then imports a new one into OpenBao transit; either side opens alone', async () => {
    const { ws, env, baoHost } = await byokWorkspace();
    const cwd = ws.dir;
    const created = await runCli(['--json', 'keys', 'create', `cli-hsm-${run}`, '--provider', 'pkcs11'], {
      cwd,
      env,
    });
    expect(created.code, created.stderr).toBe(0);
    // A key created without export permission cannot be wrapped out: nothing is imported.
    const plainHsmKey = JSON.parse(created.stdout).uri as string;
    const transitUri = `hcvault://${baoHost}/transit/keys/cli-byok-${run}`;
    const refused = await runCli(['--json', 'import', transitUri, '--hsm-key', plainHsmKey], { cwd, env });
    expect(refused.code, refused.stdout).toBe(1);
    expect(JSON.parse(refused.stderr).error.code).toBe('KeyStateConflict');
    expect((await runCli(['keys', 'describe', transitUri], { cwd, env })).code).toBe(3);

    const r = await runCli(['--json', 'import', transitUri, '--new-hsm-key', `cli-root2-${run}`], {
      cwd,
      env,
    });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const pairing = JSON.parse(r.stdout);
    expect(pairing.target).toMatchObject({ uri: transitUri, scheme: 'hcvault', version: '1' });
    const manifest = JSON.parse(await readFile(join(cwd, 'keyport-byok.json'), 'utf8'));
    expect(manifest.pairings).toHaveLength(1);

    await writeFile(join(cwd, 'p'), 'one key, two homes');
    const enc = await runCli(['encrypt', 'p', '-o', 'm', '-r', transitUri, '-r', pairing.hsm.uri], {
      cwd,
      env,
    });
    expect(enc.code, enc.stderr).toBe(0);
    for (const k of [transitUri, pairing.hsm.uri as string]) {
      const dec = await runCli(['decrypt', 'm', '-k', k], { cwd, env });
      expect(dec.code, dec.stderr).toBe(0);
      expect(dec.stdout).toBe('one key, two homes');
    }
  });

  it('imports into a named Vault instance (hcvault+dr on openbao-dr), by URI and by --create-target --provider', async () => {
    const { ws, env, baoHost } = await byokWorkspace();
    const dr = requireEmulator('openbao-dr');
    const drHost = new URL(dr.KEYPORT_OPENBAO_DR_ADDR).host;
    const config = JSON.parse(await readFile(join(ws.dir, 'keyport.config.json'), 'utf8'));
    config.providers['hcvault+dr'] = {
      address: dr.KEYPORT_OPENBAO_DR_ADDR,
      flavor: 'openbao',
      tokenEnv: 'DR_BAO_TOKEN',
    };
    await writeFile(join(ws.dir, 'keyport.config.json'), JSON.stringify(config));
    const cwd = ws.dir;
    const drEnv = { ...env, DR_BAO_TOKEN: dr.KEYPORT_OPENBAO_DR_TOKEN };

    // By URI: the instance selector picks the cluster; the key is born there, not on the default one.
    const drUri = `hcvault+dr://${drHost}/transit/keys/cli-byok-dr-${run}`;
    const r = await runCli(['--json', 'import', drUri, '--new-hsm-key', `cli-root-dr-${run}`], {
      cwd,
      env: drEnv,
    });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const pairing = JSON.parse(r.stdout);
    expect(pairing.target).toMatchObject({ uri: drUri, version: '1' });
    const described = await runCli(['--json', 'keys', 'describe', drUri], { cwd, env: drEnv });
    expect(described.code, described.stderr).toBe(0);
    expect(JSON.parse(described.stdout)).toMatchObject({ uri: drUri, origin: 'external' });
    const onDefault = `hcvault://${baoHost}/transit/keys/cli-byok-dr-${run}`;
    expect((await runCli(['keys', 'describe', onDefault], { cwd, env: drEnv })).code).toBe(3);

    await writeFile(join(cwd, 'p'), 'one key, the second cluster');
    const enc = await runCli(['encrypt', 'p', '-o', 'm', '-r', pairing.hsm.uri], { cwd, env: drEnv });
    expect(enc.code, enc.stderr).toBe(0);
    const rewrapped = await runCli(['encrypt', 'p', '-o', 'm2', '-r', drUri, '-r', pairing.hsm.uri], {
      cwd,
      env: drEnv,
    });
    expect(rewrapped.code, rewrapped.stderr).toBe(0);
    for (const k of [drUri, pairing.hsm.uri as string]) {
      const dec = await runCli(['decrypt', 'm2', '-k', k], { cwd, env: drEnv });
      expect(dec.code, dec.stderr).toBe(0);
      expect(dec.stdout).toBe('one key, the second cluster');
    }

    // --create-target with the instance's name (or its config key) creates it on that cluster.
    for (const provider of ['dr', 'hcvault+dr']) {
      const name = `cli-byok-${provider.length}-${run}`;
      const c = await runCli(
        ['--json', 'import', name, '--create-target', '--provider', provider, '--new-hsm-key', `${name}-hsm`],
        { cwd, env: drEnv },
      );
      expect(c.code, c.stdout + c.stderr).toBe(0);
      expect(JSON.parse(c.stdout).target.uri).toBe(`hcvault+dr://${drHost}/transit/keys/${name}`);
    }
    const manifest = JSON.parse(await readFile(join(cwd, 'keyport-byok.json'), 'utf8'));
    expect(manifest.pairings).toHaveLength(3);
  });

  it('a wrong PIN is access denied (exit 4) and the PIN is never printed; bad flags are usage errors', async () => {
    const { ws, env } = await byokWorkspace();
    const cwd = ws.dir;
    const wrong = 'not-the-pin-31337';
    const r = await runCli(['import', 'aws-kms://alias/x', '--new-hsm-key', 'k'], {
      cwd,
      env: { ...env, KEYPORT_PKCS11_PIN: wrong },
    });
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/error AccessDenied/);
    expect(r.stderr + r.stdout).not.toContain(wrong);
    const unset = await runCli(['import', 'aws-kms://alias/x', '--new-hsm-key', 'k'], {
      cwd,
      env: { ...env, KEYPORT_PKCS11_PIN: '' },
    });
    expect(unset.code).toBe(2);
    expect(unset.stderr).toMatch(/KEYPORT_PKCS11_PIN/);
    const neither = await runCli(['import', 'aws-kms://alias/x'], { cwd, env });
    expect(neither.code).toBe(2);
    expect(neither.stderr).toMatch(/exactly one of --hsm-key <uri> or --new-hsm-key <name>/);
  });
});
