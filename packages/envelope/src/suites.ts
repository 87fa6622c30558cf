/**
 * The algorithm suites keyport reads and writes (AWS Encryption SDK algorithm-suites.md).
 * Only the committing v2 suites are sealed; all eleven are read, so ESDK data sealed elsewhere
 * (AES-128 and AES-192 and P-256 signatures included) can be opened and migrated.
 */
import { KeyportError } from '@keyport/core';

export type SuiteId =
  | 0x0014
  | 0x0046
  | 0x0078
  | 0x0114
  | 0x0146
  | 0x0178
  | 0x0214
  | 0x0346
  | 0x0378
  | 0x0478
  | 0x0578;

export interface AlgorithmSuite {
  readonly id: SuiteId;
  readonly messageFormat: 1 | 2;
  /** Data key and derived encryption key length: AES-128, AES-192 or AES-256. */
  readonly keyLength: 16 | 24 | 32;
  readonly ivLength: 12;
  readonly tagLength: 16;
  /** HKDF hash, or undefined when the data key is used directly (0x0014, 0x0046, 0x0078). */
  readonly kdfHash: 'sha256' | 'sha384' | 'sha512' | undefined;
  readonly commitment: boolean;
  /** Whether header and body are signed (ECDSA, the footer). */
  readonly signed: boolean;
  /** The signature's curve: P-256 with SHA-256 (0x0214), P-384 with SHA-384 (the others). */
  readonly curve: 'P-256' | 'P-384' | undefined;
  /** Message id length: 16 bytes in v1, 32 in v2. */
  readonly messageIdLength: 16 | 32;
  /** Algorithm suite data (the commit key) length in the v2 header. */
  readonly suiteDataLength: 0 | 32;
}

const common = { ivLength: 12, tagLength: 16 } as const;

/** A v1 (non-committing) suite: read so that data sealed by any ESDK can be opened and migrated. */
function v1(
  id: SuiteId,
  keyLength: 16 | 24 | 32,
  kdfHash: 'sha256' | 'sha384' | undefined,
  curve: 'P-256' | 'P-384' | undefined,
): [number, AlgorithmSuite] {
  return [
    id,
    {
      id,
      messageFormat: 1,
      keyLength,
      ...common,
      kdfHash,
      commitment: false,
      signed: curve !== undefined,
      curve,
      messageIdLength: 16,
      suiteDataLength: 0,
    },
  ];
}

/** A v2 (key-committing) suite: AES-256, HKDF-SHA512, a 32-byte commit key. */
function v2(id: 0x0478 | 0x0578, curve: 'P-384' | undefined): [number, AlgorithmSuite] {
  return [
    id,
    {
      id,
      messageFormat: 2,
      keyLength: 32,
      ...common,
      kdfHash: 'sha512',
      commitment: true,
      signed: curve !== undefined,
      curve,
      messageIdLength: 32,
      suiteDataLength: 32,
    },
  ];
}

/** Every suite of the ESDK (framework/algorithm-suites.md). */
export const SUITES: ReadonlyMap<number, AlgorithmSuite> = new Map<number, AlgorithmSuite>([
  v1(0x0014, 16, undefined, undefined),
  v1(0x0046, 24, undefined, undefined),
  v1(0x0078, 32, undefined, undefined),
  v1(0x0114, 16, 'sha256', undefined),
  v1(0x0146, 24, 'sha256', undefined),
  v1(0x0178, 32, 'sha256', undefined),
  v1(0x0214, 16, 'sha256', 'P-256'),
  v1(0x0346, 24, 'sha384', 'P-384'),
  v1(0x0378, 32, 'sha384', 'P-384'),
  v2(0x0478, undefined),
  v2(0x0578, 'P-384'),
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

/** Encryption-context keys with this prefix are the ESDK's: a message carries them, a caller never gives them. */
export const RESERVED_CONTEXT_PREFIX = 'aws-crypto-';

/** The ESDK's reserved encryption-context key that carries the signature public key. */
export const PUBLIC_KEY_CONTEXT_KEY = 'aws-crypto-public-key';
