// One real call through the official AWS SDK against moto: the harness brought it up and
// the endpoint it wrote is the one a KMS client can use.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { requireTarget } from '../harness/env.js';

const roundtrip = fileURLToPath(new URL('../harness/aws-kms-roundtrip.mjs', import.meta.url));

describe('smoke: moto (AWS KMS)', () => {
  it('creates a key and encrypts and decrypts under an encryption context', async () => {
    const env = requireTarget('moto');
    // The SDK runs in a plain Node process; see aws-kms-roundtrip.mjs for why.
    const { stdout } = await promisify(execFile)(process.execPath, [roundtrip, env.KEYPORT_MOTO_ENDPOINT], {
      timeout: 20_000,
    });
    const result = JSON.parse(stdout);
    expect(result.arn).toMatch(/^arn:aws:kms:us-east-1:123456789012:key\//);
    expect(result.ciphertextBytes).toBeGreaterThan('aws-kms smoke'.length);
    expect(result.plaintext).toBe('aws-kms smoke');
    expect(result.mismatch).toBe('InvalidCiphertextException');
  });
});
