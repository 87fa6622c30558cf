/**
 * What every operation module shares: the clients, the grant tokens to send, and a cache of key
 * specs. Encrypt and decrypt must know whether a key is symmetric or RSA (the request differs), and
 * a key's spec never changes, so it is looked up once per URI rather than on every call.
 */
import { type KeySpec, parseKeyUri } from '@keyport/core';
import type { KmsClients, ResolvedKey } from './clients.js';
import { answered } from './errors.js';
import { toKeyInfo } from './key-info.js';
import { kmsSdk } from './sdk.js';

const SPEC_CACHE_LIMIT = 4096;

export class KmsRuntime {
  constructor(
    readonly clients: KmsClients,
    readonly grantTokens: readonly string[] | undefined,
    private readonly specs = new Map<string, KeySpec>(),
  ) {}

  /** A runtime sharing clients and spec cache, sending other grant tokens. */
  withGrantTokens(tokens: readonly string[]): KmsRuntime {
    return new KmsRuntime(this.clients, tokens.length === 0 ? undefined : tokens, this.specs);
  }

  /** `{ GrantTokens }` for requests that accept them, or nothing. */
  tokens(): { GrantTokens?: string[] } {
    return this.grantTokens === undefined ? {} : { GrantTokens: [...this.grantTokens] };
  }

  async specOf(key: ResolvedKey, signal: AbortSignal): Promise<KeySpec> {
    const cacheKey = cacheKeyOf(key);
    const known = this.specs.get(cacheKey);
    if (known !== undefined) return known;
    const out = await key.client.send(
      new (kmsSdk().DescribeKeyCommand)({ KeyId: key.keyId, ...this.tokens() }),
      {
        abortSignal: signal,
      },
    );
    const spec = toKeyInfo(out.KeyMetadata, { via: key.parsed }).spec;
    this.remember(key.uri, spec);
    return spec;
  }

  /**
   * A KeyId for APIs that take no alias (grants, import, key management): aliases are resolved
   * to the key ARN with DescribeKey; key ids and ARNs pass as they are.
   */
  async keyIdOrArn(key: ResolvedKey, signal: AbortSignal): Promise<string> {
    if (!isAlias(key.keyId)) return key.keyId;
    const out = await key.client.send(
      new (kmsSdk().DescribeKeyCommand)({ KeyId: key.keyId, ...this.tokens() }),
      {
        abortSignal: signal,
      },
    );
    return answered(out.KeyMetadata?.Arn, 'a key ARN');
  }

  /** Records the spec of the key `uri` names (as the caller wrote it or as keyport printed it). */
  remember(uri: string, spec: KeySpec): void {
    const parsed = parseKeyUri(uri);
    if (parsed.scheme !== 'aws-kms') return;
    if (this.specs.size >= SPEC_CACHE_LIMIT) this.specs.clear();
    this.specs.set(cacheKeyOf({ keyId: parsed.keyId, parsed }), spec);
  }

  /** An alias may be pointed at another key: forget what we knew when AWS says the usage is wrong. */
  forget(key: ResolvedKey): void {
    this.specs.delete(cacheKeyOf(key));
  }
}

function isAlias(keyId: string): boolean {
  return keyId.startsWith('alias/') || /^arn:[^:]+:kms:[^:]+:[0-9]{12}:alias\//.test(keyId);
}

function cacheKeyOf(key: Pick<ResolvedKey, 'keyId' | 'parsed'>): string {
  return `${key.parsed.region ?? ''}|${key.parsed.endpoint ?? ''}|${key.keyId}`;
}
