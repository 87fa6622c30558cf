/** The plan is pure data: the target's declared import algorithms ∩ the HSM's OAEP hashes. */
import { AWS_KMS_CAPABILITIES } from '@keyport/aws-kms';
import type { Capabilities, ImportWrappingAlgorithm, KeyOperations } from '@keyport/core';
import { LOCAL_CAPABILITIES } from '@keyport/local';
import { transitCapabilities } from '@keyport/vault-transit';
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
    expect(planImport(aws, ['sha1'], { uri })).toEqual({ scheme: 'aws-kms', algorithm: 'RSAES_OAEP_SHA_1' });
  });

  it('GCP import jobs take RSA_AES_KEY_WRAP_SHA_256 only: an OAEP SHA-1 HSM is refused', () => {
    const gcpCaps = accepting(['RSA_AES_KEY_WRAP_SHA_256']);
    expect(() => planImport(gcpCaps, ['sha1'], { uri: gcp })).toThrow(/OAEP sha1 only; gcp-kms accepts/);
    expect(planImport(gcpCaps, ['sha256'], { uri: gcp })).toMatchObject({
      algorithm: 'RSA_AES_KEY_WRAP_SHA_256',
    });
  });

  it('Azure Key Vault declares no import: Unsupported', () => {
    expect(() => planImport(accepting([]), ['sha256'], { uri: azure })).toThrow(
      expect.objectContaining({ code: 'Unsupported' }),
    );
  });

  it('transit: RSA_AES_KEY_WRAP with SHA-256 where the HSM can, else SHA-1 (both through the adapter)', () => {
    const bao = accepting(transitCapabilities('openbao').import);
    expect(planImport(bao, ['sha256', 'sha1'], { uri: vault })).toEqual({
      scheme: 'hcvault',
      algorithm: 'RSA_AES_KEY_WRAP_SHA_256',
    });
    expect(planImport(bao, ['sha1'], { uri: vault })).toEqual({
      scheme: 'hcvault',
      algorithm: 'RSA_AES_KEY_WRAP_SHA_1',
    });
    expect(() => planImport(bao, [], { uri: vault })).toThrow(/no OAEP hash; hcvault accepts/);
  });

  it('local keystore: plain OAEP, SHA-256 where the HSM can, else SHA-1', () => {
    const local = accepting(LOCAL_CAPABILITIES.import);
    const uri = 'local:///var/lib/keys.kp#k';
    expect(planImport(local, ['sha256', 'sha1'], { uri })).toMatchObject({ algorithm: 'RSAES_OAEP_SHA_256' });
    expect(planImport(local, ['sha1'], { uri })).toEqual({ scheme: 'local', algorithm: 'RSAES_OAEP_SHA_1' });
  });
});
