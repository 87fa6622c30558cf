/**
 * Provider-neutral rules about what a key of a given spec can do. Core applies them before a call
 * where the request says enough (client.ts); a driver applies them at call time once it has
 * learnt the key's spec from its provider (an encrypt with a context on a key that turns out to
 * be RSA). Written once here, so every driver refuses the same things with the same error.
 */
import type { Support } from './capabilities.js';
import { KeyportError, type KeyportErrorOptions, keyportError } from './errors.js';
import type {
  EncryptionContext,
  KeyInfo,
  KeySpec,
  KeyUri,
  KeyUsage,
  SigningAlgorithm,
  UnmodeledKey,
} from './types.js';
import { USAGES_BY_SPEC } from './types.js';

type Details = Pick<KeyportErrorOptions, 'provider' | 'keyUri'>;

/** AES and HMAC keys; the others are key pairs. */
export function isSymmetricSpec(spec: KeySpec): boolean {
  return spec === 'AES_256' || spec === 'HMAC_256';
}

/** The signing algorithms a key pair of each spec can use, whichever provider holds it. */
export const SIGNING_ALGORITHMS_BY_SPEC: Partial<Readonly<Record<KeySpec, readonly SigningAlgorithm[]>>> = {
  RSA_2048: ['RSASSA_PSS_SHA_256', 'RSASSA_PKCS1_V1_5_SHA_256'],
  RSA_3072: ['RSASSA_PSS_SHA_256', 'RSASSA_PKCS1_V1_5_SHA_256'],
  RSA_4096: ['RSASSA_PSS_SHA_256', 'RSASSA_PKCS1_V1_5_SHA_256'],
  EC_P256: ['ECDSA_SHA_256'],
  EC_P384: ['ECDSA_SHA_384'],
};

function hasEntries(context: EncryptionContext | undefined): boolean {
  return context !== undefined && Object.keys(context).length > 0;
}

/**
 * An encryption context on an asymmetric key: RSA-OAEP as the providers offer it takes no label,
 * so the context is refused (never dropped) unless the driver binds it itself (`asymmetric:
 * 'emulated'`, core's emulated-context layer).
 */
export function assertContextBindable(
  spec: KeySpec,
  context: EncryptionContext | undefined,
  asymmetric: Support,
  details: Details = {},
): void {
  if (hasEntries(context) && !isSymmetricSpec(spec) && asymmetric === 'none') {
    throw keyportError('Unsupported', `an encryption context cannot be bound to ${spec} ciphertexts here`, {
      ...details,
      capability: 'context',
    });
  }
}

/**
 * A key found to be of `spec` used for `usage` the spec cannot serve: the caller's mistake for
 * this key (InvalidArgument, as the providers answer a key-usage mismatch), not a missing
 * capability of the driver.
 */
export function assertSpecServes(spec: KeySpec, usage: KeyUsage, details: Details = {}): void {
  if (!USAGES_BY_SPEC[spec].includes(usage)) {
    throw keyportError('InvalidArgument', `${spec} keys cannot be used for ${usage}`, details);
  }
}

/**
 * The signing algorithm for a key of `spec`: the requested one, else the spec's first. A key
 * that cannot sign, or an algorithm of another key family, is the caller's mistake for this key
 * (InvalidArgument); an algorithm the driver does not offer at all is refused by core before
 * the call (Unsupported, from the declared `signingAlgorithms`).
 */
export function signingAlgorithmFor(
  spec: KeySpec,
  requested: SigningAlgorithm | undefined,
  details: Details = {},
): SigningAlgorithm {
  const algorithms = SIGNING_ALGORITHMS_BY_SPEC[spec] ?? [];
  const chosen = requested ?? algorithms[0];
  if (chosen === undefined) throw keyportError('InvalidArgument', `${spec} keys cannot sign`, details);
  if (!algorithms.includes(chosen)) {
    throw keyportError('InvalidArgument', `${spec} keys do not sign with ${chosen}`, details);
  }
  return chosen;
}

/**
 * The listing entry of a key a describe refused as Unsupported (keyport has no spec for it), or
 * undefined for any other error (which the listing should throw).
 */
export function unmodeledKeyOf(uri: KeyUri, error: unknown): UnmodeledKey | undefined {
  return error instanceof KeyportError && error.code === 'Unsupported'
    ? { uri, unmodeled: error.message }
    : undefined;
}

/** Whether a listing entry is a key keyport has no spec for. */
export const isUnmodeledKey = (entry: KeyInfo | UnmodeledKey): entry is UnmodeledKey =>
  Object.hasOwn(entry, 'unmodeled');

/** A provider's key keyport has no neutral spec for (listings report these apart; a call refuses them). */
export function unmodeledKeyError(what: string, details: Details = {}): KeyportError {
  return keyportError('Unsupported', `keyport has no key spec for ${what}`, {
    ...details,
    capability: 'keySpec',
  });
}
