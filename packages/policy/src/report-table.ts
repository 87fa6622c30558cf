/** Plain-text tables for a terminal: findings with a summary line, and the inventory. */
import { escapeControl } from '@keyport/core';
import type { CheckResult, Finding } from './check.js';
import type { Inventory, InventoryKey, InventorySource } from './inventory-types.js';
import { SEVERITIES, severityRank } from './policy-types.js';

/**
 * Control characters from provider data never reach the terminal raw (no escape sequences), nor
 * do bidirectional controls (U+061C, U+200E/F, U+202A-E, U+2066-9: a key name could reorder the
 * rest of its row, e.g. show `exe.txt` for `txt.exe`) or the line and paragraph separators
 * (U+2028/9: a row that looks like two).
 */
export const clean = escapeControl;

/** What a source's summary adds for keys it listed that keyport cannot describe. */
export const unmodeledNote = (s: InventorySource): string =>
  s.unmodeled === undefined || s.unmodeled.length === 0
    ? ''
    : `, and ${s.unmodeled.length} ${s.unmodeled.length === 1 ? 'key' : 'keys'} keyport cannot describe (not checked: ${s.unmodeled.map((k) => k.uri).join(', ')})`;

export function formatTable(rows: readonly (readonly string[])[]): string[] {
  const cleaned = rows.map((r) => r.map(clean));
  const widths: number[] = [];
  for (const r of cleaned) {
    for (let i = 0; i < r.length; i++) widths[i] = Math.max(widths[i] ?? 0, (r[i] as string).length);
  }
  return cleaned.map((r) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd(),
  );
}

const order = (a: Finding, b: Finding): number =>
  severityRank(b.severity) - severityRank(a.severity) ||
  (a.status === b.status ? 0 : a.status === 'violation' ? -1 : 1) ||
  a.ruleId.localeCompare(b.ruleId) ||
  (a.keyUri ?? '').localeCompare(b.keyUri ?? '');

export function findingsTable(result: CheckResult): string {
  const s = result.summary;
  const lines: string[] = [];
  if (result.findings.length > 0) {
    lines.push(
      ...formatTable([
        ['SEVERITY', 'STATUS', 'RULE', 'KEY', 'FINDING'],
        ...[...result.findings]
          .sort(order)
          .map((f) => [f.severity, f.status, f.ruleId, f.keyUri ?? `(${f.provider})`, f.message]),
      ]),
      '',
    );
  }
  const bySeverity = SEVERITIES.slice()
    .reverse()
    .map(
      (sev) =>
        [sev, result.findings.filter((f) => f.severity === sev && f.status === 'violation').length] as const,
    )
    .filter(([, n]) => n > 0)
    .map(([sev, n]) => `${n} ${sev}`);
  lines.push(
    `${s.keys} keys, ${s.rules} rules, ${s.evaluated} checks: ${s.passed} passed, ${s.violations} violations${bySeverity.length > 0 ? ` (${bySeverity.join(', ')})` : ''}, ${s.unknown} unknown`,
  );
  return `${lines.join('\n')}\n`;
}

const days = (iso: string, now: number): string =>
  iso === 'unknown' ? 'unknown' : `${Math.floor((now - Date.parse(iso)) / 86_400_000)}d`;

function rotation(k: InventoryKey): string {
  const r = k.rotation;
  if (r.enabled === 'unknown') return 'unknown';
  return r.enabled && typeof r.periodDays === 'number' ? `${r.periodDays}d` : 'off';
}

export function inventoryTable(inv: Inventory): string {
  const now = Date.parse(inv.generatedAt);
  const rows = inv.keys.map((k) => [
    k.provider,
    k.uri,
    `${k.algorithm}`,
    k.purpose,
    k.protection,
    k.state,
    days(k.createdAt, now),
    days(k.lastRotatedAt, now),
    rotation(k),
    String(k.versions),
    String(k.grants.count),
    k.lastUsedAt === null ? 'never' : days(k.lastUsedAt, now),
    Object.entries(k.labels)
      .map(([a, b]) => `${a}=${b}`)
      .join(','),
  ]);
  const lines = formatTable([
    [
      'PROVIDER',
      'URI',
      'ALGORITHM',
      'PURPOSE',
      'PROTECTION',
      'STATE',
      'AGE',
      'ROTATED',
      'SCHEDULE',
      'VERSIONS',
      'GRANTS',
      'LAST USE',
      'LABELS',
    ],
    ...rows,
  ]);
  for (const s of inv.sources) {
    // Cleaned like the cells: a listing error's message is the provider's own text.
    lines.push(
      clean(
        s.error === undefined
          ? `${s.source}: ${s.keys} keys${unmodeledNote(s)}`
          : `${s.source}: listing failed (${s.error.code}): ${s.error.message}`,
      ),
    );
  }
  return `${lines.join('\n')}\n`;
}
