/**
 * The options of an Azure Key Vault driver and their checks. A driver serves the vaults it was
 * given, all of one kind (Key Vault or Managed HSM): the kind decides its declared capabilities.
 */
import type { KeyClient, KeyClientOptions } from '@azure/keyvault-keys';
import { checkEnum, checkInteger, KeyportError } from '@keyport/core';
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

const HSM_HOST = /\.managedhsm\.(azure\.net|azure\.cn|usgovcloudapi\.net|microsoftazure\.de)(:\d+)?$/i;

export function invalid(message: string, keyUri?: string): KeyportError {
  return new KeyportError('InvalidArgument', message, { provider: PROVIDER_NAME, keyUri });
}

function vaultOf(url: unknown, client?: KeyClient): Vault {
  let parsed: URL;
  try {
    parsed = new URL(String(url));
  } catch {
    throw invalid('vaultUrl is not a URL');
  }
  if (parsed.protocol !== 'https:')
    throw invalid('vaultUrl must be https (Key Vault bearer tokens need TLS)');
  return { url: parsed.origin, host: parsed.host, ...(client !== undefined ? { client } : {}) };
}

export function checkOptions(options: AzureKeyVaultOptions): CheckedOptions {
  if (typeof options !== 'object' || options === null) throw invalid('options must be an object');
  const vaults = [
    ...[options.vaultUrl ?? []].flat().map((url) => vaultOf(url)),
    ...[options.keyClient ?? []].flat().map((client) => vaultOf(client.vaultUrl, client)),
  ];
  if (vaults.length === 0) throw invalid('give vaultUrl or keyClient: the provider needs at least one vault');
  if (new Set(vaults.map((v) => v.host)).size !== vaults.length)
    throw invalid('the same vault is configured twice');
  const kinds = new Set(vaults.map((v): VaultKind => (HSM_HOST.test(v.host) ? 'managedHsm' : 'vault')));
  if (options.vaultKind === undefined && kinds.size > 1) {
    throw invalid('one provider serves one vault kind: use a provider per kind (Key Vault, Managed HSM)');
  }
  const { pollIntervalMs, maxCryptographyClients = 256 } = options;
  return {
    vaults,
    kind:
      options.vaultKind === undefined
        ? ([...kinds][0] ?? 'vault')
        : checkEnum(options.vaultKind, 'vaultKind', ['vault', 'managedHsm']),
    credential: options.credential,
    clientOptions: {
      ...options.clientOptions,
      // `?? 0`, not a spread default: `{ maxRetries: undefined }` would turn the SDK's 3 retries back on.
      retryOptions: {
        ...options.clientOptions?.retryOptions,
        maxRetries: options.clientOptions?.retryOptions?.maxRetries ?? 0,
      },
    },
    pollIntervalMs:
      pollIntervalMs === undefined ? undefined : checkInteger(pollIntervalMs, 'pollIntervalMs', 1, 600_000),
    maxCryptographyClients: checkInteger(maxCryptographyClients, 'maxCryptographyClients', 1, 100_000),
  };
}
