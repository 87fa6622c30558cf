import type { KeyClient } from '@azure/keyvault-keys';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type AzureKeyVaultServer, startAzureKeyVaultServer } from '../src/azure/index.js';
import { ADMIN, keyClient, PRINCIPALS, raw } from './azure-helpers.js';

// Behaviour that Microsoft's published @azure/keyvault-keys samples rely on, found by running
// those samples (outside this repository) against the server. Each test states the fact in our
// own words and drives it through the official client.
let server: AzureKeyVaultServer;
let client: KeyClient;
beforeEach(async () => {
  server = await startAzureKeyVaultServer({ principals: PRINCIPALS });
  client = keyClient(server, ADMIN);
});
afterEach(() => server?.stop());

const poll = { intervalInMs: 1 };

async function createKeys(prefix: string, count: number): Promise<string[]> {
  const names: string[] = [];
  for (let i = 0; i < count; i++) {
    const name = `${prefix}-${String(i).padStart(2, '0')}`;
    await client.createEcKey(name);
    names.push(name);
  }
  return names;
}

describe('listing continuation ($skiptoken) survives changes between pages', () => {
  // The service's $skiptoken is a continuation marker naming a key, not an offset. A script that
  // empties a vault by deleting every key while it walks the listing (and then purging every
  // deleted key while it walks that listing) must reach every key.
  it('deleting each listed key before asking for the next page skips none', async () => {
    const names = await createKeys('walk', 9);
    const seen: string[] = [];
    for await (const page of client.listPropertiesOfKeys().byPage({ maxPageSize: 2 })) {
      for (const props of page) {
        seen.push(props.name);
        await (await client.beginDeleteKey(props.name, poll)).pollUntilDone();
      }
    }
    expect(seen).toEqual(names);
    const live: string[] = [];
    for await (const props of client.listPropertiesOfKeys()) live.push(props.name);
    expect(live).toEqual([]);
  });

  it('purging each listed deleted key before asking for the next page skips none', async () => {
    const names = await createKeys('gone', 7);
    for (const name of names) await (await client.beginDeleteKey(name, poll)).pollUntilDone();
    const seen: string[] = [];
    for await (const page of client.listDeletedKeys().byPage({ maxPageSize: 3 })) {
      for (const deleted of page) {
        seen.push(deleted.name);
        await client.purgeDeletedKey(deleted.name);
      }
    }
    expect(seen).toEqual(names);
    const left: string[] = [];
    for await (const deleted of client.listDeletedKeys()) left.push(deleted.name);
    expect(left).toEqual([]);
  });

  it('a key created behind the cursor neither shifts nor repeats the rest of the walk', async () => {
    await createKeys('mid', 6);
    const seen: string[] = [];
    let first = true;
    for await (const page of client.listPropertiesOfKeys().byPage({ maxPageSize: 2 })) {
      seen.push(...page.map((p) => p.name));
      if (first) await client.createEcKey('mid-0');
      first = false;
    }
    // 'mid-0' sorts before the cursor: not listed in this walk, and no key is listed twice.
    expect(seen).toEqual(['mid-00', 'mid-01', 'mid-02', 'mid-03', 'mid-04', 'mid-05']);
  });

  it('a $skiptoken the service did not issue is a 400 BadParameter', async () => {
    for (const token of ['not-base64!', Buffer.from('Key With Spaces').toString('base64url')]) {
      const res = await raw(server, 'GET', `/keys?api-version=7.6&maxresults=1&$skiptoken=${token}`, {
        token: ADMIN,
      });
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ error: { code: 'BadParameter' } });
    }
  });
});
