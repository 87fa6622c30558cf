/** The README's third-party driver example is exactly the code that runs in CI. */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const repo = join(dirname(fileURLToPath(import.meta.url)), '../..');
const readme = readFileSync(join(repo, 'conformance/README.md'), 'utf8');

/** The fenced ts blocks whose first line names a file: `// <path>`. */
function namedBlocks(markdown: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of markdown.matchAll(/```ts\n\/\/ (\S+)\n([\s\S]*?)```/g))
    out.set(m[1] as string, m[2] as string);
  return out;
}

describe('conformance README', () => {
  const blocks = namedBlocks(readme);
  for (const path of [
    'examples/custom-driver/src/acme-driver.ts',
    'examples/custom-driver/test/acme.conformance.test.ts',
  ]) {
    it(`shows ${path} exactly`, () => {
      expect(blocks.get(path)).toBe(readFileSync(join(repo, path), 'utf8'));
    });
  }
});
