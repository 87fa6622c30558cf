/**
 * A listing finds the keyport keys by one search over every keyport metadata object on the token
 * (CKO_DATA, CKA_APPLICATION "keyport"), and anyone with the PIN can make any number of them. The
 * search reads pages of at most 64 handles and holds one page, and the distinct names, at a time
 * (planted-labels.test.ts bounds the names). Between pages the event loop runs and the listing's
 * signal is heard: a crowded token makes the search long, not the process unresponsive, and an
 * aborted listing stops reading.
 */
import { describe, expect, it } from 'vitest';
import { listKeyNames } from '../src/key-store.js';
import type { Handle } from '../src/p11.js';
import { metadataTemplate, signal, uniqueName, useProvider, withWrappedP11 } from './support.js';

const t = useProvider({ keyCacheMs: 0 });
const { onToken } = t;

const PAGES = 20;

/**
 * 64 × PAGES session objects shaped as keyport metadata under one label (what a listing reads
 * them as does not matter: each is visited). Session objects are cheaper than token objects and
 * live while the pool's session that made them stays open.
 */
function plant(): Promise<Handle[]> {
  const label = uniqueName('crowd');
  return onToken((session) =>
    Array.from({ length: 64 * PAGES }, () =>
      t.provider.p11.C_CreateObject(session, metadataTemplate(label, Buffer.from('{}'), false)),
    ),
  );
}

const remove = (handles: readonly Handle[]) =>
  onToken((session) => {
    for (const h of handles) t.provider.p11.C_DestroyObject(session, h);
  });

interface Page {
  /** Handles C_FindObjects handed back. */
  readonly handles: number;
  /** Event-loop turns (setImmediate ticks) seen before it. */
  readonly turn: number;
}

/** The C_FindObjects pages read while `fn` runs, each with the event-loop turn it was read in. */
async function pagesRead(fn: (pages: Page[]) => Promise<unknown>): Promise<Page[]> {
  const pages: Page[] = [];
  let turn = 0;
  let ticking = true;
  const tick = () => {
    turn++;
    if (ticking) setImmediate(tick);
  };
  setImmediate(tick);
  try {
    await withWrappedP11(
      t.provider,
      ['C_FindObjects'],
      (_name, original) =>
        function (this: unknown, ...args: unknown[]) {
          const page = original.apply(this, args);
          pages.push({ handles: Array.isArray(page) ? page.length : 0, turn });
          return page;
        },
      () => fn(pages),
    );
  } finally {
    ticking = false;
  }
  return pages;
}

describe('a listing over many metadata objects', () => {
  it('reads one page of at most 64 handles per event-loop turn', async () => {
    const planted = await plant();
    try {
      const pages = await pagesRead(() => onToken((session) => listKeyNames(t.provider.p11, session)));
      expect(pages.length).toBeGreaterThan(PAGES);
      expect(Math.max(...pages.map((p) => p.handles))).toBeLessThanOrEqual(64);
      const perTurn = new Map<number, number>();
      for (const p of pages) perTurn.set(p.turn, (perTurn.get(p.turn) ?? 0) + 1);
      expect(Math.max(...perTurn.values())).toBe(1);
    } finally {
      await remove(planted);
    }
  });

  it('an aborted listing stops reading the search', async () => {
    const planted = await plant();
    try {
      const controller = new AbortController();
      const pages = await pagesRead(async (read) => {
        const listing = (async () => {
          for await (const _ of t.provider.listKeys({ signal: controller.signal })) {
            // keys are listed after the names are read; none is expected before the abort
          }
        })();
        // Aborted as soon as the search has handed over its first page.
        const abortAfterFirstPage = () => {
          if (read.length > 0) controller.abort();
          else setImmediate(abortAfterFirstPage);
        };
        abortAfterFirstPage();
        await expect(listing).rejects.toMatchObject({ code: 'Aborted' });
      });
      const handles = pages.reduce((n, p) => n + p.handles, 0);
      expect(handles).toBeLessThan(64 * 3);
      // The session is back in the pool, its search ended: a listing afterwards reads everything.
      const names = await onToken((session) => listKeyNames(t.provider.p11, session, signal()));
      expect(Array.isArray(names)).toBe(true);
    } finally {
      await remove(planted);
    }
  });
});
