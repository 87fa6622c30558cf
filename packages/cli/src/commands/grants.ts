/** `keyport grants ...`: create, list, revoke, and sweep expired grants. */
import { GRANT_OPERATIONS, type Grant, type GrantOperation } from '@keyport/core';
import { type Command, Option } from 'commander';
import { collect, parseExpiry, parsePairs } from '../args.js';
import { shown, table } from '../output.js';
import type { Act } from '../program.js';

/** A grant as JSON: constraint context values are shown only as their keys. */
function grantJson(g: Grant): Record<string, unknown> {
  const c = g.constraints;
  return {
    id: g.id,
    keyUri: g.keyUri,
    grantee: g.grantee,
    operations: g.operations,
    ...(g.unmodeledOperations !== undefined ? { unmodeledOperations: g.unmodeledOperations } : {}),
    ...(g.unmodeledConditions !== undefined ? { unmodeledConditions: g.unmodeledConditions } : {}),
    ...(g.name !== undefined ? { name: g.name } : {}),
    ...(g.expiresAt !== undefined ? { expiresAt: g.expiresAt.toISOString() } : {}),
    ...(g.createdAt !== undefined ? { createdAt: g.createdAt.toISOString() } : {}),
    ...(c?.contextEquals !== undefined ? { contextEqualsKeys: Object.keys(c.contextEquals).sort() } : {}),
    ...(c?.contextSubset !== undefined ? { contextSubsetKeys: Object.keys(c.contextSubset).sort() } : {}),
  };
}

/**
 * The operations column: keyport's names, then what the grant also allows that keyport has no
 * name for, marked as the provider's own (a grant made outside keyport may allow more).
 */
function operationsCell(g: Grant): string {
  const other = (g.unmodeledOperations ?? []).map((op) => `+${op}`);
  return [...g.operations, ...other].join(',') || '-';
}

/**
 * The expiry column. A grant under a condition keyport does not model has no expiry keyport can
 * read, and may apply more narrowly than its operations say: shown as conditional, the condition
 * under the table, never as a plain '-' (no expiry).
 */
function expiresCell(g: Grant): string {
  if (g.unmodeledConditions !== undefined && g.unmodeledConditions.length > 0) return 'conditional*';
  return g.expiresAt?.toISOString() ?? '-';
}

/** The provider's own words for each conditional grant, one line per condition (escaped). */
function conditionLines(all: readonly Grant[]): string[] {
  return all.flatMap((g) =>
    (g.unmodeledConditions ?? []).map((c) => shown(`* ${g.id}: condition ${JSON.stringify(c)}`)),
  );
}

/** `grants list` as text: the table, then the conditions of conditional grants. */
export function grantLines(all: readonly Grant[]): string[] {
  return [
    ...table([
      ['ID', 'GRANTEE', 'OPERATIONS', 'EXPIRES'],
      ...all.map((g) => [g.id, g.grantee, operationsCell(g), expiresCell(g)]),
    ]),
    ...conditionLines(all),
  ];
}

export function registerGrantCommands(program: Command, act: Act): void {
  const grants = program
    .command('grants')
    .description('grants: let a principal use a key, optionally with limits');

  grants
    .command('create')
    .argument('<uri>', 'key URI')
    .requiredOption('--grantee <principal>', 'who receives the grant')
    .addOption(
      new Option('--op <operation...>', 'operations allowed')
        .choices([...GRANT_OPERATIONS])
        .makeOptionMandatory(),
    )
    .option('--context-equals <k=v>', 'the call context must equal these pairs (repeatable)', collect, [])
    .option('--context-subset <k=v>', 'the call context must contain these pairs (repeatable)', collect, [])
    .option(
      '--expires <when>',
      'ISO 8601 date-time with a zone (2099-12-31T23:59:59Z), date (00:00 UTC) or duration (90s, 15m, 12h, 30d)',
    )
    .option('--name <name>', 'a name to find the grant again')
    .action(
      act(async (s, cmd) => {
        const uri = cmd.args[0] as string;
        const o = cmd.opts<{
          grantee: string;
          op: string[];
          contextEquals: string[];
          contextSubset: string[];
          expires?: string;
          name?: string;
        }>();
        const equals = parsePairs(o.contextEquals, '--context-equals');
        const subset = parsePairs(o.contextSubset, '--context-subset');
        const constraints = {
          ...(o.contextEquals.length > 0 ? { contextEquals: equals } : {}),
          ...(o.contextSubset.length > 0 ? { contextSubset: subset } : {}),
        };
        // Before the keystore is opened or any provider called: a bad expiry changes nothing.
        const expiresAt = o.expires !== undefined ? parseExpiry(o.expires) : undefined;
        const kp = await s.keys([uri]);
        const g = await kp.createGrant(
          uri,
          {
            grantee: o.grantee,
            operations: o.op as GrantOperation[],
            ...(Object.keys(constraints).length > 0 ? { constraints } : {}),
            ...(expiresAt !== undefined ? { expiresAt } : {}),
            ...(o.name !== undefined ? { name: o.name } : {}),
          },
          s.callOptions,
        );
        await s.out.result(
          { ...grantJson(g), ...(g.token !== undefined ? { token: g.token } : {}) },
          shown(`granted ${g.id}: ${g.grantee} may ${g.operations.join(', ')} on ${g.keyUri}`),
        );
        return undefined;
      }),
    );

  grants
    .command('list')
    .argument('<uri>', 'key URI')
    .action(
      act(async (s, cmd) => {
        const uri = cmd.args[0] as string;
        const kp = await s.keys([uri]);
        const all: Grant[] = [];
        for await (const g of kp.listGrants(uri, s.callOptions)) all.push(g);
        await s.out.result({ grants: all.map(grantJson) }, all.length === 0 ? 'no grants' : grantLines(all));
        return undefined;
      }),
    );

  grants
    .command('revoke')
    .argument('<uri>', 'key URI')
    .argument('<grant-id>', 'grant id (from grants list)')
    .action(
      act(async (s, cmd) => {
        const [uri, id] = cmd.args as [string, string];
        const kp = await s.keys([uri]);
        await kp.revokeGrant(uri, id, s.callOptions);
        await s.out.result({ ok: true, revoked: id }, shown(`revoked ${id}`));
        return undefined;
      }),
    );

  grants
    .command('sweep')
    .description('revoke every grant on the key whose expiry has passed (providers without native expiry)')
    .argument('<uri>', 'key URI')
    .option('--dry-run', 'only list what would be revoked', false)
    .action(
      act(async (s, cmd) => {
        const uri = cmd.args[0] as string;
        const { dryRun } = cmd.opts<{ dryRun: boolean }>();
        const kp = await s.keys([uri]);
        const now = Date.now();
        const expired: Grant[] = [];
        for await (const g of kp.listGrants(uri, s.callOptions)) {
          if (g.expiresAt !== undefined && g.expiresAt.getTime() <= now) expired.push(g);
        }
        if (!dryRun) for (const g of expired) await kp.revokeGrant(uri, g.id, s.callOptions);
        const ids = expired.map((g) => g.id);
        await s.out.result(
          { ok: true, dryRun, revoked: dryRun ? [] : ids, expired: ids },
          ids.length === 0
            ? 'no expired grants'
            : shown(`${dryRun ? 'would revoke' : 'revoked'} ${ids.length}: ${ids.join(', ')}`),
        );
        return undefined;
      }),
    );
}
