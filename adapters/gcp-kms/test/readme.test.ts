/** The README's capability table is the one generated from the capabilities and the test proofs. */
import { readFileSync, writeFileSync } from 'node:fs';
import { renderCapabilityMatrix } from '@keyport/conformance';
import { describe, expect, it } from 'vitest';
import { GCP_KMS_CAPABILITIES } from '../src/index.js';
import { DRONGO_PROOFS, GRPC_PROOFS, REST_PROOFS } from './proofs.js';

export const CAPABILITY_MATRIX = renderCapabilityMatrix([
  { provider: 'gcp-kms over gRPC', capabilities: GCP_KMS_CAPABILITIES, proofs: GRPC_PROOFS },
  { provider: 'gcp-kms over REST (test server)', capabilities: GCP_KMS_CAPABILITIES, proofs: REST_PROOFS },
  { provider: 'gcp-kms over REST (drongo)', capabilities: GCP_KMS_CAPABILITIES, proofs: DRONGO_PROOFS },
]);

describe('README', () => {
  it('carries the generated capability matrix', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    if (process.env.PRINT_MATRIX) writeFileSync(process.env.PRINT_MATRIX, CAPABILITY_MATRIX);
    expect(readme).toContain(CAPABILITY_MATRIX.trim());
  });
});
