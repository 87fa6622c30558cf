/**
 * The one place where keyport calls the client: every call gets `retry: null` (core's policy is
 * the only retry loop), the AbortSignal (gax cancels the in-flight call when it fires) and the
 * configured request headers; failures leave as KeyportErrors. Also the wire's field codecs:
 * CRC32C integrity fields, Int64Value and bytes as the client hands them back.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import type { KeyManagementServiceClient } from '@google-cloud/kms';
import {
  type ErrorCode,
  KeyportError,
  PageTokens,
  type ProviderCallOptions,
  takeSecretBytes,
} from '@keyport/core';
import { type GcpOperation, mapGcpError } from './errors.js';

/** The gax CallOptions keyport sends. A fresh object per call: gax writes into `otherArgs.headers`. */
export interface KmsCallOptions {
  retry: null;
  signal: AbortSignal;
  otherArgs: { headers: Record<string, string> };
  autoPaginate?: boolean;
}

type Kms = KeyManagementServiceClient;

export class Rpc {
  constructor(
    /** The client, built (SDK loaded) on first use; a load failure is already a KeyportError. */
    readonly client: () => Promise<Kms>,
    private readonly headers: Readonly<Record<string, string>>,
    readonly providerName: string,
  ) {}

  private options(o: ProviderCallOptions, paging?: { autoPaginate: false }): KmsCallOptions {
    return { retry: null, signal: o.signal, otherArgs: { headers: { ...this.headers } }, ...paging };
  }

  /** Runs one client call and returns the response (the first element of gax's tuple). */
  async call<T>(
    o: ProviderCallOptions,
    fn: Call<T>,
    keyUri?: string,
    op: GcpOperation = 'other',
  ): Promise<T> {
    const kms = await this.client();
    try {
      return (await fn(this.options(o), kms))[0];
    } catch (e) {
      throw mapGcpError(e, op, defined({ provider: this.providerName, keyUri })) ?? e;
    }
  }

  /** Pages through a list call one request at a time (autoPaginate off), yielding items. */
  async *pages<T, Req extends object>(
    o: ProviderCallOptions,
    first: NoInfer<Req>,
    fn: Page<T, Req>,
    keyUri?: string,
  ) {
    let request: Req | null | undefined = first;
    // A token this listing has followed would have it loop forever (a caller collecting every
    // page, as describeKey does with versions, would grow without bound): refused, not followed.
    const tokens = new PageTokens(
      () =>
        new KeyportError(
          'Internal',
          'Cloud KMS answered a page token it had already given (an endless listing)',
          defined({ provider: this.providerName, keyUri }),
        ),
    );
    let empty = 0;
    while (request) {
      const req: Req = request;
      const call: Call<Awaited<ReturnType<Page<T, Req>>>> = async (_, kms) => [
        await fn(req, this.options(o, { autoPaginate: false }), kms),
      ];
      const [items, next] = await this.call(o, call, keyUri);
      // Pages with nothing on them and ever new tokens would go on until the deadline (forever for
      // a driver called without one), yielding nothing a caller could stop on.
      if (items.length === 0 && ++empty > MAX_EMPTY_PAGES)
        throw new KeyportError(
          'Internal',
          `Cloud KMS answered more than ${MAX_EMPTY_PAGES} empty pages in one listing: it was ended`,
          defined({ provider: this.providerName, keyUri }),
        );
      yield* items;
      const token = tokens.next((next as { pageToken?: string | null } | null | undefined)?.pageToken);
      request = token !== undefined ? next : undefined;
    }
  }
}

/**
 * Empty pages one listing may answer (Cloud KMS sends none with a next-page token without a
 * filter, which keyport never sets; the Key Vault driver allows as many).
 */
export const MAX_EMPTY_PAGES = 100;

type Call<T> = (options: KmsCallOptions, kms: Kms) => Promise<readonly [T, ...unknown[]]>;
type Page<T, R> = (
  req: R,
  co: KmsCallOptions,
  kms: Kms,
) => Promise<readonly [T[], R | null | undefined, ...unknown[]]>;

/** Facts that never change once a version exists (its algorithm, its public key), learnt once. */
export interface VersionPublicKey {
  readonly algorithm: string;
  readonly key: KeyObject;
  /** SPKI DER. */
  readonly spki: Uint8Array;
}

/** What the operation modules share: the send path, the provider's settings and its caches. */
export interface Runtime {
  readonly rpc: Rpc;
  readonly keyRing: string | undefined;
  readonly protectionLevel: 'SOFTWARE' | 'HSM';
  readonly importJobKeyBits: 3072 | 4096;
  /** Algorithm by version resource name. */
  readonly algorithms: Map<string, string>;
  readonly publicKeys: Map<string, VersionPublicKey>;
  /** Keys known to be ASYMMETRIC_DECRYPT (a purpose never changes), learnt on first use. */
  readonly asymmetricKeys: Map<string, true>;
  /** createKey calls in turn, by crypto-key resource name (core's `oneAtATime`). */
  readonly creating: Map<string, Promise<void>>;
  /** CreateCryptoKey requests that ended without an answer, by crypto-key resource name (keys.ts). */
  readonly unanswered: Map<string, UnansweredCreate>;
}

/** A CreateCryptoKey that was sent but got no answer: Cloud KMS may have made the key. */
export interface UnansweredCreate {
  /** Date.now() when that attempt was sent (it is forgotten some minutes later). */
  readonly sentAt: number;
  /** The request's fields a key made from it shows (see keys.ts `createdShape`). */
  readonly shape: string;
  /**
   * The random create marker the request carried (keys.ts `CREATE_MARKER_LABEL`): a key bearing
   * it was made by this request. Undefined when the labels left no room for it.
   */
  readonly marker: string | undefined;
}

const MAX_CACHED = 1000;

/** Keeps `value` under `key`, forgetting everything once the map is full (bounded memory). */
export function remember<K, V>(map: Map<K, V>, key: K, value: V): V {
  if (map.size >= MAX_CACHED) map.clear();
  map.set(key, value);
  return value;
}

// ------------------------------------------------------------------ wire codecs

/**
 * CRC32C (Castagnoli), the checksum of Cloud KMS's integrity fields
 * (https://cloud.google.com/kms/docs/data-integrity-guidelines): table-driven, reflected
 * polynomial 0x82F63B78; none of the installed packages ships one.
 */
const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32c(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (let i = 0; i < data.length; i++) {
    crc = (CRC_TABLE[(crc ^ (data[i] as number)) & 0xff] as number) ^ (crc >>> 8);
  }
  return (crc ^ 0xffffffff) >>> 0;
}

export const checksum = (data: Uint8Array): { value: number } => ({ value: crc32c(data) });

/** Reads a protobuf Int64Value as the client hands it back (number, string or Long-like). */
export function int64Value(field: Int64Value): number | undefined {
  const raw = field?.value;
  if (raw === undefined || raw === null) return undefined;
  const n = Number(typeof raw === 'object' ? String(raw) : raw);
  return Number.isFinite(n) ? n : undefined;
}

/**
 * A bytes field as the client returns it (a Buffer, or base64 text over REST JSON), moved into
 * memory of its own and wiped where the client had it (see core's takeSecretBytes): gRPC's
 * decoded fields are views of the response message, itself often in Node's shared pool, whose
 * `.buffer` holds other data; the REST decode lands in the pool. The response is ours alone, so
 * wiping its plaintext costs nobody. `view` skips the copy for bytes keyport copies itself
 * before anyone sees them.
 */
export function toBytes(value: Bytes, view = false): Uint8Array {
  if (typeof value === 'string') return takeSecretBytes(Buffer.from(value, 'base64'));
  const bytes = value ?? new Uint8Array(0);
  return view ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) : takeSecretBytes(bytes);
}

/**
 * The bytes as a standalone array: the REST transport serialises a view's whole underlying
 * buffer (seen with @google-cloud/kms 6.3.0 fallback), so views are copied before they are sent.
 */
export function own(bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
}

/** A `.catch` handler that lets KeyportErrors of `code` pass (the wanted state already holds) and rethrows the rest. */
export const unless =
  (code: ErrorCode) =>
  (e: unknown): void => {
    if (!(e instanceof KeyportError && e.code === code)) throw e;
  };

/** A failed integrity check on our side of the wire (retryable: the next attempt may arrive intact). */
export function integrityError(what: string): KeyportError {
  return new KeyportError('Integrity', `CRC32C check failed: ${what}`, { retryable: true });
}

/**
 * A public key the service sent as PEM (a key version's, an import job's wrapping key). PEM that
 * Node cannot read is the service's malformed answer (its checksum matched): Internal, not
 * retryable, saying what could not be read; never Node's own error.
 */
export function publicKeyFromPem(
  pem: string,
  what: string,
  details: { keyUri: string; provider: string },
): KeyObject {
  try {
    return createPublicKey(pem);
  } catch {
    const why = `the ${what} Cloud KMS sent could not be read (malformed PEM)`;
    throw new KeyportError('Internal', why, { ...details, retryable: false });
  }
}

/** The response's bytes, checked against the checksum the service sent with them. */
type Int64Value = { value?: unknown } | null | undefined;
type Bytes = Uint8Array | string | null | undefined;
export function checked(bytes: Bytes, crc: Int64Value, what: string, view = false): Uint8Array {
  const out = toBytes(bytes, view);
  if (int64Value(crc) !== crc32c(out)) throw integrityError(what);
  return out;
}

/** The service's `verified_*` flag: it checked the checksum keyport sent. */
export function verified(flag: boolean | null | undefined, what: string): void {
  if (flag !== true) throw integrityError(`Cloud KMS did not verify the ${what} checksum`);
}

type Defined<T> = { [K in keyof T as undefined extends T[K] ? never : K]: T[K] } & {
  [K in keyof T as undefined extends T[K] ? K : never]?: Exclude<T[K], undefined>;
};

/** The object without its undefined fields (results leave optional fields out rather than undefined). */
export function defined<T extends object>(fields: T): Defined<T> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) out[k] = v;
  return out as Defined<T>;
}
