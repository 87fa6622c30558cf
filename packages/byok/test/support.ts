/**
 * Test fixtures: the targets the harness started (SoftHSM2, local-kms, OpenBao) — a missing one
 * FAILS, naming the command — providers on them (and on a local keystore in a temp dir), and
 * unique names (the emulators outlive a run).
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AwsKmsProvider } from '@keyport/aws-kms';
import { isolateSofthsmToken } from '@keyport/conformance/harness';
import { type LocalProvider, openLocalKeystore } from '@keyport/local';
import { Pkcs11Provider } from '@keyport/pkcs11';
import { VaultTransitProvider } from '@keyport/vault-transit';

const VARIABLES = {
  softhsm: ['KEYPORT_SOFTHSM_MODULE', 'KEYPORT_SOFTHSM_TOKEN', 'KEYPORT_SOFTHSM_PIN', 'SOFTHSM2_CONF'],
  'local-kms': ['KEYPORT_LOCALKMS_ENDPOINT'],
  openbao: ['KEYPORT_OPENBAO_ADDR', 'KEYPORT_OPENBAO_TOKEN'],
} as const;

export function env(target: keyof typeof VARIABLES): Record<string, string> {
  // A token of this process's own: SoftHSM2 does not lock a token against other processes.
  if (target === 'softhsm') isolateSofthsmToken();
  const out: Record<string, string> = {};
  for (const name of VARIABLES[target]) {
    const value = process.env[name];
    if (value === undefined || value === '') {
      throw new Error(
        `target ${target} is not running: run "pnpm emulators up ${target}" (${name} is not set)`,
      );
    }
    out[name] = value;
  }
  return out;
}

export function openHsm(): Promise<Pkcs11Provider> {
  const e = env('softhsm');
  return Pkcs11Provider.open({
    modulePath: e.KEYPORT_SOFTHSM_MODULE as string,
    token: { label: e.KEYPORT_SOFTHSM_TOKEN as string },
    pin: { env: 'KEYPORT_SOFTHSM_PIN' },
  });
}

export function localKms(): AwsKmsProvider {
  return new AwsKmsProvider({
    region: 'us-east-1',
    endpoint: env('local-kms').KEYPORT_LOCALKMS_ENDPOINT as string,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  });
}

export function openbao(): { endpoint: string; token: string } {
  const e = env('openbao');
  return { endpoint: e.KEYPORT_OPENBAO_ADDR as string, token: e.KEYPORT_OPENBAO_TOKEN as string };
}

export function transitProvider(): VaultTransitProvider {
  const { endpoint, token } = openbao();
  return new VaultTransitProvider({ endpoint, auth: token, flavor: 'openbao' });
}

/** A new local keystore in `dir`, with the cheapest KDF cost it accepts (tests open several). */
export function openLocal(dir: string): Promise<LocalProvider> {
  return openLocalKeystore({
    path: join(dir, `${uniqueName('local')}.kp`),
    passphrase: 'byok test passphrase',
    create: true,
    kdf: { log2N: 10, r: 8, p: 1 },
  });
}

/** hcvault:// URI of a transit key on the test server's `transit` mount. */
export function transitUri(name: string): string {
  return `hcvault://${new URL(openbao().endpoint).host}/transit/keys/${name}`;
}

const run = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
let counter = 0;
export function uniqueName(hint: string): string {
  counter++;
  return `byok-${run}-${counter}-${hint}`;
}

export async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'keyport-byok-'));
}

export const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
export const text = (b: Uint8Array): string => new TextDecoder().decode(b);
