/**
 * Lifecycle tests (rotation, disable, deletion, destroy, concurrency) do not care which usage a key
 * has, only that it can be "used" and that what it produced can be "reopened". A probe does that
 * for each usage: encrypt/decrypt, sign/verify, mac/verifyMac.
 */
import { randomBytes } from 'node:crypto';
import type { KeyInfo, KeyOperations, KeySpec, KeyUsage, SigningAlgorithm } from '@keyport/core';
import { algorithmsForSpec } from './capability-plan.js';
import { bytesEqual } from './expect-error.js';

export interface Artefact {
  readonly keyVersion: string | undefined;
  /** Reopens the artefact (decrypt, verify, verifyMac); rejects on any mismatch. Resolves with the version used. */
  reopen(): Promise<string | undefined>;
}

export interface Probe {
  readonly usage: KeyUsage;
  use(key: KeyInfo): Promise<Artefact>;
}

export function probeFor(
  client: KeyOperations,
  spec: KeySpec,
  usage: KeyUsage,
  signingAlgorithms: readonly SigningAlgorithm[],
): Probe {
  switch (usage) {
    case 'encrypt_decrypt':
      return {
        usage,
        async use(key) {
          const plaintext = randomBytes(32);
          const context = spec === 'AES_256' ? { purpose: 'conformance' } : undefined;
          const options = context === undefined ? {} : { context };
          const { ciphertext, keyVersion } = await client.encrypt(key.uri, plaintext, options);
          return {
            keyVersion,
            async reopen() {
              const opened = await client.decrypt(key.uri, ciphertext, options);
              if (!bytesEqual(opened.plaintext, plaintext))
                throw new Error('decrypt returned different plaintext');
              return opened.keyVersion;
            },
          };
        },
      };
    case 'sign_verify': {
      const algorithm = algorithmsForSpec(spec).find((a) => signingAlgorithms.includes(a));
      if (algorithm === undefined) throw new Error(`conformance: no declared signing algorithm fits ${spec}`);
      return {
        usage,
        async use(key) {
          const message = randomBytes(64);
          const { signature, keyVersion } = await client.sign(key.uri, message, { algorithm });
          return {
            keyVersion,
            async reopen() {
              const ref = keyVersion === undefined ? key.uri : { uri: key.uri, version: keyVersion };
              if (!(await client.verify(ref, message, signature, { algorithm }))) {
                throw new Error('the signature no longer verifies');
              }
              return keyVersion;
            },
          };
        },
      };
    }
    case 'mac':
      return {
        usage,
        async use(key) {
          const message = randomBytes(64);
          const { mac, keyVersion } = await client.mac(key.uri, message);
          return {
            keyVersion,
            async reopen() {
              const ref = keyVersion === undefined ? key.uri : { uri: key.uri, version: keyVersion };
              if (!(await client.verifyMac(ref, message, mac))) throw new Error('the MAC no longer verifies');
              return keyVersion;
            },
          };
        },
      };
  }
}
