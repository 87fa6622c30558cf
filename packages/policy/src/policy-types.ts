/** The policy file's shape (schema/policy.schema.json is the published form of the same). */
import type { KeySpec, KeyUsage } from '@keyport/core';
import type { Protection } from './inventory-types.js';

export const SEVERITIES = ['low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

export const severityRank = (s: Severity): number => SEVERITIES.indexOf(s);

export interface RuleMatch {
  readonly providers?: readonly string[];
  readonly algorithms?: readonly KeySpec[];
  readonly purposes?: readonly KeyUsage[];
  /** Prototype-free: `__proto__` is an ordinary label name here. */
  readonly labels?: Readonly<Record<string, string>>;
}

interface RuleBase {
  readonly id: string;
  readonly severity: Severity;
  readonly rationale?: string;
  readonly controls?: readonly string[];
  readonly match?: RuleMatch;
}

export type Rule =
  | (RuleBase & { readonly type: 'max-rotation-period'; readonly maxDays: number })
  | (RuleBase & { readonly type: 'required-protection'; readonly protection: readonly Protection[] })
  | (RuleBase & { readonly type: 'forbidden-algorithms'; readonly algorithms: readonly KeySpec[] })
  | (RuleBase & {
      readonly type: 'min-key-size';
      readonly minBits: Readonly<Partial<Record<'RSA' | 'EC' | 'AES' | 'HMAC', number>>>;
    })
  | (RuleBase & { readonly type: 'max-grant-lifetime'; readonly maxDays: number })
  | (RuleBase & { readonly type: 'grant-context-constraint' })
  | (RuleBase & { readonly type: 'min-pending-deletion-window'; readonly minDays: number })
  | (RuleBase & { readonly type: 'max-unused-days'; readonly maxDays: number })
  | (RuleBase & { readonly type: 'owner-label'; readonly label?: string });

export type RuleType = Rule['type'];

export interface Policy {
  readonly version: 1;
  readonly name?: string;
  readonly rules: readonly Rule[];
}
