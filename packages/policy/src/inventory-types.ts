/**
 * The inventory record: one key of one provider, every field either what the provider reported
 * or `'unknown'`. Unknown is a value of its own so no rule can read a missing field as compliant.
 * Dates are ISO-8601 strings so a record is plain JSON (reports, SARIF, diffing two runs).
 */
import type { KeySpec, KeyState, KeyUsage } from '@keyport/core';

export const UNKNOWN = 'unknown' as const;
export type Unknown = typeof UNKNOWN;
export type Known<T> = T | Unknown;

export const isKnown = <T>(v: Known<T>): v is T => v !== UNKNOWN;

/** `hsm`: key material in a hardware module; `external`: held outside the provider (EKM, XKS). */
export const PROTECTION_LEVELS = ['hsm', 'software', 'external'] as const;
export type Protection = (typeof PROTECTION_LEVELS)[number];

export interface InventoryGrant {
  readonly id: string;
  readonly grantee: string;
  readonly operations: readonly string[];
  /** What the grant also allows that keyport has no name for, in the provider's words (Grant.unmodeledOperations). */
  readonly unmodeledOperations?: readonly string[];
  /** Conditions the provider applies that keyport does not model, in its words (Grant.unmodeledConditions). */
  readonly unmodeledConditions?: readonly string[];
  readonly createdAt: Known<string>;
  /** null: the grant never expires, or (with unmodeledConditions) keyport cannot read when it does. */
  readonly expiresAt: string | null;
  /** True when the grant carries a contextEquals or contextSubset constraint. */
  readonly constrained: boolean;
}

export interface InventoryRotation {
  /** Automatic rotation switched on. */
  readonly enabled: Known<boolean>;
  /** null when automatic rotation is off. */
  readonly periodDays: Known<number | null>;
  readonly nextRotationAt: Known<string | null>;
}

export interface InventoryGrants {
  readonly count: Known<number>;
  readonly earliestExpiry: Known<string | null>;
  readonly latestExpiry: Known<string | null>;
  /** Each grant, for rules on lifetime and constraints; unknown where grants cannot be listed. */
  readonly items: Known<readonly InventoryGrant[]>;
}

/** A field whose read failed: the field is unknown and this says why (never key material). */
export interface InventoryFieldError {
  readonly field: string;
  readonly code: string;
  readonly message: string;
}

export interface InventoryKey {
  readonly uri: string;
  /** The source the key was listed from (a provider scheme or instance name). */
  readonly provider: string;
  readonly algorithm: KeySpec;
  readonly keyBits: number;
  readonly purpose: KeyUsage;
  readonly protection: Known<Protection>;
  readonly state: KeyState;
  readonly createdAt: Known<string>;
  /** When the current primary material was made (the newest version's creation). */
  readonly lastRotatedAt: Known<string>;
  readonly rotation: InventoryRotation;
  readonly versions: Known<number>;
  /** null when the key is not pending deletion. */
  readonly pendingDeletionAt: Known<string | null>;
  readonly grants: InventoryGrants;
  readonly labels: Readonly<Record<string, string>>;
  readonly origin: Known<'provider' | 'external'>;
  /** Last successful use in the audit log; null when the log has none; unknown without a log. */
  readonly lastUsedAt: Known<string | null>;
  readonly errors: readonly InventoryFieldError[];
}

/** A key the source listed that keyport has no spec for: in no rule's reach, so never a pass. */
export interface InventoryUnmodeledKey {
  readonly uri: string;
  /** Why keyport cannot describe it (the provider's key type or algorithm, in keyport's words). */
  readonly reason: string;
}

export interface InventorySource {
  readonly source: string;
  /** Keys in `keys` (the inventory records); the unmodeled ones are counted apart. */
  readonly keys: number;
  /** Keys listed that keyport has no spec for (absent when none): each rule reports them unknown. */
  readonly unmodeled?: readonly InventoryUnmodeledKey[];
  /** The listing failed: the source's keys are missing from the inventory, and checks say so. */
  readonly error?: InventoryFieldError;
}

export interface Inventory {
  readonly generatedAt: string;
  readonly sources: readonly InventorySource[];
  /** First event time of the audit log read for last use (its coverage), when one was read. */
  readonly auditLogSince: Known<string | null>;
  /**
   * Key URIs the audit log shows in use that match no key of the inventory (an alias, a
   * relative keystore path, a key outside the filter): any of them might be a listed key under
   * another name, so the unused-keys rule answers unknown rather than accuse a key of the scheme.
   */
  readonly auditUnmatched?: readonly string[];
  readonly keys: readonly InventoryKey[];
}
