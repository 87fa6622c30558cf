/**
 * The vaults a provider serves and the SDK clients that reach them. A provider serves one vault
 * kind (Key Vault or Managed HSM) and only the vaults it was given: a key URI naming another host
 * is refused, so a credential's token never goes to a host the caller did not configure.
 */

import type * as KeysSdk from '@azure/keyvault-keys';
import type {
  CryptographyClient,
  CryptographyClientOptions,
  KeyClient,
  KeyClientOptions,
  KeyVaultKey,
} from '@azure/keyvault-keys';
import { KeyportError, type KeyRef, parseKeyUri } from '@keyport/core';
import type { VaultKind } from './capabilities.js';
import { PROVIDER_NAME } from './errors.js';
import { identitySdk, keysSdk } from './sdk.js';

type TokenCredential = ConstructorParameters<typeof KeyClient>[1];

export interface AzureKeyVaultProviderOptions {
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

export interface ResolvedKey {
  readonly vault: Vault;
  readonly name: string;
  readonly version: string | undefined;
}

export interface Vault {
  /** `https://host[:port]`, as the SDK names it (no trailing slash). */
  readonly url: string;
  /** `host[:port]`, as the key URI names it. */
  readonly host: string;
  /** The vault's KeyClient: the one the caller gave, or one built (SDK loaded) on first use. */
  keys(): Promise<KeyClient>;
}

const HSM_HOST = /\.managedhsm\.(azure\.net|azure\.cn|usgovcloudapi\.net|microsoftazure\.de)$/i;

function kindOfHost(host: string): VaultKind {
  return HSM_HOST.test(host.replace(/:\d+$/, '')) ? 'managedHsm' : 'vault';
}

function invalid(message: string, keyUri?: string): KeyportError {
  return new KeyportError('InvalidArgument', message, { provider: PROVIDER_NAME, keyUri });
}

function vaultOf(url: string, keys: () => Promise<KeyClient>): Vault {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw invalid('vaultUrl is not a URL');
  }
  if (parsed.protocol !== 'https:')
    throw invalid('vaultUrl must be https (Key Vault bearer tokens need TLS)');
  return { url: parsed.origin, host: parsed.host, keys };
}

export class Vaults {
  readonly kind: VaultKind;
  readonly pollIntervalMs: number | undefined;
  private readonly byHost = new Map<string, Vault>();
  private readonly first: Vault;
  private readonly givenCredential: TokenCredential | undefined;
  private defaultCredential: Promise<TokenCredential> | undefined;
  private readonly cryptoOptions: CryptographyClientOptions;
  private readonly cryptoClients = new Map<string, Promise<CryptographyClient>>();
  private readonly maxCryptoClients: number;

  constructor(options: AzureKeyVaultProviderOptions) {
    this.givenCredential = options.credential;
    this.cryptoOptions = {
      ...options.clientOptions,
      retryOptions: { maxRetries: 0, ...options.clientOptions?.retryOptions },
    };
    const vaults: Vault[] = [];
    const urls = options.vaultUrl === undefined ? [] : [options.vaultUrl].flat();
    for (const url of urls) {
      let built: Promise<KeyClient> | undefined;
      const keys = (): Promise<KeyClient> => {
        built ??= this.built(
          (sdk, credential) => new sdk.KeyClient(url, credential, { ...this.cryptoOptions }),
        );
        built.catch(() => {
          built = undefined;
        });
        return built;
      };
      vaults.push(vaultOf(url, keys));
    }
    const given = options.keyClient === undefined ? [] : [options.keyClient].flat();
    for (const client of given) {
      const ready = Promise.resolve(client);
      vaults.push(vaultOf(client.vaultUrl, () => ready));
    }
    const first = vaults[0];
    if (first === undefined)
      throw invalid('give vaultUrl or keyClient: the provider needs at least one vault');
    this.first = first;
    for (const v of vaults) {
      if (this.byHost.has(v.host.toLowerCase())) throw invalid('the same vault is configured twice');
      this.byHost.set(v.host.toLowerCase(), v);
    }
    const kinds = new Set(vaults.map((v) => kindOfHost(v.host)));
    this.kind = options.vaultKind ?? (kinds.has('managedHsm') ? 'managedHsm' : 'vault');
    if (options.vaultKind === undefined && kinds.size > 1) {
      throw invalid('one provider serves one vault kind: use a provider per kind (Key Vault, Managed HSM)');
    }
    this.pollIntervalMs = options.pollIntervalMs;
    this.maxCryptoClients = options.maxCryptographyClients ?? 256;
  }

  /** The caller's credential, else a `DefaultAzureCredential` (and `@azure/identity`) made once. */
  private credential(): Promise<TokenCredential> {
    if (this.givenCredential !== undefined) return Promise.resolve(this.givenCredential);
    this.defaultCredential ??= identitySdk().then(
      (identity) => new identity.DefaultAzureCredential(),
      (e: unknown) => {
        this.defaultCredential = undefined;
        throw e;
      },
    );
    return this.defaultCredential;
  }

  /** Runs `make` with the SDK and the credential; a failure is not kept, so the next call retries. */
  private async built<T>(make: (sdk: typeof KeysSdk, credential: TokenCredential) => T): Promise<T> {
    const [sdk, credential] = await Promise.all([keysSdk(), this.credential()]);
    return make(sdk, credential);
  }

  all(): Vault[] {
    return [...this.byHost.values()];
  }

  get defaultVault(): Vault {
    return this.first;
  }

  /** The vault, key name and version a ref names (the ref's version wins over none in the URI). */
  resolve(ref: KeyRef): ResolvedKey {
    const parsed = parseKeyUri(ref.uri);
    if (parsed.scheme !== 'azurekeyvault') throw invalid('not an azurekeyvault:// key URI', ref.uri);
    const vault = this.byHost.get(parsed.vaultHost.toLowerCase());
    if (vault === undefined)
      throw invalid('the key URI names a vault this provider is not configured for', ref.uri);
    return { vault, name: parsed.name, version: ref.version ?? parsed.version };
  }

  /** The vault a new key's name or URI points to, and the bare name. */
  forNewKey(nameOrUri: string): { vault: Vault; name: string } {
    if (nameOrUri.startsWith('azurekeyvault://')) {
      const r = this.resolve({ uri: nameOrUri });
      if (r.version !== undefined) throw invalid('a new key URI names no version', nameOrUri);
      return { vault: r.vault, name: r.name };
    }
    if (!/^[A-Za-z0-9-]{1,127}$/.test(nameOrUri)) {
      throw invalid('Key Vault key names are 1-127 letters, digits or dashes');
    }
    return { vault: this.first, name: nameOrUri };
  }

  /** `azurekeyvault://host/keys/name[/version]`. */
  uriOf(vault: Vault, name: string, version?: string): string {
    return `azurekeyvault://${vault.host}/keys/${name}${version === undefined ? '' : `/${version}`}`;
  }

  /**
   * A CryptographyClient that always calls the vault. It is built from a KeyVaultKey without key
   * material, so the SDK neither fetches the key nor runs anything locally with the public key:
   * every operation reaches the vault, which enforces key state, validity dates and permissions.
   * Without a version it addresses the latest one (the answer's `kid` names which).
   */
  crypto(key: ResolvedKey): Promise<CryptographyClient> {
    const id = `${key.vault.url}/keys/${key.name}${key.version === undefined ? '' : `/${key.version}`}`;
    const cached = this.cryptoClients.get(id);
    if (cached !== undefined) {
      // Map order is insertion order: re-inserting keeps recently used clients at the end.
      this.cryptoClients.delete(id);
      this.cryptoClients.set(id, cached);
      return cached;
    }
    const remoteOnly: KeyVaultKey = {
      name: key.name,
      id,
      properties: {
        id,
        name: key.name,
        vaultUrl: key.vault.url,
        ...(key.version ? { version: key.version } : {}),
      },
    };
    const client = this.built(
      (sdk, credential) => new sdk.CryptographyClient(remoteOnly, credential, { ...this.cryptoOptions }),
    );
    // A failed build (SDK missing) is dropped from the cache so the next call tries again.
    client.catch(() => {
      if (this.cryptoClients.get(id) === client) this.cryptoClients.delete(id);
    });
    this.cryptoClients.set(id, client);
    if (this.cryptoClients.size > this.maxCryptoClients) {
      const oldest = this.cryptoClients.keys().next().value;
      if (oldest !== undefined) this.cryptoClients.delete(oldest);
    }
    return client;
  }

  close(): void {
    this.cryptoClients.clear();
  }
}

/** The version segment of a key id (`https://vault/keys/name/version`). */
export function versionOfKid(kid: string | undefined): string | undefined {
  if (kid === undefined) return undefined;
  const m = /\/keys\/[^/]+\/([A-Za-z0-9]+)\/?$/.exec(kid);
  return m?.[1];
}
