/**
 * Missing or expired cloud credentials, recognised in an error's cause chain whatever the
 * adapter made of them (often "Internal"), so the CLI reports an authentication failure
 * (AccessDenied, exit 4) with a hint on how that SDK finds credentials. And redaction of
 * secrets in causes shown with --verbose.
 */

export interface CredentialProblem {
  readonly sdk: 'AWS' | 'Azure' | 'Google';
  readonly detail: string;
  readonly hint: string;
}

const HINTS: Readonly<Record<CredentialProblem['sdk'], string>> = {
  AWS: 'the AWS SDK looks for credentials in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN), AWS_PROFILE and ~/.aws (run "aws sso login" for SSO profiles), web identity, then container and instance roles; expired session credentials must be refreshed',
  Azure:
    'DefaultAzureCredential tries AZURE_TENANT_ID/AZURE_CLIENT_ID with AZURE_CLIENT_SECRET or a certificate, workload identity, managed identity, then "az login" / "azd auth login"; or set providers.azurekeyvault.accessTokenEnv',
  Google:
    'Application Default Credentials: GOOGLE_APPLICATION_CREDENTIALS (a service account or external account file), "gcloud auth application-default login", or the metadata server; or set providers.gcp-kms.keyFilename or accessTokenEnv',
};

const AWS_NAMES = new Set([
  'CredentialsProviderError',
  'ExpiredToken',
  'ExpiredTokenException',
  'InvalidClientTokenId',
  'UnrecognizedClientException',
  'TokenProviderError',
]);
const AZURE_NAMES = new Set([
  'CredentialUnavailableError',
  'AuthenticationError',
  'AggregateAuthenticationError',
]);
const GOOGLE_MESSAGES = [
  /Could not load the default credentials/i,
  /invalid_grant/i,
  /Could not refresh access token/i,
  /Unable to detect a Project Id/i,
  /The incoming JSON object does not contain a client_email field/i,
  /Request had invalid authentication credentials/i,
  /UNAUTHENTICATED/,
];

function* chain(error: unknown, depth = 0): Generator<unknown> {
  if (error === undefined || error === null || depth > 8) return;
  yield error;
  if (error instanceof AggregateError) for (const e of error.errors) yield* chain(e, depth + 1);
  if (error instanceof Error) yield* chain(error.cause, depth + 1);
}

const short = (e: Error): string => `${e.name}: ${e.message.split('\n')[0]?.slice(0, 200) ?? ''}`;

export function credentialProblem(error: unknown): CredentialProblem | undefined {
  for (const e of chain(error)) {
    if (!(e instanceof Error)) continue;
    const code = (e as { code?: unknown }).code;
    if (AWS_NAMES.has(e.name) || (typeof code === 'string' && AWS_NAMES.has(code))) {
      return { sdk: 'AWS', detail: short(e), hint: HINTS.AWS };
    }
    if (AZURE_NAMES.has(e.name)) return { sdk: 'Azure', detail: short(e), hint: HINTS.Azure };
    if (GOOGLE_MESSAGES.some((re) => re.test(e.message)))
      return { sdk: 'Google', detail: short(e), hint: HINTS.Google };
  }
  return undefined;
}

/** Secret-looking values in the environment: these never appear in any message shown. */
export function secretValues(env: Readonly<Record<string, string | undefined>>): string[] {
  return Object.entries(env)
    .filter(
      ([k, v]) => /TOKEN|SECRET|PASS|PIN|KEY|CREDENTIAL|AUTH/i.test(k) && v !== undefined && v.length >= 4,
    )
    .map(([, v]) => v as string);
}

/**
 * Removes secrets from text shown to the user: the given values, bearer tokens, JWTs,
 * `key=value` pairs whose key says secret, AWS access key ids, and long opaque runs.
 */
export function redact(text: string, secrets: readonly string[] = []): string {
  let out = text;
  for (const s of [...secrets].sort((a, b) => b.length - a.length)) out = out.split(s).join('[redacted]');
  return out
    .replace(/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/gi, '$1 [redacted]')
    .replace(/\beyJ[A-Za-z0-9_-]{8,}(\.[A-Za-z0-9_-]*){1,2}/g, '[redacted jwt]')
    .replace(
      /\b([A-Za-z_-]*(?:token|secret|password|passphrase|pin|signature|sig|credential|apikey|api_key|client_secret)[A-Za-z_-]*)(["']?\s*[=:]\s*["']?)[^\s"',&;]+/gi,
      '$1$2[redacted]',
    )
    .replace(/\b(AKIA|ASIA)[A-Z0-9]{16}\b/g, '[redacted access key id]')
    .replace(/[A-Za-z0-9+/_-]{40,}={0,2}/g, '[redacted]');
}
