/**
 * `keyport doctor`: for each configured provider, can it be built (adapter, credentials),
 * does it answer (a listing or a describe), what the given keys allow (a round trip with a
 * random value), and how far its clock is from ours where it reports a Date header.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { type KeyOperations, toKeyportError } from '@keyport/core';
import type { Command } from 'commander';
import { collect } from '../args.js';
import { CLI_ERROR_EXITS } from '../cli-errors.js';
import { errorReport } from '../errors.js';
import { EXIT, exitCodeFor } from '../exit-codes.js';
import { shown } from '../output.js';
import type { Act } from '../program.js';
import { configuredSchemes, instanceName, providerClockUrl } from '../providers.js';
import type { Session } from '../session.js';

interface Check {
  readonly provider: string;
  readonly check: string;
  readonly ok: boolean;
  readonly detail: string;
  readonly code?: string;
  readonly next?: string;
  /** With --verbose: the provider's cause chain, secrets redacted. */
  readonly causes?: readonly string[];
}

const CHECK_TIMEOUT_MS = 5000;
const CLI_CODES: ReadonlySet<string> = new Set(Object.keys(CLI_ERROR_EXITS));

/**
 * How failures are described: --verbose and the secrets to redact from causes (asked at each
 * failure: the providers' own secrets are known only once they are built).
 */
let reporting: { verbose: boolean; secrets: () => readonly string[] } = { verbose: false, secrets: () => [] };

async function attempt(provider: string, check: string, fn: () => Promise<string>): Promise<Check> {
  try {
    return { provider, check, ok: true, detail: await fn() };
  } catch (e) {
    const r = errorReport(e, reporting.verbose, reporting.secrets());
    return {
      provider,
      check,
      ok: false,
      detail: r.message,
      code: r.code,
      next: r.next,
      ...(r.causes !== undefined ? { causes: r.causes } : {}),
    };
  }
}

/** Skew from the Date header, against the midpoint of the request (1 s resolution). */
async function clockSkew(url: string): Promise<string> {
  const before = Date.now();
  const res = await fetch(url, { method: 'GET', signal: AbortSignal.timeout(CHECK_TIMEOUT_MS) });
  const after = Date.now();
  await res.body?.cancel();
  const date = res.headers.get('date');
  if (date === null) return 'no Date header: skew unknown';
  const skew = (Date.parse(date) - (before + after) / 2) / 1000;
  const rounded = Math.round(skew);
  if (Math.abs(skew) > 60) throw toKeyportError(new Error(`clock skew ${rounded}s`));
  return `clock skew ${rounded >= 0 ? '+' : ''}${rounded}s (within ±60s)`;
}

async function keyChecks(kp: KeyOperations, scheme: string, uri: string, s: Session): Promise<Check[]> {
  const checks: Check[] = [];
  const o = { ...s.callOptions, timeoutMs: s.callOptions.timeoutMs ?? CHECK_TIMEOUT_MS };
  let usage: string | undefined;
  checks.push(
    await attempt(scheme, `key ${uri}`, async () => {
      const k = await kp.describeKey(uri, o);
      usage = k.usage;
      return `${k.spec} ${k.usage} ${k.state}${k.primaryVersion !== undefined ? ` v${k.primaryVersion}` : ''}`;
    }),
  );
  if (usage === 'encrypt_decrypt') {
    checks.push(
      await attempt(scheme, `encrypt+decrypt ${uri}`, async () => {
        const probe = randomBytes(32);
        const context = { purpose: 'keyport-doctor' };
        const { ciphertext } = await kp.encrypt(uri, probe, { ...o, context });
        const { plaintext } = await kp.decrypt(uri, ciphertext, { ...o, context });
        if (plaintext.length !== probe.length || !timingSafeEqual(plaintext, probe))
          throw new Error('round trip mismatch');
        return 'allowed';
      }),
    );
  }
  return checks;
}

export function registerDoctorCommand(program: Command, act: Act): void {
  program
    .command('doctor')
    .description('check every configured provider: reachable, credentials, what keys allow, clock skew')
    .option('-k, --key <uri>', 'also check what this key allows (repeatable)', collect, [])
    .action(
      act(async (s, cmd) => {
        const { key: given } = cmd.opts<{ key: string[] }>();
        const keyUris = await s.uris(given);
        reporting = { verbose: s.options.verbose, secrets: () => s.redactions() };
        const { config } = await s.config();
        const { keys, failures } = await s.allKeys();
        const checks: Check[] = [];
        for (const scheme of configuredSchemes(config)) {
          const failed = failures.get(scheme);
          if (failed !== undefined) {
            checks.push(await attempt(scheme, 'configure', () => Promise.reject(failed)));
            continue;
          }
          checks.push({
            provider: scheme,
            check: 'configure',
            ok: true,
            detail: 'adapter loaded, credentials read',
          });
          const caps = keys.capabilities(instanceName(scheme));
          if (caps.listKeys) {
            checks.push(
              await attempt(scheme, 'reachable', async () => {
                let n = 0;
                for await (const _ of keys.listKeys(instanceName(scheme), {
                  ...s.callOptions,
                  timeoutMs: CHECK_TIMEOUT_MS,
                  pageSize: 1,
                })) {
                  n++;
                  break;
                }
                return n === 0 ? 'answered (no keys)' : 'answered, credentials accepted';
              }),
            );
          }
          const url = providerClockUrl(config, scheme, s.io.env);
          if (url !== undefined) checks.push(await attempt(scheme, 'clock', () => clockSkew(url)));
          for (const uri of keyUris.filter((u) => u.startsWith(`${scheme}:`))) {
            checks.push(...(await keyChecks(keys, scheme, uri, s)));
          }
        }
        const firstFailure = checks.find((c) => !c.ok);
        const lines = checks.map(
          (c) =>
            `${c.ok ? s.out.paint('green', 'ok  ') : s.out.paint('red', 'FAIL')} ${c.provider.padEnd(8)} ${shown(`${c.check}: ${c.detail}`)}` +
            (c.ok ? '' : `\n       next: ${c.next}`) +
            (c.causes ?? []).map((cause) => `\n       cause: ${cause}`).join(''),
        );
        await s.out.result({ ok: firstFailure === undefined, checks }, lines);
        if (firstFailure === undefined) return EXIT.ok;
        if (firstFailure.code === undefined) return EXIT.failed;
        return CLI_CODES.has(firstFailure.code)
          ? EXIT.failed
          : exitCodeFor(firstFailure.code as Parameters<typeof exitCodeFor>[0]);
      }),
    );
}
