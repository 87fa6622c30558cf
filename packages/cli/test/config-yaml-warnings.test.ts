/**
 * What the YAML parser only warns about (a tag it cannot resolve, an unknown directive) refuses
 * a config (exit 2) with a one-line message naming the place. Before, the warning went to stderr
 * as a Node warning quoting the line: `token: !vault s.…` showed the token (the config was then
 * refused for holding a secret, too late), `--json`'s stderr was no longer NDJSON, and a tag
 * keyport does not know (`keystore: !env KEYSTORE`) was read as its text, the literal name.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../src/index.js';
import { localWorkspace, ndjson, spawnCli } from './support/cli.js';

describe('YAML config warnings', () => {
  it('a tag keyport does not know is refused, never taken as the text after it', () => {
    // Before: { keystore: 'KEYSTORE' }.
    expect(() =>
      parseConfigText('providers:\n  local:\n    keystore: !env KEYSTORE\n', '/x/keyport.config.yaml'),
    ).toThrow(
      'config /x/keyport.config.yaml: not valid YAML: a tag keyport does not know at line 3, column 15 (a config holds plain values: remove the tag)',
    );
    expect(() => parseConfigText('%FOO bar\n---\nproviders: {}\n', '/x/k.yaml')).toThrow(
      /not valid YAML: Unknown directive/,
    );
    // The schema's own tags still resolve.
    expect(parseConfigText('providers:\n  local:\n    keystore: !!str 0123\n', '/x/k.yaml')).toMatchObject({
      providers: { local: { keystore: '0123' } },
    });
  });

  it('a tagged secret never reaches stderr; --json stderr stays one error object', async () => {
    const ws = await localWorkspace();
    const secret = 's.hunter2-not-a-real-token';
    await writeFile(
      join(ws.dir, 'keyport.config.yaml'),
      `providers:\n  hcvault:\n    address: http://127.0.0.1:1\n    token: !vault ${secret}\n`,
    );
    const r = await spawnCli(['--json', '--config', 'keyport.config.yaml', 'keys', 'list'], { cwd: ws.dir });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).not.toContain(secret);
    // Every stderr line is JSON (before: the Node warning's lines were not).
    const events = ndjson(r.stderr);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      error: {
        code: 'InvalidArgument',
        message: expect.stringContaining('a tag keyport does not know at line 4'),
      },
    });
  });
});
