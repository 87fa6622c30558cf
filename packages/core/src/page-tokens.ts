/**
 * The page tokens one listing has followed. A server (or a proxy in front of it) that answers a
 * token it gave before, or cycles through a few, would have the listing loop forever, and a
 * caller collecting every page grow without bound. Every listing that follows tokens asks this
 * first, so such an answer ends the listing with the caller's error instead. Adapters may not
 * import each other, so the rule lives here.
 *
 * Long tokens are kept as digests: a service's token can be kilobytes (an encoded cursor), and a
 * long listing has thousands of them.
 */
import { createHash } from 'node:crypto';
import type { KeyportError } from './errors.js';

/** Tokens up to this many UTF-16 units are kept as they are; longer ones as a SHA-256 digest. */
const KEPT_AS_IS = 64;

export class PageTokens {
  private readonly seen = new Set<string>();

  /** `repeated` makes the error for a token already followed (typically `Internal`). */
  constructor(private readonly repeated: () => KeyportError) {}

  /**
   * The token to follow next, or undefined when the listing ends (no token, or an empty one).
   * Throws `repeated()` for a token this listing has followed already.
   */
  next(token: string | null | undefined): string | undefined {
    if (token === undefined || token === null || token === '') return undefined;
    // Prefixed, so a short token can never equal a long one's digest.
    const kept =
      token.length <= KEPT_AS_IS ? `=${token}` : `#${createHash('sha256').update(token).digest('base64')}`;
    if (this.seen.has(kept)) throw this.repeated();
    this.seen.add(kept);
    return token;
  }

  /** How many tokens this listing has followed. */
  get followed(): number {
    return this.seen.size;
  }
}
