/**
 * A createKey without a rotation whose answer was lost after the vault made the key (a dropped
 * connection, a timeout): core repeats it (a second create of a name is AlreadyExists on Key
 * Vault), and the repeat must answer with the key its own first attempt made, recognised by the
 * random marker this provider instance sent, never with a key someone else made under the name.
 *
 * Faults are placed on one request exactly, as in create-key-half-done.test.ts: a pipeline policy
 * sees the request about to leave; here it can also let the vault serve it and then lose the
 * answer (the request made its change, the caller sees a reset connection).
 */
import type { KeyClientOptions } from '@azure/keyvault-keys';
import { Keyport, KeyportError } from '@keyport/core';
import {
  type AzureKeyVaultServer,
  DEFAULT_AZURE_TOKEN,
  startAzureKeyVaultServer,
} from '@keyport/test-servers';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AzureKeyVaultProvider } from '../src/index.js';
import { CREATE_MARKER_TAG, DESCRIPTION_TAG, PENDING_ROTATION_TAG } from '../src/keys.js';
import { clientOptions, hostOf, sdkClient, staticToken, uniqueName, utf8 } from './support/server.js';

type Policy = NonNullable<KeyClientOptions['additionalPolicies']>[number]['policy'];

/** The create marker: a random value only the provider instance that sent it knows. */
const MARKER = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * One-shot faults: the first request a rule matches runs `before` just before it leaves (awaited),
 * is sent unless `before` says it is lost on the way out, and then runs `after` (awaited) once the
 * vault answered; an `after` answering 'lost' drops the answer: the vault made its change, the
 * caller sees a reset connection.
 */
interface Rule {
  readonly match: (method: string, path: string) => boolean;
  readonly before?: () => unknown;
  readonly after?: () => unknown;
}
let rules: Rule[] = [];
const reset = () => Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
const injector: Policy = {
  name: 'keyport-test-lost-answers',
  async sendRequest(request, next) {
    const path = new URL(request.url).pathname;
    const i = rules.findIndex((r) => r.match(request.method, path));
    const [rule] = i >= 0 ? rules.splice(i, 1) : [];
    if ((await rule?.before?.()) === 'lost') throw reset();
    const response = await next(request);
    if ((await rule?.after?.()) === 'lost') throw reset();
    return response;
  },
};

let server: AzureKeyVaultServer;
const opened: Keyport[] = [];
beforeAll(async () => {
  server = await startAzureKeyVaultServer({ mode: 'vault', softDeleteRetentionDays: 7 });
});
afterEach(() => {
  const unmet = rules.length;
  rules = [];
  // A fault never met would make a test pass without the failure it is about.
  expect(unmet, 'armed faults never met').toBe(0);
});
afterAll(async () => {
  for (const k of opened) await k.close();
  await server.stop();
});

/** A Keyport (one provider instance) on the server, with core's retries (`attempts`, short waits). */
function keyportWith(attempts: number): Keyport {
  const driver = new AzureKeyVaultProvider({
    vaultUrl: server.url,
    credential: staticToken(DEFAULT_AZURE_TOKEN),
    clientOptions: {
      ...clientOptions(server.caFile),
      additionalPolicies: [{ policy: injector, position: 'perCall' }],
    },
    vaultKind: 'vault',
  });
  const keyport = new Keyport({
    providers: [driver],
    retry: { maxAttempts: attempts, baseDelayMs: 1, maxDelayMs: 5 },
  });
  opened.push(keyport);
  return keyport;
}

const uriOf = (name: string) => `azurekeyvault://${hostOf(server)}/keys/${name}`;
const isCreate = (name: string) => (method: string, path: string) =>
  method === 'POST' && path === `/keys/${name}/create`;
/** Arms the create of `name`: the vault makes the key, and its answer is lost. */
const loseCreateAnswer = (name: string, meanwhile: () => unknown = () => undefined) =>
  rules.push({
    match: isCreate(name),
    after: async () => {
      await meanwhile();
      return 'lost';
    },
  });

/** The key as the vault holds it, read behind the adapter's back. */
async function stored(name: string) {
  const kc = sdkClient(server);
  const key = await kc.getKey(name);
  let versions = 0;
  for await (const _ of kc.listPropertiesOfKeyVersions(name)) versions++;
  return { version: key.properties.version, tags: key.properties.tags ?? {}, versions };
}

async function failureOf(run: Promise<unknown>): Promise<KeyportError> {
  try {
    await run;
  } catch (e) {
    expect(e).toBeInstanceOf(KeyportError);
    return e as KeyportError;
  }
  throw new Error('expected a failure');
}

const request = (name: string) => ({
  name,
  spec: 'RSA_2048' as const,
  labels: { team: 'payments' },
  description: 'orders at rest',
});

describe('createKey without a rotation, its answer lost after the vault made the key', () => {
  it("core's repeat answers with the key its first attempt made (not AlreadyExists); the marker is no label", async () => {
    const name = uniqueName('answer-lost');
    const keyport = keyportWith(3);
    loseCreateAnswer(name);
    const key = await keyport.createKey('azurekeyvault', request(name));
    const there = await stored(name);
    expect(key).toMatchObject({
      uri: uriOf(name),
      spec: 'RSA_2048',
      state: 'enabled',
      labels: { team: 'payments' },
      description: 'orders at rest',
      primaryVersion: there.version,
      versions: [{ version: there.version }],
    });
    // One key, one version, carrying the marker as a tag the caller never sees.
    expect(there).toMatchObject({
      versions: 1,
      tags: {
        team: 'payments',
        [DESCRIPTION_TAG]: 'orders at rest',
        [CREATE_MARKER_TAG]: expect.stringMatching(MARKER),
      },
    });
    expect(key.labels).toEqual({ team: 'payments' });
    expect((await keyport.describeKey(uriOf(name))).labels).toEqual({ team: 'payments' });
    const listed = [];
    for await (const k of keyport.listKeys('azurekeyvault')) if (k.uri === uriOf(name)) listed.push(k);
    expect(listed).toMatchObject([{ labels: { team: 'payments' } }]);
    expect(listed[0]?.labels).toEqual({ team: 'payments' });
    await expect(keyport.encrypt(uriOf(name), utf8('data'))).resolves.toBeDefined();

    // Answered, the name is taken like any other, also for the instance that made it.
    await expect(keyport.createKey('azurekeyvault', request(name))).rejects.toMatchObject({
      code: 'AlreadyExists',
      message: expect.stringContaining('rotateKey adds a version'),
    });
    expect((await stored(name)).versions).toBe(1);
  });

  it("the caller's own repeat, after the retries ran out, answers with the key; another request for the name does not take it", async () => {
    const name = uniqueName('answer-lost-caller');
    const keyport = keyportWith(1);
    loseCreateAnswer(name);
    await expect(keyport.createKey('azurekeyvault', request(name))).rejects.toMatchObject({
      code: 'Unavailable',
    });
    for (const other of [
      { ...request(name), spec: 'RSA_3072' as const },
      { ...request(name), labels: { team: 'billing' } },
      { name, spec: 'RSA_2048' as const, labels: { team: 'payments' } },
      { ...request(name), usage: 'sign_verify' as const },
      { ...request(name), rotation: { periodDays: 30 } },
    ]) {
      await expect(keyport.createKey('azurekeyvault', other)).rejects.toMatchObject({
        code: 'AlreadyExists',
        keyUri: uriOf(name),
      });
    }
    await expect(keyport.createKey('azurekeyvault', request(name))).resolves.toMatchObject({
      uri: uriOf(name),
      state: 'enabled',
      labels: { team: 'payments' },
    });
    expect((await stored(name)).versions).toBe(1);
  });

  it('a key another provider instance made under the name while the answer was awaited stays AlreadyExists', async () => {
    const name = uniqueName('other-made-it');
    const mine = keyportWith(3);
    const other = keyportWith(1);
    // Our create never reaches the vault (we cannot tell: the connection is reset); meanwhile the
    // other instance creates the name with the same request. Our repeat finds that key.
    rules.push({
      match: isCreate(name),
      before: async () => {
        await other.createKey('azurekeyvault', request(name));
        return 'lost';
      },
    });
    const e = await failureOf(mine.createKey('azurekeyvault', request(name)));
    expect(e).toMatchObject({ code: 'AlreadyExists', keyUri: uriOf(name) });
    expect(await stored(name)).toMatchObject({
      versions: 1,
      tags: { [CREATE_MARKER_TAG]: expect.stringMatching(MARKER) },
    });
  });

  it("another instance's repeat does not take this one's key, nor does a key planted with a marker of the right shape pass", async () => {
    const name = uniqueName('not-yours');
    const mine = keyportWith(1);
    loseCreateAnswer(name);
    await expect(mine.createKey('azurekeyvault', request(name))).rejects.toMatchObject({
      code: 'Unavailable',
    });
    await expect(keyportWith(3).createKey('azurekeyvault', request(name))).rejects.toMatchObject({
      code: 'AlreadyExists',
    });

    // Anyone who may create or import keys could plant one (of known material) with a marker tag.
    const planted = uniqueName('planted');
    const guesser = keyportWith(1);
    loseCreateAnswer(planted, () =>
      // The create made the key; it is replaced by a planted version whose marker is a guess.
      sdkClient(server).createRsaKey(planted, {
        keySize: 2048,
        keyOps: ['wrapKey', 'unwrapKey'],
        tags: {
          team: 'payments',
          [DESCRIPTION_TAG]: 'orders at rest',
          [CREATE_MARKER_TAG]: '00000000-0000-4000-8000-000000000000',
        },
      }),
    );
    await expect(guesser.createKey('azurekeyvault', request(planted))).rejects.toMatchObject({
      code: 'Unavailable',
    });
    await expect(guesser.createKey('azurekeyvault', request(planted))).rejects.toMatchObject({
      code: 'AlreadyExists',
    });
  });

  it('two provider instances creating one name: exactly one is answered with the key, the other AlreadyExists', async () => {
    for (const lost of [false, true]) {
      const name = uniqueName(lost ? 'race-lost' : 'race');
      const first = keyportWith(3);
      const second = keyportWith(3);
      // The vault has made the first's key; before its answer arrives (or is lost) the second
      // creates the same request and meets it.
      let secondSettled: PromiseSettledResult<unknown> | undefined;
      rules.push({
        match: isCreate(name),
        after: async () => {
          [secondSettled] = await Promise.allSettled([second.createKey('azurekeyvault', request(name))]);
          return lost ? 'lost' : undefined;
        },
      });
      const [firstSettled] = await Promise.allSettled([first.createKey('azurekeyvault', request(name))]);
      expect(firstSettled).toMatchObject({ status: 'fulfilled', value: { uri: uriOf(name) } });
      expect(secondSettled).toMatchObject({ status: 'rejected', reason: { code: 'AlreadyExists' } });
      expect((await stored(name)).versions).toBe(1);
    }
  });

  it("with Key Vault's 15 tags taken by labels and description: no marker, and a repeat after a lost answer stays AlreadyExists", async () => {
    const full = Object.fromEntries(Array.from({ length: 14 }, (_, i) => [`label-${i}`, `v${i}`]));
    const name = uniqueName('full-tags');
    loseCreateAnswer(name);
    const e = await failureOf(
      keyportWith(3).createKey('azurekeyvault', { name, spec: 'EC_P256', labels: full, description: 'd' }),
    );
    expect(e).toMatchObject({ code: 'AlreadyExists', keyUri: uriOf(name) });
    expect((await stored(name)).tags).toEqual({ ...full, [DESCRIPTION_TAG]: 'd' });

    // One tag short of full: the marker takes the fifteenth, and the repeat answers with the key.
    const roomy = uniqueName('one-free-tag');
    loseCreateAnswer(roomy);
    await expect(
      keyportWith(3).createKey('azurekeyvault', { name: roomy, spec: 'EC_P256', labels: full }),
    ).resolves.toMatchObject({ labels: full });
    expect(Object.keys((await stored(roomy)).tags)).toHaveLength(15);
  });

  it('the marker is a reserved label name: refused, no key made; a key with a rotation carries only its pending marker', async () => {
    const name = uniqueName('reserved');
    await expect(
      keyportWith(1).createKey('azurekeyvault', {
        name,
        spec: 'RSA_2048',
        labels: { [CREATE_MARKER_TAG]: '00000000-0000-4000-8000-000000000000' },
      }),
    ).rejects.toMatchObject({ code: 'InvalidArgument' });
    await expect(sdkClient(server).getKey(name)).rejects.toMatchObject({ statusCode: 404 });

    const rotating = uniqueName('rotating');
    await keyportWith(1).createKey('azurekeyvault', { ...request(rotating), rotation: { periodDays: 30 } });
    const { tags } = await stored(rotating);
    expect(tags).not.toHaveProperty(CREATE_MARKER_TAG);
    expect(tags).not.toHaveProperty(PENDING_ROTATION_TAG);
  });
});
