/**
 * `keyport import`: bring your own key. An AES-256 key born in (or already in) a PKCS#11 HSM is
 * wrapped inside the HSM for the target's import key and imported into AWS KMS, Vault/OpenBao
 * transit or the local keystore; the pairing (HSM object <-> target key and version) is recorded
 * in a manifest. The key material never leaves the HSM in the clear (see @keyport/byok).
 */
// Types only: @keyport/byok (and through it pkcs11js, a native module) is loaded when `import`
// runs, so `keyport --help` and every other command work without it.
import type { ByokPairing, HsmKeyExporter } from '@keyport/byok';
import { type KeyOperations, keyUriScheme, splitKeyUri, UnsupportedError } from '@keyport/core';
import type { Command } from 'commander';
import { parseInstanceKey } from '../config/schema.js';
import { usageError } from '../errors.js';
import { shown } from '../output.js';
import type { Act } from '../program.js';
import { instanceName, instancesFor } from '../providers.js';
import type { Session } from '../session.js';

export const DEFAULT_MANIFEST = 'keyport-byok.json';

function asHsmExporter(keys: KeyOperations & { provider(s: string): unknown }): HsmKeyExporter {
  const hsm = keys.provider('pkcs11') as Partial<HsmKeyExporter>;
  if (typeof hsm.wrapKeyForExport !== 'function' || !Array.isArray(hsm.oaepHashes)) {
    throw new UnsupportedError('import', 'the pkcs11 provider cannot wrap keys for export', {
      provider: 'pkcs11',
    });
  }
  return hsm as HsmKeyExporter;
}

/**
 * Where the target lives: a key URI (`hcvault+dr://…` addresses instance `dr`; a plain URI the
 * scheme's instance, or the one whose server it names), or for --create-target the instance
 * --provider names (`aws-kms`, `hcvault+dr` or `dr`), resolved through the config as every
 * other command does.
 */
interface TargetRef {
  /** What `Session.keys` and `Keyport.createKey` are given: the URI, or the instance name. */
  readonly selector: string;
  /** The driver's scheme (`hcvault` for `hcvault+dr`). */
  readonly scheme: string;
  readonly isUri: boolean;
}

async function targetRef(s: Session, target: string, provider: string | undefined): Promise<TargetRef> {
  if (target.includes('://')) return { selector: target, scheme: keyUriScheme(target), isUri: true };
  if (provider === undefined) throw usageError('import: name the target provider with --provider');
  const { config } = await s.config();
  const serving = instancesFor(config, provider);
  const only = serving.length === 1 ? serving[0] : undefined;
  const scheme = parseInstanceKey(only ?? provider)?.scheme ?? provider;
  return { selector: only === undefined ? provider : instanceName(only), scheme, isUri: false };
}

/** The target URI: given, or a new pending key (`--create-target`) in the target's instance. */
async function targetUri(
  s: Session,
  keys: KeyOperations,
  target: string,
  ref: TargetRef,
  createTarget: boolean,
): Promise<string> {
  if (!createTarget) {
    if (!ref.isUri)
      throw usageError('import: give the target key URI, or a name with --create-target --provider');
    // Transit has no key without material: the instance records a pending key in this process
    // (nothing is sent to the server) and creates it with the import itself. The instance is
    // found from the URI; the driver is given its own URI (no instance selector).
    if (ref.scheme !== 'hcvault') return target;
  }
  const created = await keys.createKey(
    ref.selector,
    { name: ref.isUri ? splitKeyUri(target).driverUri : target, spec: 'AES_256', external: true },
    s.callOptions,
  );
  return created.uri;
}

function pairingLines(p: ByokPairing): string[] {
  // URIs and names as the providers returned them: escaped for the terminal.
  return [
    `imported ${p.hsm.uri} (HSM version ${p.hsm.version})`,
    `  into     ${p.target.uri}${p.target.version !== undefined ? ` (version ${p.target.version})` : ''}`,
    `  wrapped  ${p.target.wrappingAlgorithm} inside the HSM`,
  ].map(shown);
}

export function registerImportCommand(program: Command, act: Act): void {
  program
    .command('import')
    .description('BYOK: import an AES-256 key from the PKCS#11 HSM into AWS KMS, Vault/OpenBao or local')
    .argument(
      '<target>',
      'target key URI (AWS/local: created --external; transit: a key that does not exist yet)',
    )
    .option('--hsm-key <uri>', 'an existing exportable AES-256 HSM key (pkcs11:...)')
    .option('--new-hsm-key <name>', 'generate a new AES-256 key in the HSM (extractable only wrapped)')
    .option('--create-target', 'create the target as a pending (external) key named <target> first', false)
    .option('-p, --provider <name>', 'provider instance for --create-target (aws-kms, hcvault+dr, dr, ...)')
    .option('--manifest <file>', `pairing manifest (default ${DEFAULT_MANIFEST})`, DEFAULT_MANIFEST)
    .action(
      act(async (s, cmd) => {
        const o = cmd.opts<{
          hsmKey?: string;
          newHsmKey?: string;
          createTarget: boolean;
          provider?: string;
          manifest: string;
        }>();
        if ((o.hsmKey === undefined) === (o.newHsmKey === undefined)) {
          throw usageError('import needs exactly one of --hsm-key <uri> or --new-hsm-key <name>');
        }
        const target = cmd.args[0] as string;
        const ref = await targetRef(s, target, o.provider);
        const keys = await s.keys(['pkcs11', ref.selector]);
        const hsm = asHsmExporter(keys);
        const uri = await targetUri(s, keys, target, ref, o.createTarget);
        const { importHsmKey } = await import('@keyport/byok');
        let pairing: ByokPairing;
        try {
          pairing = await importHsmKey({
            keyport: keys,
            hsm,
            hsmKey: o.hsmKey !== undefined ? { uri: o.hsmKey } : { create: { name: o.newHsmKey as string } },
            target: { uri },
            manifestPath: s.path(o.manifest),
            ...(s.io.signal !== undefined ? { signal: s.io.signal } : {}),
          });
        } catch (e) {
          // --create-target made a key before the import failed: it exists, pending its material,
          // and running the same command again would stop at AlreadyExists. Say so, with its URI.
          // (Transit records a pending key in this process only: nothing exists on the server.)
          if (o.createTarget && ref.scheme !== 'hcvault') {
            await s.out.note(
              shown(
                `the target key ${uri} was created (--create-target) and is left waiting for its material: import into it by its URI (keyport import ${uri} --hsm-key <uri>), or schedule its deletion`,
              ),
            );
          }
          throw e;
        }
        await s.out.result({ ok: true, manifest: s.path(o.manifest), ...pairing }, pairingLines(pairing));
        return undefined;
      }),
    );
}
