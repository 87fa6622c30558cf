/**
 * `keyport keys inventory`, `keyport policy check` and `keyport policy fix`: the inventory of
 * every configured provider, checked against a policy file (table, JSON, SARIF or HTML), and the
 * safe fixes. The work is @keyport/policy's; this file only maps flags, output and exit codes.
 * @keyport/policy (with its YAML parser, JSON Schema validator and chart renderer) is loaded only
 * when one of these commands runs, so every other command starts without it.
 */
import { stat } from 'node:fs/promises';
import { isAbsolute, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { KeyportError } from '@keyport/core';
import type { CheckResult, Inventory, Rule as PolicyRule, Severity } from '@keyport/policy';
import { type Command, Option } from 'commander';
import { CliError, quotePath } from '../cli-errors.js';
import { EXIT } from '../exit-codes.js';
import { sameInode } from '../files/identity.js';
import { writeOutputFile } from '../files/output-file.js';
import { writeText } from '../io.js';
import { shown } from '../output.js';
import type { Act } from '../program.js';
import { auditKey, auditPaths, type Session } from '../session.js';

const FORMATS = ['table', 'json', 'sarif', 'html'] as const;
const SEVERITIES = ['low', 'medium', 'high', 'critical'] as const satisfies readonly Severity[];
const severityRank = (s: Severity): number => SEVERITIES.indexOf(s);
const policyLib = () => import('@keyport/policy');
type Format = (typeof FORMATS)[number];

async function inventoryOf(s: Session, providers: readonly string[], withAudit: boolean): Promise<Inventory> {
  const { keys, failures } = await s.allKeys();
  const { config, dir } = await s.config();
  const configured = Object.keys(config.providers);
  for (const p of providers) {
    if (!configured.includes(p))
      throw new KeyportError('InvalidArgument', `provider ${JSON.stringify(p)} is not configured`);
  }
  const sources = (providers.length > 0 ? providers : configured).filter((p) => !failures.has(p));
  const failed = [...failures.keys()].filter((p) => providers.length === 0 || providers.includes(p));
  // note() adds the "keyport: " prefix itself; the message may quote a path from the config.
  for (const p of failed)
    await s.out.note(
      shown(`warning: provider ${p} could not be built: ${(failures.get(p) as Error).message}`),
    );
  let auditLog: { path: string; key: Uint8Array } | undefined;
  if (withAudit && config.audit !== undefined) {
    const { log, keyFile } = auditPaths(config.audit, dir);
    auditLog = { path: log, key: await auditKey(keyFile, log) };
  }
  const { collectInventory } = await policyLib();
  const inv = await collectInventory(keys, {
    sources,
    ...s.callOptions,
    ...(auditLog !== undefined ? { auditLog } : {}),
  });
  // Providers that could not be built are sources whose listing failed: never silently absent.
  return {
    ...inv,
    sources: [
      ...inv.sources,
      ...failed.map((p) => ({
        source: p,
        keys: 0,
        error: { field: 'provider', code: 'Unavailable', message: (failures.get(p) as Error).message },
      })),
    ],
  };
}

/**
 * A rule whose `match.providers` names no configured provider checks no key there, and the
 * report reads compliant: said on stderr (a misspelt `aws-kms+dr` made a rule vacuous, silently).
 * A note, not a refusal: one policy may serve configurations that do not all have every provider.
 */
async function noteUnconfiguredProviders(s: Session, rules: readonly PolicyRule[]): Promise<void> {
  const configured = new Set(Object.keys((await s.config()).config.providers));
  for (const rule of rules) {
    const missing = (rule.match?.providers ?? []).filter((p) => !configured.has(p));
    if (missing.length === 0) continue;
    const names = missing.map((p) => JSON.stringify(p)).join(', ');
    await s.out.note(
      shown(
        `warning: rule ${JSON.stringify(rule.id)} matches provider ${names}, which is not configured: it checks no key there`,
      ),
    );
  }
}

async function* toChunks(text: string): AsyncIterable<Uint8Array> {
  yield new TextEncoder().encode(text);
}

/**
 * A provider's fields that name a file keyport reads, and what each is for messages. The
 * passphrase file matters most: a keystore whose passphrase is lost cannot be opened again.
 */
const PROVIDER_FILES: ReadonlyArray<readonly [string, string]> = [
  ['keystore', 'the keystore'],
  ['passphraseFile', 'the passphrase file'],
  ['tokenFile', 'the token file'],
  ['pinFile', 'the PIN file'],
  ['module', 'the PKCS#11 module'],
  ['keyFilename', 'the credentials file'],
  ['caFile', 'the CA file'],
];

/**
 * The files a report must never replace: the policy it was made from, the config, every file a
 * provider's config names (a keystore, its passphrase file: replacing either loses the keys for
 * good; token, PIN, credentials and CA files, a PKCS#11 module) and the audit log and key. A
 * report replaces an existing file without --force by design, so a slip such as `-o keys.kp` or
 * `-o policy.yaml` would otherwise destroy it.
 */
/**
 * The policy file as SARIF's `artifactLocation.uri` wants it, a URI reference: a relative path
 * percent-encoded segment by segment (`my policy.yaml` → `my%20policy.yaml`, which dashboards
 * resolve against the repository), an absolute one as a file: URL. Given raw, a space, `#` or `%`
 * in the name made a reference that does not name the file.
 */
export function policyUri(path: string): string {
  if (isAbsolute(path)) return pathToFileURL(path).href;
  return path.split(sep).map(encodeURIComponent).join('/');
}

async function ownFiles(s: Session, policyPath: string): Promise<Array<readonly [string, string]>> {
  const files: Array<readonly [string, string]> = [[policyPath, 'the policy file']];
  const loaded = await s.optionalConfig().catch(() => undefined);
  if (loaded === undefined) return files;
  files.push([loaded.path, 'the config file']);
  const at = (p: string): string => (isAbsolute(p) ? p : resolve(loaded.dir, p));
  for (const [name, provider] of Object.entries(loaded.config.providers ?? {})) {
    for (const [field, what] of PROVIDER_FILES) {
      const file = (provider as Record<string, unknown>)[field];
      if (typeof file === 'string') files.push([at(file), `${what} of provider ${JSON.stringify(name)}`]);
    }
  }
  if (loaded.config.audit !== undefined) {
    const { log, keyFile } = auditPaths(loaded.config.audit, loaded.dir);
    files.push([log, 'the audit log'], [keyFile ?? `${log}.key`, "the audit log's key file"]);
  }
  return files;
}

/** Refuses `out` when it is one of `own` (the same file, by any name: a link counts). */
async function refuseOwnFile(out: string, own: ReadonlyArray<readonly [string, string]>): Promise<void> {
  const outStat = await stat(out).catch(() => undefined);
  if (outStat === undefined) return;
  for (const [path, what] of own) {
    const st = await stat(path).catch(() => undefined);
    if (st !== undefined && sameInode(st, outStat)) {
      throw new CliError(
        'FileExists',
        `refusing to write the report to ${quotePath(out)}: it is ${what}${path === out ? '' : ` ${quotePath(path)}`} (choose another -o)`,
        { path: out },
      );
    }
  }
}

async function emit(s: Session, text: string, output: string | undefined): Promise<void> {
  if (output === undefined) {
    await writeText(s.io.stdout, text);
    return;
  }
  const path = isAbsolute(output) ? output : resolve(s.io.cwd, output);
  // A report is regenerated by design: an existing regular file is replaced (atomically).
  await writeOutputFile(path, toChunks(text), { force: true, mode: 0o644 });
  await s.out.note(shown(`wrote ${output}`));
}

function failing(result: CheckResult, failOn: Severity | 'none', countUnknown: boolean): number {
  if (failOn === 'none') return 0;
  return result.findings.filter(
    (f) => severityRank(f.severity) >= severityRank(failOn) && (f.status === 'violation' || countUnknown),
  ).length;
}

/** `keyport keys inventory`, added to the existing `keys` command. */
function registerInventory(program: Command, act: Act): void {
  const keys = program.commands.find((c) => c.name() === 'keys') ?? program.command('keys');
  keys
    .command('inventory')
    .description('every key of every configured provider: algorithm, protection, rotation, grants, last use')
    .option(
      '-p, --provider <name>',
      'only this provider (repeatable)',
      (v: string, acc: string[]) => [...acc, v],
      [],
    )
    .option('--no-audit', 'do not read last use from the configured audit log')
    .action(
      act(async (s, cmd) => {
        const o = cmd.opts<{ provider: string[]; audit: boolean }>();
        const { inventoryTable } = await policyLib();
        const inv = await inventoryOf(s, o.provider, o.audit);
        await s.out.result({ ...inv }, inventoryTable(inv));
        return inv.sources.some((x) => x.error !== undefined) ? EXIT.unavailable : undefined;
      }),
    );
}

export function registerPolicyCommands(program: Command, act: Act): void {
  registerInventory(program, act);
  const policy = program
    .command('policy')
    .description('check every key against a policy file, and apply safe fixes');
  policy
    .command('check')
    .description(
      'evaluate a policy (YAML or JSON) over the inventory; exit 1 on findings at or above --fail-on',
    )
    .requiredOption('--policy <file>', 'the policy file')
    .addOption(new Option('--format <format>', 'report format').choices([...FORMATS]).default('table'))
    .option('-o, --output <file>', 'write the report to a file (replaced atomically) instead of stdout')
    .addOption(
      new Option('--fail-on <severity>', 'exit 1 on findings of this severity or worse')
        .choices([...SEVERITIES, 'none'])
        .default('low'),
    )
    .option('--allow-unknown', 'do not fail on "unknown" findings (fields a provider cannot report)', false)
    .option(
      '-p, --provider <name>',
      'only this provider (repeatable)',
      (v: string, acc: string[]) => [...acc, v],
      [],
    )
    .option('--no-audit', 'do not read last use from the configured audit log')
    .action(
      act(async (s, cmd) => {
        const o = cmd.opts<{
          policy: string;
          format: Format;
          output?: string;
          failOn: Severity | 'none';
          allowUnknown: boolean;
          provider: string[];
          audit: boolean;
        }>();
        // Before any provider call: a report over the policy, config, a keystore or the audit log
        // is refused, not written after minutes of inventory.
        if (o.output !== undefined)
          await refuseOwnFile(s.path(o.output), await ownFiles(s, s.path(o.policy)));
        const { readPolicyFile, checkPolicy, findingsTable, toSarif, toHtml } = await policyLib();
        const pol = await readPolicyFile(s.path(o.policy));
        await noteUnconfiguredProviders(s, pol.rules);
        const inv = await inventoryOf(s, o.provider, o.audit);
        const result = checkPolicy(inv, pol);
        const failed = failing(result, o.failOn, !o.allowUnknown) > 0;
        // --json is the output contract (one object with "ok" on stdout), not a report format:
        // it used to replace --format, so `--json --format sarif -o r.sarif` wrote no SARIF, and
        // the object had no "ok" (with -o, stdout had nothing at all).
        const summary = {
          ok: !failed,
          inventory: inv,
          result,
          ...(o.output !== undefined ? { output: s.path(o.output) } : {}),
        };
        if (s.out.json && o.output === undefined && (o.format === 'table' || o.format === 'json')) {
          await s.out.result(summary, '');
        } else {
          const text =
            o.format === 'table'
              ? findingsTable(result)
              : o.format === 'json'
                ? `${JSON.stringify({ inventory: inv, result }, null, 2)}\n`
                : o.format === 'sarif'
                  ? `${JSON.stringify(toSarif(result, pol, { policyUri: policyUri(o.policy) }), null, 2)}\n`
                  : await toHtml(inv, pol, result);
          await emit(s, text, o.output);
          if (s.out.json) {
            // The report went to a file: the result on stdout. It went to stdout (SARIF, HTML):
            // the result on stderr, as encrypt's does when its data takes stdout.
            if (o.output !== undefined) await s.out.result(summary, '');
            else await writeText(s.io.stderr, `${JSON.stringify({ result: summary })}\n`);
          }
        }
        return failed ? EXIT.failed : undefined;
      }),
    );
  policy
    .command('fix')
    .description(
      'apply the safe fixes providers support (enable rotation, set its period); never deletes or disables',
    )
    .requiredOption('--policy <file>', 'the policy file')
    .option('--dry-run', 'print the fixes without applying them', false)
    .option(
      '-p, --provider <name>',
      'only this provider (repeatable)',
      (v: string, acc: string[]) => [...acc, v],
      [],
    )
    .action(
      act(async (s, cmd) => {
        const o = cmd.opts<{ policy: string; dryRun: boolean; provider: string[] }>();
        const { readPolicyFile, checkPolicy, planFixes, applyFixes, describeFix } = await policyLib();
        const pol = await readPolicyFile(s.path(o.policy));
        await noteUnconfiguredProviders(s, pol.rules);
        const inv = await inventoryOf(s, o.provider, false);
        const result = checkPolicy(inv, pol);
        const { keys } = await s.allKeys();
        const fixes = planFixes(inv, pol, result, keys);
        if (o.dryRun) {
          await s.out.result(
            { dryRun: true, fixes },
            fixes.length === 0 ? 'nothing to fix' : fixes.map((f) => `would ${describeFix(f)}`),
          );
          return undefined;
        }
        const outcomes = await applyFixes(keys, fixes, s.callOptions);
        await s.out.result(
          { dryRun: false, fixes: outcomes },
          outcomes.length === 0
            ? 'nothing to fix'
            : outcomes.map((f) =>
                f.applied
                  ? `fixed ${describeFix(f)}`
                  : f.error !== undefined
                    ? `failed ${describeFix(f)}: ${f.error.code}: ${shown(f.error.message)}`
                    : `skipped ${describeFix(f)}`,
              ),
        );
        return outcomes.some((f) => f.error !== undefined) ? EXIT.failed : undefined;
      }),
    );
}
