/**
 * `keyport import` (BYOK) against SoftHSM2 (the HSM), local-kms (AWS KMS import) and OpenBao
 * (transit import): the key is generated in the HSM, wrapped inside it, imported, recorded in the
 * manifest, and an envelope sealed to the HSM key opens with the cloud copy alone.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { type HsmKeyExporter, importHsmKey } from '@keyport/byok';
import { Keyport, KeyportError } from '@keyport/core';
import { Pkcs11Provider } from '@keyport/pkcs11';
import { VaultTransitProvider } from '@keyport/vault-transit';
import { describe, expect, it } from 'vitest';
import { localWorkspace, ndjson, requireEmulator, runCli } from './support/cli.js';

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

/**
 * A relay in front of local-kms that runs `before` on the first request of the AWS KMS operation
 * `operation` (before forwarding it): a way to change the manifest at a known point of the
 * command (after its check, before the import), which no emulator offers.
 */
async function kmsRelay(upstream: string, operation: string, before: () => Promise<void>) {
  let fired = false;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      if (!fired && req.headers['x-amz-target'] === `TrentService.${operation}`) {
        fired = true;
        await before();
      }
      const up = new URL(upstream);
      const forward = request(
        {
          host: up.hostname,
          port: up.port,
          method: req.method,
          path: req.url,
          headers: { ...req.headers, host: up.host },
        },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      forward.on('error', () => res.destroy());
      forward.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    fired: () => fired,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The byok workspace with its aws-kms provider reached through `endpoint`. */
async function throughRelay(ws: { dir: string }, endpoint: string): Promise<void> {
  const path = join(ws.dir, 'keyport.config.json');
  const config = JSON.parse(await readFile(path, 'utf8'));
  config.providers['aws-kms'].endpoint = endpoint;
  await writeFile(path, JSON.stringify(config));
}

describe('keyport import --create-target run again after a run that stopped', () => {
  /** The manifest as a run killed while generating `hsmName` for `targetUri` leaves it. */
  async function stoppedWhileGenerating(cwd: string, hsmName: string, targetUri: string) {
    const manifest = {
      format: 'keyport-byok-manifest/1',
      pairings: [],
      generating: [
        {
          hsm: { scheme: 'pkcs11', name: hsmName, marker: 'ab'.repeat(16) },
          target: { uri: targetUri },
          startedAt: new Date().toISOString(),
        },
      ],
    };
    await writeFile(join(cwd, 'keyport-byok.json'), JSON.stringify(manifest));
  }

  for (const provider of ['local', 'aws-kms'] as const) {
    it(`${provider}: goes on into the target the manifest records this import as started on`, async () => {
      const { ws, env } = await byokWorkspace();
      const cwd = ws.dir;
      const name = `resume-${provider}-${run}`;
      const hsmName = `${name}-hsm`;
      // The first run: it created the target, recorded the HSM key's generation, and was killed.
      const created = await runCli(['--json', 'keys', 'create', name, '-p', provider, '--external'], {
        cwd,
        env,
      });
      expect(created.code, created.stderr).toBe(0);
      const targetUri = JSON.parse(created.stdout).uri as string;
      await stoppedWhileGenerating(cwd, hsmName, targetUri);

      // Before: the same command stopped at AlreadyExists for the target it had created.
      const again = ['--json', 'import', name, '--create-target', '-p', provider, '--new-hsm-key', hsmName];
      const r = await runCli(again, { cwd, env });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      const pairing = JSON.parse(r.stdout);
      expect(pairing.target.uri).toBe(targetUri);
      expect(pairing.hsm.label).toBe(hsmName);
      expect(ndjson(r.stderr).find((e) => 'note' in e)?.note).toContain('continues into it');
      const manifest = JSON.parse(await readFile(join(cwd, 'keyport-byok.json'), 'utf8'));
      const { hsm, target, importedAt } = pairing;
      expect(manifest).toEqual({
        format: 'keyport-byok-manifest/1',
        pairings: [{ hsm, target, importedAt }],
      });
      const described = await runCli(['--json', 'keys', 'describe', targetUri], { cwd, env });
      expect(JSON.parse(described.stdout).state).toBe('enabled');
    });
  }

  it('transit: the same command after an import whose answer was lost (the key is on the server) records the pairing', async () => {
    const { ws, env, baoHost } = await byokWorkspace();
    const cwd = ws.dir;
    const softhsm = requireEmulator('softhsm');
    const bao = requireEmulator('openbao');
    const transitUri = `hcvault://${baoHost}/transit/keys/cli-lost-${run}`;
    const hsmName = `cli-lost-${run}-hsm`;
    // The first run, in process: the import landed and its answer was lost.
    const keyport = new Keyport({
      providers: [
        await Pkcs11Provider.open({
          modulePath: softhsm.KEYPORT_SOFTHSM_MODULE,
          token: { label: softhsm.KEYPORT_SOFTHSM_TOKEN },
          pin: { env: 'KEYPORT_SOFTHSM_PIN' },
        }),
        new VaultTransitProvider({
          endpoint: bao.KEYPORT_OPENBAO_ADDR,
          auth: bao.KEYPORT_OPENBAO_TOKEN,
          flavor: 'openbao',
        }),
      ],
    });
    try {
      await keyport.createKey('hcvault', { name: transitUri, spec: 'AES_256', external: true });
      const lost = new Proxy(keyport, {
        get(k, name) {
          if (name === 'importKeyMaterial')
            return async (...args: Parameters<Keyport['importKeyMaterial']>) => {
              await k.importKeyMaterial(...args);
              throw new KeyportError('Timeout', 'no answer', { provider: 'hcvault' });
            };
          const value: unknown = Reflect.get(k, name, k);
          return typeof value === 'function' ? value.bind(k) : value;
        },
      });
      await expect(
        importHsmKey({
          keyport: lost,
          hsm: keyport.provider('pkcs11') as unknown as HsmKeyExporter,
          hsmKey: { create: { name: hsmName } },
          target: { uri: transitUri },
          manifestPath: join(cwd, 'keyport-byok.json'),
        }),
      ).rejects.toMatchObject({ code: 'Timeout' });
    } finally {
      await keyport.close();
    }
    // Before: AlreadyExists (announcing the transit key found it on the server).
    const r = await runCli(['--json', 'import', transitUri, '--new-hsm-key', hsmName], { cwd, env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const pairing = JSON.parse(r.stdout);
    expect(pairing.target.uri).toBe(transitUri);
    const manifest = JSON.parse(await readFile(join(cwd, 'keyport-byok.json'), 'utf8'));
    expect(manifest.pairings).toHaveLength(1);
    expect(manifest.pending).toBeUndefined();
    expect(manifest.generating).toBeUndefined();
  });

  it('a manifest the import would refuse (missing directory, FIFO, symlink) is refused before --create-target makes a key', async () => {
    const { ws, env } = await byokWorkspace();
    const cwd = ws.dir;
    await mkdir(join(cwd, 'real'));
    await writeFile(join(cwd, 'real', 'm.json'), '{"format":"keyport-byok-manifest/1","pairings":[]}');
    await symlink(join(cwd, 'real', 'm.json'), join(cwd, 'link.json'));
    execFileSync('mkfifo', [join(cwd, 'fifo.json')]);
    for (const [i, manifest] of ['missing/m.json', 'fifo.json', 'link.json'].entries()) {
      const name = `early-${i}-${run}`;
      const r = await runCli(
        [
          '--json',
          'import',
          name,
          '--create-target',
          '-p',
          'local',
          '--new-hsm-key',
          `${name}-hsm`,
          '--manifest',
          manifest,
        ],
        { cwd, env },
      );
      expect(r.code, r.stderr).not.toBe(0);
      expect(JSON.parse(r.stderr.trim().split('\n').at(-1) as string).error.code).toBe('InvalidArgument');
      // Before: the target was created first, and left waiting for its material.
      expect(ndjson(r.stderr).some((e) => 'note' in e)).toBe(false);
      expect((await runCli(['keys', 'describe', ws.uri(name)], { cwd, env })).code).toBe(3);
    }
  });

  it('decides on the manifest it checked: one replaced by a damaged file before the decision is reported as damaged, not as recording nothing', async () => {
    const { ws, env } = await byokWorkspace();
    const cwd = ws.dir;
    const name = `reread-${run}`;
    const hsmName = `${name}-hsm`;
    const created = await runCli(['--json', 'keys', 'create', name, '-p', 'aws-kms', '--external'], {
      cwd,
      env,
    });
    expect(created.code, created.stderr).toBe(0);
    const targetUri = JSON.parse(created.stdout).uri as string;
    await stoppedWhileGenerating(cwd, hsmName, targetUri);
    // After the command checked the manifest (it records this import on the target), and before
    // it decides on the target it meets (CreateKey, then the alias taken): the file is damaged.
    const relay = await kmsRelay(requireEmulator('local-kms').KEYPORT_LOCALKMS_ENDPOINT, 'CreateKey', () =>
      writeFile(join(cwd, 'keyport-byok.json'), '{"format": damaged'),
    );
    try {
      await throughRelay(ws, relay.endpoint);
      const r = await runCli(
        ['--json', 'import', name, '--create-target', '-p', 'aws-kms', '--new-hsm-key', hsmName],
        { cwd, env },
      );
      expect(relay.fired()).toBe(true);
      // Before: the second read failed, was taken for a manifest recording nothing, and the
      // command said "records no import of this HSM key into it" (AlreadyExists) of a manifest
      // that recorded it when checked.
      const error = JSON.parse(r.stderr.trim().split('\n').at(-1) as string).error;
      expect(error.message).not.toContain('records no import');
      expect(ndjson(r.stderr).find((e) => 'note' in e)?.note).toContain('continues into it');
      // The import itself reads the manifest to write to it, and refuses the damaged file.
      expect(r.code, r.stderr).not.toBe(0);
      expect(error).toMatchObject({ code: 'Integrity', message: expect.stringContaining('is not JSON') });
      expect(
        JSON.parse((await runCli(['--json', 'keys', 'describe', targetUri], { cwd, env })).stdout).state,
      ).toBe('pending_import');
    } finally {
      await relay.close();
    }
  });

  it('a failed import whose manifest cannot be read afterwards says so, not that the manifest records nothing', async () => {
    const { ws, env } = await byokWorkspace();
    const cwd = ws.dir;
    const name = `unreadable-after-${run}`;
    const relay = await kmsRelay(requireEmulator('local-kms').KEYPORT_LOCALKMS_ENDPOINT, 'CreateKey', () =>
      writeFile(join(cwd, 'keyport-byok.json'), 'not a manifest'),
    );
    try {
      await throughRelay(ws, relay.endpoint);
      const r = await runCli(
        ['--json', 'import', name, '--create-target', '-p', 'aws-kms', '--new-hsm-key', `${name}-hsm`],
        { cwd, env },
      );
      expect(relay.fired()).toBe(true);
      expect(r.code, r.stderr).not.toBe(0);
      expect(JSON.parse(r.stderr.trim().split('\n').at(-1) as string).error.code).toBe('Integrity');
      const note = ndjson(r.stderr).find((e) => 'note' in e)?.note as string;
      expect(note).toContain('was created (--create-target) and is left waiting for its material');
      // Before: "import into it by its URI", as if the manifest had been read and recorded nothing.
      expect(note).toContain('whether the manifest "keyport-byok.json" records this import cannot be told');
      expect(note).toContain('is not JSON');
    } finally {
      await relay.close();
    }
  });

  it('a rerun given a manifest that does not exist is refused, saying the manifest records nothing at all', async () => {
    const { ws, env } = await byokWorkspace();
    const cwd = ws.dir;
    const name = `no-manifest-${run}`;
    const created = await runCli(['--json', 'keys', 'create', name, '-p', 'aws-kms', '--external'], {
      cwd,
      env,
    });
    expect(created.code, created.stderr).toBe(0);
    const r = await runCli(
      [
        '--json',
        'import',
        name,
        '--create-target',
        '-p',
        'aws-kms',
        '--new-hsm-key',
        `${name}-hsm`,
        '--manifest',
        'misspelt.json',
      ],
      { cwd, env },
    );
    expect(r.code, r.stdout + r.stderr).toBe(1);
    const error = JSON.parse(r.stderr.trim().split('\n').at(-1) as string).error;
    expect(error.code).toBe('AlreadyExists');
    expect(error.message).toContain('"misspelt.json" records no import of this HSM key into it');
    expect(error.message).toContain('it records nothing at all: it is new or does not exist');
    // Refused before anything was written: no manifest appeared.
    await expect(readFile(join(cwd, 'misspelt.json'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses a target of that name the manifest does not record, even pending_import and AES_256, saying how to go on', async () => {
    const { ws, env } = await byokWorkspace();
    const cwd = ws.dir;
    const name = `foreign-${run}`;
    // Someone's pending key of the name (or a first run stopped before the HSM key was generated).
    const created = await runCli(['--json', 'keys', 'create', name, '-p', 'aws-kms', '--external'], {
      cwd,
      env,
    });
    expect(created.code, created.stderr).toBe(0);
    const targetUri = JSON.parse(created.stdout).uri as string;
    // The manifest records this HSM key for another target only.
    await stoppedWhileGenerating(cwd, `${name}-hsm`, ws.uri('elsewhere'));
    const before = await readFile(join(cwd, 'keyport-byok.json'), 'utf8');
    const r = await runCli(
      ['--json', 'import', name, '--create-target', '-p', 'aws-kms', '--new-hsm-key', `${name}-hsm`],
      { cwd, env },
    );
    expect(r.code, r.stdout + r.stderr).toBe(1);
    const error = JSON.parse(r.stderr.trim().split('\n').at(-1) as string).error;
    expect(error.code).toBe('AlreadyExists');
    expect(error.keyUri).toBe(targetUri);
    expect(error.message).toContain('records no import of this HSM key into it');
    expect(error.message).toContain(`keyport import ${targetUri} --new-hsm-key ${name}-hsm`);
    // Nothing generated, nothing imported, nothing recorded.
    expect(await readFile(join(cwd, 'keyport-byok.json'), 'utf8')).toBe(before);
    const described = await runCli(['--json', 'keys', 'describe', targetUri], { cwd, env });
    expect(JSON.parse(described.stdout).state).toBe('pending_import');
  });
});
