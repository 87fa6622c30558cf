/**
 * `keyport audit anchor` through other providers' signing keys: AWS KMS (moto) and OpenBao
 * transit, started by the harness. The signed head verifies with the key that signed it and
 * with no other.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { localWorkspace, requireEmulator, runCli } from './support/cli.js';

async function workspace() {
  const moto = await requireEmulator('moto');
  const bao = await requireEmulator('openbao');
  const ws = await localWorkspace(
    {
      'aws-kms': { region: 'us-east-1', endpoint: moto.KEYPORT_MOTO_ENDPOINT },
      hcvault: { address: bao.KEYPORT_OPENBAO_ADDR, flavor: 'openbao' },
    },
    { audit: { log: 'audit.jsonl' } },
  );
  const env = {
    KEYPORT_VAULT_TOKEN: bao.KEYPORT_OPENBAO_TOKEN,
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
    AWS_REGION: 'us-east-1',
  };
  return { ws, env, cwd: ws.dir };
}

describe('audit anchor with cloud signing keys', () => {
  it.each([
    ['aws-kms', 'AWS KMS (moto)'],
    ['hcvault', 'OpenBao transit'],
  ])('signs and verifies the head with an EC P-256 key of %s (%s)', async (provider) => {
    const { ws, env, cwd } = await workspace();
    const name = `audit-anchor-${Date.now().toString(36)}`;
    const created = await runCli(
      ['--json', 'keys', 'create', name, '--provider', provider, '--spec', 'EC_P256'],
      {
        cwd,
        env,
      },
    );
    expect(created.code, created.stdout + created.stderr).toBe(0);
    const signer = JSON.parse(created.stdout).uri as string;
    await runCli(['keys', 'create', 'k'], { cwd, env });
    await runCli(['encrypt', '-r', ws.uri('k'), '-o', 'm'], { cwd, env, stdin: 'x' });

    const signed = await runCli(['audit', 'anchor', '--key', signer, '-o', 'head.sig.json'], { cwd, env });
    expect(signed.code, signed.stdout + signed.stderr).toBe(0);
    const doc = JSON.parse(await readFile(join(cwd, 'head.sig.json'), 'utf8'));
    expect(doc.keyUri).toBe(signer);

    const ok = await runCli(
      ['--json', 'audit', 'verify', '--anchor-signature', 'head.sig.json', '--signing-key', signer],
      { cwd, env },
    );
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout).signed).toEqual({ count: doc.count, head: doc.head });

    // The same document with a head it did not sign fails.
    const forged = { ...doc, head: 'ab'.repeat(32) };
    await writeFile(join(cwd, 'forged.sig.json'), JSON.stringify(forged));
    const bad = await runCli(
      ['audit', 'verify', '--anchor-signature', 'forged.sig.json', '--signing-key', signer],
      {
        cwd,
        env,
      },
    );
    expect(bad.code).toBe(6);
  });
});
