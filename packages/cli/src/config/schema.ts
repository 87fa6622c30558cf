/**
 * The config file (`keyport.config.json`, `.yaml` or `.yml`): which providers exist and how to
 * reach them. Secrets are never in it: each secret names a file (`…File`) or an environment
 * variable (`…Env`, with a documented default), and a literal secret field is refused.
 */
import { MAX_TIMER_MS } from '@keyport/core';
import { z } from 'zod';

/** Files `migrate` keeps in flight at most (`--jobs`, `defaults.jobs`). */
export const MAX_JOBS = 256;

const nonEmpty = z.string().min(1, 'must not be empty');
const httpUrl = z
  .string()
  .refine((s) => /^https?:\/\/[^/\s]+/.test(s), 'must be an http(s):// URL such as http://127.0.0.1:8200');

export const localConfig = z.strictObject({
  /** The keystore file; relative paths are relative to the config file. */
  keystore: nonEmpty,
  passphraseFile: nonEmpty.optional(),
  /** Default KEYPORT_LOCAL_PASSPHRASE. */
  passphraseEnv: nonEmpty.optional(),
  principal: nonEmpty.optional(),
  /** Create the keystore on first use. */
  create: z.boolean().optional(),
});

export const awsKmsConfig = z.strictObject({
  region: nonEmpty.optional(),
  endpoint: httpUrl.optional(),
  /** Further endpoints a key URI's `?endpoint=` may name (the adapter refuses any other). */
  allowedEndpoints: z.array(httpUrl).max(64).optional(),
});

/**
 * A Vault/OpenBao server: `http(s)://host[:port]` and nothing else. Requests go to
 * `<address>/v1/...` and key URIs name host:port only, so the adapter refuses a path (a proxy
 * prefix would be dropped), a query, a fragment and credentials; checked here so the error names
 * the config field, when the config is read, not on the first call.
 */
const vaultAddress = httpUrl.superRefine((s, ctx) => {
  if (!URL.canParse(s)) return; // httpUrl's message
  const url = new URL(s);
  if (url.username !== '' || url.password !== '') {
    ctx.addIssue({
      code: 'custom',
      message: 'must not carry credentials: give the token with tokenFile or KEYPORT_VAULT_TOKEN',
    });
  } else if (url.pathname !== '/' || url.search !== '' || url.hash !== '') {
    ctx.addIssue({
      code: 'custom',
      message:
        'must be http(s)://host:port, without a path, query or fragment (requests go to <address>/v1/...)',
    });
  }
});

export const vaultConfig = z.strictObject({
  address: vaultAddress,
  tokenFile: nonEmpty.optional(),
  /** Default KEYPORT_VAULT_TOKEN, then VAULT_TOKEN. */
  tokenEnv: nonEmpty.optional(),
  mount: nonEmpty.optional(),
  namespace: nonEmpty.optional(),
  flavor: z.enum(['vault', 'openbao']).optional(),
});

export const pkcs11Config = z.strictObject({
  module: nonEmpty,
  token: nonEmpty,
  pinFile: nonEmpty.optional(),
  /** Default KEYPORT_PKCS11_PIN. */
  pinEnv: nonEmpty.optional(),
});

export const gcpKmsConfig = z.strictObject({
  transport: z.enum(['grpc', 'rest']).optional(),
  apiEndpoint: nonEmpty.optional(),
  port: z.number().int().min(1).max(65535).optional(),
  /** Plain-text gRPC / http:// (local test servers only). */
  insecure: z.boolean().optional(),
  keyRing: nonEmpty.optional(),
  projectId: nonEmpty.optional(),
  keyFilename: nonEmpty.optional(),
  /** A static OAuth access token from this variable instead of Application Default Credentials. */
  accessTokenEnv: nonEmpty.optional(),
});

const httpsUrl = z
  .string()
  .refine(
    (s) => /^https:\/\/[^/\s]+/.test(s),
    'must be an https:// URL such as https://my-vault.vault.azure.net',
  );

export const azureKeyVaultConfig = z.strictObject({
  /** The vault (or Managed HSM) URL, or several: bare key names go to the first. */
  vaultUrl: z.union([httpsUrl, z.array(httpsUrl).min(1)]),
  /**
   * A static bearer token from this variable instead of DefaultAzureCredential (the Azure
   * SDK's chain: environment, workload identity, managed identity, Azure CLI, ...).
   */
  accessTokenEnv: nonEmpty.optional(),
  /** A PEM file of an extra CA to trust (a private endpoint; keyport's test server). TLS stays verified. */
  caFile: nonEmpty.optional(),
  /** Accept a challenge for another resource than vault.azure.net (sovereign clouds, test servers). */
  disableChallengeResourceVerification: z.boolean().optional(),
});

export const PROVIDER_SCHEMES = [
  'local',
  'aws-kms',
  'hcvault',
  'pkcs11',
  'gcp-kms',
  'azurekeyvault',
] as const;
export type ProviderScheme = (typeof PROVIDER_SCHEMES)[number];

/** The config schema of each provider scheme. */
const PROVIDER_CONFIGS = {
  local: localConfig,
  'aws-kms': awsKmsConfig,
  hcvault: vaultConfig,
  pkcs11: pkcs11Config,
  'gcp-kms': gcpKmsConfig,
  azurekeyvault: azureKeyVaultConfig,
} as const satisfies Record<ProviderScheme, z.ZodType>;

/**
 * A further instance of a scheme: `<scheme>+<name>`, exactly the prefix of the key URIs that
 * address it (`aws-kms+dr` serves `aws-kms+dr://…`). The name follows core's instance-name rule.
 */
const NAMED_INSTANCE = /^([a-z][a-z0-9-]*)\+([a-z][a-z0-9-]{0,62})$/;

/** The scheme and instance name of a `providers` key (`aws-kms` → aws-kms/aws-kms; `aws-kms+dr` → aws-kms/dr). */
export function parseInstanceKey(key: string): { scheme: ProviderScheme; name: string } | undefined {
  if ((PROVIDER_SCHEMES as readonly string[]).includes(key))
    return { scheme: key as ProviderScheme, name: key };
  const m = NAMED_INSTANCE.exec(key);
  if (m === null || !(PROVIDER_SCHEMES as readonly string[]).includes(m[1] as string)) return undefined;
  return { scheme: m[1] as ProviderScheme, name: m[2] as string };
}

export const NOT_A_PROVIDER = `not a provider: use one of ${PROVIDER_SCHEMES.join(', ')}, or <scheme>+<name> for a further instance (a lower-case letter, then letters, digits or "-"), e.g. aws-kms+dr`;

const providersSchema = z
  .object({
    local: localConfig.optional(),
    'aws-kms': awsKmsConfig.optional(),
    hcvault: vaultConfig.optional(),
    pkcs11: pkcs11Config.optional(),
    'gcp-kms': gcpKmsConfig.optional(),
    azurekeyvault: azureKeyVaultConfig.optional(),
  })
  .catchall(z.unknown())
  .superRefine((providers, ctx) => {
    const owners = new Map<string, string>();
    for (const [key, value] of Object.entries(providers)) {
      const parsed = parseInstanceKey(key);
      if (parsed === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: NOT_A_PROVIDER,
        });
        continue;
      }
      if (key === parsed.scheme) continue; // validated by the shape above
      if ((PROVIDER_SCHEMES as readonly string[]).includes(parsed.name)) {
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: `the instance name "${parsed.name}" is a provider scheme; choose another name`,
        });
        continue;
      }
      const other = owners.get(parsed.name);
      if (other !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: `the instance name "${parsed.name}" is already used by ${other}: instance names are unique across providers`,
        });
        continue;
      }
      owners.set(parsed.name, key);
      const inner = PROVIDER_CONFIGS[parsed.scheme].safeParse(value);
      if (!inner.success) {
        for (const issue of inner.error.issues)
          ctx.addIssue({ ...issue, path: [key, ...issue.path] } as never);
      }
    }
  })
  .refine((p) => Object.keys(p).length > 0, 'configure at least one provider');

export const configSchema = z.strictObject({
  $schema: z.string().optional(),
  /**
   * Provider instances: `<scheme>` for the scheme's default instance, `<scheme>+<name>` for a
   * further one (the key URIs `<scheme>+<name>://…` address it).
   */
  providers: providersSchema,
  audit: z
    .strictObject({
      /** JSONL audit log every operation is appended to (MACed, chained, anchored records). */
      log: nonEmpty,
      /**
       * File holding the audit key (hex, base64 or raw, at least 32 bytes). Default:
       * `<log>.key`, generated (32 random bytes, mode 0600) on first use.
       */
      keyFile: nonEmpty.optional(),
      /** `fail` (default): an operation that cannot be audited fails; `warn`: it goes on, with a warning. */
      onFailure: z.enum(['fail', 'warn']).optional(),
      /** Key URI of the signing key `keyport audit anchor` signs with and `audit verify` expects. */
      anchorKey: nonEmpty.optional(),
    })
    .optional(),
  defaults: z
    .strictObject({
      /** Recipients for `encrypt` when no --recipient is given. */
      recipients: z.array(nonEmpty).min(1).optional(),
      /** Deadline of each provider operation, as --timeout (a Node timer's range). */
      timeoutMs: z.number().int().positive().max(MAX_TIMER_MS).optional(),
      jobs: z.number().int().min(1).max(MAX_JOBS).optional(),
    })
    .optional(),
});

export type KeyportConfig = z.infer<typeof configSchema>;
export type LocalConfig = z.infer<typeof localConfig>;
export type AwsKmsConfig = z.infer<typeof awsKmsConfig>;
export type VaultConfig = z.infer<typeof vaultConfig>;
export type Pkcs11Config = z.infer<typeof pkcs11Config>;
export type GcpKmsConfig = z.infer<typeof gcpKmsConfig>;
export type AzureKeyVaultConfig = z.infer<typeof azureKeyVaultConfig>;

/** Field names that would hold a secret in clear, with where the secret belongs instead. */
export const FORBIDDEN_SECRET_FIELDS: Readonly<Record<string, string>> = {
  passphrase: 'passphraseFile or the KEYPORT_LOCAL_PASSPHRASE environment variable',
  token: 'tokenFile or the KEYPORT_VAULT_TOKEN environment variable',
  pin: 'pinFile or the KEYPORT_PKCS11_PIN environment variable',
  password: 'a …File field or an environment variable',
  secretAccessKey: 'the AWS credential chain (environment, profile, role)',
  accessToken: 'accessTokenEnv',
};
