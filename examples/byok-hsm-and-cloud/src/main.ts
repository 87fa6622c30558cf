/**
 * BYOK, HSM and cloud side by side: a root key is generated in the HSM (SoftHSM2 here), a copy
 * is imported into AWS KMS (local-kms here) without ever leaving the token in the clear, and
 * messages are sealed to both. Each side opens them alone. Then the cloud copy is revoked
 * (disabled, then scheduled for deletion) and the HSM still opens everything.
 *
 * Needs the HSM and KMS endpoints in the environment (`pnpm emulators up softhsm local-kms`
 * writes them to .emulators/env): KEYPORT_SOFTHSM_MODULE, SOFTHSM2_CONF, KEYPORT_SOFTHSM_TOKEN,
 * KEYPORT_SOFTHSM_PIN, KEYPORT_LOCALKMS_ENDPOINT. Run, from the repository root:
 * `pnpm emulators up softhsm local-kms && set -a && . .emulators/env && set +a`, then
 * `pnpm exec turbo run build --filter=@keyport/example-byok-hsm-and-cloud... && node examples/byok-hsm-and-cloud/dist/main.js`.
 * The pairing manifest is written to KEYPORT_BYOK_DIR, or to a new temporary directory it prints
 * (kept: it is the record of which HSM key the cloud key copies).
 */
import { realpathSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { awsKms } from '@keyport/aws-kms';
import { importHsmKey, readManifest } from '@keyport/byok';
import { isKeyportError, Keyport } from '@keyport/core';
import { openEnvelope, sealEnvelope } from '@keyport/envelope';
import { pkcs11 } from '@keyport/pkcs11';

const say = (line: string): void => console.log(line);
const utf8 = new TextEncoder();
const text = new TextDecoder();

function required(name: string, target: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') {
    throw new Error(
      `target ${target} is not running: run "pnpm emulators up ${target}" (${name} is not set)`,
    );
  }
  return value;
}

async function refused(what: string, action: () => Promise<unknown>): Promise<void> {
  try {
    await action();
  } catch (error) {
    if (isKeyportError(error)) {
      say(`   refused as expected: ${what} -> ${error.code}`);
      return;
    }
    throw error;
  }
  throw new Error(`byok example: ${what} was not refused`);
}

export async function byokHsmAndCloud(dir: string): Promise<void> {
  // Built at once; the token is opened and logged in at the first call.
  const hsm = pkcs11({
    modulePath: required('KEYPORT_SOFTHSM_MODULE', 'softhsm'),
    token: { label: required('KEYPORT_SOFTHSM_TOKEN', 'softhsm') },
    pin: { env: 'KEYPORT_SOFTHSM_PIN' },
  });
  const aws = awsKms({
    region: process.env.AWS_REGION ?? 'us-east-1',
    endpoint: required('KEYPORT_LOCALKMS_ENDPOINT', 'local-kms'),
  });
  const both = new Keyport({ providers: [hsm, aws] });
  // One Keyport per side, to show that each opens the messages without the other.
  const hsmOnly = new Keyport({ providers: [hsm] });
  const cloudOnly = new Keyport({ providers: [aws] });
  try {
    const stamp = Date.now().toString(36);
    const cloudKey = await both.createKey('aws-kms', {
      name: `byok-example-${stamp}`,
      spec: 'AES_256',
      external: true,
      description: 'copy of an HSM root key',
    });
    say(`1. cloud key ${cloudKey.uri} created without material (${cloudKey.state})`);

    const manifestPath = join(dir, 'byok-manifest.json');
    const pairing = await importHsmKey({
      keyport: both,
      hsm,
      hsmKey: { create: { name: `root-${stamp}` } },
      target: { uri: cloudKey.uri },
      manifestPath,
    });
    say(`2. HSM key ${pairing.hsm.uri} (CKA_ID ${pairing.hsm.id}) generated in the token,`);
    say(`   wrapped inside it with ${pairing.target.wrappingAlgorithm} and imported into the cloud key`);
    const manifest = await readManifest(manifestPath);
    say(`   manifest ${manifestPath}: ${manifest.pairings.length} pairing(s)`);

    const context = { app: 'ledger' };
    const messages = ['invoice 1', 'invoice 2', 'invoice 3'];
    const sealed = await Promise.all(
      messages.map((m) =>
        sealEnvelope(utf8.encode(m), { recipients: [pairing.hsm.uri, cloudKey.uri], context, keys: both }),
      ),
    );
    say(`3. sealed ${sealed.length} messages to both keys (one data key each, wrapped twice)`);

    const openAll = async (keys: Keyport, uri: string) =>
      Promise.all(
        sealed.map(async (m) =>
          text.decode((await openEnvelope(m, { trust: [uri], keys, requiredContext: context })).plaintext),
        ),
      );
    say(`4. opened by the HSM alone:   ${(await openAll(hsmOnly, pairing.hsm.uri)).join(', ')}`);
    say(`   opened by the cloud alone: ${(await openAll(cloudOnly, cloudKey.uri)).join(', ')}`);

    await both.disableKey(cloudKey.uri);
    say('5. revoked the cloud side: disabled the cloud key');
    await refused('open with the disabled cloud key', () => openAll(cloudOnly, cloudKey.uri));
    const scheduled = await both.scheduleKeyDeletion(cloudKey.uri, { days: 7 });
    say(`   scheduled its deletion (${scheduled.state})`);
    await refused('open with the cloud key pending deletion', () => openAll(cloudOnly, cloudKey.uri));

    say(`6. the HSM still opens everything: ${(await openAll(hsmOnly, pairing.hsm.uri)).join(', ')}`);
  } finally {
    await both.close();
  }
}

/**
 * True when `argv1` (the script node was given) is this module, compared as real paths: a URL
 * built from the path by hand breaks on `#`, `%` or `?` in a directory name, and a path through
 * a symlink names the module by another path; either way the program would do nothing, silently.
 */
export function isEntryPoint(moduleUrl: string, argv1: string | undefined): boolean {
  if (argv1 === undefined) return false;
  try {
    return realpathSync(argv1) === realpathSync(fileURLToPath(moduleUrl));
  } catch {
    return false; // not a file (a REPL, `node -e`): not run as the program
  }
}

if (isEntryPoint(import.meta.url, process.argv[1])) {
  await byokHsmAndCloud(process.env.KEYPORT_BYOK_DIR ?? (await mkdtemp(join(tmpdir(), 'keyport-byok-'))));
}
