/**
 * Promises of the root README.md that no other test held it to (its two commands, first code
 * sample, layout, Node lines and fuzz convention are checked in
 * examples/quickstart/test/root-readme.test.ts; the capability matrix in readme-matrix.test.ts):
 * the `keyport` command sample and the envelope sample run as written on the local provider (the
 * envelope's two recipients made local keys), the install sentence names every target the
 * harness installs and how, the `--project aws-kms` example names what that project brings up,
 * every package has a `test` script for its own project, and the documented bounds of
 * `retry.maxAttempts` and of dates hold at their edges on the real client.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Keyport, type KeyportError } from '@keyport/core';
import { openEnvelope, sealEnvelope } from '@keyport/envelope';
import { openLocalKeystore } from '@keyport/local';
import { afterAll, describe, expect, it } from 'vitest';
// @ts-expect-error the harness's bin is plain JavaScript without declarations
import * as versions from '../bin/lib/versions.mjs';
import { targetNames, targetsForProjects } from '../harness/targets.js';

const repo = join(import.meta.dirname, '../..');
const readme = readFileSync(join(repo, 'README.md'), 'utf8');
/** The README's prose as one line: a phrase may be wrapped anywhere. */
const prose = readme.replace(/\s+/g, ' ');

/** The fenced blocks of one language, in order. */
const blocks = (lang: string): string[] =>
  [...readme.matchAll(new RegExp(`\`\`\`${lang}\\n([\\s\\S]*?)\`\`\``, 'g'))].map((m) => m[1] as string);

const CLI = join(repo, 'packages/cli');
const PASSPHRASE = 'readme passphrase, not a secret';

/** The real `keyport` bin, run from source (as packages/cli's own tests run it). */
function keyport(args: readonly string[], cwd: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', join(CLI, 'test/support/register-ts.mjs'), join(CLI, 'bin/keyport.mjs'), ...args],
      {
        cwd,
        env: { PATH: process.env.PATH, KEYPORT_CLI_FROM_SOURCE: '1', KEYPORT_LOCAL_PASSPHRASE: PASSPHRASE },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const out: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => out.push(c));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, out: Buffer.concat(out).toString('utf8') });
    });
  });
}

const scratch: string[] = [];
afterAll(async () => {
  for (const dir of scratch) await rm(dir, { recursive: true, force: true });
});

describe('root README', () => {
  it('the `keyport` sample runs as written on the local provider (migrate and import need cloud targets)', {
    timeout: 240_000,
  }, async () => {
    const sample = blocks('sh').find((b) => b.startsWith('keyport keys create'));
    expect(sample, 'the README shows the keyport command').toBeDefined();
    const lines = (sample as string).trim().split('\n');
    // migrate and import name AWS KMS, Vault and an HSM: packages/cli/test/migrate*.test.ts and
    // import.test.ts run them against the emulators. Every other line is run here.
    const cloud = /\b(aws-kms|hcvault|pkcs11|gcp-kms|azurekeyvault)[:+]/;
    expect(lines.filter((l) => cloud.test(l)).map((l) => l.split(' ')[1])).toEqual(['migrate', 'import']);

    const dir = await mkdtemp(join(tmpdir(), 'keyport-readme-cli-'));
    scratch.push(dir);
    // A config like packages/cli/README.md's: the local keystore (made with a cheap KDF for the
    // test's speed) and an audit log, which `audit verify` and `audit anchor` examine.
    const setup = new Keyport({
      providers: [
        await openLocalKeystore({
          path: join(dir, 'keys.kp'),
          passphrase: PASSPHRASE,
          create: true,
          kdf: { log2N: 10 },
        }),
      ],
    });
    // `audit anchor --key local://keys.kp#auditor` signs with a key the sample takes as existing.
    await setup.createKey('local', { name: 'auditor', spec: 'EC_P256' });
    await setup.close();
    await writeFile(
      join(dir, 'keyport.config.json'),
      JSON.stringify({ providers: { local: { keystore: './keys.kp' } }, audit: { log: './audit.jsonl' } }),
    );
    const report = randomBytes(70_000);
    await writeFile(join(dir, 'report.pdf'), report);
    await mkdir(join(dir, 'elsewhere'));

    for (const line of lines.filter((l) => !cloud.test(l))) {
      for (const command of line.split(' && ')) {
        const [bin, ...args] = command.trim().split(/ +/);
        expect(bin).toBe('keyport');
        // The anchor goes "elsewhere": a folder of the scratch directory here.
        const argv = args.map((a) =>
          a === '/elsewhere/head.sig.json' ? join(dir, 'elsewhere/head.sig.json') : a,
        );
        const run = await keyport(argv, dir);
        expect(run.code, `${command}\n${run.out}`).toBe(0);
      }
    }
    // What the lines promise: the file came back, and the signed head was written elsewhere.
    const decrypt = lines.find((l) => l.startsWith('keyport decrypt ')) as string;
    const output = decrypt.split(' ')[decrypt.split(' ').indexOf('-o') + 1] as string;
    expect((await readFile(join(dir, output))).equals(report)).toBe(true);
    expect(existsSync(join(dir, 'elsewhere/head.sig.json'))).toBe(true);
  });

  it('the envelope sample seals to two recipients and opens with the trusted one and the required context', async () => {
    const sample = blocks('ts').find((b) => b.includes('sealEnvelope('));
    expect(sample, 'the README shows sealEnvelope').toBeDefined();
    // Both recipients are local keys here (the README's are an HSM key and an AWS KMS key).
    const aws = "'aws-kms://arn:aws:kms:eu-west-1:111122223333:key/…'";
    expect(sample).toContain(aws);
    const body = (sample as string)
      .split('\n')
      .filter((line) => !line.startsWith('import '))
      .join('\n')
      .replace(aws, 'otherKeyUri');
    const dir = await mkdtemp(join(tmpdir(), 'keyport-readme-envelope-'));
    scratch.push(dir);
    const kp = new Keyport({
      providers: [
        await openLocalKeystore({
          path: join(dir, 'k.kp'),
          passphrase: PASSPHRASE,
          create: true,
          kdf: { log2N: 10 },
        }),
      ],
    });
    try {
      const hsmKeyUri = (await kp.createKey('local', { name: 'hsm', spec: 'AES_256' })).uri;
      const otherKeyUri = (await kp.createKey('local', { name: 'other', spec: 'AES_256' })).uri;
      const data = randomBytes(10_000);
      const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor as new (
        ...args: string[]
      ) => (...values: unknown[]) => Promise<{ message: Uint8Array; plaintext: Uint8Array }>;
      const run = new AsyncFunction(
        'sealEnvelope',
        'openEnvelope',
        'data',
        'hsmKeyUri',
        'otherKeyUri',
        'kp',
        `${body}\nreturn { message, plaintext };`,
      );
      const { message, plaintext } = await run(sealEnvelope, openEnvelope, data, hsmKeyUri, otherKeyUri, kp);
      expect(Buffer.from(plaintext).equals(data)).toBe(true);
      // Sealed to both: the other recipient opens it alone too; a context without the tenant does not.
      const other = await openEnvelope(message, { trust: [otherKeyUri], keys: kp });
      expect(Buffer.from(other.plaintext).equals(data)).toBe(true);
      await expect(
        openEnvelope(message, { trust: [hsmKeyUri], requiredContext: { tenant: 'other' }, keys: kp }),
      ).rejects.toMatchObject({ name: 'KeyportError' });
    } finally {
      await kp.close();
    }
  });

  it('names every target the harness installs, and how each is installed', () => {
    // The README's words for each harness target; a new target fails here until the README says it.
    const named: Record<(typeof targetNames)[number], string> = {
      moto: 'moto',
      'local-kms': 'local-kms',
      azurite: 'Azurite',
      'fake-gcs-server': 'fake-gcs-server',
      openbao: 'OpenBao',
      'openbao-dr': 'OpenBao',
      drongo: 'drongo',
      softhsm: 'SoftHSM2',
      'azure-keyvault': 'the official SDK checks',
      'gcp-kms': 'the official SDK checks',
      'esdk-python': 'the ESDK interop peers',
      'esdk-java': 'the ESDK interop peers',
      'esdk-go': 'the ESDK interop peers',
    };
    expect([...targetNames].sort()).toEqual(Object.keys(named).sort());
    const start = prose.indexOf('installing and starting every emulator it needs on the way (');
    expect(start).toBeGreaterThan(-1);
    const sentence = prose.slice(start, prose.indexOf('~/.cache/keyport', start));
    for (const [target, words] of Object.entries(named)) expect(sentence, target).toContain(words);

    // "from PyPI", "with `go install`", "with npm", "SoftHSM2 from Debian": the pinned sources.
    expect(sentence).toContain('moto / OpenBao / drongo from PyPI');
    const python = versions.pythonRequirements as Record<string, string[]>;
    for (const target of ['moto', 'openbao', 'drongo']) expect(python[target], target).toBeDefined();
    expect(sentence).toContain('local-kms and fake-gcs-server with `go install`');
    expect(versions.localKmsModule).toMatch(/^github\.com\/.+@v/);
    expect(versions.fakeGcsModule).toMatch(/^github\.com\/.+@v/);
    expect(sentence).toContain('Azurite with npm');
    expect(versions.azuritePackage).toMatch(/^azurite@\d/);
    expect(sentence).toContain('SoftHSM2 from Debian');
    const apt = `only when \`${versions.softhsmModule}\` or \`/usr/bin/softhsm2-util\` is missing`;
    expect(prose.includes(apt), `the README says: ${apt}`).toBe(true);
  });

  it('`npx vitest run --project aws-kms` brings up moto and local-kms, and readies the Python and Go ESDK peers', () => {
    const claim =
      '`npx vitest run --project aws-kms` starts only moto and local-kms, and readies the Python and Go ESDK peers its interop test runs';
    expect(prose.includes(claim), `the README says: ${claim}`).toBe(true);
    expect(targetsForProjects(['aws-kms'])).toEqual(['moto', 'local-kms', 'esdk-python', 'esdk-go']);
  });

  it('each package has its own `test` script, which runs its vitest project', () => {
    expect(readme).toContain('`pnpm --filter @keyport/core test`');
    const dirs = [
      ...['packages', 'adapters'].flatMap((root) => readdirSync(join(repo, root)).map((d) => join(root, d))),
      'conformance',
      'conformance/servers',
    ].filter((d) => existsSync(join(repo, d, 'test')));
    expect(dirs).toContain('packages/core');
    for (const dir of dirs) {
      const pkg = JSON.parse(readFileSync(join(repo, dir, 'package.json'), 'utf8')) as {
        scripts?: Record<string, string>;
      };
      // The project name is the folder, as the root vitest.config.ts names projects.
      const project = dir.replace(/^(packages|adapters)\//, '');
      const config = join(
        dir
          .split('/')
          .map(() => '..')
          .join('/'),
        'vitest.config.ts',
      );
      expect(pkg.scripts?.test, dir).toBe(`vitest run --config ${config} --project ${project}`);
    }
  });

  describe('argument bounds, at their edges on the real client', () => {
    it('`retry.maxAttempts` is 1–100', () => {
      for (const maxAttempts of [1, 100])
        expect(() => new Keyport({ providers: [], retry: { maxAttempts } })).not.toThrow();
      for (const maxAttempts of [0, 101]) {
        expect(() => new Keyport({ providers: [], retry: { maxAttempts } })).toThrow(
          expect.objectContaining({
            code: 'InvalidArgument',
            message: expect.stringContaining('retry.maxAttempts'),
          }),
        );
      }
    });

    it('dates lie in 1970–9999: a grant may expire at the last millisecond of 9999, not one later or before 1970', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'keyport-readme-dates-'));
      scratch.push(dir);
      const kp = new Keyport({
        providers: [
          await openLocalKeystore({
            path: join(dir, 'k.kp'),
            passphrase: PASSPHRASE,
            create: true,
            kdf: { log2N: 10 },
          }),
        ],
      });
      try {
        const key = await kp.createKey('local', { name: 'dates', spec: 'AES_256' });
        const grant = (expiresAt: Date) =>
          kp.createGrant(key.uri, { grantee: 'someone', operations: ['decrypt'], expiresAt });
        const last = new Date('9999-12-31T23:59:59.999Z');
        await expect(grant(last)).resolves.toMatchObject({ expiresAt: last });
        for (const outside of [new Date(last.getTime() + 1), new Date('1969-12-31T23:59:59.999Z')]) {
          const error = (await grant(outside).then(
            () => undefined,
            (e: unknown) => e,
          )) as KeyportError;
          expect(error, outside.toISOString()).toMatchObject({
            name: 'KeyportError',
            code: 'InvalidArgument',
          });
          expect(error.message).toContain('expiresAt');
          expect(error.message).toContain('between 1970-01-01 and 9999-12-31');
        }
      } finally {
        await kp.close();
      }
    });
  });
});
