/**
 * A listing that never ends on its own: pages with ever new page tokens (no token repeats, so the
 * repeated-token guard does not stop it). Versions are kept whole in memory (describeKey, listKeys
 * of asymmetric keys, the newest version): their listing stops at MAX_LISTED_VERSIONS; pages with
 * nothing on them stop at MAX_EMPTY_PAGES. Before, either went on until the call's deadline
 * (forever without one), the versions growing in memory all the while.
 */
import { describe, expect, it } from 'vitest';
import { MAX_LISTED_VERSIONS } from '../src/keys.js';
import { MAX_EMPTY_PAGES } from '../src/rpc.js';
import { type ClientMethod, keyportOf, kmsSuite, wrapClient } from './support/suite.js';

const suite = kmsSuite('projects/keyport-endless/locations/global/keyRings/endless');
/** The stand-in gives up here: a listing still going is what the test fails on. */
const GIVE_UP = 200;

/**
 * `method` answers, page after page, what `page` makes of the real first page's items, each
 * time with a token it never gave before.
 */
function endless(page: (items: unknown[]) => unknown[]) {
  let pages = 0;
  const wrap =
    (real: ClientMethod): ClientMethod =>
    async (request, options) => {
      if (++pages > GIVE_UP) throw new Error(`still listing after ${GIVE_UP} pages`);
      const [items, , raw] = await real({ ...request, pageToken: '' }, options);
      return [page(items as unknown[]), { ...request, pageToken: `page-${pages}` }, raw];
    };
  return { wrap, pages: () => pages };
}

describe('a listing whose pages carry ever new tokens', () => {
  it('versions: describeKey ends Internal once MAX_LISTED_VERSIONS are listed', async () => {
    const p = suite.providerOn();
    const kp = keyportOf(p);
    const key = await kp.createKey('gcp-kms', { name: suite.name('versions'), spec: 'EC_P256' });
    // 1000 listings of the key's one version a page: the cap is met after 25 pages.
    const listing = endless((items) => Array.from({ length: 1000 }, () => items[0]));
    await wrapClient(p, { listCryptoKeyVersions: listing.wrap });
    const error = await kp.describeKey(key.uri).catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'Internal',
      retryable: false,
      message: expect.stringContaining(`more than ${MAX_LISTED_VERSIONS} versions`),
    });
    expect(listing.pages()).toBe(MAX_LISTED_VERSIONS / 1000 + 1);
    await kp.close();
  });

  it('empty pages: listKeys ends Internal after MAX_EMPTY_PAGES of them', async () => {
    const p = suite.providerOn();
    const kp = keyportOf(p);
    const listing = endless(() => []);
    await wrapClient(p, { listCryptoKeys: listing.wrap });
    const listed: unknown[] = [];
    const error = await (async () => {
      for await (const k of kp.listKeys('gcp-kms')) listed.push(k);
    })().catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'Internal',
      retryable: false,
      message: expect.stringContaining(`more than ${MAX_EMPTY_PAGES} empty pages`),
    });
    expect(listed).toEqual([]);
    expect(listing.pages()).toBe(MAX_EMPTY_PAGES + 1);
    await kp.close();
  });

  it('a listing of real pages with a few empty ones among them still ends normally', async () => {
    const p = suite.providerOn();
    const kp = keyportOf(p);
    const key = await kp.createKey('gcp-kms', { name: suite.name('plain'), spec: 'AES_256' });
    let empties = 0;
    await wrapClient(p, {
      // Three empty pages first (a token of their own each), then the real listing.
      listCryptoKeys: (real) => async (request, options) => {
        const token = (request as { pageToken?: string }).pageToken ?? '';
        if (empties < 3) return [[], { ...request, pageToken: `empty-${++empties}` }, {}];
        return real({ ...request, pageToken: token.startsWith('empty-') ? '' : token }, options);
      },
    });
    const uris: string[] = [];
    for await (const k of kp.listKeys('gcp-kms')) uris.push(k.uri);
    expect(uris).toContain(key.uri);
    await kp.close();
  });
});
