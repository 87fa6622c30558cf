/**
 * Files moved between the AWS Encryption SDK for Python and for Go and the keyport CLI under one
 * AWS KMS key, on moto: what `keyport encrypt -r aws-kms://…` writes opens in the Python ESDK (its
 * KMS master key provider and its Material Providers KMS keyring) and in the Go ESDK (its
 * Material Providers KMS keyring), and what each writes opens with `keyport decrypt`. The children
 * are the envelope package's (installed by the harness, targets esdk-python and esdk-go); their
 * AWS SDKs reach moto through AWS_ENDPOINT_URL_KMS.
 */
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EsdkChild, esdkGo, esdkPython, esdkPythonKeyrings } from '../../envelope/test/helpers/esdk.js';
import { localWorkspace, requireEmulator, runCli } from './support/cli.js';

const context = { app: 'payroll', 'ü-tenant': '42' };
const contextFlags = Object.entries(context).flatMap(([k, v]) => ['--context', `${k}=${v}`]);
const env = { AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing', AWS_REGION: 'us-east-1' };

let cwd: string;
let uri: string;
let arn: string;
let endpoint: string;

beforeAll(async () => {
  const moto = await requireEmulator('moto');
  endpoint = moto.KEYPORT_MOTO_ENDPOINT as string;
  // Read by the children when they start: their AWS SDKs (botocore, aws-sdk-go-v2) go to moto.
  Object.assign(process.env, env, { AWS_ENDPOINT_URL_KMS: endpoint });
  const ws = await localWorkspace({ 'aws-kms': { region: 'us-east-1', endpoint } });
  cwd = ws.dir;
  const created = await runCli(
    ['--json', 'keys', 'create', `esdk-${Date.now().toString(36)}`, '--provider', 'aws-kms'],
    {
      cwd,
      env,
    },
  );
  expect(created.code, created.stderr).toBe(0);
  uri = JSON.parse(created.stdout).uri as string;
  arn = uri.slice('aws-kms://'.length);
});

afterAll(() => Promise.all([esdkPython.stop(), esdkPythonKeyrings.stop(), esdkGo.stop()]));

const sdks: ReadonlyArray<{ name: string; esdk: EsdkChild }> = [
  { name: 'Python ESDK (KMS master key provider)', esdk: esdkPython },
  { name: 'Python ESDK (Material Providers KMS keyring)', esdk: esdkPythonKeyrings },
  { name: 'Go ESDK (Material Providers KMS keyring)', esdk: esdkGo },
];

describe.each(sdks)('the $name and the keyport CLI, one AWS KMS key on moto', ({ esdk }) => {
  for (const suite of ['0x0478', '0x0578'] as const) {
    it(`keyport encrypt → SDK decrypt, and SDK encrypt → keyport decrypt (suite ${suite})`, async () => {
      const plaintext = randomBytes(70_000);
      await writeFile(join(cwd, 'p'), plaintext);
      const enc = await runCli(
        [
          'encrypt',
          'p',
          '-o',
          'ours',
          '-f',
          '-r',
          uri,
          '--suite',
          suite,
          '--frame-length',
          '4096',
          ...contextFlags,
        ],
        { cwd, env },
      );
      expect(enc.code, enc.stderr).toBe(0);
      const opened = await esdk.decrypt([{ type: 'kms', arn }], await readFile(join(cwd, 'ours')));
      expect(opened.plaintext.equals(plaintext)).toBe(true);
      expect(opened.suiteId).toBe(Number(suite));
      expect(opened.context).toMatchObject(context);

      const theirs = await esdk.encrypt([{ type: 'kms', arn }], plaintext, {
        context,
        suiteId: Number(suite),
      });
      await writeFile(join(cwd, 'theirs'), theirs);
      const dec = await runCli(['decrypt', 'theirs', '-o', 'back', '-f', '-k', uri, ...contextFlags], {
        cwd,
        env,
      });
      expect(dec.code, dec.stderr).toBe(0);
      expect((await readFile(join(cwd, 'back'))).equals(plaintext)).toBe(true);
    });
  }

  it('an SDK message whose context was changed is refused by keyport decrypt, nothing written', async () => {
    const theirs = await esdk.encrypt([{ type: 'kms', arn }], Buffer.from('secret'), { context });
    await writeFile(join(cwd, 'theirs'), theirs);
    const dec = await runCli(['decrypt', 'theirs', '-o', 'wrong', '-k', uri, '--context', 'app=other'], {
      cwd,
      env,
    });
    expect(dec.code).not.toBe(0);
    await expect(readFile(join(cwd, 'wrong'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('--trust-configured with the ESDK discovery filter (--discovery-account, --discovery-partition)', () => {
  it("opens an SDK message under a key of the listed account, and calls no other account's key", async () => {
    const plaintext = randomBytes(300);
    const theirs = await esdkPythonKeyrings.encrypt([{ type: 'kms', arn }], plaintext, { context });
    await writeFile(join(cwd, 'discovered'), theirs);
    const account = arn.split(':')[4] as string;
    const open = (flags: string[], out: string) =>
      runCli(['decrypt', 'discovered', '-o', out, '--trust-configured', ...flags], { cwd, env });
    const ok = await open(['--discovery-account', account], 'd1');
    expect(ok.code, ok.stderr).toBe(0);
    expect((await readFile(join(cwd, 'd1'))).equals(plaintext)).toBe(true);
    const other = await open(['--discovery-account', '111122223333'], 'd2');
    expect(other.code).toBe(6);
    await expect(readFile(join(cwd, 'd2'))).rejects.toMatchObject({ code: 'ENOENT' });
    const gov = await open(['--discovery-account', account, '--discovery-partition', 'aws-us-gov'], 'd3');
    expect(gov.code).toBe(6);
    // Misuse is a usage error (exit 2), never a silently wider trust.
    for (const flags of [
      ['--discovery-partition', 'aws'],
      ['--discovery-account', '12345'],
    ]) {
      expect((await open(flags, 'd4')).code, flags.join(' ')).toBe(2);
    }
    const withoutTrust = await runCli(['decrypt', 'discovered', '-k', uri, '--discovery-account', account], {
      cwd,
      env,
    });
    expect(withoutTrust.code).toBe(2);
  });

  it('discovers through a named instance (only aws-kms+dr configured), the filter applied to it', async () => {
    const plaintext = randomBytes(300);
    const dr = await localWorkspace({ 'aws-kms+dr': { region: 'us-east-1', endpoint } });
    await writeFile(
      join(dr.dir, 'discovered'),
      await esdkPythonKeyrings.encrypt([{ type: 'kms', arn }], plaintext),
    );
    const account = arn.split(':')[4] as string;
    const open = (flags: string[], out: string) =>
      runCli(['decrypt', 'discovered', '-o', out, '--trust-configured', ...flags], { cwd: dr.dir, env });
    for (const [flags, out] of [
      [[], 'd1'],
      [['--discovery-account', account], 'd2'],
    ] as const) {
      const ok = await open([...flags], out);
      expect(ok.code, ok.stderr).toBe(0);
      expect((await readFile(join(dr.dir, out))).equals(plaintext)).toBe(true);
    }
    expect((await open(['--discovery-account', '111122223333'], 'd3')).code).toBe(6);
    await expect(readFile(join(dr.dir, 'd3'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
