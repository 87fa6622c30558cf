import { checkDate, checkOptions, invalidArgument } from '@keyport/core';
/**
 * `checkPolicy`: every rule against every key it matches. A rule reading a field the provider
 * could not report yields an `unknown` finding, never a pass; a source whose listing failed
 * yields one unknown finding per rule, so an outage cannot make an inventory look compliant.
 */
import { type Inventory, type InventoryKey, isKnown } from './inventory-types.js';
import { validatePolicy } from './policy-file.js';
import type { Policy, Rule, RuleType, Severity } from './policy-types.js';
import { driverSchemeOf, familyOf } from './protection.js';
import { RULE_CATALOGUE } from './rule-catalogue.js';

export interface Finding {
  readonly ruleId: string;
  readonly ruleType: RuleType;
  readonly severity: Severity;
  /** `violation`: the key breaks the rule; `unknown`: the provider could not say whether it does. */
  readonly status: 'violation' | 'unknown';
  readonly provider: string;
  /** Absent when the finding is about a whole source (its listing failed). */
  readonly keyUri?: string;
  /** The grant the finding is about, for grant rules. */
  readonly grantId?: string;
  readonly message: string;
}

export interface CheckSummary {
  readonly keys: number;
  readonly rules: number;
  /** Rule × key pairs evaluated (grant rules count once per key). */
  readonly evaluated: number;
  readonly passed: number;
  readonly violations: number;
  readonly unknown: number;
}

/** A rule whose `match.providers` names sources the inventory does not have: it checked no key there. */
export interface UnmatchedProviders {
  readonly ruleId: string;
  readonly providers: readonly string[];
}

export interface CheckResult {
  readonly checkedAt: string;
  readonly findings: readonly Finding[];
  readonly summary: CheckSummary;
  /**
   * Rules naming a provider (source) the inventory has none of, absent when there are none. Such
   * a rule finds nothing there, so a misspelt name (`aws-kms+dr` for `aws-kms+prod`) would read as
   * compliant; it is a note, not a finding, as one policy may serve inventories of fewer sources.
   */
  readonly unmatchedProviders?: readonly UnmatchedProviders[];
}

const DAY_MS = 86_400_000;
/**
 * Blank to a reader: white space, and format or invisible characters `trim()` keeps (a zero-width
 * space U+200B, a word joiner, a BOM), so an owner of only those is no owner.
 */
const isBlank = (value: string): boolean => value.replace(/[\s\p{Cf}\u3164\u115F\u1160\uFFA0]/gu, '') === '';
/** An ISO-8601 date as the inventory writes them (`toISOString`, extended years included). */
const ISO_DATE = /^(?:[+-]\d{6}|\d{4})-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})$/;
/**
 * The time of an inventory date, undefined when it is unknown or no ISO date. An inventory read
 * back from JSON or built in code is not held to what the collector writes: a date that does not
 * parse compared as NaN, false against every limit, and the rule passed the key ("deleted in NaN
 * days" is no violation). Such a date is unknown, as a date the provider did not report.
 */
function timeOf(value: unknown): number | undefined {
  if (typeof value !== 'string' || !ISO_DATE.test(value)) return undefined;
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : t;
}
/**
 * How far after `now` a reported date may lie (clocks of provider, audit writer and checker
 * disagree by seconds to minutes) before it is not believed. A date well in the future (a wrong
 * clock, a wrong answer) made a key's material or last use look younger than any limit, forever:
 * the age it gives is unknown instead, and so is the rule's outcome unless other facts decide.
 */
const FUTURE_SKEW_MS = DAY_MS;
const inFuture = (t: number | undefined, now: number): boolean => t !== undefined && t - now > FUTURE_SKEW_MS;
const daysSince = (from: number | undefined, to: number): number | undefined =>
  from === undefined || inFuture(from, to) ? undefined : Math.max(0, to - from) / DAY_MS;
const fmtDays = (d: number): string => `${Math.floor(d)} days`;

type Outcome = { status: 'violation' | 'unknown'; message: string; grantId?: string };

function matches(rule: Rule, key: InventoryKey): boolean {
  const m = rule.match;
  if (m === undefined) return true;
  if (m.providers !== undefined && !m.providers.includes(key.provider)) return false;
  if (m.algorithms !== undefined && !m.algorithms.includes(key.algorithm)) return false;
  if (m.purposes !== undefined && !m.purposes.includes(key.purpose)) return false;
  if (m.labels !== undefined) {
    for (const [name, value] of Object.entries(m.labels)) {
      if (!Object.hasOwn(key.labels, name) || key.labels[name] !== value) return false;
    }
  }
  return true;
}

/** Which keys a rule looks at, by state: destroyed keys are gone; pending ones only for deletion. */
function inScope(rule: Rule, key: InventoryKey): boolean {
  if (rule.type === 'min-pending-deletion-window') return key.state === 'pending_deletion';
  return key.state !== 'destroyed' && key.state !== 'pending_deletion';
}

/** Whether `checkPolicy` judges `key` by `rule` (its match and the states it looks at). */
export function ruleApplies(rule: Rule, key: InventoryKey): boolean {
  return inScope(rule, key) && matches(rule, key);
}

function evaluate(rule: Rule, key: InventoryKey, inv: Inventory, now: number): Outcome[] {
  switch (rule.type) {
    case 'max-rotation-period': {
      const rotatedAt = timeOf(key.lastRotatedAt);
      if (inFuture(rotatedAt, now)) {
        return [
          {
            status: 'unknown',
            message: `its material is reported made at ${key.lastRotatedAt}, after the check's time: its age is unknown (a clock or provider error?)`,
          },
        ];
      }
      const age = daysSince(rotatedAt, now);
      if (age !== undefined && age > rule.maxDays) {
        return [
          { status: 'violation', message: `key material is ${fmtDays(age)} old (limit ${rule.maxDays})` },
        ];
      }
      const { enabled, periodDays } = key.rotation;
      if (enabled === true && isKnown(periodDays) && periodDays !== null) {
        if (periodDays > rule.maxDays)
          return [
            { status: 'violation', message: `rotates every ${periodDays} days (limit ${rule.maxDays})` },
          ];
        // The schedule bounds the material to come, not the material in use: a key made long ago
        // whose rotation was switched on lately still holds its first material. Only a key no
        // older than the limit shows that its material is within it.
        const keyAge = daysSince(timeOf(key.createdAt), now);
        if (age !== undefined || (keyAge !== undefined && keyAge <= rule.maxDays)) return [];
        return [
          {
            status: 'unknown',
            message: `rotates every ${periodDays} days, but when its current material was made is not reported (${
              keyAge === undefined ? 'nor when the key was' : `the key is ${fmtDays(keyAge)} old`
            }; limit ${rule.maxDays})`,
          },
        ];
      }
      if (enabled === false) {
        return [{ status: 'violation', message: `automatic rotation is off (limit ${rule.maxDays} days)` }];
      }
      return [{ status: 'unknown', message: 'the provider did not report the rotation schedule' }];
    }
    case 'required-protection':
      if (!isKnown(key.protection)) {
        return [
          {
            status: 'unknown',
            message: `protection level not reported (required: ${rule.protection.join(' or ')})`,
          },
        ];
      }
      return rule.protection.includes(key.protection)
        ? []
        : [
            {
              status: 'violation',
              message: `protected by ${key.protection}, required: ${rule.protection.join(' or ')}`,
            },
          ];
    case 'forbidden-algorithms':
      return rule.algorithms.includes(key.algorithm)
        ? [{ status: 'violation', message: `uses forbidden algorithm ${key.algorithm}` }]
        : [];
    case 'min-key-size': {
      const family = familyOf(key.algorithm);
      const min = Object.hasOwn(rule.minBits, family) ? rule.minBits[family] : undefined;
      if (min === undefined) return [];
      // A third-party listing is not held to core's specs: a spec of the family this package
      // has no size for (RSA_1024) leaves keyBits undefined, and `undefined < min` is false.
      if (typeof key.keyBits !== 'number' || Number.isNaN(key.keyBits)) {
        return [
          {
            status: 'unknown',
            message: `size of ${key.algorithm} not known (minimum for ${family}: ${min})`,
          },
        ];
      }
      return key.keyBits < min
        ? [{ status: 'violation', message: `${family} key of ${key.keyBits} bits (minimum ${min})` }]
        : [];
    }
    case 'max-grant-lifetime': {
      const items = key.grants.items;
      if (!isKnown(items)) return [{ status: 'unknown', message: 'grants cannot be listed for this key' }];
      const out: Outcome[] = [];
      for (const g of items) {
        if (g.expiresAt === null && (g.unmodeledConditions?.length ?? 0) > 0) {
          // An edited condition may or may not end the grant: not "never expires", not a pass.
          out.push({
            status: 'unknown',
            grantId: g.id,
            message: `grant ${g.id} to ${g.grantee} is under a condition keyport does not model: its expiry cannot be read`,
          });
          continue;
        }
        if (g.expiresAt === null) {
          out.push({
            status: 'violation',
            grantId: g.id,
            message: `grant ${g.id} to ${g.grantee} never expires`,
          });
          continue;
        }
        const expires = timeOf(g.expiresAt);
        if (expires === undefined) {
          out.push({
            status: 'unknown',
            grantId: g.id,
            message: `grant ${g.id}: its expiry is not a date, lifetime unknown`,
          });
          continue;
        }
        const created = timeOf(g.createdAt);
        if (created !== undefined) {
          const life = (expires - created) / DAY_MS;
          if (life > rule.maxDays) {
            out.push({
              status: 'violation',
              grantId: g.id,
              message: `grant ${g.id} to ${g.grantee} lives ${fmtDays(life)} (limit ${rule.maxDays})`,
            });
          }
        } else if ((expires - now) / DAY_MS > rule.maxDays) {
          // Even counted from now it outlives the limit.
          out.push({
            status: 'violation',
            grantId: g.id,
            message: `grant ${g.id} to ${g.grantee} still has more than ${rule.maxDays} days to live`,
          });
        } else {
          out.push({
            status: 'unknown',
            grantId: g.id,
            message: `grant ${g.id}: creation time not reported, lifetime unknown`,
          });
        }
      }
      return out;
    }
    case 'grant-context-constraint': {
      const items = key.grants.items;
      if (!isKnown(items)) return [{ status: 'unknown', message: 'grants cannot be listed for this key' }];
      return items
        .filter((g) => !g.constrained)
        .map((g) => ({
          status: 'violation' as const,
          grantId: g.id,
          message: `grant ${g.id} to ${g.grantee} has no encryption-context constraint`,
        }));
    }
    case 'min-pending-deletion-window': {
      const deletionAt = timeOf(key.pendingDeletionAt);
      if (deletionAt === undefined) {
        return [{ status: 'unknown', message: 'pending deletion, but the deletion date is not reported' }];
      }
      const left = (deletionAt - now) / DAY_MS;
      return left < rule.minDays
        ? [
            {
              status: 'violation',
              message: `deleted in ${fmtDays(Math.max(left, 0))} (minimum window ${rule.minDays})`,
            },
          ]
        : [];
    }
    case 'max-unused-days': {
      if (!isKnown(key.lastUsedAt))
        return [{ status: 'unknown', message: 'no audit log was read, last use unknown' }];
      // Compared by driver scheme, the instance selector left out: a listing names a key of a
      // named instance `local+team:...`, a caller may name the same key `local:...` (the
      // scheme's only or default instance), and the log records the URI as called.
      const scheme = driverSchemeOf(key.uri);
      const aliases = (inv.auditUnmatched ?? []).filter((u) => driverSchemeOf(u) === scheme);
      const maybeAlias: Outcome = {
        status: 'unknown',
        message: `the audit log shows ${aliases.length} ${scheme} key name(s) not in the inventory (aliases?) that may be this key`,
      };
      if (key.lastUsedAt !== null) {
        const usedAt = timeOf(key.lastUsedAt);
        const idle = daysSince(usedAt, now);
        if (idle === undefined) {
          const why =
            usedAt === undefined
              ? 'the last use recorded is not a date'
              : `the last use recorded (${key.lastUsedAt}) lies after the check's time`;
          return [{ status: 'unknown', message: why }];
        }
        if (idle <= rule.maxDays) return [];
        return aliases.length > 0
          ? [maybeAlias]
          : [{ status: 'violation', message: `last used ${fmtDays(idle)} ago (limit ${rule.maxDays})` }];
      }
      // Never used in the log: that proves idleness only over what the log covers.
      const covered = daysSince(timeOf(inv.auditLogSince), now) ?? 0;
      const keyAge = daysSince(timeOf(key.createdAt), now);
      if (keyAge !== undefined && keyAge <= rule.maxDays) return [];
      if (covered >= rule.maxDays && keyAge !== undefined) {
        if (aliases.length > 0) return [maybeAlias];
        return [
          {
            status: 'violation',
            message: `not used in the ${fmtDays(covered)} the audit log covers (limit ${rule.maxDays})`,
          },
        ];
      }
      return [
        { status: 'unknown', message: `not used in the audit log, which covers only ${fmtDays(covered)}` },
      ];
    }
    case 'owner-label': {
      const label = rule.label ?? 'owner';
      const value = Object.hasOwn(key.labels, label) ? key.labels[label] : undefined;
      return value === undefined || isBlank(value)
        ? [{ status: 'violation', message: `has no ${JSON.stringify(label)} label` }]
        : [];
    }
  }
}

export interface CheckOptions {
  /** The time rules measure against; default the inventory's `generatedAt`. */
  readonly now?: Date;
}

const CHECK_OPTIONS = { now: true } as const satisfies Record<keyof CheckOptions, true>;

export function checkPolicy(inventory: Inventory, given: Policy, options: CheckOptions = {}): CheckResult {
  // A misspelt `now` would measure against the inventory's time; a string would fail as a TypeError.
  const o = checkOptions(options, 'options', CHECK_OPTIONS);
  // A policy built in code is held to the file format too: unchecked, a misspelt or NaN limit
  // (`mindays`, `maxDays: NaN`) compares false everywhere, and the rule passes every key.
  const policy = validatePolicy(given);
  // Measured against the inventory's own time unless told: one that is no date made every age
  // NaN (and the result's `checkedAt` a RangeError), so it is refused, naming the field.
  const now = o.now === undefined ? timeOf(inventory.generatedAt) : checkDate(o.now, 'options.now').getTime();
  if (now === undefined)
    throw invalidArgument('inventory.generatedAt', 'expected an ISO date (or give options.now)');
  const findings: Finding[] = [];
  let evaluated = 0;
  let passed = 0;
  for (const rule of policy.rules) {
    for (const source of inventory.sources) {
      if (source.error === undefined) continue;
      if (rule.match?.providers !== undefined && !rule.match.providers.includes(source.source)) continue;
      findings.push({
        ruleId: rule.id,
        ruleType: rule.type,
        severity: rule.severity,
        status: 'unknown',
        provider: source.source,
        message: `keys of ${source.source} could not be listed (${source.error.code}): not checked`,
      });
    }
    for (const source of inventory.sources) {
      if (rule.match?.providers !== undefined && !rule.match.providers.includes(source.source)) continue;
      // Whether the rule's other matches (labels, algorithm...) take the key cannot be told either.
      for (const key of source.unmodeled ?? []) {
        findings.push({
          ruleId: rule.id,
          ruleType: rule.type,
          severity: rule.severity,
          status: 'unknown',
          provider: source.source,
          keyUri: key.uri,
          message: `${key.reason}: not checked`,
        });
      }
    }
    for (const key of inventory.keys) {
      if (!ruleApplies(rule, key)) continue;
      evaluated++;
      const outcomes = evaluate(rule, key, inventory, now);
      if (outcomes.length === 0) passed++;
      for (const out of outcomes) {
        findings.push({
          ruleId: rule.id,
          ruleType: rule.type,
          severity: rule.severity,
          status: out.status,
          provider: key.provider,
          keyUri: key.uri,
          ...(out.grantId !== undefined ? { grantId: out.grantId } : {}),
          message: out.message,
        });
      }
    }
  }
  const listed = new Set([
    ...inventory.sources.map((s) => s.source),
    ...inventory.keys.map((k) => k.provider),
  ]);
  const unmatchedProviders = policy.rules.flatMap((rule) => {
    const providers = (rule.match?.providers ?? []).filter((p) => !listed.has(p));
    return providers.length === 0 ? [] : [{ ruleId: rule.id, providers }];
  });
  return {
    checkedAt: new Date(now).toISOString(),
    findings,
    summary: {
      keys: inventory.keys.length,
      rules: policy.rules.length,
      evaluated,
      passed,
      violations: findings.filter((f) => f.status === 'violation').length,
      unknown: findings.filter((f) => f.status === 'unknown').length,
    },
    ...(unmatchedProviders.length > 0 ? { unmatchedProviders } : {}),
  };
}

/** The rationale and controls of a rule: its own, else the catalogue's. */
export function ruleDoc(rule: Rule): { title: string; rationale: string; controls: readonly string[] } {
  const d = RULE_CATALOGUE[rule.type];
  return { title: d.title, rationale: rule.rationale ?? d.rationale, controls: rule.controls ?? d.controls };
}
