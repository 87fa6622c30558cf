/**
 * Reading a YAML config. The same as the `yaml` package's `parse(text)` with its defaults
 * (aliases expanded at most 100 times, the first error thrown with its line and column), except
 * that its warnings are errors too, and for how duplicate map keys are found: the parser's own
 * `uniqueKeys` compares each key with every earlier one of its map (a 349 KB config of 30,000
 * keys took 5.9 s), so it is turned off and a Set per map finds them instead, reported in the
 * parser's own words.
 *
 * @keyport/policy does the same for policy files (policy-file.ts); the two could share one helper.
 */
import { createRequire } from 'node:module';
import type { Document, YAMLParseError, YAMLWarning } from 'yaml';

type YamlModule = typeof import('yaml');

/** The parser, loaded only when a YAML config is read (a JSON config never loads it). */
function yamlModule(): YamlModule {
  return createRequire(import.meta.url)('yaml') as YamlModule;
}

/**
 * The offset of the first (in the text) scalar key given twice in one map, with the equality
 * `uniqueKeys` used (the scalars' values), or undefined. Linear: one Set per map.
 */
function firstDuplicateKey(yaml: YamlModule, doc: Document): number | undefined {
  let first: number | undefined;
  yaml.visit(doc, {
    Map(_, map) {
      const seen = new Set<unknown>();
      for (const pair of map.items) {
        if (!yaml.isScalar(pair.key)) continue;
        const value = pair.key.value;
        if (seen.has(value)) {
          const offset = pair.key.range?.[0];
          if (offset !== undefined && (first === undefined || offset < first)) first = offset;
          // Later keys of this map come later in the text.
          return undefined;
        }
        seen.add(value);
      }
      return undefined;
    },
  });
  return first;
}

/** Whole numbers as a config writes them: decimal digits (leading zeros are still decimal). */
export const DECIMAL_NUMBER = /^-?[0-9]+$/;

/** A number written other than in decimal digits, at `path` (map keys and list indexes). */
export class SpelledNumberError extends Error {
  constructor(
    readonly path: readonly PropertyKey[],
    readonly source: string,
  ) {
    super(`a number written as ${source}`);
  }
}

/**
 * The first number value not written in decimal digits. YAML reads `0x10` as 16, `0o17` as 15,
 * `1e3` as 1000 and `+5`, `5.0` and `5.` as 5: every number the config holds (jobs, timeoutMs,
 * port) is a whole count, refused in those spellings on the command line as well.
 */
function firstSpelledNumber(yaml: YamlModule, doc: Document, text: string): SpelledNumberError | undefined {
  let found: SpelledNumberError | undefined;
  yaml.visit(doc, {
    Scalar(key, node, ancestors) {
      if (key === 'key' || typeof node.value !== 'number' || node.range == null) return undefined;
      const source = text.slice(node.range[0], node.range[1]);
      if (DECIMAL_NUMBER.test(source)) return undefined;
      const path: PropertyKey[] = [];
      const chain = [...ancestors, node];
      chain.forEach((a, i) => {
        if (yaml.isPair(a) && yaml.isScalar(a.key)) path.push(String(a.key.value));
        else if (yaml.isSeq(a)) path.push(a.items.indexOf(chain[i + 1] as never));
      });
      found = new SpelledNumberError(path, source);
      return yaml.visit.BREAK;
    },
  });
  return found;
}

/** A YAML config as read: its value, and what the checks after parsing need of its text. */
export interface ParsedYaml {
  readonly value: unknown;
  /**
   * The first number not written in decimal digits. Returned, not thrown: the caller reports it
   * only after refusing literal secrets, so a secret written as `0x…` is never echoed.
   */
  readonly spelled: SpelledNumberError | undefined;
  /** The line (1-based) of the value at `path`, when the text has one there. */
  lineOf(path: readonly PropertyKey[]): number | undefined;
}

/**
 * The most YAML tokens a config may hold. The parser builds a node of about 1 KB and spends
 * several microseconds per token: 1 MB of `[a,a,a,…]` (a config file's size limit) took 3 s and
 * 600 MB before any check could refuse it. A config of every provider with a few instances is a
 * few hundred tokens; 50,000 is @keyport/policy's limit for a policy file too.
 */
export const MAX_CONFIG_TOKENS = 50_000;

/**
 * Whether `text` holds more than MAX_CONFIG_TOKENS tokens, counted with the lexer the parser then
 * runs (whatever the shape: flow or block items, comments, blank lines). It stops at the limit.
 */
function tooManyTokens(yaml: YamlModule, text: string): boolean {
  let tokens = 0;
  for (const _ of new yaml.Lexer().lex(text)) if (++tokens > MAX_CONFIG_TOKENS) return true;
  return false;
}

/**
 * A parser warning as the error it is for a config, its message one line naming the place, never
 * quoting the text (a tag's name may be all that stands before a secret).
 */
function configWarning(yaml: YamlModule, warning: YAMLWarning | undefined): YAMLParseError | undefined {
  if (warning === undefined) return undefined;
  const at = warning.linePos?.[0];
  const where = at !== undefined ? ` at line ${at.line}, column ${at.col}` : '';
  const what =
    warning.code === 'TAG_RESOLVE_FAILED'
      ? `a tag keyport does not know${where} (a config holds plain values: remove the tag)`
      : `${warning.message.split('\n')[0]?.replace(/:$/, '')}`;
  return new yaml.YAMLParseError(warning.pos, warning.code, what);
}

/** Parses one YAML document; throws the first error (its first line names line and column). */
export function parseYaml(text: string): ParsedYaml {
  const yaml = yamlModule();
  if (tooManyTokens(yaml, text)) {
    throw new Error(
      `it has more than ${MAX_CONFIG_TOKENS} YAML tokens (values, punctuation, spaces, line breaks and comments count): a config is a page of settings`,
    );
  }
  const lineCounter = new yaml.LineCounter();
  const doc = yaml.parseDocument(text, { uniqueKeys: false, lineCounter });
  // A warning is refused as an error, never emitted (as `parse` does): a Node warning on stderr
  // broke `--json`'s NDJSON and showed the line it is about, so `token: !vault s.xxx` put the
  // token on stderr before the config was refused for holding a secret; and a tag keyport does
  // not know (`address: !env VAULT_ADDR`) was taken as its text, the literal "VAULT_ADDR".
  const error = doc.errors[0] ?? configWarning(yaml, doc.warnings[0]);
  const duplicate = firstDuplicateKey(yaml, doc);
  // The parser reports errors in the order of the text; a duplicate key before its first error
  // is what it would have reported first.
  if (duplicate !== undefined && (error === undefined || duplicate < error.pos[0])) {
    const { line, col } = lineCounter.linePos(duplicate);
    // The first line of the parser's own message, its trailing colon included (the config error
    // shows only that line, as for every other YAML error).
    throw new yaml.YAMLParseError(
      [duplicate, duplicate + 1],
      'DUPLICATE_KEY',
      `Map keys must be unique at line ${line}, column ${col}:`,
    );
  }
  if (error !== undefined) throw error;
  let offsets: Map<string, number> | undefined;
  return {
    // maxAliasCount bounds alias expansion (a "billion laughs" document); 100 is parse's default.
    value: doc.toJS({ maxAliasCount: 100 }),
    spelled: firstSpelledNumber(yaml, doc, text),
    lineOf(path) {
      // One walk, on the first question: doc.getIn scans each map from its start, and a config
      // of 20,000 bad entries asked once per entry.
      offsets ??= valueOffsets(yaml, doc);
      const offset = offsets.get(JSON.stringify(path.map(String)));
      return offset === undefined ? undefined : lineCounter.linePos(offset).line;
    },
  };
}

/**
 * Where each value starts in the text, by its path (`["providers","local","keystore"]`). Called
 * only once the config is known to nest at most a few dozen levels (load.ts checks that first).
 */
function valueOffsets(yaml: YamlModule, doc: Document): Map<string, number> {
  const offsets = new Map<string, number>();
  const walk = (node: unknown, path: readonly string[]): void => {
    const at = (child: unknown, key: string): void => {
      const inner = [...path, key];
      const start = yaml.isNode(child) ? child.range?.[0] : undefined;
      if (start !== undefined) offsets.set(JSON.stringify(inner), start);
      walk(child, inner);
    };
    if (yaml.isMap(node)) {
      for (const pair of node.items) if (yaml.isScalar(pair.key)) at(pair.value, String(pair.key.value));
    } else if (yaml.isSeq(node)) {
      for (const [i, item] of node.items.entries()) at(item, String(i));
    }
  };
  walk(doc.contents, []);
  return offsets;
}
