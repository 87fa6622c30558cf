/** The plan is pure data: the target's declared import algorithms ∩ the HSM's OAEP hashes. */
import { AWS_KMS_CAPABILITIES } from '@keyport/aws-kms';
import type { Capabilities, ImportWrappingAlgorithm, KeyOperations } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { planImport } from '../src/index.js';

const accepting = (algorithms: readonly ImportWrappingAlgorithm[]): KeyOperations =>
  ({
    capabilities: (): Capabilities => ({ ...AWS_KMS_CAPABILITIES, import: algorithms }),
  }) as Pick<KeyOperations, 'capabilities'> as KeyOperations;

const gcp = 'gcp-kms://projects/p/locations/global/keyRings/r/cryptoKeys/k';
const azure = 'azurekeyvault://v.vault.azure.net/keys/k';
const vault = 'hcvault://127.0.0.1:8200/transit/keys/k';

describe('planImport', () => {
  it('AWS: plain OAEP, SHA-256 where the HSM can, else SHA-1', () => {
    const aws = accepting(AWS_KMS_CAPABILITIES.import);
    const uri = 'aws-kms://arn:aws:kms:us-east-1:111122223333:key/k';
    expect(planImport(aws, ['sha256', 'sha1'], { uri })).toMatchObject({ algorithm: 'RSAES_OAEP_SHA_256' });
    expect(planImport(aws, ['sha1'], { uri })).toMatchObject({
      algorithm: 'RSAES_OAEP_SHA_1',
      route: 'keyport',
    });
  });

  it('GCP import jobs take RSA_AES_KEY_WRAP_SHA_256 only: an OAEP SHA-1 HSM is refused', () => {
    const gcpCaps = accepting(['RSA_AES_KEY_WRAP_SHA_256']);
    expect(() => planImport(gcpCaps, ['sha1'], { uri: gcp })).toThrow(/OAEP sha1 only; gcp-kms accepts/);
    expect(planImport(gcpCaps, ['sha256'], { uri: gcp })).toMatchObject({ route: 'keyport' });
  });

  it('Azure Key Vault declares no import: Unsupported', () => {
    expect(() => planImport(accepting([]), ['sha256'], { uri: azure })).toThrow(
      expect.objectContaining({ code: 'Unsupported' }),
    );
  });

  it('transit: the adapter route with OAEP SHA-256, transit-direct with SHA-1 when given the server', () => {
    const bao = accepting(['RSA_AES_KEY_WRAP_SHA_256']);
    expect(planImport(bao, ['sha256'], { uri: vault })).toMatchObject({ route: 'keyport' });
    const transit = { endpoint: 'http://127.0.0.1:8200', token: 't' };
    expect(planImport(bao, ['sha1'], { uri: vault, transit })).toMatchObject({
      algorithm: 'RSA_AES_KEY_WRAP_SHA_1',
      route: 'transit-direct',
    });
    expect(() => planImport(bao, ['sha1'], { uri: vault })).toThrow(/hash_function SHA1/);
  });
});
