/**
 * A YAML config is refused past 50,000 tokens, before the parser builds a node per token: 1 MB of
 * `[a,a,a,…]` (within the config's 1 MiB size limit) took 3 s and 600 MB before any check could
 * refuse it. Counted with the parser's own lexer, so every shape counts alike.
 */

import { describe, expect, it } from 'vitest';
import { Lexer } from 'yaml';
import { MAX_CONFIG_TOKENS } from '../src/config/yaml.js';
import { parseConfigText } from '../src/index.js';

const tokens = (text: string): number => [...new Lexer().lex(text)].length;

/** `providers: { local: { keystore: k } }` plus a comment-free flow list of `n` items under `x-pad`. */
function configWithItems(n: number): string {
  return `providers: { local: { keystore: k } }\nx-pad: [${Array.from({ length: n }, () => 'a').join(',')}]\n`;
}

/** The largest item count whose text stays within the limit (the count grows linearly with n). */
function itemsAtLimit(): number {
  const base = tokens(configWithItems(1));
  const perItem = tokens(configWithItems(2)) - base;
  let n = 1 + Math.floor((MAX_CONFIG_TOKENS - base) / perItem);
  while (tokens(configWithItems(n)) > MAX_CONFIG_TOKENS) n--;
  return n;
}

describe('YAML configs past the token limit', () => {
  it('a config of exactly the limit is parsed (then judged by the schema); one token more is refused', () => {
    const n = itemsAtLimit();
    const atLimit = configWithItems(n);
    expect(tokens(atLimit)).toBeLessThanOrEqual(MAX_CONFIG_TOKENS);
    // Parsed: the schema, not the token count, refuses the unknown top-level key.
    expect(() => parseConfigText(atLimit, 'c.yaml')).toThrow(/x-pad/);
    expect(() => parseConfigText(atLimit, 'c.yaml')).not.toThrow(/YAML tokens/);
    const over = configWithItems(n + 1);
    expect(tokens(over)).toBeGreaterThan(MAX_CONFIG_TOKENS);
    expect(() => parseConfigText(over, 'c.yaml')).toThrow(
      /c\.yaml: not valid YAML: it has more than 50000 YAML tokens/,
    );
  });

  it('1 MB of flow items is refused, typed, whatever the shape (block items and comments count too)', () => {
    const flow = `providers: [${'a,'.repeat(500_000)}a]\n`;
    const block = `providers:\n${'  - a\n'.repeat(170_000)}`;
    const comments = `providers: { local: { keystore: k } }\n${'#\n'.repeat(400_000)}`;
    for (const text of [flow, block, comments]) {
      expect(() => parseConfigText(text, 'c.yaml')).toThrow(
        expect.objectContaining({ code: 'InvalidArgument', message: expect.stringMatching(/YAML tokens/) }),
      );
    }
  });
});
