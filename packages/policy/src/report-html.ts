/**
 * A self-contained HTML report: summary, charts (inline SVG drawn at report time), findings and
 * the inventory. No script, no external resource, and a Content-Security-Policy that forbids
 * fetching anything, so it opens the same offline, from a mail attachment or a CI artifact.
 */

import { checkOptions, checkString, escapeControl } from '@keyport/core';
import { reportCharts } from './charts.js';
import { type CheckResult, ruleDoc } from './check.js';
import type { Inventory } from './inventory-types.js';
import { validatePolicy } from './policy-file.js';
import { type Policy, severityRank } from './policy-types.js';
import { unmodeledNote } from './report-table.js';

const ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};
export const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => ESCAPES[c] as string);

/**
 * Control and bidirectional characters shown as `\u202e`, as the terminal tables show them: in a
 * cell, U+202E displayed a label `txt.exe` as `exe.txt`. Tabs and line breaks stay (a rationale
 * may span lines; HTML shows them as spaces).
 */
const visibleText = (s: string): string => s.replace(/[^\t\n\r]+/g, escapeControl);

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%;font-size:12.5px}th,td{text-align:left;padding:.25rem .5rem;border-bottom:1px solid #eee;vertical-align:top}
th{background:#f6f6f6}td.uri{word-break:break-all;font-family:ui-monospace,monospace}
.sev-critical{color:#a50026;font-weight:600}.sev-high{color:#d73027;font-weight:600}.sev-medium{color:#b8860b}.sev-low{color:#4575b4}
.unknown{color:#666;font-style:italic}.cards{display:flex;gap:1rem;flex-wrap:wrap}.card{border:1px solid #ddd;border-radius:6px;padding:.6rem 1rem}
.card b{display:block;font-size:1.4rem}figure{margin:1rem 0}figcaption{color:#555;font-size:12.5px}
`;

export interface HtmlReportOptions {
  readonly title?: string;
}

const HTML_OPTIONS = { title: true } as const satisfies Record<keyof HtmlReportOptions, true>;

export async function toHtml(
  inv: Inventory,
  given: Policy,
  result: CheckResult,
  options: HtmlReportOptions = {},
): Promise<string> {
  const o = checkOptions(options, 'options', HTML_OPTIONS);
  // Checked as checkPolicy checks it: the rules table and the rotation chart read its fields.
  const policy = validatePolicy(given);
  const title =
    o.title !== undefined
      ? checkString(o.title, 'options.title')
      : (policy.name ?? 'keyport key policy report');
  const charts = await reportCharts(inv, policy);
  const s = result.summary;
  const findings = [...result.findings].sort(
    (a, b) => severityRank(b.severity) - severityRank(a.severity) || a.ruleId.localeCompare(b.ruleId),
  );
  // Every interpolated field is escaped, the typed ones too (algorithm, state, severity): an
  // inventory read back from JSON or a third-party driver's listing is not held to the types.
  const e = (s: string): string => escapeHtml(visibleText(s));
  const ruleRows = policy.rules
    .map((r) => {
      const d = ruleDoc(r);
      return `<tr><td>${e(r.id)}</td><td class="sev-${e(r.severity)}">${e(r.severity)}</td><td>${e(d.title)}</td><td>${e(d.rationale)}</td><td>${e(d.controls.join('; '))}</td></tr>`;
    })
    .join('\n');
  const findingRows = findings
    .map(
      (f) =>
        `<tr><td class="sev-${e(f.severity)}">${e(f.severity)}</td><td class="${f.status === 'unknown' ? 'unknown' : ''}">${e(f.status)}</td><td>${e(f.ruleId)}</td><td class="uri">${e(f.keyUri ?? `(${f.provider})`)}</td><td>${e(f.message)}</td></tr>`,
    )
    .join('\n');
  const keyRows = inv.keys
    .map(
      (k) =>
        `<tr><td>${e(k.provider)}</td><td class="uri">${e(k.uri)}</td><td>${e(k.algorithm)}</td><td>${e(k.purpose)}</td><td>${e(k.protection)}</td><td>${e(k.state)}</td><td>${e(k.createdAt)}</td><td>${e(k.lastRotatedAt)}</td><td>${e(String(k.grants.count))}</td><td>${e(k.lastUsedAt ?? 'never')}</td><td>${e(
          Object.entries(k.labels)
            .map(([a, b]) => `${a}=${b}`)
            .join(', '),
        )}</td></tr>`,
    )
    .join('\n');
  const figures = charts
    .map(
      (c) =>
        `<figure><h3>${e(c.title)}</h3>${c.svg === '' ? '<p class="unknown">nothing to draw</p>' : c.svg}<figcaption>${e(c.caption)}</figcaption></figure>`,
    )
    .join('\n');
  const sourceNotes = inv.sources
    .filter((x) => x.error !== undefined || unmodeledNote(x) !== '')
    .map((x) =>
      x.error !== undefined
        ? `<li>${e(x.source)}: listing failed (${e(x.error.code)}): ${e(x.error.message)}</li>`
        : `<li>${e(x.source)}: ${e(String(x.keys))} keys${e(unmodeledNote(x))}</li>`,
    )
    .join('');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${e(title)}</title>
<style>${CSS}</style>
</head>
<body>
<h1>${e(title)}</h1>
<p>Inventory of ${inv.keys.length} keys from ${inv.sources.length} providers at ${e(inv.generatedAt)}, checked at ${e(result.checkedAt)}.</p>
<div class="cards">
<div class="card"><b>${e(String(s.keys))}</b>keys</div>
<div class="card"><b>${e(String(s.violations))}</b>violations</div>
<div class="card"><b>${e(String(s.unknown))}</b>unknown (not compliant)</div>
<div class="card"><b>${e(String(s.passed))}</b>of ${e(String(s.evaluated))} checks passed</div>
</div>
${sourceNotes === '' ? '' : `<h2>Providers not read</h2><ul>${sourceNotes}</ul>`}
<h2>Charts</h2>
${figures}
<h2>Findings</h2>
${findings.length === 0 ? '<p>No findings.</p>' : `<table><thead><tr><th>severity</th><th>status</th><th>rule</th><th>key</th><th>finding</th></tr></thead><tbody>\n${findingRows}\n</tbody></table>`}
<h2>Rules</h2>
<table><thead><tr><th>id</th><th>severity</th><th>rule</th><th>rationale</th><th>controls</th></tr></thead><tbody>
${ruleRows}
</tbody></table>
<h2>Inventory</h2>
<table><thead><tr><th>provider</th><th>uri</th><th>algorithm</th><th>purpose</th><th>protection</th><th>state</th><th>created</th><th>last rotated</th><th>grants</th><th>last use</th><th>labels</th></tr></thead><tbody>
${keyRows}
</tbody></table>
</body>
</html>
`;
}
