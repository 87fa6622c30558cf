/** `keyport capabilities`: the capability matrix of the configured providers. */
import type { Capabilities } from '@keyport/core';
import type { Command } from 'commander';
import { table } from '../output.js';
import type { Act } from '../program.js';
import { configuredSchemes, instanceName, providerCapabilities } from '../providers.js';

function cells(c: Capabilities): Record<string, string> {
  return {
    'key specs': Object.keys(c.keySpecs).join(' '),
    context: c.context,
    'data keys': c.dataKeys,
    'list keys': String(c.listKeys),
    rotation: c.rotation,
    'auto rotation': String(c.autoRotation),
    'enable/disable': String(c.enableDisable),
    'scheduled deletion': c.scheduledDeletion,
    'destroy version': String(c.destroyVersion),
    grants: c.grants,
    'grant expiry': c.grantExpiry,
    'grant constraints': String(c.grantConstraints),
    import: c.import.join(' ') || 'none',
    signing: c.signingAlgorithms.join(' ') || 'none',
  };
}

export function registerCapabilitiesCommand(program: Command, act: Act): void {
  program
    .command('capabilities')
    .description('what each configured provider can do')
    .argument('[provider]', 'one provider scheme (default: all configured)')
    .action(
      act(async (s, cmd) => {
        const { config } = await s.config();
        const schemes = cmd.args[0] !== undefined ? [cmd.args[0]] : configuredSchemes(config);
        const result: Record<string, Capabilities | { error: string }> = {};
        for (const scheme of schemes) {
          try {
            const caps = await providerCapabilities(config, scheme);
            result[scheme] = caps ?? (await s.keys([scheme])).capabilities(instanceName(scheme));
          } catch (e) {
            result[scheme] = { error: e instanceof Error ? e.message : String(e) };
          }
        }
        const names = Object.keys(
          cells(Object.values(result).find((r): r is Capabilities => !('error' in r)) ?? emptyCaps()),
        );
        const rows = [['', ...schemes]];
        for (const name of names) {
          rows.push([
            name,
            ...schemes.map((sc) => {
              const r = result[sc];
              return r === undefined || 'error' in r ? 'unavailable' : (cells(r)[name] ?? '');
            }),
          ]);
        }
        await s.out.result({ providers: result }, table(rows));
        return undefined;
      }),
    );
}

function emptyCaps(): Capabilities {
  return {
    keySpecs: {},
    context: 'none',
    dataKeys: 'none',
    listKeys: false,
    rotation: 'none',
    autoRotation: false,
    enableDisable: false,
    scheduledDeletion: 'none',
    destroyVersion: false,
    grants: 'none',
    grantExpiry: 'none',
    grantConstraints: false,
    import: [],
    signingAlgorithms: [],
  };
}
