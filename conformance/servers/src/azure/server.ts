// The HTTPS front of the Key Vault test server: TLS with a certificate made at start, fault
// injection, api-version, challenge authentication, access policy, then the routes.
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { type LoopbackCertificate, makeLoopbackCertificate } from '../shared/cert.js';
import { readState, writeState } from '../shared/state-file.js';
import { AccessPolicies, challengeHeader, type PrincipalAccess } from './auth.js';
import type { VaultContext } from './bundle.js';
import { TestClock } from './clock.js';
import { badParameter, KeyVaultError } from './errors.js';
import { type FaultSettings, Faults } from './faults.js';
import type { ServerMode } from './material.js';
import { loadVault, type SavedVault, saveVault } from './persist.js';
import { autoRotate } from './rotation.js';
import { route } from './router.js';
import { KeyStore } from './store.js';
import type { Body } from './validate.js';

/**
 * Every api-version of the keys data plane that a published official client can send: the
 * `ApiVersion` enums of azure-keyvault-keys 4.12.0b3 (PyPI; its default is 2026-01-01-preview)
 * and 4.11.3 (2025-07-01), @azure/keyvault-keys 4.10.2 (npm; 2025-07-01), Go azkeys v1.6.0 (its
 * default is 2026-04-01, the newest stable version), Java azure-security-keyvault-keys 4.11.1
 * (2025-07-01), and the previews the earlier clients defaulted to. Anything else gets the
 * service's 400 BadParameter.
 */
export const SUPPORTED_API_VERSIONS = [
  '2016-10-01',
  '7.0',
  '7.1',
  '7.2-preview',
  '7.2',
  '7.3-preview',
  '7.3',
  '7.4-preview.1',
  '7.4',
  '7.5-preview.1',
  '7.5',
  '7.6-preview.1',
  '7.6-preview.2',
  '7.6',
  '2025-07-01',
  '2026-01-01-preview',
  '2026-04-01',
];
const LATEST_STABLE_API_VERSION = '2026-04-01';

/** The token a server started without `principals` accepts, with every permission. */
export const DEFAULT_AZURE_TOKEN = 'keyport-test-admin';

export interface AzureKeyVaultServerOptions {
  /** `vault` (RSA and EC) or `hsm` (a Managed HSM: adds oct-HSM and the -HSM key types). */
  mode?: ServerMode;
  /** Port; 0 (the default) picks a free one. */
  port?: number;
  /** Loopback address to listen on: 127.0.0.1 (the default) or localhost. */
  host?: '127.0.0.1' | 'localhost';
  /** Bearer token -> the access-policy key permissions of that principal, or 'all'. */
  principals?: Readonly<Record<string, PrincipalAccess>>;
  /** Tenant named in the 401 challenge. */
  tenantId?: string;
  /** Soft-delete retention, 7 to 90 days (default 90). */
  softDeleteRetentionDays?: number;
  /** 32 bytes sealing backup blobs; servers sharing it can restore each other's backups. */
  backupSecret?: Uint8Array;
  faults?: FaultSettings;
  /**
   * A JSON file holding the vault's keys: read at start when it exists, replaced after every
   * change. Holds private key material in the clear (0600): for tests only.
   */
  stateFile?: string;
  /**
   * The bearer token the managed-identity endpoint hands out (default DEFAULT_AZURE_TOKEN, the
   * token with every permission when `principals` is not given).
   */
  identityToken?: string;
  /** PEM certificate and key to serve instead of the generated loopback certificate. */
  tls?: { certFile: string; keyFile: string };
}

export interface AzureKeyVaultServer {
  /** https://127.0.0.1:<port> — the vault URL to give KeyClient. */
  readonly url: string;
  /** PEM file of the certificate to trust (for the test process only). */
  readonly caFile: string;
  readonly mode: ServerMode;
  /**
   * What to set as IDENTITY_ENDPOINT and IDENTITY_HEADER so DefaultAzureCredential /
   * ManagedIdentityCredential get a token from this server (README-azure.md, "Credentials").
   */
  readonly identity: { readonly endpoint: string; readonly header: string };
  readonly clock: TestClock;
  readonly faults: Faults;
  stop(): Promise<void>;
}

const MAX_BODY = 1 << 20;

/** Where the managed-identity token endpoint is served. */
const IDENTITY_PATH = '/_keyport/identity/token';

function userCertificate(tls: { certFile: string; keyFile: string }): LoopbackCertificate {
  return {
    dir: '',
    caFile: tls.certFile,
    cert: readFileSync(tls.certFile),
    key: readFileSync(tls.keyFile),
    remove: async () => {},
  };
}

/** A body over MAX_BODY: answered 400 BadParameter, then the connection is closed. */
class BodyTooLarge extends KeyVaultError {
  constructor() {
    super(400, 'BadParameter', 'The request body is too large.');
  }
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // A declared length over the limit is refused at once, not after waiting for bytes that a
    // lying client may never send.
    if (Number(req.headers['content-length'] ?? 0) > MAX_BODY) return reject(new BodyTooLarge());
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        // Stop reading: the rest of an oversized (chunked) body is never drained, however long
        // the client keeps sending; the refusal closes the connection.
        req.pause();
        chunks.length = 0;
        reject(new BodyTooLarge());
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function parseBody(raw: Buffer): Body {
  if (raw.length === 0) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString('utf8'));
  } catch {
    throw badParameter('The request body is not valid JSON.');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw badParameter('The request body must be a JSON object.');
  }
  return parsed as Body;
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  const payload = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'x-ms-request-id': randomUUID(),
    'x-ms-keyvault-service-version': '1.9.0.0',
    'cache-control': 'no-cache',
    'content-length': Buffer.byteLength(payload),
    ...headers,
  });
  res.end(payload);
}

export async function startAzureKeyVaultServer(
  opts: AzureKeyVaultServerOptions = {},
): Promise<AzureKeyVaultServer> {
  const mode = opts.mode ?? 'vault';
  if (opts.host !== undefined && opts.host !== '127.0.0.1' && opts.host !== 'localhost') {
    throw new RangeError('host: the test server listens on loopback only (127.0.0.1 or localhost)');
  }
  const days = opts.softDeleteRetentionDays ?? 90;
  if (!Number.isInteger(days) || days < 7 || days > 90)
    throw new RangeError('softDeleteRetentionDays: 7 to 90');
  if (opts.backupSecret && opts.backupSecret.length !== 32) throw new RangeError('backupSecret: 32 bytes');
  const policies = new AccessPolicies(opts.principals ?? { [DEFAULT_AZURE_TOKEN]: 'all' });
  const tenantId = opts.tenantId ?? '72f988bf-0000-4000-8000-00000000beef';
  const clock = new TestClock();
  const faults = new Faults(opts.faults);
  const store = new KeyStore(clock, days);
  if (opts.stateFile) {
    const saved = readState<SavedVault>(opts.stateFile);
    if (saved) loadVault(mode, store, saved);
  }
  const cert = opts.tls ? userCertificate(opts.tls) : await makeLoopbackCertificate();

  let ctx: VaultContext | undefined;
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'https://127.0.0.1');
    const raw = await readBody(req);
    if (url.pathname === IDENTITY_PATH) return identityToken(req, url, res);
    if (url.pathname.startsWith('/_keyport/')) return admin(url.pathname, raw, res);
    if (!ctx) throw new Error('server not ready');
    const fault = faults.next();
    if (faults.latencyMs > 0) await sleep(faults.latencyMs);
    if (fault.kind === 'drop') {
      req.socket.destroy();
      return;
    }
    if (fault.kind === 'throttle') {
      const err = new KeyVaultError(
        429,
        'Throttled',
        'Request was not processed because too many requests were received.',
      );
      return send(res, 429, err.toBody(), { 'retry-after': String(fault.retryAfterSeconds) });
    }
    const apiVersion = url.searchParams.get('api-version');
    if (!apiVersion) {
      throw badParameter('The api-version query parameter (?api-version=) is required for all requests.');
    }
    if (!SUPPORTED_API_VERSIONS.includes(apiVersion)) {
      // The service's own answer; the version is quoted back only when short.
      const shown = apiVersion.length <= 32 ? apiVersion : `${apiVersion.slice(0, 32)}…`;
      throw badParameter(
        `The specified version (${shown}) is not recognized. Consider using the latest supported version (${LATEST_STABLE_API_VERSION}).`,
      );
    }
    let principal: ReturnType<AccessPolicies['authenticate']>;
    try {
      principal = policies.authenticate(req.headers.authorization);
    } catch (e) {
      if (!(e instanceof KeyVaultError)) throw e;
      // A Managed HSM answers the challenge with an empty body.
      const body = mode === 'hsm' ? undefined : e.toBody();
      return send(res, e.status, body, { 'www-authenticate': challengeHeader(mode, tenantId) });
    }
    const segments = url.pathname
      .split('/')
      .slice(1)
      .map((s) => decodeURIComponent(s));
    const r = route(ctx, req.method ?? 'GET', segments, url.searchParams, parseBody(raw));
    AccessPolicies.authorize(principal, r.permission, 'keyport-test');
    ctx.store.sweep();
    await autoRotate(ctx);
    const result = await r.run();
    if (opts.stateFile && req.method !== 'GET') writeState(opts.stateFile, saveVault(mode, ctx.store));
    send(res, r.status ?? 200, r.status === 204 ? undefined : result);
  };

  // The App Service managed-identity protocol (api-version 2019-08-01), which
  // DefaultAzureCredential / ManagedIdentityCredential of every official SDK speaks when
  // IDENTITY_ENDPOINT and IDENTITY_HEADER are set: unmodified credential code gets a token for
  // this server without any network beyond loopback.
  const identitySecret = randomBytes(16).toString('hex');
  const identityToken = (req: IncomingMessage, url: URL, res: ServerResponse): void => {
    if (req.headers['x-identity-header'] !== identitySecret) {
      send(res, 401, { error: 'unauthorized', error_description: 'X-IDENTITY-HEADER is missing or wrong.' });
      return;
    }
    const resource = url.searchParams.get('resource') ?? '';
    if (!/^https:\/\/(vault|managedhsm)\.azure\.net\/?$/.test(resource)) {
      send(res, 400, {
        error: 'invalid_resource',
        error_description: 'resource must be https://vault.azure.net or https://managedhsm.azure.net.',
      });
      return;
    }
    const expiresOn = Math.floor(Date.now() / 1000) + 3600;
    send(res, 200, {
      access_token: opts.identityToken ?? DEFAULT_AZURE_TOKEN,
      expires_on: String(expiresOn),
      resource,
      token_type: 'Bearer',
      client_id: '00000000-0000-4000-8000-00000000beef',
    });
  };

  const admin = (path: string, raw: Buffer, res: ServerResponse): void => {
    const body = raw.length > 0 ? (JSON.parse(raw.toString('utf8')) as Record<string, unknown>) : {};
    if (path === '/_keyport/faults') {
      faults.set(body as FaultSettings);
      send(res, 204, undefined);
    } else if (path === '/_keyport/clock') {
      if (typeof body.advanceSeconds === 'number') clock.advance(body.advanceSeconds);
      send(res, 200, { now: clock.nowSeconds() });
    } else {
      send(res, 404, badParameter('Unknown admin route.').toBody());
    }
  };

  const server: Server = createServer({ cert: cert.cert, key: cert.key }, (req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (res.headersSent || res.destroyed) return;
      if (e instanceof BodyTooLarge) {
        send(res, e.status, e.toBody(), { connection: 'close' });
        req.socket.end();
        return;
      }
      if (e instanceof KeyVaultError) return send(res, e.status, e.toBody());
      if (e instanceof URIError)
        return send(res, 400, badParameter('The request URI is malformed.').toBody());
      if (e instanceof RangeError || e instanceof SyntaxError) {
        return send(res, 400, badParameter('Invalid admin request.').toBody());
      }
      send(res, 500, { error: { code: 'InternalServerError', message: 'The test server failed.' } });
    });
  });
  // Every TCP connection, from accept on. closeAllConnections() only knows the connections whose
  // TLS handshake finished; one that never sends a ClientHello (a port probe left open, a
  // slowloris client) would hold server.close() for the TLS handshake timeout, 120 s.
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const vaultUrl = `https://${opts.host ?? '127.0.0.1'}:${port}`;
  ctx = {
    mode,
    vaultUrl,
    clock,
    store,
    backupKey: Buffer.from(opts.backupSecret ?? randomBytes(32)),
  };

  let stopped: Promise<void> | undefined;
  return {
    url: vaultUrl,
    caFile: cert.caFile,
    mode,
    identity: { endpoint: `${vaultUrl}${IDENTITY_PATH}`, header: identitySecret },
    clock,
    faults,
    stop: () => {
      stopped ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        for (const s of sockets) s.destroy();
      }).then(() => cert.remove());
      return stopped;
    },
  };
}
