/**
 * The algorithm suites keyport reads and writes (AWS Encryption SDK algorithm-suites.md).
 * Only the committing v2 suites are sealed; v1 suites are read so ESDK data sealed elsewhere
 * can be opened and migrated.
 */
import { KeyportError } from '@keyport/core';

export type SuiteId = 0x0078 | 0x0178 | 0x0378 | 0x0478 | 0x0578;

export interface AlgorithmSuite {
  readonly id: SuiteId;
  readonly messageFormat: 1 | 2;
  /** Data key and derived encryption key length (AES-256). */
  readonly keyLength: 32;
  readonly ivLength: 12;
  readonly tagLength: 16;
  /** HKDF hash, or undefined when the data key is used directly (0x0078). */
  readonly kdfHash: 'sha256' | 'sha384' | 'sha512' | undefined;
  readonly commitment: boolean;
  /** ECDSA P-384 with SHA-384 over header and body, or none. */
  readonly signed: boolean;
  /** Message id length: 16 bytes in v1, 32 in v2. */
  readonly messageIdLength: 16 | 32;
  /** Algorithm suite data (the commit key) length in the v2 header. */
  readonly suiteDataLength: 0 | 32;
}

const common = { keyLength: 32, ivLength: 12, tagLength: 16 } as const;

export const SUITES: ReadonlyMap<number, AlgorithmSuite> = new Map<number, AlgorithmSuite>([
  [
    0x0078,
    {
      id: 0x0078,
      messageFormat: 1,
      ...common,
      kdfHash: undefined,
      commitment: false,
      signed: false,
      messageIdLength: 16,
      suiteDataLength: 0,
    },
  ],
  [
    0x0178,
    {
      id: 0x0178,
      messageFormat: 1,
      ...common,
      kdfHash: 'sha256',
      commitment: false,
      signed: false,
      messageIdLength: 16,
      suiteDataLength: 0,
    },
  ],
  [
    0x0378,
    {
      id: 0x0378,
      messageFormat: 1,
      ...common,
      kdfHash: 'sha384',
      commitment: false,
      signed: true,
      messageIdLength: 16,
      suiteDataLength: 0,
    },
  ],
  [
    0x0478,
    {
      id: 0x0478,
      messageFormat: 2,
      ...common,
      kdfHash: 'sha512',
      commitment: true,
      signed: false,
      messageIdLength: 32,
      suiteDataLength: 32,
    },
  ],
  [
    0x0578,
    {
      id: 0x0578,
      messageFormat: 2,
      ...common,
      kdfHash: 'sha512',
      commitment: true,
      signed: true,
      messageIdLength: 32,
      suiteDataLength: 32,
    },
  ],
]);

/** Suites `seal` may use: the committing ones. */
export const SEAL_SUITES = [0x0478, 0x0578] as const;
export type SealSuiteId = (typeof SEAL_SUITES)[number];
export const DEFAULT_SUITE: SealSuiteId = 0x0478;

export function suiteForSeal(id: number | undefined): AlgorithmSuite {
  const wanted = id ?? DEFAULT_SUITE;
  if (wanted !== 0x0478 && wanted !== 0x0578) {
    throw new KeyportError('InvalidArgument', 'seal supports suites 0x0478 and 0x0578 only');
  }
  return SUITES.get(wanted) as AlgorithmSuite;
}

/** The ESDK's reserved encryption-context key that carries the signature public key. */
export const PUBLIC_KEY_CONTEXT_KEY = 'aws-crypto-public-key';
