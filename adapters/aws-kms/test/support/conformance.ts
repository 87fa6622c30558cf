/** Fixtures shared by the two conformance runs (moto and local-kms). */
import { randomUUID } from 'node:crypto';
import { GetPublicKeyCommand } from '@aws-sdk/client-kms';
import { type ConformanceFixtures, type ProofTable, uniqueKeyNames } from '@keyport/conformance';
import type { KeyRef } from '@keyport/core';
import { sdkClientFor, type TargetName, target } from './targets.js';

export function conformanceFixtures(name: TargetName, proofs: ProofTable): ConformanceFixtures {
  return {
    keyName: uniqueKeyNames(`conf-${name === 'moto' ? 'm' : 'l'}`),
    missingKeyUri: () => `aws-kms://arn:aws:kms:us-east-1:${target(name).account}:key/${randomUUID()}`,
    proofs,
    async publicKey(ref: KeyRef): Promise<Uint8Array> {
      const client = sdkClientFor(target(name));
      try {
        const out = await client.send(new GetPublicKeyCommand({ KeyId: ref.uri.slice('aws-kms://'.length) }));
        if (out.PublicKey === undefined) throw new Error('GetPublicKey answered without a key');
        return out.PublicKey;
      } finally {
        client.destroy();
      }
    },
  };
}
