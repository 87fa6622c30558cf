/**
 * doctor and credentials: missing or expired credentials of each cloud SDK are an
 * authentication error (AccessDenied, exit 4) with a hint on how that SDK finds credentials,
 * never Internal; --verbose shows the provider's cause with secrets redacted.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KeyportError } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { redact, secretValues } from '../src/credentials.js';
import { errorReport } from '../src/errors.js';
import { jsonError, localWorkspace, runCli, spawnCli } from './support/cli.js';

const adapters = fileURLToPath(new URL('../../../adapters/', import.meta.url));
/** A module as an adapter resolves it (the SDKs are the adapters' dependencies, not the CLI's). */
function sdk<T>(adapter: string, name: string): T {
  return createRequire(join(adapters, adapter, 'package.json'))(name) as T;
}

describe('credential errors of each SDK -> AccessDenied with a hint', () => {
  it('AWS: CredentialsProviderError (no credentials) and ExpiredTokenException', () => {
    // The SDK's own class is met end to end below (the real bin with no credentials).
    const missing = new KeyportError('Internal', 'unexpected provider failure (see cause)', {
      cause: Object.assign(new Error('Could not load credentials from any providers'), {
        name: 'CredentialsProviderError',
      }),
    });
    const r = errorReport(missing, false);
    expect(r).toMatchObject({ code: 'AccessDenied', exitCode: 4 });
    expect(r.message).toMatch(/AWS SDK has no usable credentials/);
    expect(r.next).toMatch(/AWS_ACCESS_KEY_ID/);
    const expired = Object.assign(new Error('The security token included in the request is expired'), {
      name: 'ExpiredTokenException',
    });
    expect(errorReport(new KeyportError('Internal', 'x', { cause: expired }), false).code).toBe(
      'AccessDenied',
    );
  });

  it('Azure: CredentialUnavailableError and AuthenticationError from @azure/identity', () => {
    const identity = sdk<{
      CredentialUnavailableError: new (m: string) => Error;
      AuthenticationError: new (status: number, body: unknown) => Error;
      AggregateAuthenticationError: new (errors: unknown[], m?: string) => Error;
    }>('azure-keyvault', '@azure/identity');
    for (const cause of [
      new identity.CredentialUnavailableError('EnvironmentCredential is unavailable'),
      new identity.AuthenticationError(400, { error: 'invalid_client', error_description: 'AADSTS7000215' }),
      new identity.AggregateAuthenticationError(
        [new identity.CredentialUnavailableError('ManagedIdentityCredential: no endpoint')],
        'DefaultAzureCredential failed',
      ),
    ]) {
      const r = errorReport(new KeyportError('Internal', 'x', { cause }), false);
      expect(r.code, cause.name).toBe('AccessDenied');
      expect(r.next).toMatch(/DefaultAzureCredential/);
    }
  });

  it('Google: no Application Default Credentials, an expired refresh token', () => {
    for (const message of [
      'Could not load the default credentials. Browse to https://cloud.google.com/docs/authentication/getting-started for more information.',
      'invalid_grant: Token has been expired or revoked.',
    ]) {
      const r = errorReport(new KeyportError('Unavailable', 'x', { cause: new Error(message) }), false);
      expect(r).toMatchObject({ code: 'AccessDenied', exitCode: 4 });
      expect(r.next).toMatch(/GOOGLE_APPLICATION_CREDENTIALS/);
    }
  });

  it('the real bin: doctor with an AWS provider and no credentials anywhere exits 4 with the hint', async () => {
    const ws = await localWorkspace({ 'aws-kms': { region: 'us-east-1', endpoint: 'http://127.0.0.1:9' } });
    const home = await mkdtemp(join(tmpdir(), 'keyport-home-'));
    const r = await spawnCli(['--json', 'doctor'], {
      cwd: ws.dir,
      env: {
        HOME: home,
        // Keep the SDK off the instance metadata service: nothing but loopback is reachable here.
        AWS_EC2_METADATA_DISABLED: 'true',
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      },
    });
    expect(r.code, r.stdout + r.stderr).toBe(4);
    const aws = JSON.parse(r.stdout).checks.find(
      (c: { provider: string; ok: boolean }) => c.provider === 'aws-kms' && !c.ok,
    );
    expect(aws).toMatchObject({ code: 'AccessDenied' });
    expect(aws.next).toMatch(/AWS_ACCESS_KEY_ID/);
  });
});

describe('doctor --verbose', () => {
  it("shows the provider's cause, with secrets redacted", async () => {
    const ws = await localWorkspace({ hcvault: { address: 'http://127.0.0.1:9' } });
    const token = 'hvs.this-is-the-vault-token-value';
    const plain = await runCli(['--json', 'doctor'], { cwd: ws.dir, env: { KEYPORT_VAULT_TOKEN: token } });
    const verbose = await runCli(['--json', '--verbose', 'doctor'], {
      cwd: ws.dir,
      env: { KEYPORT_VAULT_TOKEN: token },
    });
    const failedPlain = JSON.parse(plain.stdout).checks.find((c: { ok: boolean }) => !c.ok);
    const failed = JSON.parse(verbose.stdout).checks.find((c: { ok: boolean }) => !c.ok);
    expect(failedPlain.causes).toBeUndefined();
    expect(failed.causes.length).toBeGreaterThan(0);
    expect(failed.causes.join('\n')).toMatch(/ECONNREFUSED|fetch failed|connect/i);
    expect(verbose.stdout).not.toContain(token);
    const human = await runCli(['--verbose', 'doctor'], { cwd: ws.dir, env: { KEYPORT_VAULT_TOKEN: token } });
    expect(human.stdout).toMatch(/cause: /);
  });

  it('a token read from tokenFile, or from a variable the config names, is redacted from --verbose causes too', async () => {
    // A Vault stand-in (or a proxy in front of one) whose error quotes the token it was sent.
    const server = createServer((req, res) => {
      res.writeHead(403, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [`permission denied for ${String(req.headers['x-vault-token'])}`] }));
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    try {
      const { port } = server.address() as AddressInfo;
      const address = `http://127.0.0.1:${port}`;
      const token = 'hvs.q9Xk2';
      const uri = `hcvault://127.0.0.1:${port}/transit/keys/k`;
      const fromFile = await localWorkspace({ hcvault: { address, tokenFile: 'vault.token' } });
      await writeFile(join(fromFile.dir, 'vault.token'), `${token}\n`);
      // A variable whose name says nothing about secrets: only the config says it holds one.
      const fromEnv = await localWorkspace({ hcvault: { address, tokenEnv: 'VAULT_EU' } });
      for (const [ws, env] of [
        [fromFile, {}],
        [fromEnv, { VAULT_EU: token }],
      ] as const) {
        const r = await runCli(['--json', '--verbose', 'keys', 'describe', uri], { cwd: ws.dir, env });
        expect(r.code, r.stderr).toBe(4);
        // The adapter masks the token it sent (<redacted>); the CLI's own redaction is behind it.
        expect(jsonError(r.stderr).causes).toEqual([
          expect.stringMatching(/^Error: permission denied for (\[redacted\]|<redacted>)$/),
        ]);
        expect(r.stderr).not.toContain(token);
        const doctor = await runCli(['--json', '--verbose', 'doctor', '-k', uri], { cwd: ws.dir, env });
        expect(doctor.stdout).toMatch(/permission denied for (\[redacted\]|<redacted>)/);
        expect(doctor.stdout).not.toContain(token);
      }
    } finally {
      server.close();
    }
  });

  it('redact removes environment secrets, bearer tokens, JWTs, key=value secrets and access key ids', () => {
    const env = {
      KEYPORT_VAULT_TOKEN: 's.abcdef123456',
      AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG',
      HOME: '/root',
    };
    const text = [
      'token s.abcdef123456 refused',
      'Authorization: Bearer ya29.a0AfH6SMBx',
      'jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig',
      'https://x/?sig=abcDEF123&other=1',
      'password=hunter2 key AKIAIOSFODNN7EXAMPLE',
      'secret wJalrXUtnFEMI/K7MDENG',
    ].join('\n');
    const out = redact(text, secretValues(env));
    for (const leaked of [
      's.abcdef123456',
      'ya29.a0AfH6SMBx',
      'eyJhbGciOiJIUzI1NiJ9',
      'abcDEF123',
      'hunter2',
      'AKIAIOSFODNN7EXAMPLE',
      'wJalrXUtnFEMI',
    ]) {
      expect(out).not.toContain(leaked);
    }
    expect(out).toContain('refused');
  });
});
