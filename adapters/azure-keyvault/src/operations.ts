/**
 * Key Vault-only operations: purge, backup/restore, JWK import and the notBefore/expiresOn
 * validity window. The functions taking a `Keyport` run them on core's one call path
 * (`driverCall` / `instanceCall`): instance resolution, deadline, retries, abort, error mapping
 * and an audit event (`azurekeyvault:<name>`), as for the neutral operations. The methods of the
 * same names on `AzureKeyVaultProvider` are the raw driver calls they wrap.
 */
import type { JsonWebKey as AzureJsonWebKey } from '@azure/keyvault-keys';
import {
  type ProviderCallOptions as Call,
  type CallOptions,
  checkBoolean,
  checkBytes,
  checkEnum,
  checkOptions,
  checkString,
  describeType,
  KEY_USAGES,
  type KeyInfo,
  type KeyLike,
  type Keyport,
  KeyportError,
  type KeyUsage,
  type KmsProvider,
  keyportError,
  toEncryptionContext,
  USAGES_BY_SPEC,
  unmodeledKeyError,
} from '@keyport/core';
import { capabilitiesFor } from './capabilities.js';
import { PROVIDER_NAME, withholdEcho } from './errors.js';
import {
  assertNameFree,
  assertOwnLabels,
  changeKey,
  checkedKey,
  describeAfterWrite,
  failure,
  forgetSpec,
  getKey,
  keyInfoOf,
  oneCreateAtATime,
  purgeUnderWay,
} from './keys.js';
import { invalid } from './options.js';
import { AzureKeyVaultProvider } from './provider.js';
import type { ResolvedKey, Rpc } from './rpc.js';
import { familyOf, opsFor, specOf } from './specs.js';

/** A JWK as node:crypto exports it (`key.export({ format: 'jwk' })`): base64url strings. */
export type PortableJwk = { readonly kty: string; readonly crv?: string } & {
  readonly [field in (typeof JWK_FIELDS)[number]]?: string;
};
const JWK_FIELDS = ['n', 'e', 'd', 'p', 'q', 'dp', 'dq', 'qi', 'x', 'y', 'k'] as const;

export interface ImportJwkOptions {
  readonly usage?: KeyUsage;
  readonly labels?: Readonly<Record<string, string>>;
  /** Store it as an HSM-protected key (-HSM type); on a Managed HSM every key is. */
  readonly hardwareProtected?: boolean;
  /** Key Vault imports over an existing name as a new version; keyport refuses unless this is set. */
  readonly asNewVersion?: boolean;
}

/** Outside the window the vault refuses encrypt, wrap and sign; decrypt, unwrap and verify still work. */
export interface Validity {
  readonly notBefore?: Date;
  readonly expiresOn?: Date;
}

/** Purges a soft-deleted key now: irreversible. */
export async function purge(rpc: Rpc, key: ResolvedKey, o: Call): Promise<void> {
  await rpc.send(key.vault, o, (kc, so) => kc.purgeDeletedKey(key.name, so));
  forgetSpec(rpc, key.vault, key.name);
}

/** The key's backup blob (every version and its policy), only restorable into the same geography. */
export async function backup(rpc: Rpc, key: ResolvedKey, o: Call): Promise<Uint8Array> {
  const blob = await rpc.send(key.vault, o, (kc, so) => kc.backupKey(key.name, so));
  if (blob === undefined) throw failure('Internal', 'the vault answered a backup without a blob');
  return blob;
}

/** Restores a backup into `vaultHost` (a host or an `azurekeyvault://host` URI; default: the first vault). */
export async function restore(rpc: Rpc, blob: Uint8Array, vaultHost: string | undefined, o: Call) {
  checkBytes(blob, 'backup');
  if (vaultHost !== undefined) checkString(vaultHost, 'vaultHost', { min: 1, max: 2048 });
  const host = vaultHost?.replace(/^azurekeyvault:\/\//, '');
  const vault =
    host === undefined ? rpc.defaultVault : rpc.resolve({ uri: `azurekeyvault://${host}/keys/x` }).vault;
  const restored = checkedKey(
    vault,
    undefined,
    await rpc.send(vault, o, (kc, so) => kc.restoreKeyBackup(blob, so)),
  );
  forgetSpec(rpc, vault, restored.name);
  // Restored: a retried restore would now meet its own key (409, AlreadyExists).
  return describeAfterWrite(
    rpc,
    { vault, name: restored.name, version: undefined },
    o,
    'the backup was restored',
  );
}

const IMPORT_OPTIONS = {
  usage: true,
  labels: true,
  hardwareProtected: true,
  asNewVersion: true,
} as const satisfies Record<keyof ImportJwkOptions, true>;

/**
 * The import options, checked: an unknown option (`hsm`, `exportable`), a usage that is not one
 * (`'sign'` would have imported an RSA key for encryption) or a string where a boolean goes was
 * ignored or misread before.
 */
function checkImportOptions(options: unknown): ImportJwkOptions {
  const o = checkOptions(options ?? {}, 'options', IMPORT_OPTIONS);
  const labels = o.labels === undefined ? undefined : toEncryptionContext(o.labels, 'options.labels');
  assertOwnLabels(labels);
  return {
    ...(o.usage !== undefined ? { usage: checkEnum(o.usage, 'options.usage', KEY_USAGES) } : {}),
    ...(labels !== undefined ? { labels } : {}),
    ...(o.hardwareProtected !== undefined
      ? { hardwareProtected: checkBoolean(o.hardwareProtected, 'options.hardwareProtected') }
      : {}),
    ...(o.asNewVersion !== undefined
      ? { asNewVersion: checkBoolean(o.asNewVersion, 'options.asNewVersion') }
      : {}),
  };
}

const BASE64URL = /^[A-Za-z0-9_-]*$/;

/**
 * The JWK as the SDK takes it (bytes). Its fields are key material: a field that is not a
 * base64url string is refused naming the field, never its value (`Buffer.from` threw a TypeError
 * quoting it, or decoded what it could and dropped the rest).
 */
function toAzureJwk(jwk: unknown): Record<string, unknown> {
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) {
    throw invalid(`jwk must be a JWK object, got ${describeType(jwk)}`);
  }
  const given = jwk as Record<string, unknown>;
  const kty = given.kty;
  if (typeof kty !== 'string' || familyOf(kty) === undefined) {
    throw invalid('only RSA, EC and oct JWKs can be imported');
  }
  const out: Record<string, unknown> = { kty };
  if (given.crv !== undefined) out.crv = checkString(given.crv, 'jwk.crv', { min: 1, max: 16 });
  for (const f of JWK_FIELDS) {
    const v = given[f];
    if (v === undefined) continue;
    if (typeof v !== 'string' || !BASE64URL.test(v)) {
      throw invalid(`jwk.${f} must be a base64url string (as KeyObject.export({ format: 'jwk' }) gives it)`);
    }
    out[f] = new Uint8Array(Buffer.from(v, 'base64url'));
  }
  return out;
}

/**
 * The key a JWK would become, checked before it is imported, as core checks createKey: a key of
 * no keyport spec (EC P-521, an AES key of 128 or 192 bits, which keyInfoOf would report as
 * AES_256 since Key Vault's JWK gives no oct size) or of a spec this vault kind does not offer is
 * Unsupported, and a usage its spec cannot serve (`opsFor` made an EC key for encryption a
 * signing key, an AES key for signing one keyport cannot use) InvalidArgument. Before, the key was
 * imported first and then refused or described as what it is not.
 */
function assertImportable(rpc: Rpc, jwk: Record<string, unknown>, usage: KeyUsage | undefined): void {
  const details = { provider: PROVIDER_NAME };
  const k = jwk.k;
  if (familyOf(jwk.kty as string) === 'oct' && !(k instanceof Uint8Array && k.length === 32)) {
    const bits = k instanceof Uint8Array ? k.length * 8 : 0;
    throw unmodeledKeyError(`AES keys of ${bits} bits`, details);
  }
  const spec = specOf(jwk as AzureJsonWebKey);
  if (usage !== undefined && !USAGES_BY_SPEC[spec].includes(usage)) {
    throw invalid(`${spec} keys cannot be used for ${usage}`);
  }
  if (capabilitiesFor(rpc.config.kind).keySpecs[spec] === undefined) {
    throw keyportError('Unsupported', `${spec} keys are not offered by this vault kind`, {
      ...details,
      capability: 'keySpecs',
    });
  }
}

/** The private fields of a JWK about to be sent, as bytes. */
function privateFieldsOf(jwk: Record<string, unknown>): Uint8Array[] {
  return (['d', 'p', 'q', 'dp', 'dq', 'qi', 'k'] as const)
    .map((name) => jwk[name])
    .filter((v): v is Uint8Array => v instanceof Uint8Array && v.length > 0);
}

/** Imports private key material given as a JWK (the key's first version, or a new one). */
export async function importKey(
  rpc: Rpc,
  nameOrUri: string,
  jwk: PortableJwk,
  options: ImportJwkOptions,
  o: Call,
) {
  const key = {
    ...rpc.forNewKey(checkString(nameOrUri, 'nameOrUri', { min: 1, max: 4096 })),
    version: undefined,
  };
  const azureJwk = toAzureJwk(jwk);
  const { usage, labels, hardwareProtected, asNewVersion } = checkImportOptions(options);
  assertImportable(rpc, azureJwk, usage);
  azureJwk.keyOps = opsFor(jwk.kty, usage);
  const imported = await oneCreateAtATime(rpc, key.vault, key.name, o, async () => {
    if (asNewVersion !== true) await assertNameFree(rpc, key, o, 'pass asNewVersion to add a version');
    forgetSpec(rpc, key.vault, key.name);
    return rpc
      .send(key.vault, o, (kc, so) =>
        kc
          .importKey(key.name, azureJwk as AzureJsonWebKey, {
            ...(labels !== undefined ? { tags: { ...labels } } : {}),
            ...(hardwareProtected !== undefined ? { hardwareProtected } : {}),
            ...so,
          })
          // A refusal quoting the private fields sent must not carry them (see echo.ts).
          .catch((e: unknown) => Promise.reject(withholdEcho(e, privateFieldsOf(azureJwk)))),
      )
      .catch((e: unknown) => purgeUnderWay(rpc, key, o, e, 'import', asNewVersion !== true));
  });
  return keyInfoOf(rpc, key.vault, imported, {}, key.name);
}

const VALIDITY = { notBefore: true, expiresOn: true } as const satisfies Record<keyof Validity, true>;
/** The last instant @azure/keyvault-keys can send: 2^31 - 1 seconds after 1970 (2038-01-19T03:14:07Z). */
const LAST_SENDABLE_MS = (2 ** 31 - 1) * 1000 + 999;

/** Sets the validity window of one version (the key's, else the latest). */
export async function validity(rpc: Rpc, key: ResolvedKey, window: Validity, o: Call): Promise<KeyInfo> {
  // @azure/keyvault-keys 4.10.2 sends an Invalid Date as `exp: 0` (1970-01-01: the key expires at
  // once), and throws a bare TypeError on a string or null. It sends `(ms / 1000) | 0`: a date
  // after 2038-01-19T03:14:07Z wraps to 1901 (an expiry in 2040 expired the key at once, a
  // notBefore in 2040 made it valid at once).
  const date = (value: unknown, field: keyof Validity): Date | undefined => {
    if (value === undefined) return undefined;
    if (!(value instanceof Date) || !Number.isFinite(value.getTime())) {
      throw invalid(`${field} must be a valid Date`);
    }
    const t = value.getTime();
    if (t < 0 || t > LAST_SENDABLE_MS) {
      throw invalid(
        `${field} must lie between 1970-01-01 and 2038-01-19T03:14:07Z: @azure/keyvault-keys sends dates as 32-bit seconds (a later date would arrive as one in 1901)`,
      );
    }
    return new Date(t);
  };
  // An unknown field (`expires`, `expiresAt`, `notAfter`) was a silent no-op before.
  const given = checkOptions(window, 'validity', VALIDITY);
  const notBefore = date(given.notBefore, 'notBefore');
  const expiresOn = date(given.expiresOn, 'expiresOn');
  return changeKey(rpc, key, o, async () => {
    const version = key.version ?? (await getKey(rpc, key, o)).properties.version ?? '';
    const dates = {
      ...(notBefore !== undefined ? { notBefore } : {}),
      ...(expiresOn !== undefined ? { expiresOn } : {}),
    };
    await rpc.send(key.vault, o, (kc, so) => kc.updateKeyProperties(key.name, version, { ...dates, ...so }));
  });
}

// ------------------------------------------------------------------ through a Keyport

function azure(driver: KmsProvider): AzureKeyVaultProvider {
  if (!(driver instanceof AzureKeyVaultProvider)) {
    throw new KeyportError(
      'InvalidArgument',
      `the key's instance is a ${driver.scheme} driver, not azurekeyvault`,
    );
  }
  return driver;
}

export function purgeDeletedKey(keys: Keyport, key: KeyLike, o?: CallOptions): Promise<void> {
  return keys.driverCall(key, 'purgeDeletedKey', (d, ref, po) => azure(d).purgeDeletedKey(ref, po), o);
}

export function backupKey(keys: Keyport, key: KeyLike, o?: CallOptions): Promise<Uint8Array> {
  return keys.driverCall(key, 'backupKey', (d, ref, po) => azure(d).backupKey(ref, po), o);
}

/** On `instance` (an instance name, scheme or key URI), into `vaultHost` or its first vault. */
export function restoreKey(
  keys: Keyport,
  instance: string,
  blob: Uint8Array,
  vaultHost?: string,
  o?: CallOptions,
) {
  return keys.instanceCall(instance, 'restoreKey', (d, po) => azure(d).restoreKey(blob, vaultHost, po), o);
}

export function importJwk(
  keys: Keyport,
  instance: string,
  nameOrUri: string,
  jwk: PortableJwk,
  options: ImportJwkOptions = {},
  o?: CallOptions,
): Promise<KeyInfo> {
  return keys.instanceCall(
    instance,
    'importJwk',
    (d, po) => azure(d).importJwk(nameOrUri, jwk, options, po),
    o,
  );
}

export function setValidity(
  keys: Keyport,
  key: KeyLike,
  window: Validity,
  o?: CallOptions,
): Promise<KeyInfo> {
  return keys.driverCall(key, 'setValidity', (d, ref, po) => azure(d).setValidity(ref, window, po), o);
}
