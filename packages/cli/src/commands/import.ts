/**
 * `keyport import`: bring your own key. An AES-256 key born in (or already in) a PKCS#11 HSM is
 * wrapped inside the HSM for the target's import key and imported into AWS KMS, Vault/OpenBao
 * transit or the local keystore; the pairing (HSM object <-> target key and version) is recorded
 * in a manifest. The key material never leaves the HSM in the clear (see @keyport/byok).
 */
// Types only: @keyport/byok (and through it pkcs11js, a native module) is loaded when `import`
// runs, so `keyport --help` and every other command work without it.
import type { ByokManifest, ByokPairing, ExistingHsmKey, HsmKeyExporter, NewHsmKey } from '@keyport/byok';
import {
  type KeyInfo,
  type KeyOperations,
  KeyportError,
  keyUriScheme,
  quote,
  splitKeyUri,
  UnsupportedError,
} from '@keyport/core';
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

/**
 * The target URI: given, or a new pending key (`--create-target`) in the target's instance
 * (`created`), or the one an earlier run of this import created (see `resumedTarget`).
 */
async function targetUri(
  s: Session,
  keys: KeyOperations,
  target: string,
  ref: TargetRef,
  createTarget: boolean,
  resume: Resume,
): Promise<{ uri: string; created: boolean }> {
  if (!createTarget) {
    if (!ref.isUri)
      throw usageError('import: give the target key URI, or a name with --create-target --provider');
    // Transit has no key without material: the instance records a pending key in this process
    // (nothing is sent to the server) and creates it with the import itself. The instance is
    // found from the URI; the driver is given its own URI (no instance selector).
    if (ref.scheme !== 'hcvault') return { uri: target, created: false };
  }
  try {
    const created = await keys.createKey(
      ref.selector,
      { name: ref.isUri ? splitKeyUri(target).driverUri : target, spec: 'AES_256', external: true },
      s.callOptions,
    );
    return { uri: created.uri, created: true };
  } catch (e) {
    if (!(e instanceof KeyportError) || e.code !== 'AlreadyExists') throw e;
    return { uri: await resumedTarget(s, keys, target, ref, resume, e), created: false };
  }
}

/** What a rerun needs to recognise the target an earlier run of this import created. */
interface Resume {
  readonly manifestPath: string;
  /** --manifest as given, for messages. */
  readonly manifest: string;
  /**
   * The manifest as checked before anything was created: the one read the decision to go on into
   * an existing target rests on. Read again, a file replaced meanwhile (damaged, emptied) was
   * taken for one that records nothing, and the refusal said so.
   */
  readonly checked: ByokManifest;
  readonly hsmKey: NewHsmKey | ExistingHsmKey;
}

/** Whether a manifest records nothing at all: a new one, or none at that path. */
const recordsNothing = (m: ByokManifest): boolean =>
  m.pairings.length === 0 && (m.pending ?? []).length === 0 && (m.generating ?? []).length === 0;

/**
 * The targets the manifest records an unfinished import of this HSM key into: the generation of
 * `--new-hsm-key <name>` for a target, or an import of that key sent and not recorded as done.
 */
function recordedTargets(manifest: ByokManifest, hsmKey: NewHsmKey | ExistingHsmKey): string[] {
  const pending = (manifest.pending ?? []).filter((p) =>
    'uri' in hsmKey ? p.hsm.uri === hsmKey.uri : p.hsm.label === hsmKey.create.name,
  );
  const generating = (manifest.generating ?? []).filter(
    (g) => 'create' in hsmKey && g.hsm.name === hsmKey.create.name,
  );
  return [...pending, ...generating].map((entry) => entry.target.uri);
}

/**
 * The key the AlreadyExists is about, described: the URI the provider named, or, for AWS KMS
 * (whose refusal of the alias names none), the alias of that name in the instance.
 */
async function existingTarget(
  s: Session,
  keys: KeyOperations,
  target: string,
  ref: TargetRef,
  e: KeyportError,
): Promise<KeyInfo | undefined> {
  let uri = e.keyUri;
  if (uri === undefined && ref.scheme === 'aws-kms' && !ref.isUri) {
    const instance = ref.selector === ref.scheme ? ref.scheme : `${ref.scheme}+${ref.selector}`;
    uri = `${instance}://alias/${target}`;
  }
  if (uri === undefined) return undefined;
  return keys.describeKey(uri, s.callOptions).catch(() => undefined);
}

/**
 * `--create-target` meeting a key of that name. The import goes on into it only when the manifest
 * records this import (this HSM key) as started on that very key: an earlier run of the command
 * created it and stopped (Ctrl-C, a kill, the HSM or the target refusing). Any other key of the
 * name is refused, even one pending_import and AES_256: whoever created it controls its policy,
 * and importing would hand them the HSM key's material (everything sealed under the HSM key would
 * open with their key).
 */
async function resumedTarget(
  s: Session,
  keys: KeyOperations,
  target: string,
  ref: TargetRef,
  resume: Resume,
  e: KeyportError,
): Promise<string> {
  const recorded = recordedTargets(resume.checked, resume.hsmKey);
  const existing = await existingTarget(s, keys, target, ref, e);
  if (existing !== undefined && recorded.includes(existing.uri)) {
    await s.out.note(
      shown(
        `the target key ${existing.uri} exists: the manifest records this import as started on it (an earlier run stopped), so the import continues into it`,
      ),
    );
    return existing.uri;
  }
  const hsmFlag =
    'uri' in resume.hsmKey ? `--hsm-key ${resume.hsmKey.uri}` : `--new-hsm-key ${resume.hsmKey.create.name}`;
  const found = existing === undefined ? '' : ` (${existing.uri}, ${existing.state})`;
  // A rerun in another directory, or with another --manifest, reads a file that is not there.
  const empty = recordsNothing(resume.checked)
    ? ' (it records nothing at all: it is new or does not exist; if an earlier run of this import used another --manifest or working directory, give that manifest)'
    : '';
  throw new KeyportError(
    'AlreadyExists',
    // Names the provider answered and flags as given: escaped for the terminal.
    shown(
      `the target key ${quote(target)} already exists${found}, and the manifest ${quote(resume.manifest)} records no import of this HSM key into it${empty}: keyport imports only into a key it can tell this import created (whoever created it controls its policy and would hold the HSM key's material). If you created it for this import (a run stopped before the HSM key was generated), import into it by its URI: keyport import ${existing?.uri ?? '<its URI>'} ${hsmFlag}`,
    ),
    { cause: e, provider: e.provider, ...(existing !== undefined ? { keyUri: existing.uri } : {}) },
  );
}

/**
 * What became of the target --create-target made, when the import then failed: a rerun of the
 * same command goes on into it when the manifest records this import as started on it (the HSM
 * key was generated or the import sent); otherwise only an import by its URI reaches it.
 *
 * The manifest is read here, once, for this report: the import may have written to it (the HSM
 * key's generation, the import sent) before it failed, so the read made before the import cannot
 * tell. A manifest that cannot be read is said to be so, not taken for one recording nothing.
 */
async function leftTarget(uri: string, resume: Resume): Promise<string> {
  const { readManifest } = await import('@keyport/byok');
  const recorded = await readManifest(resume.manifestPath).then(
    (m) => recordedTargets(m, resume.hsmKey).includes(uri),
    (e: unknown) => (e instanceof KeyportError ? e : new KeyportError('Unavailable', 'it cannot be read')),
  );
  const waiting = `the target key ${uri} was created (--create-target) and is left waiting for its material`;
  const byUri = `import into it by its URI (keyport import ${uri} --hsm-key <uri> or --new-hsm-key <name>), or schedule its deletion`;
  if (recorded instanceof KeyportError)
    // byok's messages name the manifest's file and what is wrong with it, never its contents.
    return `${waiting}; whether the manifest ${quote(resume.manifest)} records this import cannot be told (${recorded.message}): once it is readable, run the same command again, or ${byUri}`;
  return recorded
    ? `${waiting}; the manifest records this import as started on it: run the same command again to continue into it, or schedule its deletion`
    : `${waiting}: ${byUri}`;
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
    .option(
      '--create-target',
      'create the target as a pending (external) key named <target> first; run again after a failure, it goes on into an existing key of that name only if the manifest records this import as started on it',
      false,
    )
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
        const hsmKey: NewHsmKey | ExistingHsmKey =
          o.hsmKey !== undefined ? { uri: o.hsmKey } : { create: { name: o.newHsmKey as string } };
        const manifestPath = s.path(o.manifest);
        const { checkManifest, importHsmKey } = await import('@keyport/byok');
        // Before --create-target makes a key: a manifest the import would refuse (a missing
        // directory, a FIFO, a link, damaged) would otherwise leave that key behind. A manifest
        // that does not exist is a new one (the first import writes it).
        const checked = await checkManifest(manifestPath);
        const resume: Resume = { manifestPath, manifest: o.manifest, checked, hsmKey };
        const { uri, created } = await targetUri(s, keys, target, ref, o.createTarget, resume);
        let pairing: ByokPairing;
        try {
          pairing = await importHsmKey({
            keyport: keys,
            hsm,
            hsmKey,
            target: { uri },
            manifestPath,
            ...(s.io.signal !== undefined ? { signal: s.io.signal } : {}),
          });
        } catch (e) {
          // --create-target made a key before the import failed: it exists, pending its material.
          // (Transit records a pending key in this process only: nothing exists on the server.)
          if (created && ref.scheme !== 'hcvault') await s.out.note(shown(await leftTarget(uri, resume)));
          throw e;
        }
        await s.out.result({ ok: true, manifest: s.path(o.manifest), ...pairing }, pairingLines(pairing));
        return undefined;
      }),
    );
}
