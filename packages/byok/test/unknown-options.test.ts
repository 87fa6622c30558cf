/**
 * Misspelt and wrongly typed options are InvalidArgument naming the option, before the target,
 * the HSM or the manifest is touched (a fake Keyport records every call), and a secret-looking
 * value is never echoed.
 */
import { join } from 'node:path';
import { type KeyOperations, KeyportError } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { type HsmKeyExporter, type ImportHsmKeyOptions, importHsmKey, planImport } from '../src/index.js';
import { tempDir } from './support.js';

const TARGET = 'aws-kms://arn:aws:kms:us-east-1:111122223333:key/k';

function fakes(calls: string[]): { keyport: KeyOperations; hsm: HsmKeyExporter } {
  const record = (name: string) => async (): Promise<never> => {
    calls.push(name);
    throw new Error(`${name} must not be reached`);
  };
  const keyport = {
    capabilities: () => ({ import: ['RSAES_OAEP_SHA_1'] }),
    describeKey: record('describeKey'),
    createKey: record('createKey'),
    getImportParameters: record('getImportParameters'),
    importKeyMaterial: record('importKeyMaterial'),
  } as unknown as KeyOperations;
  const hsm: HsmKeyExporter = { scheme: 'pkcs11', oaepHashes: ['sha1'], wrapKeyForExport: record('wrap') };
  return { keyport, hsm };
}

async function refusal(run: () => Promise<unknown> | unknown): Promise<KeyportError> {
  let error: unknown;
  try {
    await run();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(KeyportError);
  return error as KeyportError;
}

describe('importHsmKey: options it does not know, or of the wrong type', () => {
  const params = {
    keyUri: TARGET,
    algorithm: 'RSAES_OAEP_SHA_1' as const,
    wrappingPublicKey: new Uint8Array(8),
    importToken: new Uint8Array(4),
  };
  const cases: [string, Record<string, unknown>, string][] = [
    [
      'a misspelt field of hsmKey.create',
      { hsmKey: { create: { name: 'n', lables: { team: 'a' } } } },
      'lables',
    ],
    [
      'hsmKey.create.description a number',
      { hsmKey: { create: { name: 'n', description: 5 } } },
      'options.hsmKey.create.description',
    ],
    [
      'hsmKey.create.labels a string',
      { hsmKey: { create: { name: 'n', labels: 'team=a' } } },
      'options.hsmKey.create.labels',
    ],
    [
      'hsmKey.create.labels with a number value',
      { hsmKey: { create: { name: 'n', labels: { n: 1 } } } },
      'options.hsmKey.create.labels',
    ],
    [
      'a misspelt field of importParameters',
      {
        hsmKey: { uri: 'pkcs11:token=t;object=o' },
        importParameters: { ...params, importTokn: new Uint8Array(4) },
      },
      'importTokn',
    ],
    [
      'importParameters.wrappingPublicKey a PEM string',
      {
        hsmKey: { uri: 'pkcs11:token=t;object=o' },
        importParameters: { ...params, wrappingPublicKey: 'PEM' },
      },
      'options.importParameters.wrappingPublicKey',
    ],
    [
      'importParameters.importToken a string',
      {
        hsmKey: { uri: 'pkcs11:token=t;object=o' },
        importParameters: { ...params, importToken: 'secret-token-value' },
      },
      'options.importParameters.importToken',
    ],
    [
      'importParameters.algorithm unknown',
      { hsmKey: { uri: 'pkcs11:token=t;object=o' }, importParameters: { ...params, algorithm: 'RSA_OAEP' } },
      'options.importParameters.algorithm',
    ],
  ];
  for (const [name, extra, named] of cases) {
    it(`${name}: InvalidArgument naming ${named}, nothing called`, async () => {
      const calls: string[] = [];
      const { keyport, hsm } = fakes(calls);
      const manifestPath = join(await tempDir(), 'manifest.json');
      const options = { keyport, hsm, target: { uri: TARGET }, manifestPath, ...extra };
      const error = await refusal(() => importHsmKey(options as unknown as ImportHsmKeyOptions));
      expect(error.code).toBe('InvalidArgument');
      expect(error.message).toContain(named);
      expect(error.message).not.toContain('secret-token-value');
      expect(calls).toEqual([]);
    });
  }
});

describe('planImport: wrong types and unknown target fields', () => {
  const { keyport } = fakes([]);
  it('hashes given as a string (which would match by substring) are refused', async () => {
    const error = await refusal(() => planImport(keyport, 'sha1' as never, { uri: TARGET }));
    expect(error).toMatchObject({ code: 'InvalidArgument', message: expect.stringContaining('hsmHashes') });
  });
  it('an unknown hash is refused by position', async () => {
    const error = await refusal(() => planImport(keyport, ['sha-1'] as never, { uri: TARGET }));
    expect(error).toMatchObject({
      code: 'InvalidArgument',
      message: expect.stringContaining('hsmHashes[0]'),
    });
  });
  it('a misspelt or extra target field is refused, naming it', async () => {
    for (const [target, named] of [
      [{ url: TARGET }, 'url'],
      [{ uri: TARGET, verison: '1' }, 'verison'],
      [{ uri: 5 }, 'target.uri'],
      [null, 'target'],
    ] as const) {
      const error = await refusal(() => planImport(keyport, ['sha1'], target as never));
      expect(error.code).toBe('InvalidArgument');
      expect(error.message).toContain(named);
    }
  });
  it('known options still plan', () => {
    expect(planImport(keyport, ['sha1'], { uri: TARGET })).toEqual({
      scheme: 'aws-kms',
      algorithm: 'RSAES_OAEP_SHA_1',
    });
  });
});
