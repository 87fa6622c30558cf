/**
 * Several instances of one provider in one CLI config: `aws-kms` on moto and `aws-kms+dr` on
 * local-kms as two AWS accounts. `keyport migrate` moves envelopes from the first to the second in
 * one run; the config grammar for instance names is strict.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { awsKms } from '@keyport/aws-kms';
import { Keyport } from '@keyport/core';
import { openEnvelope } from '@keyport/envelope';
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../src/index.js';
import { localWorkspace, requireEmulator, runCli } from './support/cli.js';
import { sealFiles, sha256 } from './support/seal.js';

const credentials = { accessKeyId: 'testing', secretAccessKey: 'testing' };
const env = {
  AWS_ACCESS_KEY_ID: 'testing',
  AWS_SECRET_ACCESS_KEY: 'testing',
  AWS_REGION: 'us-east-1',
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
};

describe('named provider instances in the CLI config', () => {
  it('keyport migrate moves envelopes from aws-kms (moto) to aws-kms+dr (local-kms)', async () => {
    const moto = requireEmulator('moto').KEYPORT_MOTO_ENDPOINT as string;
    const localKms = requireEmulator('local-kms').KEYPORT_LOCALKMS_ENDPOINT as string;
    const ws = await localWorkspace({
      'aws-kms': { region: 'us-east-1', endpoint: moto },
      'aws-kms+dr': { region: 'us-east-1', endpoint: localKms },
    });
    const both = new Keyport({
      providers: {
        'aws-kms': awsKms({ region: 'us-east-1', endpoint: moto, credentials }),
        dr: awsKms({ region: 'us-east-1', endpoint: localKms, credentials }),
      },
    });
    const name = `instances-${Date.now().toString(36)}`;
    const fromUri = (await both.createKey('aws-kms', { name, spec: 'AES_256' })).uri;
    const toUri = (await both.createKey('dr', { name, spec: 'AES_256' })).uri;
    expect(fromUri).toMatch(/^aws-kms:\/\/arn:/);
    expect(toUri).toMatch(/^aws-kms\+dr:\/\/arn:/);
    const digests = await sealFiles(both, fromUri, join(ws.dir, 'data'), 12);

    const r = await runCli(
      ['--json', 'migrate', '--from', fromUri, '--to', toUri, '--remove-source', 'data'],
      { cwd: ws.dir, env },
    );
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ total: 12, migrated: 12, failed: 0 });

    // The second account's key alone opens every file; the first account's key no longer does.
    const drOnly = new Keyport({
      providers: { dr: awsKms({ region: 'us-east-1', endpoint: localKms, credentials }) },
    });
    for (const [file, digest] of digests) {
      const bytes = await readFile(file);
      const opened = await openEnvelope(bytes, { trust: [toUri], keys: drOnly });
      expect(sha256(opened.plaintext)).toBe(digest);
      await expect(openEnvelope(bytes, { trust: [fromUri], keys: both })).rejects.toMatchObject({
        code: 'InvalidCiphertext',
      });
    }
    // And through the CLI, by the instance's URI.
    const [first] = [...digests.keys()];
    const dec = await runCli(['decrypt', first as string, '-k', toUri, '-o', 'plain'], { cwd: ws.dir, env });
    expect(dec.code, dec.stderr).toBe(0);
    expect(sha256(await readFile(join(ws.dir, 'plain')))).toBe(digests.get(first as string));
    await Promise.all([both.close(), drOnly.close()]);
  });

  it('a command builds only the instances its URIs address', async () => {
    const localKms = requireEmulator('local-kms').KEYPORT_LOCALKMS_ENDPOINT as string;
    // The plain aws-kms instance and hcvault cannot be built (no token): never touched.
    const ws = await localWorkspace({
      'aws-kms+dr': { region: 'us-east-1', endpoint: localKms },
      hcvault: { address: 'http://127.0.0.1:1', tokenEnv: 'UNSET_TOKEN_FOR_TEST' },
    });
    const dr = new Keyport({
      providers: { dr: awsKms({ region: 'us-east-1', endpoint: localKms, credentials }) },
    });
    const uri = (await dr.createKey('dr', { name: `lazy-${Date.now().toString(36)}`, spec: 'AES_256' })).uri;
    await dr.close();
    const cwd = ws.dir;
    const enc = await runCli(['encrypt', '-', '-o', 'm', '-r', uri], { cwd, env, stdin: 'only dr' });
    expect(enc.code, enc.stderr).toBe(0);
    const dec = await runCli(['decrypt', 'm', '-k', uri], { cwd, env });
    expect(dec.code, dec.stderr).toBe(0);
    expect(dec.stdout).toBe('only dr');
    // A plain aws-kms:// URI goes to the only aws-kms instance, as in core.
    const plain = uri.replace('aws-kms+dr://', 'aws-kms://');
    const dec2 = await runCli(['decrypt', 'm', '-k', plain], { cwd, env });
    expect(dec2.code, dec2.stderr).toBe(0);
    // keys create/list address an instance by its config key or its name alone.
    const suffix = Date.now().toString(36);
    for (const provider of ['aws-kms+dr', 'dr']) {
      const created = await runCli(
        ['--json', 'keys', 'create', `k${provider.length}-${suffix}`, '--provider', provider],
        {
          cwd,
          env,
        },
      );
      expect(created.code, created.stderr).toBe(0);
      expect(JSON.parse(created.stdout).uri).toMatch(/^aws-kms\+dr:\/\/arn:aws:kms:/);
    }
    const listed = await runCli(['--json', 'keys', 'list', 'aws-kms+dr'], { cwd, env });
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toContain(uri);
    for (const provider of ['aws-kms+dr', 'dr']) {
      const caps = await runCli(['--json', 'capabilities', provider], { cwd, env });
      expect(caps.code, caps.stderr).toBe(0);
      expect(JSON.parse(caps.stdout).providers[provider]).toHaveProperty('keySpecs');
    }
    // An instance the config lacks is named in the error.
    const missing = await runCli(['decrypt', 'm', '-k', uri.replace('+dr', '+eu')], { cwd, env });
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('aws-kms+eu');
  });
});

describe('instance names in the config', () => {
  const cfg = (providers: string): string => `{"providers":${providers}}`;

  it('accepts <scheme>+<name> beside the plain scheme; every old config stays valid', () => {
    const c = parseConfigText(
      cfg(
        '{"aws-kms":{"region":"eu-west-1"},"aws-kms+dr":{"region":"eu-central-1","endpoint":"http://127.0.0.1:4599"},"hcvault+eu":{"address":"http://vault.eu:8200"},"pkcs11+hsm":{"module":"/m.so","token":"prod"}}',
      ),
      'c.json',
    );
    expect(Object.keys(c.providers)).toEqual(['aws-kms', 'aws-kms+dr', 'hcvault+eu', 'pkcs11+hsm']);
  });

  it.each([
    ['aws-kms+', 'not a provider'],
    ['aws-kms+Dr', 'not a provider'],
    ['aws-kms+1dr', 'not a provider'],
    ['aws-kms+dr+x', 'not a provider'],
    ['acme+dr', 'not a provider'],
    ['__proto__', 'not a provider'],
    ['aws-kms+local', 'is a provider scheme'],
    ['aws-kms+aws-kms', 'is a provider scheme'],
  ])('refuses the key %s', (key, message) => {
    expect(() => parseConfigText(cfg(`{${JSON.stringify(key)}:{"region":"x"}}`), 'c.json')).toThrow(message);
  });

  it('refuses one name for two instances, and checks each instance as its scheme', () => {
    expect(() =>
      parseConfigText(
        cfg('{"aws-kms+dr":{"region":"x"},"hcvault+dr":{"address":"http://v:8200"}}'),
        'c.json',
      ),
    ).toThrow(/providers\.hcvault\+dr: the instance name "dr" is already used by aws-kms\+dr/);
    expect(() => parseConfigText(cfg('{"aws-kms+dr":{"endpoint":"ftp://x"}}'), 'c.json')).toThrow(
      /providers\.aws-kms\+dr\.endpoint: must be an http\(s\):\/\/ URL/,
    );
    expect(() => parseConfigText(cfg('{"aws-kms+dr":{"regoin":"x"}}'), 'c.json')).toThrow(
      /providers\.aws-kms\+dr: .*regoin/,
    );
    expect(() =>
      parseConfigText(cfg('{"hcvault+eu":{"address":"http://v:8200","token":"s3cr3t"}}'), 'c.json'),
    ).toThrow(/providers\.hcvault\+eu\.token: secrets never go in the config file/);
  });

  it("a key URI's ?endpoint= reaches only the instance's endpoint or its allowedEndpoints", async () => {
    const moto = requireEmulator('moto').KEYPORT_MOTO_ENDPOINT as string;
    const localKms = requireEmulator('local-kms').KEYPORT_LOCALKMS_ENDPOINT as string;
    const other = new Keyport({
      providers: [awsKms({ region: 'us-east-1', endpoint: localKms, credentials })],
    });
    const arn = (
      await other.createKey('aws-kms', { name: `ep-${Date.now().toString(36)}`, spec: 'AES_256' })
    ).uri.replace(/\?.*$/, '');
    await other.close();
    const uri = `${arn}?endpoint=${localKms}`;
    const refused = await localWorkspace({ 'aws-kms': { region: 'us-east-1', endpoint: moto } });
    const r = await runCli(['encrypt', '-', '-o', 'm', '-r', uri], {
      cwd: refused.dir,
      env,
      stdin: 'secret words',
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('not configured for');
    expect(r.stderr).not.toContain('secret words');
    const allowed = await localWorkspace({
      'aws-kms': { region: 'us-east-1', endpoint: moto, allowedEndpoints: [localKms] },
    });
    const enc = await runCli(['encrypt', '-', '-o', 'm', '-r', uri], {
      cwd: allowed.dir,
      env,
      stdin: 'secret words',
    });
    expect(enc.code, enc.stderr).toBe(0);
    const dec = await runCli(['decrypt', 'm', '-k', uri], { cwd: allowed.dir, env });
    expect(dec.code, dec.stderr).toBe(0);
    expect(dec.stdout).toBe('secret words');
    expect(() =>
      parseConfigText('providers:\n  aws-kms: { allowedEndpoints: ["ftp://x"] }\n', 'c.yaml'),
    ).toThrow(/providers\.aws-kms\.allowedEndpoints\[0\]: must be an http\(s\):\/\/ URL/);
  });
});
