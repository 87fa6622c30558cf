/**
 * Providers built from the config, one factory per scheme. Each adapter is imported only when
 * its provider is first needed, so a missing native module (pkcs11js) or SDK only breaks the
 * commands that use that provider, with a message naming it.
 */
import { isAbsolute, resolve } from 'node:path';
import type { AzureKeyVaultOptions } from '@keyport/azure-keyvault';
import { type Capabilities, KeyportError, type KmsProvider, splitKeyUri } from '@keyport/core';
import type { GcpKmsProviderOptions } from '@keyport/gcp-kms';
import type {
  AwsKmsConfig,
  AzureKeyVaultConfig,
  GcpKmsConfig,
  KeyportConfig,
  LocalConfig,
  Pkcs11Config,
  VaultConfig,
} from './config/schema.js';
import { parseInstanceKey } from './config/schema.js';
import { readSecret, type SecretSource } from './config/secrets.js';
import { readBounded, readFailure } from './files/read-bounded.js';
import { canonicalKeystorePath } from './key-uris.js';

/** A CA bundle is at most a few hundred certificates. */
const MAX_CA_FILE_BYTES = 4 * 1024 * 1024;

export interface FactoryContext {
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Directory of the config file: relative paths in it are relative to here. */
  readonly configDir: string;
  /**
   * Told each secret a provider was built with (a token, passphrase or PIN, from a file or any
   * variable the config names), so that no message shows it (errors.ts redacts them).
   */
  readonly onSecret?: (value: string) => void;
}

/** readSecret, telling the context the value it read. */
async function secret(source: SecretSource, ctx: FactoryContext): Promise<string> {
  const value = await readSecret(source, ctx.env, ctx.configDir);
  ctx.onSecret?.(value);
  return value;
}

interface Factory<C> {
  build(config: C, ctx: FactoryContext): Promise<KmsProvider>;
  /** Static capabilities where the adapter exports them (no credentials needed). */
  capabilities(config: C): Promise<Capabilities | undefined>;
  /** An HTTP(S) URL whose Date header tells the provider's clock, when there is one. */
  clockUrl(config: C, env: FactoryContext['env']): string | undefined;
}

function adapterMissing(pkg: string, scheme: string, error: unknown): KeyportError {
  return new KeyportError(
    'Unavailable',
    `the ${scheme} provider cannot be loaded: ${pkg} failed to import (is it installed and built for this platform?)`,
    { provider: scheme, cause: error },
  );
}

/**
 * Imports an adapter (or a library the CLI configures itself) on first use; a failure names the
 * package. Every caller passes a literal `import()`: the bin's bundler (rolldown.config.mjs) then
 * puts each adapter in a chunk of its own, loaded on first use and sharing the bundle's one copy
 * of @keyport/core (whose `instanceof KeyportError` a second copy would break).
 */
async function load<T>(pkg: string, scheme: string, importer: () => Promise<T>): Promise<T> {
  try {
    return await importer();
  } catch (error) {
    throw adapterMissing(pkg, scheme, error);
  }
}

const pathFrom = (dir: string, p: string): string => (isAbsolute(p) ? p : resolve(dir, p));

const local: Factory<LocalConfig> = {
  async build(c, ctx) {
    const passphrase = await secret(
      {
        what: 'the local keystore passphrase',
        file: c.passphraseFile,
        envNames: [c.passphraseEnv ?? 'KEYPORT_LOCAL_PASSPHRASE'],
      },
      ctx,
    );
    const { openLocalKeystore } = await load('@keyport/local', 'local', () => import('@keyport/local'));
    return openLocalKeystore({
      path: canonicalKeystorePath(c.keystore, ctx.configDir),
      passphrase,
      ...(c.principal !== undefined ? { principal: c.principal } : {}),
      ...(c.create !== undefined ? { create: c.create } : {}),
    });
  },
  async capabilities() {
    const { LOCAL_CAPABILITIES } = await import('@keyport/local');
    return LOCAL_CAPABILITIES;
  },
  clockUrl: () => undefined,
};

const awsKms: Factory<AwsKmsConfig> = {
  async build(c) {
    const { awsKms } = await load('@keyport/aws-kms', 'aws-kms', () => import('@keyport/aws-kms'));
    return awsKms({
      ...(c.region !== undefined ? { region: c.region } : {}),
      ...(c.endpoint !== undefined ? { endpoint: c.endpoint } : {}),
      ...(c.allowedEndpoints !== undefined ? { allowedEndpoints: c.allowedEndpoints } : {}),
    });
  },
  async capabilities() {
    const { AWS_KMS_CAPABILITIES } = await import('@keyport/aws-kms');
    return AWS_KMS_CAPABILITIES;
  },
  clockUrl: (c, env) =>
    c.endpoint ?? `https://kms.${c.region ?? env.AWS_REGION ?? 'us-east-1'}.amazonaws.com/`,
};

const vault: Factory<VaultConfig> = {
  async build(c, ctx) {
    const token = await secret(
      {
        what: 'the Vault token',
        file: c.tokenFile,
        envNames: c.tokenEnv !== undefined ? [c.tokenEnv] : ['KEYPORT_VAULT_TOKEN', 'VAULT_TOKEN'],
      },
      ctx,
    );
    const { vaultTransit } = await load(
      '@keyport/vault-transit',
      'hcvault',
      () => import('@keyport/vault-transit'),
    );
    return vaultTransit({
      endpoint: c.address,
      auth: token,
      ...(c.mount !== undefined ? { mount: c.mount } : {}),
      ...(c.namespace !== undefined ? { namespace: c.namespace } : {}),
      ...(c.flavor !== undefined ? { flavor: c.flavor } : {}),
    });
  },
  async capabilities(c) {
    const { transitCapabilities } = await import('@keyport/vault-transit');
    return transitCapabilities(c.flavor ?? 'vault');
  },
  clockUrl: (c) => `${c.address.replace(/\/$/, '')}/v1/sys/health`,
};

const pkcs11: Factory<Pkcs11Config> = {
  async build(c, ctx) {
    const { Pkcs11Provider } = await load('@keyport/pkcs11', 'pkcs11', () => import('@keyport/pkcs11'));
    // The PIN is read at login from the CLI's environment (not the provider's process.env
    // lookup), so an embedding program's `env` is the one that counts.
    const pinEnv = c.pinEnv ?? 'KEYPORT_PKCS11_PIN';
    if (c.pinFile === undefined && (ctx.env[pinEnv] ?? '') === '') {
      throw new KeyportError(
        'InvalidArgument',
        `the PKCS#11 PIN is not set: export ${pinEnv}, or set pinFile`,
      );
    }
    // A PIN file is read by the adapter at login; one from the environment is known here.
    if (c.pinFile === undefined) ctx.onSecret?.(ctx.env[pinEnv] ?? '');
    const pin =
      c.pinFile !== undefined
        ? { file: pathFrom(ctx.configDir, c.pinFile) }
        : { callback: () => ctx.env[pinEnv] ?? '' };
    // Opened now, not at the first call (the `pkcs11()` factory's way): a wrong PIN must fail
    // before any other provider is called.
    return Pkcs11Provider.open({
      modulePath: pathFrom(ctx.configDir, c.module),
      token: { label: c.token },
      pin,
    });
  },
  async capabilities() {
    const { PKCS11_CAPABILITIES } = await load('@keyport/pkcs11', 'pkcs11', () => import('@keyport/pkcs11'));
    return PKCS11_CAPABILITIES;
  },
  clockUrl: () => undefined,
};

const gcpKms: Factory<GcpKmsConfig> = {
  async build(c, ctx) {
    const { gcpKms } = await load('@keyport/gcp-kms', 'gcp-kms', () => import('@keyport/gcp-kms'));
    const options: { -readonly [K in keyof GcpKmsProviderOptions]: GcpKmsProviderOptions[K] } = {
      ...(c.transport !== undefined ? { transport: c.transport } : {}),
      ...(c.apiEndpoint !== undefined ? { apiEndpoint: c.apiEndpoint } : {}),
      ...(c.port !== undefined ? { port: c.port } : {}),
      ...(c.keyRing !== undefined ? { keyRing: c.keyRing } : {}),
      ...(c.projectId !== undefined ? { projectId: c.projectId } : {}),
      ...(c.keyFilename !== undefined ? { keyFilename: pathFrom(ctx.configDir, c.keyFilename) } : {}),
    };
    if (c.insecure === true) {
      if (c.transport === 'rest') options.protocol = 'http';
      else {
        const grpc = await load('@grpc/grpc-js', 'gcp-kms', () => import('@grpc/grpc-js'));
        options.sslCreds = grpc.credentials.createInsecure();
      }
    }
    if (c.accessTokenEnv !== undefined) {
      const token = await secret({ what: 'the Google access token', envNames: [c.accessTokenEnv] }, ctx);
      const auth = await load('google-auth-library', 'gcp-kms', () => import('google-auth-library'));
      const client = new auth.OAuth2Client();
      client.setCredentials({ access_token: token });
      options.authClient = client;
    }
    return gcpKms(options);
  },
  async capabilities() {
    const { GCP_KMS_CAPABILITIES } = await load(
      '@keyport/gcp-kms',
      'gcp-kms',
      () => import('@keyport/gcp-kms'),
    );
    return GCP_KMS_CAPABILITIES;
  },
  clockUrl: (c) =>
    c.apiEndpoint === undefined
      ? 'https://cloudkms.googleapis.com/'
      : c.transport === 'rest'
        ? `${c.insecure === true ? 'http' : 'https'}://${c.apiEndpoint}${c.port !== undefined ? `:${c.port}` : ''}/`
        : undefined,
};

const azureKeyVault: Factory<AzureKeyVaultConfig> = {
  async build(c, ctx) {
    const { azureKeyVault: make } = await load(
      '@keyport/azure-keyvault',
      'azurekeyvault',
      () => import('@keyport/azure-keyvault'),
    );
    const clientOptions: Record<string, unknown> = {};
    if (c.caFile !== undefined) {
      const { Agent } = await import('node:https');
      const path = pathFrom(ctx.configDir, c.caFile);
      const ca = await readBounded(path, MAX_CA_FILE_BYTES).catch((e: unknown) => {
        throw new KeyportError(
          'InvalidArgument',
          `providers.azurekeyvault.caFile: ${JSON.stringify(path)} cannot be read (${readFailure(e)})`,
        );
      });
      clientOptions.agent = new Agent({ ca, keepAlive: true });
    }
    if (c.disableChallengeResourceVerification === true)
      clientOptions.disableChallengeResourceVerification = true;
    const options: Record<string, unknown> = { vaultUrl: c.vaultUrl, clientOptions };
    if (c.accessTokenEnv !== undefined) {
      const token = await secret({ what: 'the Azure access token', envNames: [c.accessTokenEnv] }, ctx);
      options.credential = {
        getToken: async () => ({ token, expiresOnTimestamp: Date.now() + 3_600_000 }),
      };
    }
    return make(options as unknown as AzureKeyVaultOptions);
  },
  async capabilities() {
    return undefined;
  },
  clockUrl: (c) => `${([c.vaultUrl].flat()[0] as string).replace(/\/$/, '')}/healthstatus`,
};

const FACTORIES = {
  local,
  'aws-kms': awsKms,
  hcvault: vault,
  pkcs11,
  'gcp-kms': gcpKms,
  azurekeyvault: azureKeyVault,
} as const;

/**
 * The configured provider instances, by config key: `aws-kms` (the scheme's default instance) and
 * `aws-kms+dr` (instance `dr`), in config order.
 */
export function configuredSchemes(config: KeyportConfig): string[] {
  const providers = config.providers as Record<string, unknown>;
  return Object.keys(providers).filter(
    (k) => providers[k] !== undefined && parseInstanceKey(k) !== undefined,
  );
}

/** The `Keyport` instance name of a config key: `aws-kms` → `aws-kms`, `aws-kms+dr` → `dr`. */
export function instanceName(configKey: string): string {
  return parseInstanceKey(configKey)?.name ?? configKey;
}

/**
 * The config keys of the instances a key URI, an instance name, a config key or a scheme needs:
 * a URI's selector names one; a plain URI or scheme needs the scheme's default instance, or, when
 * the config has no plain entry for it, every instance of the scheme (core then picks the only
 * one, or the one that claims the URI, or reports the ambiguity).
 */
export function instancesFor(config: KeyportConfig, uriOrName: string): string[] {
  const configured = configuredSchemes(config);
  let scheme: string;
  if (uriOrName.includes(':')) {
    const split = splitKeyUri(uriOrName);
    if (split.instance !== undefined) return [`${split.scheme}+${split.instance}`];
    scheme = split.scheme;
  } else {
    if (configured.includes(uriOrName)) return [uriOrName];
    const named = configured.find((k) => k.includes('+') && instanceName(k) === uriOrName);
    if (named !== undefined) return [named];
    scheme = uriOrName;
  }
  if (configured.includes(scheme)) return [scheme];
  const serving = configured.filter((k) => parseInstanceKey(k)?.scheme === scheme);
  return serving.length > 0 ? serving : [scheme];
}

function factoryConfig(config: KeyportConfig, given: string): { factory: Factory<never>; cfg: never } {
  // An instance name alone (`dr`) stands for its config key (`aws-kms+dr`).
  const key = configuredSchemes(config).find((k) => k.includes('+') && instanceName(k) === given) ?? given;
  const cfg = Object.hasOwn(config.providers, key)
    ? (config.providers as Record<string, unknown>)[key]
    : undefined;
  const scheme = parseInstanceKey(key)?.scheme;
  const factory = scheme === undefined ? undefined : (FACTORIES as Record<string, Factory<never>>)[scheme];
  if (cfg === undefined || factory === undefined) {
    const known = configuredSchemes(config).join(', ') || 'none';
    throw new KeyportError(
      'InvalidArgument',
      `no "${key}" provider in the config (configured: ${known}); add providers.${key}`,
    );
  }
  return { factory, cfg: cfg as never };
}

export function buildProvider(
  config: KeyportConfig,
  scheme: string,
  ctx: FactoryContext,
): Promise<KmsProvider> {
  const { factory, cfg } = factoryConfig(config, scheme);
  return factory.build(cfg, ctx);
}

export function providerCapabilities(
  config: KeyportConfig,
  scheme: string,
): Promise<Capabilities | undefined> {
  const { factory, cfg } = factoryConfig(config, scheme);
  return factory.capabilities(cfg);
}

export function providerClockUrl(
  config: KeyportConfig,
  scheme: string,
  env: FactoryContext['env'],
): string | undefined {
  const { factory, cfg } = factoryConfig(config, scheme);
  return factory.clockUrl(cfg, env);
}
