/**
 * With `@opentelemetry/api` installed (many SDKs bring it) but nothing registered with it, keyport
 * does not load it at all (every call into it would be a no-op; loading it cost a CLI command
 * ~10 ms of its start), and an application that registers a tracer provider later is still
 * honoured from its next call. In a child process: this worker's module cache has the API loaded
 * by other test files.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const HOOKS = fileURLToPath(new URL('../../cli/test/support/register-ts.mjs', import.meta.url));
const PROBE = fileURLToPath(new URL('./support/otel-probe.mjs', import.meta.url));

it('leaves the API unloaded while nothing is registered, and records spans once a provider is', () => {
  const out = execFileSync(process.execPath, ['--import', HOOKS, PROBE], { encoding: 'utf8' });
  expect(JSON.parse(out)).toEqual({ loadedUnregistered: false, spans: ['keyport encrypt'] });
});
