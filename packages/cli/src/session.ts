/**
 * One CLI invocation's state: global options, the config (loaded when first needed), and a
 * `Keyport` client whose providers are built on demand — a command touching only `local`
 * never imports the AWS SDK or pkcs11js. Closed once at the end of `run`.
 */
import { stat } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import {
  type AuditSink,
  JsonlAuditSink,
  Keyport,
  keyFileOpenToAll,
  loadOrCreateAuditKey,
  takeSecretBytes,
} from '@keyport/core';
import { fileError } from './cli-errors.js';
import { type LoadedConfig, loadConfig } from './config/load.js';
import { secretValues } from './credentials.js';
import { auditLogFailure, usageError } from './errors.js';
import { FileTooLarge, readBounded, readFailure } from './files/read-bounded.js';
import { type CliIo, writeText } from './io.js';
import { canonicalKeyUri } from './key-uris.js';
import { Output } from './output.js';
import { buildProvider, configuredSchemes, instanceName, instancesFor } from './providers.js';

export interface GlobalOptions {
  readonly config?: string;
  readonly json: boolean;
  readonly verbose: boolean;
  readonly color: boolean;
  readonly timeout?: number;
}

export class Session {
  readonly out: Output;
  private loaded: Promise<LoadedConfig | undefined> | undefined;
  private client: Keyport | undefined;
  private readonly building = new Map<string, Promise<void>>();
  /**
   * The secrets providers were built with (tokens, passphrases, PINs read from files or from
   * variables the config names): removed from every cause an error report shows.
   */
  readonly secrets = new Set<string>();

  constructor(
    readonly io: CliIo,
    readonly options: GlobalOptions,
  ) {
    this.out = new Output(io, options.json, options.color);
  }

  /**
   * What no message may show: secret-looking variables of the environment and the secrets read
   * so far (those of 4 characters or more, as for the environment: a shorter value would blank
   * out unrelated text wherever it occurs).
   */
  redactions(): string[] {
    return [...secretValues(this.io.env), ...[...this.secrets].filter((v) => v.length >= 4)];
  }

  path(p: string): string {
    return isAbsolute(p) ? p : resolve(this.io.cwd, p);
  }

  /**
   * Canonical key URIs (see key-uris.ts): relative `local://` paths resolved against the working
   * directory (`cwd`: URIs from flags) or the config file's directory (`config`: its defaults).
   */
  async uris(list: readonly string[], base: 'cwd' | 'config' = 'cwd'): Promise<string[]> {
    const dir = base === 'config' ? ((await this.optionalConfig())?.dir ?? this.io.cwd) : this.io.cwd;
    return list.map((u) => canonicalKeyUri(nonEmptyUri(u), dir));
  }

  async uri(uri: string): Promise<string> {
    return canonicalKeyUri(nonEmptyUri(uri), this.io.cwd);
  }

  optionalConfig(): Promise<LoadedConfig | undefined> {
    this.loaded ??= loadConfig(this.options.config, this.io.env, this.io.cwd);
    return this.loaded;
  }

  async config(): Promise<LoadedConfig> {
    const c = await this.optionalConfig();
    if (c === undefined) {
      throw usageError(
        'no config file: create keyport.config.json (or .yaml) here, or pass --config / set KEYPORT_CONFIG',
      );
    }
    return c;
  }

  /** Call options every operation gets: the interrupt signal and the --timeout deadline. */
  get callOptions(): { signal?: AbortSignal; timeoutMs?: number } {
    const timeoutMs = this.options.timeout ?? this.loadedDefaults?.timeoutMs;
    return {
      ...(this.io.signal !== undefined ? { signal: this.io.signal } : {}),
      ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    };
  }

  /** The audit sinks of the config (empty until the client is built). */
  auditSinks: readonly AuditSink[] = [];

  private loadedDefaults: { timeoutMs?: number | undefined; jobs?: number | undefined } | undefined;

  private async keyport(): Promise<Keyport> {
    if (this.client !== undefined) return this.client;
    const { config, dir } = await this.config();
    this.loadedDefaults = config.defaults;
    const audit: AuditSink[] = [];
    const onAuditFailure = config.audit?.onFailure ?? 'fail';
    if (config.audit !== undefined && !this.unaudited) {
      const { log, keyFile } = auditPaths(config.audit, dir);
      try {
        const hmacKey = await auditKey(keyFile, log);
        const sink = await JsonlAuditSink.open(log, { hmacKey });
        for (const r of sink.recovered) {
          if (r.type === 'audit.recovered') {
            await this.warn(
              `audit log repaired after a crash: ${r.tornBytes} bytes of a torn line cut, ${r.adoptedRecords} records re-anchored (recorded as audit.recovered)`,
            );
          }
        }
        audit.push(sink);
      } catch (e) {
        // Fail closed: no command runs without its audit log, unless the config opted out.
        if (onAuditFailure === 'fail') throw auditLogFailure(e, log);
        await this.warn(`audit log not written (${(e as Error).message})`);
      }
    }
    this.auditSinks = audit;
    this.client ??= new Keyport({
      providers: [],
      audit,
      onAuditFailure,
      ...(onAuditFailure === 'warn'
        ? {
            onAuditError: (e: unknown) => void this.warn(`audit event not written (${(e as Error).message})`),
          }
        : {}),
    });
    return this.client;
  }

  /** A warning on stderr, with --json too: losing audit events must never pass unseen. */
  private async warn(text: string): Promise<void> {
    await writeText(this.io.stderr, `keyport: warning: ${text}\n`);
  }

  /** Builds the client without the configured audit sink: for the commands that examine that log. */
  private unaudited = false;

  async keysUnaudited(urisOrSchemes: readonly string[]): Promise<Keyport> {
    if (this.client === undefined) this.unaudited = true;
    return this.keys(urisOrSchemes);
  }

  /**
   * The client with the provider instances these URIs (or instance names, config keys, schemes)
   * address: `aws-kms+dr://…` builds only `providers["aws-kms+dr"]`.
   */
  async keys(urisOrSchemes: readonly string[]): Promise<Keyport> {
    const kp = await this.keyport();
    const { config } = await this.config();
    const wanted = new Set(urisOrSchemes.flatMap((u) => instancesFor(config, u)));
    await Promise.all([...wanted].map((k) => this.ensure(kp, k)));
    return kp;
  }

  /** The client with every configured provider; providers that fail to build are reported, not fatal. */
  async allKeys(): Promise<{ keys: Keyport; failures: Map<string, unknown> }> {
    const kp = await this.keyport();
    const { config } = await this.config();
    const failures = new Map<string, unknown>();
    await Promise.all(
      configuredSchemes(config).map((s) => this.ensure(kp, s).catch((e: unknown) => failures.set(s, e))),
    );
    return { keys: kp, failures };
  }

  /** Builds and registers the instance of one config key (`aws-kms`, `aws-kms+dr`), once. */
  private ensure(kp: Keyport, key: string): Promise<void> {
    let pending = this.building.get(key);
    if (pending === undefined) {
      pending = (async () => {
        const { config, dir } = await this.config();
        const provider = await buildProvider(config, key, {
          env: this.io.env,
          configDir: dir,
          onSecret: (value) => this.secrets.add(value),
        });
        kp.register(provider, instanceName(key));
      })();
      this.building.set(key, pending);
    }
    return pending;
  }

  async defaults(): Promise<{ recipients?: string[] | undefined; jobs?: number | undefined }> {
    const c = await this.optionalConfig();
    return c?.config.defaults ?? {};
  }

  async close(): Promise<void> {
    await this.client?.close();
  }
}

/** A key URI flag given as '' (an unset shell variable, `-k "$KEY"`) is a mistake, never "no key". */
function nonEmptyUri(uri: string): string {
  if (uri.trim() === '') throw usageError('a key URI flag was given an empty value');
  return uri;
}

/** The audit log and key file of the config, resolved against the config's directory. */
export function auditPaths(
  audit: { log: string; keyFile?: string | undefined },
  dir: string,
): { log: string; keyFile: string | undefined } {
  const at = (p: string): string => (isAbsolute(p) ? p : resolve(dir, p));
  return { log: at(audit.log), keyFile: audit.keyFile === undefined ? undefined : at(audit.keyFile) };
}

/** The audit key: from the configured file, or `<log>.key`, generated (0600) on first use. */
export async function auditKey(keyFile: string | undefined, log: string): Promise<Uint8Array> {
  if (keyFile !== undefined) return readHmacKey(keyFile);
  return (await loadOrCreateAuditKey(`${log}.key`)).key;
}

/** An HMAC key file is short: hex, base64 or raw bytes of a key. */
const MAX_KEY_FILE_BYTES = 64 * 1024;

/** An HMAC key file: hex (64+ digits), base64, or raw bytes; at least 32 bytes either way. */
export async function readHmacKey(path: string): Promise<Uint8Array> {
  let raw: Buffer;
  try {
    raw = await readBounded(path, MAX_KEY_FILE_BYTES);
  } catch (e) {
    // A file-system failure is the file error it is (exit 8, 9 or 10, naming the path), not a
    // KMS NotFound whose next step is "check the key URI"; a file too large to be a key is usage.
    if (e instanceof FileTooLarge)
      throw usageError(`the key file ${path} cannot be read (${readFailure(e)})`);
    throw fileError(e, path, 'cannot read the HMAC key file');
  }
  // As core's generated key file: one every user may read or write lets anyone forge records
  // that verify.
  const openToAll = keyFileOpenToAll((await stat(path)).mode);
  if (openToAll !== undefined) {
    raw.fill(0);
    throw usageError(`the key file ${path} ${openToAll}`);
  }
  const text = raw.toString('utf8').trim();
  const encoding = /^([0-9a-fA-F]{2}){32,}$/.test(text)
    ? 'hex'
    : /^[A-Za-z0-9+/]{43,}={0,2}$/.test(text)
      ? 'base64'
      : undefined;
  // A text key's decode leaves Node's shared Buffer pool (see core's takeSecretBytes); the file's
  // bytes are then wiped.
  const key = encoding === undefined ? raw : takeSecretBytes(Buffer.from(text, encoding));
  if (encoding !== undefined) raw.fill(0);
  if (key.length < 32) throw usageError(`the key file ${path} holds fewer than 32 bytes`);
  return key;
}
