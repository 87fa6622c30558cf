/**
 * Which hosts a key URI may send this provider's requests to. A URI's `?endpoint=` is accepted
 * only when it is the provider's configured `endpoint` or one of its `allowedEndpoints`, compared
 * after normalisation (scheme and host lowercased, default port dropped, trailing slash ignored).
 * Key URIs may come from users (a tenant's key, a stored message's key URI, a CLI config), and a
 * request carries SigV4 credentials (access key id, session token) and, for Encrypt, plaintext:
 * any other endpoint is refused with `InvalidArgument` before a client exists, as the Vault,
 * Key Vault and Cloud KMS adapters refuse a URI naming a server they are not configured for.
 */
import { type AwsKmsKeyUri, KeyportError, quote } from '@keyport/core';
import { PROVIDER_NAME } from './errors.js';

/** What a region must look like: it becomes part of a host name (`kms.<region>.amazonaws.com`). */
const AWS_REGION = /^[a-z]{2}(?:-[a-z0-9]+)+-[0-9]+$/;
/** Control characters and spaces: URL parsing drops some of them silently (tabs, newlines). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters
const UNPRINTABLE = /[\s\x00-\x1f\x7f]/;

/**
 * Why `value` is not an http(s) URL the SDK can send signed requests to (a path allowed: a proxy
 * may serve KMS under one), or undefined when it is one.
 */
export function endpointProblem(value: string): string | undefined {
  if (UNPRINTABLE.test(value)) return 'must not contain spaces or control characters';
  if (!URL.canParse(value)) return 'is not an absolute URL';
  const url = new URL(value);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'must be an http(s) URL';
  if (url.username !== '' || url.password !== '') {
    return 'must not carry a user name or password (credentials never go in a URL)';
  }
  if (/[?#]/.test(value)) return 'must not carry a query or fragment';
  return undefined;
}

/** `scheme://host[:port]` (lowercased, no default port), or why the value is not one. */
export function normaliseEndpoint(value: string): { origin: string } | { problem: string } {
  const problem = endpointProblem(value);
  if (problem !== undefined) return { problem };
  const url = new URL(value);
  if (url.pathname !== '/') {
    return { problem: 'must be scheme://host[:port] without a path (what a key URI can name)' };
  }
  return { origin: `${url.protocol}//${url.host}` };
}

function originOrUndefined(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const n = normaliseEndpoint(value);
  return 'origin' in n ? n.origin : undefined;
}

/** A URI with its `?endpoint=` value cut out (it may carry a user name and password). */
function withoutEndpoint(uri: string): string {
  return uri.replace(/([?&]endpoint=)[^&#]*/, '$1<redacted>');
}

export class EndpointRule {
  /** The configured `endpoint`, normalised; undefined when none (or one no key URI can name). */
  private readonly configured: string | undefined;
  private readonly allowed: ReadonlySet<string>;

  constructor(configured: string | undefined, allowed: readonly string[] | undefined) {
    this.configured = originOrUndefined(configured);
    this.allowed = new Set((allowed ?? []).map(originOrUndefined).filter((o) => o !== undefined));
  }

  /**
   * Where a URI's requests go: undefined for the provider's own endpoint (the URI names none, or
   * names the configured one), else an allowed endpoint, normalised (the form the client is built
   * with, whatever spelling the URI used). Anything else throws `InvalidArgument`.
   */
  endpointOf(parsed: AwsKmsKeyUri, uri: string): string | undefined {
    // core's URI parser holds the same line; checked again since a region becomes a host name
    if (parsed.region !== undefined && !AWS_REGION.test(parsed.region)) {
      throw new KeyportError('InvalidArgument', 'invalid key URI (region): not an AWS region name', {
        provider: PROVIDER_NAME,
        keyUri: uri,
      });
    }
    if (parsed.endpoint === undefined) return undefined;
    const named = normaliseEndpoint(parsed.endpoint);
    if ('problem' in named) {
      // the value is not echoed: it may hold a user name and password
      throw new KeyportError('InvalidArgument', `invalid key URI (endpoint): the endpoint ${named.problem}`, {
        provider: PROVIDER_NAME,
        keyUri: withoutEndpoint(uri),
      });
    }
    if (named.origin === this.configured) return undefined;
    if (this.allowed.has(named.origin)) return named.origin;
    throw new KeyportError(
      'InvalidArgument',
      `the key URI names endpoint ${quote(named.origin, 256)}, which this provider is not configured for ` +
        '(only its endpoint option and allowedEndpoints are reachable through a key URI)',
      { provider: PROVIDER_NAME, keyUri: uri },
    );
  }
}
