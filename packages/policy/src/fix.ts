/**
 * Safe remediation: the fixes a provider supports that only add protection — turn automatic
 * rotation on, shorten a rotation period to the policy's limit. Nothing is ever deleted,
 * disabled or revoked. Each fix is applied through the Keyport client (`setRotationPolicy`), so
 * it runs under the call policy and is audited like any other operation. Findings without a
 * safe automatic fix (an owner label: the neutral API cannot change an existing key's labels)
 * are listed as manual, not auto-fixable, with the reason; applying them changes nothing and is
 * not a failure.
 */
import type { CallOptions, KeyOperations } from '@keyport/core';
import { checkCallOptions, KeyportError, toKeyportError } from '@keyport/core';
import { type CheckResult, ruleApplies } from './check.js';
import type { Inventory, Known } from './inventory-types.js';
import { validatePolicy } from './policy-file.js';
import type { Policy } from './policy-types.js';
import { driverSchemeOf } from './protection.js';
import { clean } from './report-table.js';

export type FixAction =
  | { readonly kind: 'set-rotation-period'; readonly periodDays: number }
  | { readonly kind: 'manual'; readonly reason: string };

export interface Fix {
  readonly keyUri: string;
  readonly provider: string;
  readonly ruleId: string;
  readonly action: FixAction;
}

export interface FixOutcome extends Fix {
  readonly applied: boolean;
  readonly error?: { readonly code: string; readonly message: string };
}

export type FixClient = Pick<KeyOperations, 'capabilities' | 'setRotationPolicy'>;

/** Where `applyFixes` stood when its signal stopped it. */
export interface FixesStopped {
  /** The fixes finished before the stop, as `applyFixes` returns them: applied, refused or manual. */
  readonly outcomes: readonly FixOutcome[];
  /**
   * The fix whose call the stop interrupted: the provider may have applied it before the stop
   * was seen (describe the key to know). Undefined when the stop came between two fixes.
   */
  readonly cutOff: Fix | undefined;
  /** The fixes never started, in order. */
  readonly notStarted: readonly Fix[];
}

/**
 * `applyFixes` was stopped by its signal. The fixes already applied stay applied (each is a
 * setting change, not undone), so the error carries them: a caller learns what changed before
 * the stop. Its code is the stop's own (`Aborted` for the caller's signal).
 */
export class FixesStoppedError extends KeyportError implements FixesStopped {
  override readonly name: string = 'FixesStoppedError';
  readonly outcomes: readonly FixOutcome[];
  readonly cutOff: Fix | undefined;
  readonly notStarted: readonly Fix[];

  constructor(stopped: FixesStopped, reason: KeyportError) {
    const applied = stopped.outcomes.filter((f) => f.applied).length;
    super(
      reason.code,
      `applying policy fixes stopped (${reason.message}): ${applied} applied before the stop${
        stopped.cutOff === undefined
          ? ''
          : `, the fix of ${stopped.cutOff.keyUri} cut off (it may have been applied)`
      }, ${stopped.notStarted.length} not started`,
      { retryable: false, cause: reason },
    );
    this.outcomes = stopped.outcomes;
    this.cutOff = stopped.cutOff;
    this.notStarted = stopped.notStarted;
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), outcomes: this.outcomes, cutOff: this.cutOff, notStarted: this.notStarted };
  }
}

/** A rotation period known to be longer than `maxDays` (never one that is unknown or off). */
const longerThan = (periodDays: Known<number | null>, maxDays: number): boolean =>
  typeof periodDays === 'number' && periodDays > maxDays;

/** The fixes for a check's violations (unknown findings get none: nothing is known to fix). */
export function planFixes(inv: Inventory, given: Policy, result: CheckResult, client: FixClient): Fix[] {
  // Checked as checkPolicy checks it: an unchecked `maxDays` (misspelt: undefined; a string)
  // would become the period a fix sets, and a period left out turns rotation off.
  const policy = validatePolicy(given);
  const rules = new Map(policy.rules.map((r) => [r.id, r]));
  const keys = new Map(inv.keys.map((k) => [k.uri, k]));
  const fixes: Fix[] = [];
  const planned = new Map<string, number>(); // key → shortest period already planned
  for (const f of result.findings) {
    if (f.status !== 'violation' || f.keyUri === undefined) continue;
    const rule = rules.get(f.ruleId);
    const key = keys.get(f.keyUri);
    if (rule === undefined || key === undefined) continue;
    // The result may come from another check (an older policy, a broader one whose rule has
    // the same id): a fix acts only on a key this policy's rule judges, by a rule of the type
    // the finding is about. Trusted as given, a rule scoped to `env: dev` set prod keys' periods.
    if (rule.type !== f.ruleType || !ruleApplies(rule, key)) continue;
    const base = { keyUri: key.uri, provider: key.provider, ruleId: rule.id };
    if (rule.type === 'max-rotation-period') {
      let autoRotation = false;
      try {
        autoRotation = client.capabilities(key.provider).autoRotation;
      } catch {
        autoRotation = false;
      }
      if (!autoRotation) {
        fixes.push({
          ...base,
          action: {
            kind: 'manual',
            reason: `${key.provider} has no automatic rotation: rotate the key by hand (keyport keys rotate)`,
          },
        });
      } else if (key.algorithm !== 'AES_256' && driverSchemeOf(key.uri) === 'aws-kms') {
        // By the URI's scheme, not the source name: a named instance (`prod`) is AWS KMS too.
        fixes.push({
          ...base,
          action: {
            kind: 'manual',
            reason: 'AWS KMS rotates only symmetric keys automatically: create a new key and move to it',
          },
        });
      } else if (!(key.rotation.enabled === false || longerThan(key.rotation.periodDays, rule.maxDays))) {
        // Only material older than the limit breaks the rule, under a schedule within it, or a
        // schedule that could not be read: setting the period to the limit could lengthen a
        // shorter one (every 30 days made every 365), which is no fix. Rotating now is.
        fixes.push({
          ...base,
          action: {
            kind: 'manual',
            reason:
              key.rotation.enabled === true
                ? `the material is older than ${rule.maxDays} days though the schedule is within the limit: rotate the key now (keyport keys rotate)`
                : `the rotation schedule could not be read: describe the key, rotate it now (keyport keys rotate) and set a schedule of at most ${rule.maxDays} days`,
          },
        });
      } else {
        const seen = planned.get(key.uri);
        if (seen !== undefined && seen <= rule.maxDays) continue;
        planned.set(key.uri, rule.maxDays);
        const i = fixes.findIndex((x) => x.keyUri === key.uri && x.action.kind === 'set-rotation-period');
        if (i >= 0) fixes.splice(i, 1);
        fixes.push({ ...base, action: { kind: 'set-rotation-period', periodDays: rule.maxDays } });
      }
    } else if (rule.type === 'owner-label') {
      fixes.push({
        ...base,
        action: {
          kind: 'manual',
          reason: `add the ${JSON.stringify(rule.label ?? 'owner')} label in the provider: keyport's neutral API sets labels only when a key is created, it has no call that changes them`,
        },
      });
    }
  }
  return fixes;
}

/**
 * Applies the automatic fixes one by one; a failure is reported for its key and the rest go on.
 * When the signal fires, the fixes stop with a `FixesStoppedError` carrying those already done.
 */
export async function applyFixes(
  client: FixClient,
  fixes: readonly Fix[],
  options: CallOptions = {},
): Promise<FixOutcome[]> {
  // Checked once, before the first fix: a bad deadline or signal would otherwise fail every fix
  // one by one as that key's error, and a misspelt option (`timeout`) would be dropped unseen.
  const o = checkCallOptions(options, 'options').call;
  const out: FixOutcome[] = [];
  // Thrown on a stop, with every outcome so far: a plain rethrow lost the fixes already applied.
  const stopped = (at: number, cutOff: Fix | undefined, reason: KeyportError): FixesStoppedError =>
    new FixesStoppedError(
      { outcomes: [...out], cutOff, notStarted: fixes.slice(cutOff === undefined ? at : at + 1) },
      reason,
    );
  for (const [i, fix] of fixes.entries()) {
    if (fix.action.kind !== 'set-rotation-period') {
      out.push({ ...fix, applied: false });
      continue;
    }
    // Checked before each call, so a stop between two fixes names none as possibly applied.
    if (o.signal?.aborted) {
      throw stopped(
        i,
        undefined,
        new KeyportError('Aborted', 'the operation was aborted', { retryable: false }),
      );
    }
    try {
      await client.setRotationPolicy(fix.keyUri, { periodDays: fix.action.periodDays }, o);
      out.push({ ...fix, applied: true });
    } catch (e) {
      const k = toKeyportError(e);
      if (o.signal?.aborted) throw stopped(i, fix, k);
      out.push({ ...fix, applied: false, error: { code: k.code, message: k.message } });
    }
  }
  return out;
}

/**
 * One line for a terminal (`keyport policy fix` prints it as is). The key URI is provider text:
 * the built-in drivers cannot put a control character in one, a third-party driver's URI is its
 * own, so it is escaped as the tables escape it.
 */
export function describeFix(f: Fix): string {
  return clean(
    f.action.kind === 'set-rotation-period'
      ? `${f.keyUri}: set automatic rotation every ${f.action.periodDays} days (rule ${f.ruleId})`
      : `${f.keyUri}: manual (rule ${f.ruleId}), not auto-fixable: ${f.action.reason}`,
  );
}
