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
import { Keyport, type KeyportOptions, type KmsProvider } from '@keyport/core';
import { type LocalProvider, openLocalKeystore } from '@keyport/local';
import { Pkcs11Provider } from '@keyport/pkcs11';
import { VaultTransitProvider } from '@keyport/vault-transit';
import { afterAll, beforeAll } from 'vitest';
import type { ByokPairing, HsmKeyExporter } from '../src/index.js';

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

/** What useHsmKeyport opens for a describe block (read it inside tests and hooks). */
export interface HsmKeyport {
  /** A temp dir of the block's own (manifests, local keystores). */
  readonly dir: string;
  readonly hsm: Pkcs11Provider;
  /** The import targets, in the order `openTargets` gave them. */
  readonly targets: readonly KmsProvider[];
  /** A Keyport over the HSM and the targets. */
  readonly keyport: Keyport;
}

/**
 * Before the enclosing block's tests: a temp dir, the SoftHSM provider, the targets
 * `openTargets` opens (given the dir, for a local keystore), and a Keyport over them all with
 * `options`; the Keyport (and so each provider) is closed after them.
 */
export function useHsmKeyport(
  openTargets: (dir: string) => readonly KmsProvider[] | Promise<readonly KmsProvider[]>,
  options: Omit<KeyportOptions, 'providers'> = {},
): HsmKeyport {
  // Filled in by beforeAll, as the `let`s of a describe block would be.
  const fixture = {} as HsmKeyport;
  beforeAll(async () => {
    const dir = await tempDir();
    const hsm = await openHsm();
    const targets = await openTargets(dir);
    const keyport = new Keyport({ ...options, providers: [hsm, ...targets] });
    Object.assign(fixture, { dir, hsm, targets, keyport });
  });
  afterAll(() => fixture.keyport?.close());
  return fixture;
}

/** `hsm` as importHsmKey's exporter, counting the wraps it is asked for. */
export function countingWraps(hsm: HsmKeyExporter): { exporter: HsmKeyExporter; wraps: () => number } {
  let wraps = 0;
  return {
    exporter: {
      scheme: hsm.scheme,
      oaepHashes: hsm.oaepHashes,
      wrapKeyForExport: (ref, options, o) => {
        wraps++;
        return hsm.wrapKeyForExport(ref, options, o);
      },
    },
    wraps: () => wraps,
  };
}

/** A pairing as importHsmKey records one, numbered `n` (manifests need no real keys). */
export const samplePairing = (n: number): ByokPairing => ({
  hsm: { uri: `pkcs11:token=t;object=k${n}`, label: `k${n}`, id: '6b70763100000001', version: '1' },
  target: {
    uri: `aws-kms://arn:aws:kms:us-east-1:111122223333:key/${n}`,
    scheme: 'aws-kms',
    spec: 'AES_256',
    wrappingAlgorithm: 'RSAES_OAEP_SHA_1',
  },
  importedAt: new Date(0).toISOString(),
});

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
