/**
 * `.emulators/env` is read back by a POSIX shell (`set -a && . .emulators/env && set +a`, as the
 * byok example says) as well as by the harness: each value must come back whole. Azurite's
 * connection string holds `;`, which a shell took as the end of the command.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
// @ts-expect-error the harness's bin is plain JavaScript without declarations
import { readEnvFile, shellQuoted } from '../bin/lib/state.mjs';

const dir = mkdtempSync(join(tmpdir(), 'keyport-env-file-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('every value comes back whole through a shell that sources the file', () => {
  const values = {
    AZURITE:
      'DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNO==;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;',
    PLAIN: 'http://127.0.0.1:41959',
    QUOTE: "it's a 'test'",
    SHELLY: 'a b $HOME `id` \\ " & | > < * ? # ~ ! ( )',
    EMPTY: '',
  };
  const file = join(dir, 'env');
  const quote = shellQuoted as (v: string) => string;
  writeFileSync(
    file,
    `${Object.entries(values)
      .map(([k, v]) => `${k}=${quote(v)}`)
      .join('\n')}\n`,
  );
  const script = `set -a && . "$1" && set +a && node -e 'process.stdout.write(JSON.stringify(Object.fromEntries(${JSON.stringify(Object.keys(values))}.map((k) => [k, process.env[k]]))))'`;
  const out = execFileSync('sh', ['-c', script, 'sh', file], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH },
  });
  expect(JSON.parse(out)).toEqual(values);
  // The harness's own reader (vitest global setup, scripts/with-emulators.mjs) gets the same.
  expect((readEnvFile as (path: string) => Record<string, string>)(file)).toEqual(values);
  // Plain values stay as they were written before (other readers split on the first '=').
  expect(quote(values.PLAIN)).toBe(values.PLAIN);
});
