/**
 * The outputs: SARIF validated against the SARIF 2.1.0 JSON Schema (as Microsoft's SARIF SDK
 * ships it), the HTML report loaded in a real headless Chromium (no console error, no request,
 * the SVG charts drawn), the table and JSON forms.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Ajv as AjvCore } from 'ajv';
import { chromium } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureChromium } from '../scripts/ensure-chromium.mjs';
import {
  type CheckResult,
  checkPolicy,
  collectInventory,
  findingsTable,
  type Inventory,
  inventoryTable,
  type Policy,
  parsePolicyText,
  reportCharts,
  toHtml,
  toSarif,
  UNKNOWN,
} from '../src/index.js';
import { client, FakeClock, localProvider } from './support/targets.js';

const POLICY = parsePolicyText(`
version: 1
name: Seeded report
rules:
  - { id: rotation, type: max-rotation-period, severity: high, maxDays: 365 }
  - { id: owner, type: owner-label, severity: low }
  - { id: no-rsa2048, type: forbidden-algorithms, severity: critical, algorithms: [RSA_2048] }
  - { id: grants-expire, type: max-grant-lifetime, severity: medium, maxDays: 90 }
  - { id: unused, type: max-unused-days, severity: low, maxDays: 180 }
`);

let inv: Inventory;
let result: CheckResult;

async function seeded(): Promise<{ inv: Inventory; result: CheckResult; policy: Policy }> {
  const clock = new FakeClock('2030-01-01T00:00:00.000Z');
  const kp = client({ providers: [await localProvider(clock)] });
  const old = await kp.createKey('local', {
    name: 'legacy',
    spec: 'AES_256',
    labels: { owner: '<script>alert(1)</script>' },
  });
  await kp.createKey('local', { name: 'signing', spec: 'RSA_2048', usage: 'sign_verify' });
  clock.advanceDays(500);
  const fresh = await kp.createKey('local', {
    name: 'fresh',
    spec: 'AES_256',
    labels: { owner: 'team' },
    rotation: { periodDays: 90 },
  });
  await kp.createGrant(fresh.uri, {
    grantee: 'app',
    operations: ['encrypt'],
    expiresAt: new Date('2031-06-01T00:00:00Z'),
  });
  await kp.createGrant(old.uri, { grantee: 'batch', operations: ['decrypt'] });
  const i = await collectInventory(kp, { sources: ['local'], now: clock.now });
  return { inv: i, result: checkPolicy(i, POLICY), policy: POLICY };
}

beforeAll(async () => {
  ({ inv, result } = await seeded());
});

describe('SARIF', () => {
  it('validates against the SARIF 2.1.0 schema, one result per finding', () => {
    const require = createRequire(import.meta.url);
    const pkg = dirname(require.resolve('@microsoft/jest-sarif/package.json'));
    const schema = JSON.parse(readFileSync(join(pkg, 'lib/schemas/sarif-2.1.0-rtm.5.json'), 'utf8'));
    // The schema is draft-04 (as the SARIF SDK ships it), with one pattern that is valid only without
    // the regex "u" flag: Ajv's draft-04 class, non-unicode patterns, reads it as written.
    const Ajv04 = require('ajv-draft-04') as typeof AjvCore; // same API as Ajv 8; CommonJS: the class is module.exports
    const ajv = new Ajv04({ strict: false, allErrors: true, validateFormats: false, unicodeRegExp: false });
    const validate = ajv.compile(schema);
    const sarif = toSarif(result, POLICY, { policyUri: 'policy.yaml', toolVersion: '0.1.0' });
    const valid = validate(sarif);
    expect(validate.errors ?? []).toEqual([]);
    expect(valid).toBe(true);
    const run = (sarif.runs as { results: { kind: string; level: string; ruleId: string }[] }[])[0];
    expect(run?.results).toHaveLength(result.findings.length);
    expect(result.summary.violations).toBeGreaterThan(0);
    expect(result.summary.unknown).toBeGreaterThan(0); // no audit log: unused keys are unknown
    // each result points at its rule's line in the policy text (rules start on lines 5-9)
    const lines = (
      sarif.runs as {
        results: { ruleId: string; locations: { physicalLocation: { region: { startLine: number } } }[] }[];
      }[]
    )[0]?.results.map((r) => [r.ruleId, r.locations[0]?.physicalLocation.region.startLine]);
    expect(new Map(lines as [string, number][]).get('rotation')).toBe(5);
    expect(new Map(lines as [string, number][]).get('unused')).toBe(9);
    for (const r of run?.results ?? []) {
      expect(r.kind === 'fail' ? r.level !== 'none' : r.level === 'none').toBe(true);
    }
    // the schema check can fail: a result without a message does not validate
    const broken = structuredClone(sarif) as { runs: { results: Record<string, unknown>[] }[] };
    delete broken.runs[0]?.results[0]?.message;
    expect(validate(broken)).toBe(false);
  });
});

describe('table and JSON', () => {
  it('the table lists each finding and a summary; the inventory table each key', () => {
    const text = findingsTable(result);
    expect(text.split('\n').filter((l) => / violation /.test(l))).toHaveLength(result.summary.violations);
    expect(text).toMatch(/3 keys, 5 rules, \d+ checks: \d+ passed, \d+ violations \(1 critical/);
    expect(
      inventoryTable(inv)
        .split('\n')
        .filter((l) => l.startsWith('local ')),
    ).toHaveLength(3);
    expect(JSON.parse(JSON.stringify({ inventory: inv, result })).result.findings).toHaveLength(
      result.findings.length,
    );
  });
});

describe('hostile provider data', () => {
  it('the tables escape bidirectional controls and line separators, not only C0/C1 controls', async () => {
    const clock = new FakeClock('2030-01-01T00:00:00.000Z');
    const kp = client({ providers: [await localProvider(clock)] });
    // U+202E would show "owner=exe.txt" for a label that says txt.exe; U+2028 would split a row.
    await kp.createKey('local', {
      name: 'bidi',
      spec: 'AES_256',
      labels: { owner: 'a\u202etxt.exe\u2066\u2028b' },
    });
    const hostile = await collectInventory(kp, { sources: ['local'], now: clock.now });
    const table = inventoryTable(hostile) + findingsTable(checkPolicy(hostile, POLICY));
    expect(table).not.toMatch(/[\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/);
    expect(table).toContain('owner=a\\u202etxt.exe\\u2066\\u2028b');
  });

  it('the HTML report, its charts and SARIF messages show bidirectional and control characters escaped, as the tables do', async () => {
    // A third-party driver's listing (or an inventory read back from JSON) is its own text: in a
    // cell, a chart label or a dashboard, U+202E showed `txt.exe` as `exe.txt`.
    const hostile = 'a\u202etxt.exe\u2066\u001b[2J\u0007';
    const keys = inv.keys.map((k) => ({
      ...k,
      uri: `${k.uri}${hostile}`,
      provider: `local${hostile}`,
      labels: { ...k.labels, owner: hostile },
    }));
    const hostileInv = { ...inv, keys } as Inventory;
    const hostileResult = checkPolicy(hostileInv, POLICY);
    const raw =
      // biome-ignore lint/suspicious/noControlCharactersInRegex: asserting their absence
      /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/;
    const html = await toHtml(hostileInv, POLICY, hostileResult);
    expect(html).not.toMatch(raw);
    expect(html).toContain('owner=a\\u202etxt.exe\\u2066\\u001b[2J\\u0007');
    // The chart labels (inline SVG) too: the key age chart names each key and its provider.
    const svg = html.slice(html.indexOf('<h2>Charts</h2>'), html.indexOf('<h2>Findings</h2>'));
    expect(svg).toContain('(locala\\u202etxt.exe\\u2066\\u001b[2J\\u0007)');
    const sarif = toSarif(hostileResult, POLICY);
    const results = (sarif.runs as { results: { message: { text: string } }[] }[])[0]?.results ?? [];
    expect(results.length).toBeGreaterThan(0);
    for (const r of results) {
      expect(r.message.text).not.toMatch(raw);
      expect(r.message.text).toContain('\\u202etxt.exe');
    }
    // Line breaks a policy's own rationale may hold are not mangled.
    const multiline = parsePolicyText(
      'version: 1\nrules:\n  - id: owner\n    type: owner-label\n    severity: low\n    rationale: |\n      Line one.\n      Line two.\n',
    );
    expect(await toHtml(inv, multiline, checkPolicy(inv, multiline))).toContain('Line one.\nLine two.\n');
  });

  it('SARIF message strings double their curly braces (a single `{0}` is a placeholder to a viewer)', () => {
    const keys = inv.keys.map((k) => ({ ...k, uri: `${k.uri}{0}`, labels: { team: '{1}' } }));
    const bracedInv = { ...inv, keys } as Inventory;
    const braced = parsePolicyText(
      'version: 1\nrules:\n  - id: owner\n    type: owner-label\n    severity: low\n    rationale: "Owners {0} must be named"\n',
    );
    const sarif = toSarif(checkPolicy(bracedInv, braced), braced);
    const run = (sarif.runs as { results: { message: { text: string } }[]; tool: unknown }[])[0];
    const texts = (run?.results ?? []).map((r) => r.message.text);
    expect(texts.length).toBeGreaterThan(0);
    for (const text of texts) {
      expect(text).toContain('{{0}}');
      // No brace stands alone: every one is doubled.
      expect(text.replace(/\{\{|\}\}/g, '')).not.toMatch(/[{}]/);
    }
    expect(JSON.stringify(run?.tool)).toContain('Owners {{0}} must be named');
  });

  it('the HTML report escapes every field, the typed ones and attributes included', async () => {
    // An inventory read back from JSON (or listed by a third-party driver) is not held to the
    // types: markup in the algorithm, state, purpose or severity must stay text.
    const markup = '<img src=x onerror=alert(1)>';
    const attribute = 'x" onmouseover="alert(1)';
    const keys = inv.keys.map((k) => ({ ...k, algorithm: markup, purpose: markup, state: markup }));
    const findings = result.findings.map((f) => ({ ...f, severity: attribute, status: markup }));
    // A source's key count too (shown when the source lists keys keyport cannot describe).
    const sources = [
      { source: 'local', keys: markup, unmodeled: [{ uri: 'local:///ks#odd', reason: 'odd' }] },
    ];
    const html = await toHtml({ ...inv, keys, sources } as unknown as Inventory, POLICY, {
      ...result,
      findings,
      summary: { ...result.summary, keys: markup },
    } as unknown as CheckResult);
    expect(html).not.toContain('<img');
    expect(html).not.toContain('" onmouseover');
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;');
  });
});

describe('chart labels', () => {
  /** What each drawn mark of a chart is said to be (its `key` field, from the marks' aria labels). */
  const markKeys = (svg: string): string[] =>
    [...svg.matchAll(/aria-label="[^"]*?key: ([^;"]*)/g)].map((m) => (m[1] as string).replace(/&amp;/g, '&'));
  const axisLabels = (svg: string): string[] =>
    [...svg.matchAll(/<text text-anchor="end"[^>]*>([^<]*)<\/text>/g)].map((m) => m[1] as string);

  it('two keys of one name (two vaults, or a name copied from another key) keep a row each, their provider shown', async () => {
    // One `signing` key per vault: the age chart drew one row whose bar was the sum of both
    // ages (1,159 days for keys of 945 and 214), and cut its label to "signing (azure-keyvau…".
    const signing = inv.keys[0] as Inventory['keys'][number];
    const grants = (expiresAt: string): Inventory['keys'][number]['grants'] => ({
      count: 1,
      earliestExpiry: expiresAt,
      latestExpiry: expiresAt,
      items: [
        {
          id: 'g',
          grantee: 'app',
          operations: ['decrypt'],
          createdAt: UNKNOWN,
          expiresAt,
          constrained: false,
        },
      ],
    });
    const key = (uri: string, provider: string, rotatedAt: string, expiresAt: string) => ({
      ...signing,
      uri,
      provider,
      createdAt: rotatedAt,
      lastRotatedAt: rotatedAt,
      grants: grants(expiresAt),
    });
    const keys = [
      key(
        'azure-keyvault://a.vault.azure.net/keys/signing',
        'azure-keyvault',
        '2029-06-01T00:00:00.000Z',
        '2030-03-01T00:00:00.000Z',
      ),
      key(
        'azure-keyvault://b.vault.azure.net/keys/signing',
        'azure-keyvault',
        '2027-06-01T00:00:00.000Z',
        '2030-04-01T00:00:00.000Z',
      ),
      // A listing that names two keys alike (a third-party driver's): still a row each.
      key('acme://same', 'acme', '2029-01-01T00:00:00.000Z', '2030-05-01T00:00:00.000Z'),
      key('acme://same', 'acme', '2028-01-01T00:00:00.000Z', '2030-06-01T00:00:00.000Z'),
      // A long name is cut on a character, not inside a surrogate pair (shown as `\ud83d`).
      key(
        `acme://${'a'.repeat(38)}\u{1f511}${'b'.repeat(10)}`,
        'acme',
        '2029-01-01T00:00:00.000Z',
        '2030-07-01T00:00:00.000Z',
      ),
    ];
    const hostile = { ...inv, generatedAt: '2030-01-01T00:00:00.000Z', keys } as Inventory;
    const [age, , timeline] = await reportCharts(hostile, POLICY);
    for (const chart of [age, timeline]) {
      const drawn = markKeys(chart?.svg ?? '');
      expect(drawn).toHaveLength(keys.length);
      expect(new Set(drawn).size).toBe(keys.length);
      expect(drawn).toEqual(
        expect.arrayContaining([
          'a.vault.azure.net/keys/signing (azure-keyvault)',
          'b.vault.azure.net/keys/signing (azure-keyvault)',
          `${'a'.repeat(38)}\u{1f511}… (acme)`,
        ]),
      );
      // The axis shows each label whole (Vega's default limit cut off the provider).
      expect(axisLabels(chart?.svg ?? '')).toEqual(expect.arrayContaining(drawn));
      expect(chart?.svg).not.toContain('\\ud83d');
    }
    // Each bar is its own key's age, not a sum.
    expect(age?.svg).toContain(
      'key material age (days): 945; key: b.vault.azure.net/keys/signing (azure-keyvault)',
    );
    expect(age?.svg).toContain(
      'key material age (days): 214; key: a.vault.azure.net/keys/signing (azure-keyvault)',
    );
  });
});

describe('HTML report in headless Chromium', () => {
  it('loads with no console error and no request, and the three charts draw', {
    timeout: 120_000,
  }, async () => {
    const html = await toHtml(inv, POLICY, result);
    expect(html).not.toContain('<script>alert(1)</script>');
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/);
    // Installs Debian's chromium when missing (idempotent); without it this fails, never skips.
    const executablePath = ensureChromium();
    const browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] }).catch((e: Error) => {
      throw new Error(
        `Chromium is needed for this test (apt-get install chromium, or set KEYPORT_CHROMIUM): ${e.message}`,
      );
    });
    try {
      const page = await browser.newPage();
      const problems: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
      });
      page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
      const requests: string[] = [];
      page.on('request', (r) => {
        if (!r.url().startsWith('data:') && r.url() !== 'about:blank') requests.push(r.url());
      });
      await page.setContent(html, { waitUntil: 'load' });
      expect(problems).toEqual([]);
      expect(requests).toEqual([]);
      const charts = await page.$$eval('figure', (figs) =>
        figs.map((f) => {
          const svg = f.querySelector('svg');
          const box = svg?.getBoundingClientRect();
          return {
            title: f.querySelector('h3')?.textContent ?? '',
            width: box?.width ?? 0,
            height: box?.height ?? 0,
            marks: svg?.querySelectorAll('path, rect, line, circle').length ?? 0,
          };
        }),
      );
      expect(charts.map((c) => c.title)).toEqual([
        'Key age against the rotation limit',
        'Protection levels per provider',
        'Grant expiry timeline',
      ]);
      for (const c of charts) {
        expect(c.width).toBeGreaterThan(100);
        expect(c.height).toBeGreaterThan(20);
        expect(c.marks).toBeGreaterThan(3);
      }
      // the hostile label is text, not markup
      expect(await page.locator('td', { hasText: 'owner=<script>alert(1)</script>' }).count()).toBe(1);
    } finally {
      await browser.close();
    }
  });
});
