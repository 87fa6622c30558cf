/**
 * What a provider's test file hands the conformance suite besides the provider itself: how to
 * name keys, which specs to exercise, how to act as another principal, how to move time, and —
 * for every capability — which target proves it.
 */
import type { EncryptionContext, Grant, KeyRef, KeySpec, KmsProvider } from '@keyport/core';
import type { ConformanceCapability } from './capability-plan.js';

/**
 * Who stands behind a capability's tests.
 * - `third-party-emulator`: an emulator keyport did not write (moto, local-kms, OpenBao, drongo, SoftHSM2).
 * - `keyport-test-server`: keyport's own wire-level server (conformance/servers), where no emulator exists.
 * - `real-provider`: the provider's own implementation is the real thing (the local keystore, or a
 *   real cloud account a third party points the suite at).
 * - `not-emulated`: nothing here can prove it; the capability is declared but not exercised.
 */
export type Proof =
  | { readonly kind: 'third-party-emulator'; readonly name: string }
  | { readonly kind: 'keyport-test-server'; readonly name: string }
  | { readonly kind: 'real-provider'; readonly name: string }
  | { readonly kind: 'not-emulated'; readonly reason: string };

/** `default` covers every capability without an entry of its own. */
export type ProofTable = { readonly default: Proof } & Partial<
  Readonly<Record<ConformanceCapability, Proof>>
>;

/**
 * Acting as another principal that exists before the grant (an IAM role, a keystore principal,
 * an IAM member): the suite names a principal, grants to it, and calls as it.
 */
export interface PrincipalGranteeFixture {
  /** Optional tag; a grantee fixture without `kind` is this form. */
  readonly kind?: 'principal';
  /** A fresh principal name in the provider's vocabulary (IAM ARN, keystore principal, ...). */
  newPrincipal(hint: string): string;
  /** A provider for the same keys, authenticated as `principal`. The suite closes it. */
  providerFor(principal: string): Promise<KmsProvider>;
}

/**
 * The grant itself mints the grantee's credential (Vault/OpenBao: an orphan token with the
 * grant's policy and TTL, returned as `Grant.token`): there is no principal before the grant,
 * so the suite grants first and then calls with what the grant carries.
 */
export interface CredentialGranteeFixture {
  readonly kind: 'credential';
  /** The `grantee` recorded in the request (a label here, not an identity); default `conformance-<hint>-<random>`. */
  newGrantee?(hint: string): string;
  /** A provider for the same keys, authenticated with the credential `grant` carries. The suite closes it. */
  providerForGrant(grant: Grant): Promise<KmsProvider>;
}

/** How the grant tests act as the grantee; see the two forms. */
export type GranteeFixture = PrincipalGranteeFixture | CredentialGranteeFixture;

export function isCredentialGrantee(grantee: GranteeFixture): grantee is CredentialGranteeFixture {
  return grantee.kind === 'credential';
}

/** The kinds of context constraint a grant can carry. */
export type GrantConstraintKind = 'contextEquals' | 'contextSubset';
export const GRANT_CONSTRAINT_KINDS: readonly GrantConstraintKind[] = ['contextEquals', 'contextSubset'];

/** Control over the provider's clock, for grant expiry. Without it the suite waits in real time. */
export interface ClockFixture {
  now(): Date;
  advance(ms: number): void | Promise<void>;
}

export interface ConformanceFixtures {
  /** A key name unique per run and per call (see `uniqueKeyNames`). `hint` says what the key is for. */
  keyName(hint: string): string;
  /** A URI in the provider's scheme naming a key that does not exist. */
  missingKeyUri(): string;
  /** Key specs to exercise; defaults to every spec the provider declares. */
  readonly keySpecs?: readonly KeySpec[];
  /** Which target proves each capability. */
  readonly proofs: ProofTable;
  /** Without it, grant tests and the AccessDenied check are not exercised (the summary says so). */
  readonly grantee?: GranteeFixture;
  /**
   * The constraint kinds the provider enforces when it declares `grantConstraints`; default
   * both. Core's capabilities have one flag for both, and a provider that can only pin an exact
   * context (Vault policies) names `['contextEquals']`: the suite then checks that a
   * `contextSubset` grant throws UnsupportedError instead of testing it.
   */
  readonly grantConstraintKinds?: readonly GrantConstraintKind[];
  readonly clock?: ClockFixture;
  /**
   * The lifetime of the grant the expiry test makes when there is no clock (ms); default 1500.
   * The suite waits in real time until that expiry has passed. Providers whose expiry has
   * whole-second resolution (token TTLs) should give whole seconds.
   */
  readonly grantExpiryMs?: number;
  /**
   * The public key of an asymmetric key version as SPKI DER, where the provider exposes it, so
   * signatures are also checked with node:crypto.
   */
  publicKey?(ref: KeyRef): Promise<Uint8Array>;
  /**
   * Decrypts a ciphertext made under imported material using only that material, proving the
   * provider really uses the bytes it was given (optional: needs the provider's ciphertext format).
   */
  openWithImportedMaterial?(
    material: Uint8Array,
    ciphertext: Uint8Array,
    context: EncryptionContext,
  ): Uint8Array | Promise<Uint8Array>;
  /** Parallel calls in the concurrency test; default 32. */
  readonly concurrency?: number;
}

/** A key-name factory: `<prefix>-<run id>-<counter>-<hint>`, safe for every provider's naming rules. */
export function uniqueKeyNames(prefix = 'kpc'): (hint: string) => string {
  const run = `${Date.now().toString(36)}${Math.floor(Math.random() * 36 ** 4).toString(36)}`;
  let counter = 0;
  return (hint) => {
    counter++;
    const clean = hint
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .slice(0, 24);
    return `${prefix}-${run}-${counter}-${clean}`.replace(/-+$/, '');
  };
}

/** The proof standing behind one capability. */
export function proofFor(proofs: ProofTable, capability: ConformanceCapability): Proof {
  return proofs[capability] ?? proofs.default;
}

export function describeProof(proof: Proof): string {
  switch (proof.kind) {
    case 'third-party-emulator':
      return `emulator: ${proof.name}`;
    case 'keyport-test-server':
      return `keyport test server: ${proof.name}`;
    case 'real-provider':
      return `real provider: ${proof.name}`;
    case 'not-emulated':
      return `not emulated: ${proof.reason}`;
  }
}
