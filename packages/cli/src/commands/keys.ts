/** `keyport keys ...`: create, list, describe and the lifecycle of keys. */

import {
  KEY_SPECS,
  KEY_USAGES,
  type KeyInfo,
  type KeySpec,
  type KeyUsage,
  MAX_DAYS,
  splitKeyUri,
  type UnmodeledKey,
} from '@keyport/core';
import { type Command, Option } from 'commander';
import { collect, parsePairs, positiveInt } from '../args.js';
import { usageError } from '../errors.js';
import { shown, table } from '../output.js';
import type { Act } from '../program.js';
import { configuredSchemes, instanceName } from '../providers.js';
import type { Session } from '../session.js';

/** KeyInfo as JSON: dates as ISO strings (labels are metadata, not context, and are shown). */
export function keyJson(k: KeyInfo): Record<string, unknown> {
  return JSON.parse(JSON.stringify(k)) as Record<string, unknown>;
}

export function describeLines(k: KeyInfo): string[] {
  const rows: string[][] = [
    ['uri', k.uri],
    ['spec', k.spec],
    ['usage', k.usage],
    ['state', k.state],
  ];
  if (k.primaryVersion !== undefined) rows.push(['primary version', k.primaryVersion]);
  if (k.createdAt !== undefined) rows.push(['created', k.createdAt.toISOString()]);
  if (k.deletionDate !== undefined) rows.push(['deletion date', k.deletionDate.toISOString()]);
  if (k.rotation?.periodDays !== undefined) rows.push(['rotation', `every ${k.rotation.periodDays} days`]);
  if (k.origin !== undefined) rows.push(['origin', k.origin]);
  if (k.description !== undefined) rows.push(['description', k.description]);
  const labels = Object.entries(k.labels);
  if (labels.length > 0) rows.push(['labels', labels.map(([a, b]) => `${a}=${b}`).join(', ')]);
  for (const v of k.versions ?? []) rows.push([`version ${v.version}`, v.state]);
  return table(rows);
}

async function schemeFor(s: Session, nameOrUri: string, provider: string | undefined): Promise<string> {
  if (provider !== undefined) return provider;
  if (nameOrUri.includes('://') || /^pkcs11(\+[a-z][a-z0-9-]*)?:/.test(nameOrUri)) {
    const { scheme, instance } = splitKeyUri(nameOrUri);
    return instance === undefined ? scheme : `${scheme}+${instance}`;
  }
  const schemes = configuredSchemes((await s.config()).config);
  if (schemes.length === 1) return schemes[0] as string;
  throw usageError(
    `say which provider creates the key: --provider <${schemes.join('|')}>, or give a key URI`,
  );
}

async function showKey(s: Session, k: KeyInfo, verb: string): Promise<undefined> {
  await s.out.result(keyJson(k), [
    `${s.out.paint('green', verb)} ${shown(k.uri)}`,
    ...describeLines(k).map((l) => `  ${l}`),
  ]);
  return undefined;
}

type KeyOp = 'rotateKey' | 'enableKey' | 'disableKey' | 'cancelKeyDeletion' | 'describeKey';

function simple(parent: Command, act: Act, name: string, op: KeyOp, verb: string, summary: string): void {
  parent
    .command(name)
    .description(summary)
    .argument('<uri>', 'key URI')
    .action(
      act(async (s, cmd) => {
        const uri = cmd.args[0] as string;
        const kp = await s.keys([uri]);
        return showKey(s, await kp[op](uri, s.callOptions), verb);
      }),
    );
}

export function registerKeyCommands(program: Command, act: Act): void {
  const keys = program.command('keys').description('create, list, describe and manage keys');

  keys
    .command('create')
    .description('create a key (a name in the provider, or the key URI to create)')
    .argument('<name-or-uri>', 'key name, or the full URI of the new key')
    .option('-p, --provider <scheme>', 'provider to create it in (default: the only configured one)')
    .addOption(new Option('--spec <spec>', 'key spec').choices([...KEY_SPECS]).default('AES_256'))
    .addOption(
      new Option('--usage <usage>', 'key usage (default: the first the spec allows)').choices([
        ...KEY_USAGES,
      ]),
    )
    .option('--label <k=v>', 'label (repeatable)', collect, [])
    .option('--description <text>', 'description')
    .option('--rotation-days <n>', 'rotate automatically every n days')
    .option('--external', 'create without material, for `import` (BYOK)', false)
    .action(
      act(async (s, cmd) => {
        const o = cmd.opts<{
          provider?: string;
          spec: KeySpec;
          usage?: KeyUsage;
          label: string[];
          description?: string;
          rotationDays?: string;
          external: boolean;
        }>();
        const name = cmd.args[0] as string;
        // Flags first: a bad value is refused before the keystore is opened or a provider called.
        const labels = parsePairs(o.label, '--label');
        // Core's range (100 years), so the error names the flag; a provider may allow less.
        const periodDays =
          o.rotationDays !== undefined ? positiveInt(o.rotationDays, '--rotation-days', MAX_DAYS) : undefined;
        const scheme = await schemeFor(s, name, o.provider);
        const kp = await s.keys([scheme]);
        const info = await kp.createKey(
          instanceName(scheme),
          {
            name,
            spec: o.spec,
            ...(o.usage !== undefined ? { usage: o.usage } : {}),
            ...(Object.keys(labels).length > 0 ? { labels } : {}),
            ...(o.description !== undefined ? { description: o.description } : {}),
            ...(periodDays !== undefined ? { rotation: { periodDays } } : {}),
            ...(o.external ? { external: true } : {}),
          },
          s.callOptions,
        );
        return showKey(s, info, 'created');
      }),
    );

  keys
    .command('list')
    .description("list a provider's keys")
    .argument('[provider]', 'provider scheme (default: every configured provider)')
    .action(
      act(async (s, cmd) => {
        const wanted = cmd.args[0];
        const schemes = wanted !== undefined ? [wanted] : configuredSchemes((await s.config()).config);
        const kp = await s.keys(schemes);
        const all: KeyInfo[] = [];
        // Keys keyport cannot describe are shown apart, never dropped: a listing must not hide keys.
        const unmodeled: { uri: string; reason: string }[] = [];
        const onUnmodeledKey = (k: UnmodeledKey) => {
          unmodeled.push({ uri: k.uri, reason: k.unmodeled });
        };
        for (const scheme of schemes) {
          for await (const k of kp.listKeys(instanceName(scheme), { ...s.callOptions, onUnmodeledKey }))
            all.push(k);
        }
        const keysText =
          all.length === 0
            ? ['no keys']
            : table([
                ['URI', 'SPEC', 'USAGE', 'STATE', 'VERSION'],
                ...all.map((k) => [k.uri, k.spec, k.usage, k.state, k.primaryVersion ?? '-']),
              ]);
        const unmodeledText =
          unmodeled.length === 0
            ? []
            : [
                '',
                'keys keyport cannot describe (listed, not usable through keyport):',
                ...table([['URI', 'WHY'], ...unmodeled.map((k) => [k.uri, k.reason])]),
              ];
        await s.out.result({ keys: all.map(keyJson), ...(unmodeled.length > 0 ? { unmodeled } : {}) }, [
          ...keysText,
          ...unmodeledText,
        ]);
        return undefined;
      }),
    );

  simple(keys, act, 'describe', 'describeKey', 'key', 'show a key: spec, state, versions, labels');
  simple(
    keys,
    act,
    'rotate',
    'rotateKey',
    'rotated',
    'make a new primary version (old ciphertexts keep opening)',
  );
  simple(keys, act, 'enable', 'enableKey', 'enabled', 'enable a disabled key');
  simple(keys, act, 'disable', 'disableKey', 'disabled', 'disable a key: every use fails until enabled');
  simple(
    keys,
    act,
    'cancel-deletion',
    'cancelKeyDeletion',
    'deletion cancelled',
    'cancel a scheduled deletion',
  );

  keys
    .command('schedule-deletion')
    .description('schedule the key for deletion after a waiting period')
    .argument('<uri>', 'key URI')
    .option('--days <n>', "waiting period in days (the provider's default when omitted)")
    .action(
      act(async (s, cmd) => {
        const uri = cmd.args[0] as string;
        const o = cmd.opts<{ days?: string }>();
        const req = o.days !== undefined ? { days: positiveInt(o.days, '--days', MAX_DAYS) } : {};
        const kp = await s.keys([uri]);
        return showKey(s, await kp.scheduleKeyDeletion(uri, req, s.callOptions), 'deletion scheduled');
      }),
    );

  keys
    .command('destroy-version')
    .description('destroy one key version (irreversible: its ciphertexts can no longer be opened)')
    .argument('<uri>', 'key URI')
    .requiredOption('--key-version <n>', 'the version to destroy')
    .action(
      act(async (s, cmd) => {
        const uri = cmd.args[0] as string;
        const { keyVersion: version } = cmd.opts<{ keyVersion: string }>();
        const kp = await s.keys([uri]);
        return showKey(s, await kp.destroyKeyVersion({ uri, version }, s.callOptions), 'version destroyed');
      }),
    );
}
