/**
 * The options of an Azure Key Vault driver and their checks. A driver serves the vaults it was
 * given, all of one kind (Key Vault or Managed HSM): the kind decides its declared capabilities.
 */
import type { KeyClient, KeyClientOptions } from '@azure/keyvault-keys';
import {
  checkOptions as checkCoreOptions,
  checkEnum,
  checkInteger,
  describeType,
  KeyportError,
  MAX_TIMER_MS,
} from '@keyport/core';
import type { VaultKind } from './capabilities.js';
import { PROVIDER_NAME } from './errors.js';

export type TokenCredential = ConstructorParameters<typeof KeyClient>[1];

export interface AzureKeyVaultOptions {
  /** Vault URL(s), e.g. `https://my-vault.vault.azure.net`; the first is where bare key names go. */
  readonly vaultUrl?: string | readonly string[];
  /** Already-built KeyClients (their vaultUrl names the vault); used as they are. */
  readonly keyClient?: KeyClient | readonly KeyClient[];
  /** A TokenCredential; `DefaultAzureCredential` when omitted. Also used for CryptographyClients. */
  readonly credential?: TokenCredential;
  /**
   * SDK pipeline options for the clients keyport builds (agent, proxy, serviceVersion,
   * disableChallengeResourceVerification...). `retryOptions.maxRetries` defaults to 0: core's
   * call policy is the only retry, so attempts never multiply.
   */
  readonly clientOptions?: KeyClientOptions;
  /** `vault` or `managedHsm`; by default read from the host (`*.managedhsm.azure.net` = HSM). */
  readonly vaultKind?: VaultKind;
  /** Poll interval of delete/recover operations (the SDK's default is 2000 ms). */
  readonly pollIntervalMs?: number;
  /** CryptographyClients kept per key version (each holds its own token cache); default 256. */
  readonly maxCryptographyClients?: number;
}

/** The earlier name of the options. */
export type AzureKeyVaultProviderOptions = AzureKeyVaultOptions;

/** A configured vault: `url` as the SDK names it (no trailing slash), `host` as key URIs do. */
export interface Vault {
  readonly url: string;
  readonly host: string;
  readonly client?: KeyClient;
}

export interface CheckedOptions {
  /** The first is where bare key names go. */
  readonly vaults: readonly Vault[];
  readonly kind: VaultKind;
  readonly credential: TokenCredential | undefined;
  readonly clientOptions: KeyClientOptions;
  readonly pollIntervalMs: number | undefined;
  readonly maxCryptographyClients: number;
}

/** Key Vault's and Managed HSM's DNS suffixes in each Azure cloud; other hosts (private, test) name no kind. */
const CLOUDS = '(azure\\.net|azure\\.cn|usgovcloudapi\\.net|microsoftazure\\.de)(:\\d+)?$';
const HSM_HOST = new RegExp(`\\.managedhsm\\.${CLOUDS}`, 'i');
const VAULT_HOST = new RegExp(`\\.vault\\.${CLOUDS}`, 'i');

/** The kind a host's name says, if it says one. */
function kindOfHost(host: string): VaultKind | undefined {
  return HSM_HOST.test(host) ? 'managedHsm' : VAULT_HOST.test(host) ? 'vault' : undefined;
}

const OPTIONS = {
  vaultUrl: true,
  keyClient: true,
  credential: true,
  clientOptions: true,
  vaultKind: true,
  pollIntervalMs: true,
  maxCryptographyClients: true,
} as const satisfies Record<keyof AzureKeyVaultOptions, true>;

/** The SDK's own retries: core's policy is the one that counts, so these stay small. */
const MAX_SDK_RETRIES = 10;

export function invalid(message: string, keyUri?: string): KeyportError {
  return new KeyportError('InvalidArgument', message, { provider: PROVIDER_NAME, keyUri });
}

/**
 * A vault from its URL: an https origin and nothing else. What the URL carries beyond the origin
 * (user and password, a path, a query, a fragment) was dropped silently before: it is refused,
 * and never echoed (a password in a URL is a secret).
 */
function vaultOf(url: unknown, client?: KeyClient): Vault {
  const what = client === undefined ? 'vaultUrl' : 'keyClient.vaultUrl';
  if (typeof url !== 'string' || !URL.canParse(url)) throw invalid(`${what} is not a URL`);
  const parsed = new URL(url);
  if (parsed.protocol !== 'https:') throw invalid(`${what} must be https (Key Vault bearer tokens need TLS)`);
  if (parsed.username !== '' || parsed.password !== '') {
    throw invalid(`${what} must not carry a user name or password: give a TokenCredential as credential`);
  }
  if (parsed.href !== `${parsed.origin}/` || parsed.hostname.endsWith('.')) {
    throw invalid(
      `${what} must be the vault's origin only, https://<name>.vault.azure.net (no path, query, fragment or trailing dot)`,
    );
  }
  return { url: parsed.origin, host: parsed.host, ...(client !== undefined ? { client } : {}) };
}

function checkCredential(credential: unknown): TokenCredential | undefined {
  if (credential === undefined) return undefined;
  // A token string given as the credential is a secret: it is described by its type only.
  if (
    typeof credential !== 'object' ||
    credential === null ||
    typeof (credential as { getToken?: unknown }).getToken !== 'function'
  ) {
    throw invalid(
      `credential must be a TokenCredential (an object with getToken, e.g. from @azure/identity), got ${describeType(credential)}`,
    );
  }
  return credential as TokenCredential;
}

function checkKeyClient(client: unknown): Vault {
  if (typeof client !== 'object' || client === null) {
    throw invalid(`keyClient must be a KeyClient from @azure/keyvault-keys, got ${describeType(client)}`);
  }
  return vaultOf((client as { vaultUrl?: unknown }).vaultUrl, client as KeyClient);
}

/** The SDK pipeline options, with the SDK's retries off unless asked for (and then bounded). */
function checkClientOptions(value: unknown): KeyClientOptions {
  if (value === undefined) return { retryOptions: { maxRetries: 0 } };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalid(`clientOptions must be an object, got ${describeType(value)}`);
  }
  const options = value as KeyClientOptions;
  const retry: unknown = options.retryOptions;
  if (retry !== undefined && (typeof retry !== 'object' || retry === null || Array.isArray(retry))) {
    throw invalid(`clientOptions.retryOptions must be an object, got ${describeType(retry)}`);
  }
  const given = (retry ?? {}) as Record<string, unknown>;
  const int = (key: string, max: number) =>
    given[key] === undefined
      ? {}
      : { [key]: checkInteger(given[key], `clientOptions.retryOptions.${key}`, 0, max) };
  return {
    ...options,
    retryOptions: {
      ...options.retryOptions,
      ...int('retryDelayInMs', MAX_TIMER_MS),
      ...int('maxRetryDelayInMs', MAX_TIMER_MS),
      // `?? 0`, not a spread default: `{ maxRetries: undefined }` would turn the SDK's 3 retries back on.
      maxRetries:
        given.maxRetries === undefined
          ? 0
          : checkInteger(given.maxRetries, 'clientOptions.retryOptions.maxRetries', 0, MAX_SDK_RETRIES),
    },
  };
}

export function checkOptions(options: AzureKeyVaultOptions): CheckedOptions {
  if (typeof options !== 'object' || options === null) throw invalid('options must be an object');
  // Unknown options (`kind`, `maxCryptoClients`...) were ignored silently: refused, named.
  const o = checkCoreOptions(options, 'options', OPTIONS) as AzureKeyVaultOptions;
  const vaults = [
    ...[o.vaultUrl ?? []].flat().map((url) => vaultOf(url)),
    ...[o.keyClient ?? []].flat().map((client: unknown) => checkKeyClient(client)),
  ];
  if (vaults.length === 0) throw invalid('give vaultUrl or keyClient: the provider needs at least one vault');
  if (new Set(vaults.map((v) => v.host)).size !== vaults.length)
    throw invalid('the same vault is configured twice');
  const named = vaults.map((v) => kindOfHost(v.host));
  let kind: VaultKind;
  if (o.vaultKind === undefined) {
    // Hosts that name no kind count as vaults, as they always have.
    const kinds = new Set(named.map((k) => k ?? 'vault'));
    if (kinds.size > 1) {
      throw invalid('one provider serves one vault kind: use a provider per kind (Key Vault, Managed HSM)');
    }
    kind = [...kinds][0] ?? 'vault';
  } else {
    kind = checkEnum(o.vaultKind, 'vaultKind', ['vault', 'managedHsm']);
    // An explicit kind chooses for hosts that name none (private endpoints, test servers); a host
    // named as the other kind contradicts it: its capabilities would be the wrong kind's.
    const other = vaults.find((_, i) => named[i] !== undefined && named[i] !== kind);
    if (other !== undefined) {
      const host =
        kind === 'vault'
          ? 'a Managed HSM host (*.managedhsm.azure.net)'
          : 'a Key Vault host (*.vault.azure.net)';
      throw invalid(`vaultKind is '${kind}' but ${host} is configured: use a provider per kind`);
    }
  }
  const { pollIntervalMs, maxCryptographyClients = 256 } = o;
  return {
    vaults,
    kind,
    credential: checkCredential(o.credential),
    clientOptions: checkClientOptions(o.clientOptions),
    pollIntervalMs:
      pollIntervalMs === undefined ? undefined : checkInteger(pollIntervalMs, 'pollIntervalMs', 1, 600_000),
    maxCryptographyClients: checkInteger(maxCryptographyClients, 'maxCryptographyClients', 1, 100_000),
  };
}
