/**
 * The report's charts: Vega-Lite specs rendered to SVG strings in Node at report time (Vega's
 * headless `toSVG`, no DOM, no canvas), so the HTML carries finished drawings and no script.
 * Each chart states what it leaves out (unknown ages, never-expiring grants) in its caption.
 */
import { escapeControl } from '@keyport/core';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { Inventory } from './inventory-types.js';
import type { Policy } from './policy-types.js';

export interface Chart {
  readonly title: string;
  readonly caption: string;
  readonly svg: string;
}

/** Charts draw at most this many marks: a report of 10,000 keys stays a readable page. */
export const MAX_CHART_KEYS = 60;
const DAY_MS = 86_400_000;

async function render(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** A chart label: control and bidirectional characters shown escaped, as in the tables. */
const label = (key: { readonly uri: string; readonly provider: string }): string =>
  escapeControl(`${shortName(key.uri)} (${key.provider})`);

const shortName = (uri: string): string => {
  const cut = uri.replace(/^[a-z0-9-]+:\/\//, '');
  const tail =
    cut
      .split(/[#/]/)
      .filter((p) => p !== '')
      .at(-1) ?? cut;
  return tail.length > 40 ? `${tail.slice(0, 39)}…` : tail;
};

async function keyAgeChart(inv: Inventory, policy: Policy): Promise<Chart> {
  const now = Date.parse(inv.generatedAt);
  const limits = policy.rules.flatMap((r) => (r.type === 'max-rotation-period' ? [r.maxDays] : []));
  const limit = limits.length > 0 ? Math.min(...limits) : undefined;
  const known = inv.keys.filter((k) => k.lastRotatedAt !== 'unknown' || k.createdAt !== 'unknown');
  const fromCreation = known.filter((k) => k.lastRotatedAt === 'unknown').length;
  const rows = known
    .map((k) => {
      const from = k.lastRotatedAt !== 'unknown' ? k.lastRotatedAt : (k.createdAt as string);
      const age = Math.max(0, Math.floor((now - Date.parse(from)) / DAY_MS));
      return {
        key: label(k),
        age,
        over: limit !== undefined && age > limit ? 'over the limit' : 'within the limit',
      };
    })
    .sort((a, b) => b.age - a.age)
    .slice(0, MAX_CHART_KEYS);
  const layers: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: 560,
    height: { step: 16 },
    layer: [
      {
        data: { values: rows },
        mark: { type: 'bar' },
        encoding: {
          y: { field: 'key', type: 'nominal', sort: '-x', title: null },
          x: { field: 'age', type: 'quantitative', title: 'key material age (days)' },
          color: {
            field: 'over',
            type: 'nominal',
            scale: { domain: ['within the limit', 'over the limit'], range: ['#4c78a8', '#e45756'] },
            legend: { title: null, orient: 'bottom' },
          },
        },
      },
      ...(limit !== undefined
        ? [
            {
              data: { values: [{ limit }] },
              mark: { type: 'rule' as const, color: '#e45756', strokeDash: [4, 3], strokeWidth: 2 },
              encoding: { x: { field: 'limit', type: 'quantitative' as const } },
            },
          ]
        : []),
    ],
  } as TopLevelSpec;
  const left = inv.keys.length - known.length;
  return {
    title: 'Key age against the rotation limit',
    caption: `${rows.length} oldest of ${inv.keys.length} keys${limit !== undefined ? `; dashed line: ${limit} days` : '; no rotation rule in the policy'}${fromCreation > 0 ? `; ${fromCreation} keys whose rotation date is not reported are measured from creation` : ''}${left > 0 ? `; ${left} keys with unknown age are not drawn` : ''}.`,
    svg: rows.length > 0 ? await render(layers) : '',
  };
}

async function protectionChart(inv: Inventory): Promise<Chart> {
  const counts = new Map<string, { provider: string; protection: string; keys: number }>();
  for (const k of inv.keys) {
    const id = `${k.provider}\u0000${k.protection}`;
    const c = counts.get(id) ?? {
      provider: escapeControl(k.provider),
      protection: escapeControl(k.protection),
      keys: 0,
    };
    c.keys++;
    counts.set(id, c);
  }
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: 560,
    height: { step: 24 },
    data: { values: [...counts.values()] },
    mark: { type: 'bar' },
    encoding: {
      y: { field: 'provider', type: 'nominal', title: null },
      x: { field: 'keys', type: 'quantitative', title: 'keys', stack: 'zero' },
      color: {
        field: 'protection',
        type: 'nominal',
        scale: {
          domain: ['hsm', 'external', 'software', 'unknown'],
          range: ['#54a24b', '#72b7b2', '#f58518', '#bab0ac'],
        },
        legend: { title: 'protection', orient: 'bottom' },
      },
    },
  };
  return {
    title: 'Protection levels per provider',
    caption: 'Keys per provider by where their material is protected; grey: the provider does not report it.',
    svg: counts.size > 0 ? await render(spec) : '',
  };
}

async function grantTimeline(inv: Inventory): Promise<Chart> {
  const points: { key: string; expires: string; provider: string }[] = [];
  let never = 0;
  let unlisted = 0;
  for (const k of inv.keys) {
    if (k.grants.items === 'unknown') {
      unlisted++;
      continue;
    }
    for (const g of k.grants.items) {
      if (g.expiresAt === null) never++;
      else
        points.push({
          key: label(k),
          expires: g.expiresAt,
          provider: escapeControl(k.provider),
        });
    }
  }
  points.sort((a, b) => a.expires.localeCompare(b.expires));
  const drawn = points.slice(0, MAX_CHART_KEYS * 4);
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: 560,
    height: { step: 16 },
    layer: [
      {
        data: { values: drawn },
        mark: { type: 'point', filled: true, size: 60 },
        encoding: {
          x: { field: 'expires', type: 'temporal', title: 'grant expiry' },
          y: { field: 'key', type: 'nominal', title: null },
          color: { field: 'provider', type: 'nominal', legend: { title: null, orient: 'bottom' } },
        },
      },
      {
        data: { values: [{ now: inv.generatedAt }] },
        mark: { type: 'rule', color: '#888', strokeDash: [2, 2] },
        encoding: { x: { field: 'now', type: 'temporal' } },
      },
    ],
  } as TopLevelSpec;
  return {
    title: 'Grant expiry timeline',
    caption: `${drawn.length} of ${points.length} expiring grants drawn (dotted line: report time); ${never} grants never expire; ${unlisted} keys whose grants cannot be listed.`,
    svg: drawn.length > 0 ? await render(spec) : '',
  };
}

export async function reportCharts(inv: Inventory, policy: Policy): Promise<Chart[]> {
  return [await keyAgeChart(inv, policy), await protectionChart(inv), await grantTimeline(inv)];
}
