/**
 * SARIF 2.1.0 for code-scanning dashboards. A violation is a `fail` result at a level from its
 * severity; an unknown is a `review` result (level `none`, as SARIF requires for non-failures),
 * so dashboards show it without counting it as a pass. Keys are logical locations; the policy
 * file is the physical location (the line of the rule, when the policy was parsed from text),
 * since that is the artifact a dashboard can open.
 */
import { createHash } from 'node:crypto';
import { checkOptions, checkString, escapeControl } from '@keyport/core';
import { type CheckResult, ruleDoc } from './check.js';
import { ruleLine, validatePolicy } from './policy-file.js';
import type { Policy, Severity } from './policy-types.js';
import { RULE_CATALOGUE } from './rule-catalogue.js';

export const SARIF_SCHEMA_URI =
  'https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json';

const LEVEL: Readonly<Record<Severity, 'error' | 'warning' | 'note'>> = {
  critical: 'error',
  high: 'error',
  medium: 'warning',
  low: 'note',
};
/** GitHub's `security-severity` scale (0-10). */
const SCORE: Readonly<Record<Severity, string>> = { critical: '9.5', high: '8.0', medium: '5.5', low: '3.0' };

/**
 * A SARIF message string: curly braces doubled, as SARIF 2.1.0 §3.11.5 requires of every message
 * string (a single `{0}` is a placeholder a viewer replaces with the result's arguments, so a key
 * URI, label or rationale holding one would be shown as something else, or as an error).
 */
const sarifText = (text: string): string => text.replace(/[{}]/g, (brace) => brace + brace);

export interface SarifOptions {
  /** The policy file as the dashboard knows it (a path relative to the repository root). */
  readonly policyUri?: string;
  readonly toolVersion?: string;
}

const SARIF_OPTIONS = { policyUri: true, toolVersion: true } as const satisfies Record<
  keyof SarifOptions,
  true
>;

export function toSarif(
  result: CheckResult,
  given: Policy,
  options: SarifOptions = {},
): Record<string, unknown> {
  const checked = checkOptions(options, 'options', SARIF_OPTIONS);
  // Checked as checkPolicy checks it (a severity outside the four has no SARIF level); the
  // lines of the rules are kept by the object the caller parsed, so they are read from `given`.
  const policy = validatePolicy(given);
  const o: SarifOptions = {
    ...(checked.policyUri !== undefined
      ? { policyUri: checkString(checked.policyUri, 'options.policyUri', { min: 1 }) }
      : {}),
    ...(checked.toolVersion !== undefined
      ? { toolVersion: checkString(checked.toolVersion, 'options.toolVersion', { min: 1, max: 256 }) }
      : {}),
  };
  const rules = policy.rules.map((r) => {
    const doc = ruleDoc(r);
    return {
      id: r.id,
      name: RULE_CATALOGUE[r.type].title.replace(/[^A-Za-z0-9]+/g, ''),
      shortDescription: { text: sarifText(doc.title) },
      fullDescription: { text: sarifText(doc.rationale) },
      help: { text: sarifText(`${doc.rationale}\nControls: ${doc.controls.join('; ')}`) },
      defaultConfiguration: { level: LEVEL[r.severity] },
      properties: {
        tags: ['security', 'key-management', ...doc.controls],
        'security-severity': SCORE[r.severity],
      },
    };
  });
  const index = new Map(policy.rules.map((r, i) => [r.id, i]));
  const artifact = o.policyUri ?? 'keyport-policy.yaml';
  const results = result.findings.map((f) => {
    const subject = f.keyUri ?? `${f.provider}:*`;
    const fingerprint = createHash('sha256')
      .update(JSON.stringify([f.ruleId, subject, f.grantId ?? null, f.status]))
      .digest('hex');
    return {
      ruleId: f.ruleId,
      ruleIndex: index.get(f.ruleId) ?? 0,
      kind: f.status === 'violation' ? 'fail' : 'review',
      level: f.status === 'violation' ? LEVEL[f.severity] : 'none',
      // Shown by dashboards as text: control and bidirectional characters from provider data
      // escaped as the tables escape them (the properties keep the data as reported).
      message: { text: sarifText(escapeControl(`${subject}: ${f.message}`)) },
      locations: [
        {
          physicalLocation: {
            artifactLocation: { uri: artifact },
            region: { startLine: ruleLine(given, index.get(f.ruleId) ?? 0) ?? 1 },
          },
          logicalLocations: [{ fullyQualifiedName: subject, kind: 'resource' }],
        },
      ],
      partialFingerprints: { 'keyportFinding/v1': fingerprint },
      properties: {
        provider: f.provider,
        status: f.status,
        severity: f.severity,
        ...(f.grantId !== undefined ? { grantId: f.grantId } : {}),
      },
    };
  });
  return {
    $schema: SARIF_SCHEMA_URI,
    version: '2.1.0',
    runs: [
      {
        tool: {
          driver: {
            name: 'keyport-policy',
            informationUri: 'https://github.com/keyport/keyport/tree/main/packages/policy',
            ...(o.toolVersion !== undefined ? { semanticVersion: o.toolVersion } : {}),
            rules,
          },
        },
        invocations: [{ executionSuccessful: true, endTimeUtc: result.checkedAt }],
        results,
      },
    ],
  };
}
