/**
 * Key Vault operations outside core's provider contract: purge, backup/restore, JWK import and
 * the notBefore/expiresOn validity window. They are methods of AzureKeyVaultProvider and run
 * without core's call policy (no retries, no audit), taking an optional AbortSignal.
 */
import type { JsonWebKey as AzureJsonWebKey, KeyOperation } from '@azure/keyvault-keys';
import {
  type KeyInfo,
  KeyportError,
  type KeyRef,
  type KeyUsage,
  type ProviderCallOptions,
} from '@keyport/core';
import { PROVIDER_NAME, statusOf } from './errors.js';
import { describeKey, keyInfoOf } from './keys.js';
import type { AzureRuntime } from './runtime.js';
import { familyOf } from './specs.js';

/** A JWK as node:crypto exports it (`key.export({ format: 'jwk' })`): base64url strings. */
export interface PortableJwk {
  readonly kty: string;
  readonly crv?: string;
  readonly n?: string;
  readonly e?: string;
  readonly d?: string;
  readonly p?: string;
  readonly q?: string;
  readonly dp?: string;
  readonly dq?: string;
  readonly qi?: string;
  readonly x?: string;
  readonly y?: string;
  readonly k?: string;
}

export interface ImportJwkOptions {
  readonly usage?: KeyUsage;
  readonly labels?: Readonly<Record<string, string>>;
  /** Store it as an HSM-protected key (-HSM type); on a Managed HSM every key is. */
  readonly hardwareProtected?: boolean;
  /** Key Vault imports over an existing name as a new version; keyport refuses unless this is set. */
  readonly asNewVersion?: boolean;
}

const FIELDS = ['n', 'e', 'd', 'p', 'q', 'dp', 'dq', 'qi', 'x', 'y', 'k'] as const;

function toAzureJwk(jwk: PortableJwk, keyOps: KeyOperation[]): AzureJsonWebKey {
  const out: Record<string, unknown> = { kty: jwk.kty, keyOps };
  if (jwk.crv !== undefined) out.crv = jwk.crv;
  for (const f of FIELDS) {
    const v = jwk[f];
    if (v !== undefined) out[f] = new Uint8Array(Buffer.from(v, 'base64url'));
  }
  return out as AzureJsonWebKey;
}

function opsFor(kty: string, usage: KeyUsage | undefined): KeyOperation[] {
  const family = familyOf(kty);
  if (family === 'EC' || usage === 'sign_verify') return ['sign', 'verify'];
  if (family === 'oct') return ['encrypt', 'decrypt'];
  if (family === 'RSA') return ['wrapKey', 'unwrapKey'];
  throw new KeyportError('InvalidArgument', 'only RSA, EC and oct JWKs can be imported', {
    provider: PROVIDER_NAME,
  });
}

/** Imports private key material given as a JWK (the key's first version, or a new one). */
export async function importJwk(
  rt: AzureRuntime,
  nameOrUri: string,
  jwk: PortableJwk,
  options: ImportJwkOptions,
  o: ProviderCallOptions,
): Promise<KeyInfo> {
  const { vault, name } = rt.vaults.forNewKey(nameOrUri);
  if (options.asNewVersion !== true) {
    try {
      await (await vault.keys()).getKey(name, { abortSignal: o.signal });
      throw new KeyportError(
        'AlreadyExists',
        'a key with this name exists (pass asNewVersion to add a version)',
        {
          provider: PROVIDER_NAME,
        },
      );
    } catch (e) {
      if (statusOf(e) !== 404) throw e;
    }
  }
  rt.forgetSpec(vault, name);
  const imported = await (await vault.keys()).importKey(
    name,
    toAzureJwk(jwk, opsFor(jwk.kty, options.usage)),
    {
      ...(options.labels !== undefined ? { tags: { ...options.labels } } : {}),
      ...(options.hardwareProtected !== undefined ? { hardwareProtected: options.hardwareProtected } : {}),
      abortSignal: o.signal,
    },
  );
  return keyInfoOf(rt, vault, imported);
}

/** The key's backup blob (every version and its policy), opaque and only restorable into the same geography. */
export async function backupKey(rt: AzureRuntime, ref: KeyRef, o: ProviderCallOptions): Promise<Uint8Array> {
  const key = rt.vaults.resolve(ref);
  const blob = await (await key.vault.keys()).backupKey(key.name, { abortSignal: o.signal });
  if (blob === undefined) {
    throw new KeyportError('Internal', 'the vault answered a backup without a blob', {
      provider: PROVIDER_NAME,
    });
  }
  return blob;
}

/** Restores a backup into `vaultUri` (an `azurekeyvault://host` URI or host) or the first vault. */
export async function restoreKey(
  rt: AzureRuntime,
  backup: Uint8Array,
  vaultHost: string | undefined,
  o: ProviderCallOptions,
): Promise<KeyInfo> {
  const vault =
    vaultHost === undefined
      ? rt.vaults.defaultVault
      : rt.vaults.resolve({ uri: `azurekeyvault://${vaultHost.replace(/^azurekeyvault:\/\//, '')}/keys/x` })
          .vault;
  const restored = await (await vault.keys()).restoreKeyBackup(backup, { abortSignal: o.signal });
  rt.forgetSpec(vault, restored.name);
  return describeKey(rt, { uri: rt.vaults.uriOf(vault, restored.name) }, o);
}

export interface Validity {
  /** Not usable for encrypt, wrap and sign before this date (decrypt, unwrap, verify still work). */
  readonly notBefore?: Date;
  /** Not usable for encrypt, wrap and sign after this date (decrypt, unwrap, verify still work). */
  readonly expiresOn?: Date;
}

/** Sets the validity window of one version (the ref's, else the latest). */
export async function setValidity(
  rt: AzureRuntime,
  ref: KeyRef,
  validity: Validity,
  o: ProviderCallOptions,
): Promise<KeyInfo> {
  const key = rt.vaults.resolve(ref);
  const version =
    key.version ??
    (await (await key.vault.keys()).getKey(key.name, { abortSignal: o.signal })).properties.version;
  await (await key.vault.keys()).updateKeyProperties(key.name, version ?? '', {
    ...(validity.notBefore !== undefined ? { notBefore: validity.notBefore } : {}),
    ...(validity.expiresOn !== undefined ? { expiresOn: validity.expiresOn } : {}),
    abortSignal: o.signal,
  });
  return describeKey(rt, { uri: rt.vaults.uriOf(key.vault, key.name) }, o);
}
