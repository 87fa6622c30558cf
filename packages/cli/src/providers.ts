/**
 * Providers built from the config, one factory per scheme. Each adapter is imported only when
 * its provider is first needed, so a missing native module (pkcs11js) or SDK only breaks the
 * commands that use that provider, with a message naming it.
 */
import { isAbsolute, resolve } from 'node:path';
import { type Capabilities, KeyportError, type KmsProvider, splitKeyUri } from '@keyport/core';
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
import { readSecret } from './config/secrets.js';
import { canonicalKeystorePath } from './key-uris.js';

export interface FactoryContext {
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Directory of the config file: relative paths in it are relative to here. */
  readonly configDir: string;
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
 * The adapters imported through `importAdapter`, each by a literal `import()`: the bin's bundler
 * (rolldown.config.mjs) then puts each in a chunk of its own, loaded on first use and sharing the
 * bundle's one copy of @keyport/core (whose `instanceof KeyportError` a second copy would break).
 */
const ADAPTER_IMPORTS: Readonly<Record<string, () => Promise<unknown>>> = {
  '@keyport/pkcs11': () => import('@keyport/pkcs11'),
  '@keyport/gcp-kms': () => import('@keyport/gcp-kms'),
  '@keyport/azure-keyvault': () => import('@keyport/azure-keyvault'),
};

/** Imports an adapter (or an SDK the CLI configures itself) by name, as an untyped module. */
async function importAdapter(pkg: string, scheme: string): Promise<Record<string, unknown>> {
  try {
    const load = Object.hasOwn(ADAPTER_IMPORTS, pkg) ? ADAPTER_IMPORTS[pkg] : undefined;
    return (await (load !== undefined ? load() : import(pkg))) as Record<string, unknown>;
  } catch (error) {
    throw adapterMissing(pkg, scheme, error);
  }
}

function exported<T>(mod: Record<string, unknown>, names: readonly string[], pkg: string): T {
  for (const n of names) if (mod[n] !== undefined) return mod[n] as T;
  throw new KeyportError('Unavailable', `${pkg} exports none of ${names.join(', ')}`);
}

const pathFrom = (dir: string, p: string): string => (isAbsolute(p) ? p : resolve(dir, p));

const local: Factory<LocalConfig> = {
  async build(c, ctx) {
    const passphrase = await readSecret(
      {
        what: 'the local keystore passphrase',
        file: c.passphraseFile,
        envNames: [c.passphraseEnv ?? 'KEYPORT_LOCAL_PASSPHRASE'],
      },
      ctx.env,
      ctx.configDir,
    );
    const { openLocalKeystore } = await import('@keyport/local').catch((e: unknown) => {
      throw adapterMissing('@keyport/local', 'local', e);
    });
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
    const { awsKms: make } = await import('@keyport/aws-kms').catch((e: unknown) => {
      throw adapterMissing('@keyport/aws-kms', 'aws-kms', e);
    });
    return make({
      ...(c.region !== undefined ? { region: c.region } : {}),
      ...(c.endpoint !== undefined ? { endpoint: c.endpoint } : {}),
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
    const token = await readSecret(
      {
        what: 'the Vault token',
        file: c.tokenFile,
        envNames: c.tokenEnv !== undefined ? [c.tokenEnv] : ['KEYPORT_VAULT_TOKEN', 'VAULT_TOKEN'],
      },
      ctx.env,
      ctx.configDir,
    );
    const { VaultTransitProvider } = await import('@keyport/vault-transit').catch((e: unknown) => {
      throw adapterMissing('@keyport/vault-transit', 'hcvault', e);
    });
    return new VaultTransitProvider({
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

type Construct = new (options: Record<string, unknown>) => KmsProvider;
type Make = (options: Record<string, unknown>) => KmsProvider | Promise<KmsProvider>;

async function construct(
  mod: Record<string, unknown>,
  pkg: string,
  factoryNames: readonly string[],
  classNames: readonly string[],
  options: Record<string, unknown>,
): Promise<KmsProvider> {
  const make = factoryNames.map((n) => mod[n]).find((f) => typeof f === 'function') as Make | undefined;
  if (make !== undefined) return make(options);
  const Cls = exported<Construct & { open?: Make }>(mod, classNames, pkg);
  // Prefer an async `open` (it connects and checks credentials) over the bare constructor.
  return typeof Cls.open === 'function' ? Cls.open(options) : new Cls(options);
}

const pkcs11: Factory<Pkcs11Config> = {
  async build(c, ctx) {
    const mod = await importAdapter('@keyport/pkcs11', 'pkcs11');
    // The PIN is read at login from the CLI's environment (not the provider's process.env
    // lookup), so an embedding program's `env` is the one that counts.
    const pinEnv = c.pinEnv ?? 'KEYPORT_PKCS11_PIN';
    if (c.pinFile === undefined && (ctx.env[pinEnv] ?? '') === '') {
      throw new KeyportError(
        'InvalidArgument',
        `the PKCS#11 PIN is not set: export ${pinEnv}, or set pinFile`,
      );
    }
    const pin =
      c.pinFile !== undefined
        ? { file: pathFrom(ctx.configDir, c.pinFile) }
        : { callback: () => ctx.env[pinEnv] ?? '' };
    return construct(
      mod,
      '@keyport/pkcs11',
      // Pkcs11Provider.open, not the lazy pkcs11() factory: a wrong PIN must fail before any other provider is called.
      ['openPkcs11', 'createPkcs11Provider'],
      ['Pkcs11Provider'],
      {
        modulePath: pathFrom(ctx.configDir, c.module),
        token: { label: c.token },
        pin,
      },
    );
  },
  async capabilities() {
    const mod = await importAdapter('@keyport/pkcs11', 'pkcs11');
    return mod.PKCS11_CAPABILITIES as Capabilities | undefined;
  },
  clockUrl: () => undefined,
};

const gcpKms: Factory<GcpKmsConfig> = {
  async build(c, ctx) {
    const mod = await importAdapter('@keyport/gcp-kms', 'gcp-kms');
    const options: Record<string, unknown> = {
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
        const grpc = (await importAdapter('@grpc/grpc-js', 'gcp-kms')) as {
          credentials: { createInsecure(): unknown };
        };
        options.sslCreds = grpc.credentials.createInsecure();
      }
    }
    if (c.accessTokenEnv !== undefined) {
      const token = await readSecret(
        { what: 'the Google access token', envNames: [c.accessTokenEnv] },
        ctx.env,
        ctx.configDir,
      );
      const auth = (await importAdapter('google-auth-library', 'gcp-kms')) as {
        OAuth2Client: new () => { setCredentials(c: { access_token: string }): void };
      };
      const client = new auth.OAuth2Client();
      client.setCredentials({ access_token: token });
      options.authClient = client;
    }
    return construct(
      mod,
      '@keyport/gcp-kms',
      ['createGcpKmsProvider', 'gcpKms'],
      ['GcpKmsProvider'],
      options,
    );
  },
  async capabilities() {
    const mod = await importAdapter('@keyport/gcp-kms', 'gcp-kms');
    return (mod.GCP_KMS_CAPABILITIES ?? mod.GCP_CAPABILITIES) as Capabilities | undefined;
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
    const mod = await importAdapter('@keyport/azure-keyvault', 'azurekeyvault');
    const clientOptions: Record<string, unknown> = {};
    if (c.caFile !== undefined) {
      const { Agent } = await import('node:https');
      const { readFile } = await import('node:fs/promises');
      const path = pathFrom(ctx.configDir, c.caFile);
      const ca = await readFile(path).catch((e: unknown) => {
        throw new KeyportError(
          'InvalidArgument',
          `providers.azurekeyvault.caFile: ${JSON.stringify(path)} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})`,
        );
      });
      clientOptions.agent = new Agent({ ca, keepAlive: true });
    }
    if (c.disableChallengeResourceVerification === true)
      clientOptions.disableChallengeResourceVerification = true;
    const options: Record<string, unknown> = { vaultUrl: c.vaultUrl, clientOptions };
    if (c.accessTokenEnv !== undefined) {
      const token = await readSecret(
        { what: 'the Azure access token', envNames: [c.accessTokenEnv] },
        ctx.env,
        ctx.configDir,
      );
      options.credential = {
        getToken: async () => ({ token, expiresOnTimestamp: Date.now() + 3_600_000 }),
      };
    }
    return construct(mod, '@keyport/azure-keyvault', [], ['AzureKeyVaultProvider'], options);
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
