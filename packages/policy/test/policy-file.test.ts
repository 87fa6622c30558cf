import { execFileSync } from 'node:child_process';
import { appendFile, mkdtemp, open, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Lexer } from 'yaml';
import {
  MAX_POLICY_BYTES,
  MAX_POLICY_TOKENS,
  PolicyError,
  parsePolicyText,
  readPolicyFile,
  validatePolicy,
} from '../src/index.js';

const ok = {
  version: 1,
  rules: [
    { type: 'max-rotation-period', severity: 'high', maxDays: 365 },
    {
      id: 'pci-hsm',
      type: 'required-protection',
      severity: 'critical',
      protection: ['hsm'],
      match: { labels: { classification: 'pci' } },
    },
  ],
};

function errorOf(f: () => unknown): PolicyError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(PolicyError);
    expect((e as PolicyError).code).toBe('InvalidArgument');
    return e as PolicyError;
  }
  throw new Error('no error');
}

describe('policy files', () => {
  it('reads the same policy from JSON and YAML, ids defaulting to the rule type', () => {
    const fromJson = parsePolicyText(JSON.stringify(ok));
    const yaml = `version: 1
rules:
  - type: max-rotation-period
    severity: high
    maxDays: 365
  - id: pci-hsm
    type: required-protection
    severity: critical
    protection: [hsm]
    match:
      labels: { classification: pci }
`;
    const fromYaml = parsePolicyText(yaml);
    expect(JSON.parse(JSON.stringify(fromYaml))).toEqual(JSON.parse(JSON.stringify(fromJson)));
    expect(fromJson.rules.map((r) => r.id)).toEqual(['max-rotation-period', 'pci-hsm']);
  });

  it.each([
    [{ ...ok, version: 2 }, 'version'],
    [{ version: 1 }, 'rules'],
    [{ ...ok, extra: true }, 'extra'],
    [
      { version: 1, rules: [{ type: 'max-rotation-period', severity: 'high', maxDays: '365' }] },
      'rules[0].maxDays',
    ],
    [
      { version: 1, rules: [{ type: 'max-rotation-period', severity: 'high', maxDays: Number.NaN }] },
      'rules[0].maxDays',
    ],
    [
      { version: 1, rules: [{ type: 'max-rotation-period', severity: 'high', maxDays: 1.5 }] },
      'rules[0].maxDays',
    ],
    [
      { version: 1, rules: [{ type: 'max-rotation-period', severity: 'high', maxDays: 0 }] },
      'rules[0].maxDays',
    ],
    [{ version: 1, rules: [{ type: 'max-rotation-period', severity: 'high' }] }, 'rules[0].maxDays'],
    [
      { version: 1, rules: [{ type: 'max-rotation-period', severity: 'urgent', maxDays: 3 }] },
      'rules[0].severity',
    ],
    [{ version: 1, rules: [{ type: 'no-such-rule', severity: 'high' }] }, 'rules[0].type'],
    [{ version: 1, rules: [{ severity: 'high' }] }, 'rules[0].type'],
    [
      { version: 1, rules: [{ type: 'forbidden-algorithms', severity: 'low', algorithms: ['DES'] }] },
      'rules[0].algorithms[0]',
    ],
    [
      { version: 1, rules: [{ type: 'owner-label', severity: 'low', match: { labels: { team: 3 } } }] },
      'rules[0].match.labels.team',
    ],
    [
      { version: 1, rules: [{ type: 'owner-label', severity: 'low', match: { colour: 'red' } }] },
      'rules[0].match.colour',
    ],
    [
      {
        version: 1,
        rules: [
          { type: 'owner-label', severity: 'low' },
          { type: 'owner-label', severity: 'high' },
        ],
      },
      'rules[1]',
    ],
    [{ version: 1, rules: [{ type: 'owner-label', severity: 'low', id: 'Bad Id' }] }, 'rules[0].id'],
  ])('refuses %j naming %s', (doc, path) => {
    expect(errorOf(() => validatePolicy(doc)).path).toBe(path);
  });

  it("a policy whose getters or proxy traps throw is a PolicyError, not the getter's own exception", () => {
    const rule = { type: 'owner-label', severity: 'low' };
    Object.defineProperty(rule, 'id', {
      enumerable: true,
      get() {
        throw new Error('boom from a getter');
      },
    });
    const trap = new Proxy(
      {},
      {
        ownKeys() {
          throw new Error('boom from a trap');
        },
      },
    );
    for (const doc of [{ version: 1, rules: [rule] }, trap]) {
      const e = errorOf(() => validatePolicy(doc));
      expect(e.message).not.toContain('boom');
    }
  });

  it('a __proto__ field is refused as unknown, and as a label name it is an ordinary label', () => {
    const e = errorOf(() =>
      parsePolicyText(
        '{"version":1,"rules":[{"type":"owner-label","severity":"low","__proto__":{"polluted":true}}]}',
      ),
    );
    expect(e.path).toBe('rules[0].__proto__');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const p = parsePolicyText(
      'version: 1\nrules:\n  - type: owner-label\n    severity: low\n    match: { labels: { __proto__: x, constructor: y } }\n',
    );
    const labels = p.rules[0]?.match?.labels ?? {};
    expect(Object.getPrototypeOf(labels)).toBeNull();
    expect(Object.keys(labels).sort()).toEqual(['__proto__', 'constructor']);
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });

  it('refuses duplicate keys, bad YAML, alias bombs and oversized text', () => {
    expect(errorOf(() => parsePolicyText('{"version":1,"version":1,"rules":[]}')).path).toBe('');
    expect(
      errorOf(() =>
        parsePolicyText('version: 1\nrules:\n  - { type: owner-label, severity: low, severity: high }'),
      ).message,
    ).toMatch(/DUPLICATE_KEY/);
    expect(errorOf(() => parsePolicyText('version: [1')).message).toMatch(/YAML or JSON/);
    // The first duplicate in the text is reported, whichever map it is in: here the inner map's
    // (line 5), not the outer map's later one (line 6).
    const nested = [
      'version: 1',
      'rules:',
      '  - type: owner-label',
      '    match: { labels: { a: x } }',
      '    severity: low',
      '    severity: high',
      '    type: owner-label',
    ].join('\n');
    expect(errorOf(() => parsePolicyText(nested.replace('{ a: x }', '{ a: x, a: y }'))).message).toMatch(
      /line 4, column 30\): DUPLICATE_KEY/,
    );
    expect(errorOf(() => parsePolicyText(nested)).message).toMatch(/line 6, column 5\): DUPLICATE_KEY/);
    const bomb = [
      'a: &a [x,x,x,x,x,x,x,x,x,x]',
      ...Array.from(
        { length: 9 },
        (_, i) =>
          `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)}]`,
      ),
    ].join('\n');
    expect(() => parsePolicyText(bomb)).toThrow(PolicyError);
    expect(errorOf(() => parsePolicyText(`# ${'x'.repeat(1024 * 1024)}`)).message).toMatch(/larger/);
    // biome-ignore lint/suspicious/noExplicitAny: hostile input on purpose
    expect(() => parsePolicyText(42 as any)).toThrow(PolicyError);
  });

  it('a YAML !!omap or !!set, or a Map or class instance in code, is refused where its fields would have vanished', () => {
    // Copied by own fields, the Map an !!omap parses to was `{}`: `match` scoped to one provider
    // matched every key (and `policy fix` acted on them all), `labels` required none.
    const scoped = (match: string): string =>
      `version: 1\nrules:\n  - { type: max-rotation-period, severity: high, maxDays: 90, match: ${match} }\n`;
    expect(errorOf(() => parsePolicyText(scoped('!!omap [{ providers: [dev] }]')))).toMatchObject({
      path: 'rules[0].match',
      message: 'policy rules[0].match: must be a plain map or list, not Map',
    });
    expect(errorOf(() => parsePolicyText(scoped('{ labels: !!omap [{ env: dev }] }'))).path).toBe(
      'rules[0].match.labels',
    );
    expect(errorOf(() => parsePolicyText(scoped('{ labels: !!set { env } }'))).message).toMatch(/not Set$/);
    expect(errorOf(() => parsePolicyText(`!!omap [{ version: 1 }, { rules: [] }]`)).path).toBe('');
    class Match {
      get providers(): string[] {
        return ['dev'];
      }
    }
    for (const match of [new Map([['providers', ['dev']]]), new Match()]) {
      const policy = { version: 1, rules: [{ type: 'owner-label', severity: 'low', match }] };
      expect(errorOf(() => validatePolicy(policy)).path).toBe('rules[0].match');
    }
    // Plain data from any source still reads: JSON, YAML, prototype-free objects.
    const nullProto = Object.assign(Object.create(null) as object, { providers: ['dev'] });
    expect(
      validatePolicy({ version: 1, rules: [{ type: 'owner-label', severity: 'low', match: nullProto }] })
        .rules[0]?.match?.providers,
    ).toEqual(['dev']);
  });

  it('a key that is an alias, a list or a map is refused: it could repeat a key the duplicate check did not see', () => {
    // `*k` names `env`: two `env` labels, the later silently winning, as a duplicate did before
    // duplicates were refused; a list key became the text "[ a ]" (and a warning on stderr).
    const withLabels = (labels: string): string =>
      `version: 1\nrules:\n  - { type: owner-label, severity: low, label: &k env, match: { labels: ${labels} } }\n`;
    expect(parsePolicyText(withLabels('{ env: dev }')).rules[0]?.match?.labels).toEqual({ env: 'dev' });
    for (const labels of ['{ *k : prod, env: dev }', '{ env: dev, *k : prod }', '{ ? [a] : x, ? [a] : y }']) {
      expect(errorOf(() => parsePolicyText(withLabels(labels))).message).toMatch(
        /^policy: a map key \(line 3, column \d+\) is an alias, a list or a map: keys are plain text$/,
      );
    }
    // Whichever problem comes first in the text is the one reported.
    expect(errorOf(() => parsePolicyText(withLabels('{ a: x, a: y, ? [b] : z }'))).message).toMatch(
      /DUPLICATE_KEY/,
    );
  });

  it('a YAML merge key (<<) is refused: a field written beside it silently replaced the merged one', () => {
    // `!!merge <<` merges in any YAML version, a plain `<<` under `%YAML 1.1`: both read as one
    // `providers` (the written one winning) though the map holds two, and the rule checked dev
    // keys only while the text also says prod.
    const rule = (match: string, directive = ''): string =>
      `${directive}version: 1\nrules:\n  - { type: owner-label, severity: low, match: ${match} }\n`;
    for (const text of [
      rule('{ !!merge <<: { providers: [prod] }, providers: [dev] }'),
      rule('{ <<: { providers: [prod] }, providers: [dev] }', '%YAML 1.1\n---\n'),
      rule('{ !!merge <<: { labels: { env: prod } } }'),
      `%YAML 1.1\n---\nversion: 1\nrules:\n  - &base { id: a, type: max-rotation-period, severity: high, maxDays: 30 }\n  - <<: *base\n    id: b\n    maxDays: 3650\n`,
    ]) {
      expect(errorOf(() => parsePolicyText(text)).message).toMatch(
        /^policy: a map key \(line \d+, column \d+\) is a YAML merge key \(<<\): write the fields out/,
      );
    }
    // In YAML 1.2 a plain `<<` is text like any other: a label of that name.
    expect({ ...parsePolicyText(rule('{ labels: { <<: x } }')).rules[0]?.match?.labels }).toEqual({
      '<<': 'x',
    });
  });

  it('aliases cannot make the copy of a policy cost more than the text: refused past a million values', () => {
    // 99 aliases of a 12,000-item list (within the token limit): 1.2 million values to copy (100
    // of a 900 KB list were 45 million, 800 MB, before the schema looked at the list's length).
    const list = `[${Array.from({ length: 12_000 }, () => '1').join(',')}]`;
    const text = `version: 1\nrules:\n  - type: owner-label\n    severity: low\n    controls: [&a ${list}, ${Array.from({ length: 99 }, () => '*a').join(', ')}]\n`;
    const e = errorOf(() => parsePolicyText(text));
    expect(e.path).toBe('');
    expect(e.message).toBe('policy: it holds more than 1000000 values (YAML aliases count each time)');
    // Aliases within the bound still read, each a copy of its own.
    const shared = parsePolicyText(
      'version: 1\nrules:\n  - { id: a, type: owner-label, severity: low, match: &m { providers: [dev] } }\n  - { id: b, type: owner-label, severity: low, match: *m }\n',
    );
    expect(shared.rules.map((r) => r.match?.providers)).toEqual([['dev'], ['dev']]);
  });

  it('a policy crafted to cost CPU is refused in linear time: 12,000 labels, 20,000 nested brackets', () => {
    // The parser's own duplicate-key check compared each key with every earlier one: 4.5 s for
    // 30,000 labels (more than the token limit now lets through; 12,000 fit under it).
    const labels = Object.fromEntries(Array.from({ length: 12_000 }, (_, i) => [`k${i}`, 'v']));
    const text = JSON.stringify({
      version: 1,
      rules: [{ type: 'owner-label', severity: 'low', match: { labels } }],
    });
    let started = performance.now();
    expect(errorOf(() => parsePolicyText(text)).path).toBe('rules[0].match.labels');
    expect(performance.now() - started).toBeLessThan(2_000);
    // Duplicates are still found, however many keys come before them.
    expect(errorOf(() => parsePolicyText(`${text.slice(0, -5)},"k0":"v"}}}]}`)).message).toMatch(
      /DUPLICATE_KEY/,
    );
    started = performance.now();
    expect(errorOf(() => parsePolicyText(`${'['.repeat(20_000)}${']'.repeat(20_000)}`)).message).toMatch(
      /YAML or JSON/,
    );
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it('a 1 MiB text of tiny flow items is refused before parsing, by its token count', () => {
    // Each of these cost the parser 2 to 6 s of CPU and 400 to 950 MB (a policy file can come
    // from a pull request); the old source read them all and only then had the schema refuse.
    const fill = (prefix: string, item: string, suffix: string): string =>
      `${prefix}${item.repeat(Math.floor((MAX_POLICY_BYTES - prefix.length - suffix.length) / item.length))}${suffix}`;
    const hostile = [
      fill('version: 1\nrules: [', 'a,', 'a]\n'),
      fill('{', 'a: 1, ', 'a: 1}'),
      fill('[', '[[[a]]],', 'a]'),
      fill('- ', '[a, [a]]\n- ', 'a\n'),
      fill('version: 1\nrules: [{ type: owner-label, severity: low }]\n', '#\n', ''),
    ];
    for (const text of hostile) {
      expect(Buffer.byteLength(text)).toBeLessThanOrEqual(MAX_POLICY_BYTES);
      const e = errorOf(() => parsePolicyText(text));
      expect(e.path).toBe('');
      expect(e.message).toBe(
        `policy: it has more than ${MAX_POLICY_TOKENS} YAML tokens (values, punctuation, spaces, line breaks and comments count): a policy is a page of rules`,
      );
    }
  });

  it('the token limit refuses the token past it, and leaves room for 500 ordinary rules', () => {
    const tokens = (text: string): number => {
      let n = 0;
      for (const _ of new Lexer().lex(text)) n++;
      return n;
    };
    // A schema-valid policy that fills every list of its 500 rules (477,000 tokens in 440 KB): the
    // old source read it, at the cost the limit exists to bound.
    const list = (n: number): string => `[${Array.from({ length: n }, () => 'a').join(', ')}]`;
    const labels = `{ ${Array.from({ length: 64 }, (_, i) => `l${i}: v`).join(', ')} }`;
    const full = `version: 1\nrules:\n${Array.from(
      { length: 500 },
      (_, i) =>
        `  - { id: r${i}, type: owner-label, severity: low, controls: ${list(32)}, match: { providers: ${list(64)}, labels: ${labels} } }\n`,
    ).join('')}`;
    expect(tokens(full)).toBeGreaterThan(MAX_POLICY_TOKENS);
    expect(errorOf(() => parsePolicyText(full)).message).toMatch(/more than 50000 YAML tokens/);
    // 500 rules as people write them read, and so does a text of exactly the limit, comments
    // included; one token more is refused.
    const ordinary = `version: 1\nrules:\n${Array.from(
      { length: 500 },
      (_, i) =>
        `  - id: r${i}\n    type: max-rotation-period\n    severity: high\n    maxDays: 365\n    match: { providers: [aws-prod], labels: { env: prod } }\n`,
    ).join('')}`;
    expect(parsePolicyText(ordinary).rules).toHaveLength(500);
    const base = tokens(ordinary);
    // Each `#\n` line is two tokens (the comment and the line break).
    const padded = `${ordinary}${'#\n'.repeat(Math.floor((MAX_POLICY_TOKENS - base) / 2))}`;
    const exact = (MAX_POLICY_TOKENS - base) % 2 === 0 ? padded : `${padded} `;
    expect(tokens(exact)).toBe(MAX_POLICY_TOKENS);
    expect(parsePolicyText(exact).rules).toHaveLength(500);
    expect(errorOf(() => parsePolicyText(`${exact}#`)).message).toMatch(/more than 50000 YAML tokens/);
  });

  it('reads files, and refuses a FIFO, a directory and a missing file without hanging', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'keyport-policy-file-'));
    try {
      const f = join(dir, 'policy.yaml');
      await writeFile(f, JSON.stringify(ok));
      expect((await readPolicyFile(f)).rules).toHaveLength(2);
      await symlink(f, join(dir, 'link.yaml'));
      expect((await readPolicyFile(join(dir, 'link.yaml'))).rules).toHaveLength(2);
      execFileSync('mkfifo', [join(dir, 'fifo')]);
      await expect(readPolicyFile(join(dir, 'fifo'))).rejects.toBeInstanceOf(PolicyError);
      await expect(readPolicyFile(dir)).rejects.toBeInstanceOf(PolicyError);
      await expect(readPolicyFile(join(dir, 'missing'))).rejects.toBeInstanceOf(PolicyError);
      await writeFile(join(dir, 'latin1'), Buffer.from([0x76, 0xe9, 0xff]));
      await expect(readPolicyFile(join(dir, 'latin1'))).rejects.toBeInstanceOf(PolicyError);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  describe('a file written while it is read', () => {
    afterEach(() => {
      vi.restoreAllMocks();
    });

    /**
     * Runs `change` on the file right after readPolicyFile's first fstat of it, as a writer racing
     * the read would: a real change of the file on disk, at the one moment that cannot be hit
     * reliably by timing (between the size check and the read).
     */
    async function changedAfterStat(path: string, change: () => Promise<void>): Promise<void> {
      const probe = await open(path);
      const proto = Object.getPrototypeOf(probe) as { stat: (...a: unknown[]) => Promise<unknown> };
      await probe.close();
      const stat = proto.stat;
      vi.spyOn(proto, 'stat').mockImplementationOnce(async function (this: unknown, ...a: unknown[]) {
        const s = await stat.apply(this, a);
        await change();
        return s;
      });
    }

    const first = 'version: 1\nrules:\n  - { id: owner, type: owner-label, severity: low }\n';
    const second = '  - { id: crypto-period, type: max-rotation-period, severity: critical, maxDays: 30 }\n';

    it('a file that grew after its size was taken is refused, not read as its first rules', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'keyport-policy-file-'));
      try {
        const f = join(dir, 'policy.yaml');
        await writeFile(f, first);
        await changedAfterStat(f, () => appendFile(f, second));
        const e = await readPolicyFile(f).then(
          (p) => p,
          (x: unknown) => x,
        );
        expect(e).toBeInstanceOf(PolicyError);
        expect((e as PolicyError).message).toMatch(/changed while it was read/);
        // Once written, the whole file is read: both rules.
        expect((await readPolicyFile(f)).rules.map((r) => r.id)).toEqual(['owner', 'crypto-period']);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it('a file cut short after its size was taken is refused, not read as a prefix', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'keyport-policy-file-'));
      try {
        const f = join(dir, 'policy.yaml');
        await writeFile(f, first + second);
        await changedAfterStat(f, () => truncate(f, first.length));
        await expect(readPolicyFile(f)).rejects.toThrow(/changed while it was read/);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });
});
