/**
 * The report's charts: Vega-Lite specs rendered to SVG strings in Node at report time (Vega's
 * headless `toSVG`, no DOM, no canvas), so the HTML carries finished drawings and no script.
 * Each chart states what it leaves out (unknown ages, never-expiring grants) in its caption.
 */
import { escapeControl } from '@keyport/core';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { Inventory, InventoryKey } from './inventory-types.js';
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

/** A shared name's longer label (its URI) is cut to this many code points, keeping the end that names the key. */
const MAX_LABEL_CHARS = 60;
/** The axis shows labels up to this many pixels (Vega's default, 180, cut off the provider). */
const LABEL_LIMIT_PX = 420;

/**
 * Each key's chart label, one per key: `name (provider)`, control and bidirectional characters
 * shown escaped, as in the tables. The charts group marks by label, so two keys sharing one (a
 * `signing` key in two vaults or key rings, a tenant's key named like another's) were drawn as one
 * row whose bar was the sum of their ages. A name shared by several keys is given more of its URI,
 * and a label still shared gets a number, so each key keeps its own row.
 */
function keyLabels(keys: readonly InventoryKey[]): string[] {
  const counts = (labels: readonly string[]): Map<string, number> => {
    const n = new Map<string, number>();
    for (const l of labels) n.set(l, (n.get(l) ?? 0) + 1);
    return n;
  };
  const short = keys.map((k) => escapeControl(`${shortName(k.uri)} (${k.provider})`));
  const shortCounts = counts(short);
  const long = keys.map((k, i) =>
    (shortCounts.get(short[i] as string) ?? 0) > 1
      ? escapeControl(`${longName(k.uri)} (${k.provider})`)
      : (short[i] as string),
  );
  const longCounts = counts(long);
  const seen = new Map<string, number>();
  return long.map((l) => {
    if ((longCounts.get(l) ?? 0) < 2) return l;
    const n = (seen.get(l) ?? 0) + 1;
    seen.set(l, n);
    return `${l} #${n}`;
  });
}

const cut = (uri: string): string => uri.replace(/^[a-z0-9-]+:\/\//, '');

/** At most `max` code points (a cut never splits a surrogate pair), keeping the start or the end. */
const fit = (text: string, max: number, keep: 'start' | 'end'): string => {
  const chars = [...text];
  if (chars.length <= max) return text;
  return keep === 'start' ? `${chars.slice(0, max - 1).join('')}…` : `…${chars.slice(1 - max).join('')}`;
};

const shortName = (uri: string): string => {
  const c = cut(uri);
  const tail =
    c
      .split(/[#/]/)
      .filter((p) => p !== '')
      .at(-1) ?? c;
  return fit(tail, 40, 'start');
};

/** The URI without its scheme, cut from the front (the end names the key, the start its vault). */
const longName = (uri: string): string => fit(cut(uri), MAX_LABEL_CHARS, 'end');

async function keyAgeChart(inv: Inventory, policy: Policy, labels: readonly string[]): Promise<Chart> {
  const now = Date.parse(inv.generatedAt);
  const limits = policy.rules.flatMap((r) => (r.type === 'max-rotation-period' ? [r.maxDays] : []));
  const limit = limits.length > 0 ? Math.min(...limits) : undefined;
  const known = inv.keys
    .map((k, i) => ({ k, key: labels[i] as string }))
    .filter(({ k }) => k.lastRotatedAt !== 'unknown' || k.createdAt !== 'unknown');
  const fromCreation = known.filter(({ k }) => k.lastRotatedAt === 'unknown').length;
  const rows = known
    .map(({ k, key }) => {
      const from = k.lastRotatedAt !== 'unknown' ? k.lastRotatedAt : (k.createdAt as string);
      const age = Math.max(0, Math.floor((now - Date.parse(from)) / DAY_MS));
      return {
        key,
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
          y: { field: 'key', type: 'nominal', sort: '-x', title: null, axis: { labelLimit: LABEL_LIMIT_PX } },
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

async function grantTimeline(inv: Inventory, labels: readonly string[]): Promise<Chart> {
  const points: { key: string; expires: string; provider: string }[] = [];
  let never = 0;
  let unlisted = 0;
  for (const [i, k] of inv.keys.entries()) {
    if (k.grants.items === 'unknown') {
      unlisted++;
      continue;
    }
    for (const g of k.grants.items) {
      if (g.expiresAt === null) never++;
      else
        points.push({
          key: labels[i] as string,
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
          y: { field: 'key', type: 'nominal', title: null, axis: { labelLimit: LABEL_LIMIT_PX } },
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
  const labels = keyLabels(inv.keys);
  return [
    await keyAgeChart(inv, policy, labels),
    await protectionChart(inv),
    await grantTimeline(inv, labels),
  ];
}
