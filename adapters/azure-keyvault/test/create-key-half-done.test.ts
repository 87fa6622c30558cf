/**
 * Operations of several requests, cut short between them, against keyport's Key Vault server.
 * createKey with a rotation is two writes (the key, then its rotation policy: Key Vault takes no
 * policy in the create): when the second fails (a principal without `setrotationpolicy`,
 * throttling, a lost connection, the caller's abort) the key must not be left usable and never
 * rotating, the error must say what exists and how to finish, and repeating the request must
 * finish it rather than answer AlreadyExists. RotateKey and restore are a write and then a
 * describe: a failed describe must not make core's retry write a second time.
 *
 * Faults are placed on one request exactly: a pipeline policy sees the request about to leave and
 * arms the server's own faults (429 with Retry-After, a dropped connection) for it, or aborts the
 * caller's signal.
 */
import { inspect } from 'node:util';
import type { KeyClientOptions } from '@azure/keyvault-keys';
import { Keyport, KeyportError } from '@keyport/core';
import {
  type AzureKeyPermission,
  type AzureKeyVaultServer,
  DEFAULT_AZURE_TOKEN,
  startAzureKeyVaultServer,
} from '@keyport/test-servers';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AzureKeyVaultProvider, backupKey, purgeDeletedKey, restoreKey } from '../src/index.js';
import { DESCRIPTION_TAG, PENDING_ROTATION_TAG } from '../src/keys.js';

/** The marker of a create cut short: its period and a random value only the instance that made it knows. */
const MARKER = /^P30D [0-9a-f-]{36}$/;

import { clientOptions, hostOf, sdkClient, staticToken, uniqueName, utf8 } from './support/server.js';

type Policy = NonNullable<KeyClientOptions['additionalPolicies']>[number]['policy'];

/** A principal that may create, read and update keys and read rotation policies, not write them. */
const NO_POLICY_WRITE = 'token-no-policy-write';
const PRINCIPALS: Record<string, readonly AzureKeyPermission[] | 'all'> = {
  [DEFAULT_AZURE_TOKEN]: 'all',
  [NO_POLICY_WRITE]: ['get', 'create', 'update', 'getrotationpolicy'],
};

/**
 * One-shot faults: the first request a rule matches runs its action just before it leaves (and
 * leaves once an action that returns a promise has settled: a request held back).
 */
interface Rule {
  readonly match: (method: string, path: string) => boolean;
  readonly act: () => unknown;
}
let rules: Rule[] = [];
const injector: Policy = {
  name: 'keyport-test-one-request-faults',
  async sendRequest(request, next) {
    const path = new URL(request.url).pathname;
    const i = rules.findIndex((r) => r.match(request.method, path));
    if (i >= 0) {
      const [rule] = rules.splice(i, 1);
      await rule?.act();
    }
    return next(request);
  },
};
const arm = (match: Rule['match'], act: Rule['act']) => rules.push({ match, act });

let server: AzureKeyVaultServer;
const opened: Keyport[] = [];
beforeAll(async () => {
  server = await startAzureKeyVaultServer({
    mode: 'vault',
    principals: PRINCIPALS,
    softDeleteRetentionDays: 7,
  });
});
afterEach(() => {
  const unmet = rules.length;
  rules = [];
  server.faults.clear();
  // A fault never met would make a test pass without the failure it is about.
  expect(unmet, 'armed faults never met').toBe(0);
});
afterAll(async () => {
  for (const k of opened) await k.close();
  await server.stop();
});

/** A Keyport on the server as `token`, with core's retries (`attempts`, short waits) and the injector. */
function keyportAs(token: string, attempts: number): Keyport {
  const driver = new AzureKeyVaultProvider({
    vaultUrl: server.url,
    credential: staticToken(token),
    clientOptions: {
      ...clientOptions(server.caFile),
      additionalPolicies: [{ policy: injector, position: 'perCall' }],
    },
    vaultKind: 'vault',
    pollIntervalMs: 5,
  });
  const keyport = new Keyport({
    providers: [driver],
    retry: { maxAttempts: attempts, baseDelayMs: 1, maxDelayMs: 5 },
  });
  opened.push(keyport);
  return keyport;
}

const uriOf = (name: string) => `azurekeyvault://${hostOf(server)}/keys/${name}`;
const isPolicyWrite = (name: string) => (method: string, path: string) =>
  method === 'PUT' && path === `/keys/${name}/rotationpolicy`;
/** GET of the key's latest version (the SDK sends `/keys/{name}/` for it). */
const isLatestGet = (name: string) => (method: string, path: string) =>
  method === 'GET' && new RegExp(`^/keys/${name}/?$`).test(path);
const throttleIt = () => server.faults.set({ throttle: { requests: 1, retryAfterSeconds: 0 } });
const dropIt = () => server.faults.set({ dropConnections: 1 });

async function failureOf(run: Promise<unknown>): Promise<KeyportError> {
  try {
    await run;
  } catch (e) {
    expect(e).toBeInstanceOf(KeyportError);
    return e as KeyportError;
  }
  throw new Error('expected a failure');
}
/** Everything an error shows: message, JSON, and the inspected cause chain. */
const shown = (e: unknown) =>
  `${String(e)} ${JSON.stringify(e)} ${inspect(e, { depth: Number.POSITIVE_INFINITY, showHidden: true })}`;

/** The key as the vault holds it, read behind the adapter's back. */
async function stored(name: string) {
  const kc = sdkClient(server);
  const key = await kc.getKey(name);
  const policy = await kc.getKeyRotationPolicy(name);
  let versions = 0;
  for await (const _ of kc.listPropertiesOfKeyVersions(name)) versions++;
  const rotate = policy.lifetimeActions?.find((a) => a.action.toLowerCase() === 'rotate');
  return { enabled: key.properties.enabled, tags: key.properties.tags ?? {}, rotate, versions };
}

const request = (name: string, periodDays = 30) => ({
  name,
  spec: 'RSA_2048' as const,
  labels: { team: 'payments' },
  description: 'orders at rest',
  rotation: { periodDays },
});

describe('createKey with a rotation, cut short after the key was created', () => {
  it('without permission to write the policy: AccessDenied naming the key, left disabled (unusable) and marked; another instance finishes it by hand', async () => {
    const name = uniqueName('no-policy-write');
    const limited = keyportAs(NO_POLICY_WRITE, 3);
    const admin = keyportAs(DEFAULT_AZURE_TOKEN, 1);

    const e = await failureOf(limited.createKey('azurekeyvault', request(name)));
    expect(e).toMatchObject({ code: 'AccessDenied', keyUri: uriOf(name), retryable: false });
    expect(e.message).toContain(`the key ${uriOf(name)} was created disabled`);
    expect(e.message).toContain('rotation policy (rotate every 30 days) was not written');
    expect(e.message).toContain('repeat this createKey');
    expect(e.message).toContain('setRotationPolicy(uri, { periodDays: 30 }) and then enableKey(uri)');
    expect(shown(e)).not.toContain(NO_POLICY_WRITE);

    // What exists: a disabled key carrying the marker, its labels, no rotation; nothing can use it.
    expect(await stored(name)).toMatchObject({
      enabled: false,
      tags: { team: 'payments', [PENDING_ROTATION_TAG]: expect.stringMatching(MARKER) },
      rotate: undefined,
      versions: 1,
    });
    await expect(admin.encrypt(uriOf(name), utf8('data'))).rejects.toMatchObject({
      code: 'KeyStateConflict',
    });
    const described = await admin.describeKey(uriOf(name));
    expect(described).toMatchObject({ state: 'disabled', labels: { team: 'payments' } });
    expect(described.labels).not.toHaveProperty(PENDING_ROTATION_TAG);
    expect(described.rotation).toBeUndefined();

    // Repeated by the same principal: still the same explanation, never AlreadyExists.
    await expect(limited.createKey('azurekeyvault', request(name))).rejects.toMatchObject({
      code: 'AccessDenied',
      message: expect.stringContaining('was created disabled'),
    });

    // Repeated by another provider instance, here one allowed to write the policy: AlreadyExists,
    // as from another process (it did not make the key); it finishes the key by hand.
    const other = await failureOf(admin.createKey('azurekeyvault', request(name)));
    expect(other).toMatchObject({ code: 'AlreadyExists', keyUri: uriOf(name) });
    expect(other.message).toContain('unfinished createKey of another request or another provider instance');
    await admin.setRotationPolicy(uriOf(name), { periodDays: 30 });
    const done = await admin.enableKey(uriOf(name));
    expect(done).toMatchObject({
      uri: uriOf(name),
      state: 'enabled',
      labels: { team: 'payments' },
      description: 'orders at rest',
      rotation: { periodDays: 30 },
    });
    expect(await stored(name)).toMatchObject({
      enabled: true,
      tags: { team: 'payments', 'keyport-description': 'orders at rest' },
      rotate: { timeAfterCreate: 'P30D' },
      versions: 1,
    });
    expect((await stored(name)).tags).not.toHaveProperty(PENDING_ROTATION_TAG);
    await expect(admin.encrypt(uriOf(name), utf8('data'))).resolves.toBeDefined();
    // Finished, the name is taken like any other, also for the instance that began it.
    for (const keyport of [admin, limited]) {
      await expect(keyport.createKey('azurekeyvault', request(name))).rejects.toMatchObject({
        code: 'AlreadyExists',
        message: expect.stringContaining('rotateKey adds a version'),
      });
    }
  });

  it("one throttled policy write: core's own retry finishes the key (it answered AlreadyExists)", async () => {
    const name = uniqueName('throttled-once');
    arm(isPolicyWrite(name), throttleIt);
    const key = await keyportAs(DEFAULT_AZURE_TOKEN, 3).createKey('azurekeyvault', request(name));
    expect(key).toMatchObject({ state: 'enabled', rotation: { periodDays: 30 } });
    expect(await stored(name)).toMatchObject({
      enabled: true,
      rotate: { timeAfterCreate: 'P30D' },
      versions: 1,
    });
  });

  it('throttling that outlasts the retries: Throttled, retryable, naming the key; repeating the request finishes it', async () => {
    const name = uniqueName('throttled');
    const keyport = keyportAs(DEFAULT_AZURE_TOKEN, 1);
    arm(isPolicyWrite(name), throttleIt);
    const e = await failureOf(keyport.createKey('azurekeyvault', request(name)));
    expect(e).toMatchObject({ code: 'Throttled', keyUri: uriOf(name), retryable: true });
    expect(e.message).toContain('was not written');
    expect(await stored(name)).toMatchObject({
      enabled: false,
      tags: { [PENDING_ROTATION_TAG]: expect.stringMatching(MARKER) },
    });
    await expect(keyport.createKey('azurekeyvault', request(name))).resolves.toMatchObject({
      state: 'enabled',
      rotation: { periodDays: 30 },
    });
  });

  it("the caller's abort between the create and the policy write: a disabled, marked key that only the same request finishes", async () => {
    const name = uniqueName('aborted');
    const keyport = keyportAs(DEFAULT_AZURE_TOKEN, 3);
    const controller = new AbortController();
    arm(isPolicyWrite(name), () => controller.abort());
    await expect(
      keyport.createKey('azurekeyvault', request(name), { signal: controller.signal }),
    ).rejects.toMatchObject({ code: 'Aborted' });
    expect(await stored(name)).toMatchObject({
      enabled: false,
      tags: { [PENDING_ROTATION_TAG]: expect.stringMatching(MARKER) },
    });

    // Another request (another period, no rotation, other labels) does not take it over.
    for (const other of [
      request(name, 60),
      { name, spec: 'RSA_2048' as const },
      { ...request(name), labels: { team: 'billing' } },
      { ...request(name), spec: 'RSA_3072' as const },
    ]) {
      const e = await failureOf(keyport.createKey('azurekeyvault', other));
      expect(e).toMatchObject({ code: 'AlreadyExists', keyUri: uriOf(name) });
      expect(e.message).toContain('unfinished createKey of another request');
      expect(e.message).toContain('(P30D)');
    }
    expect(await stored(name)).toMatchObject({ enabled: false, versions: 1 });

    await expect(keyport.createKey('azurekeyvault', request(name))).resolves.toMatchObject({
      state: 'enabled',
      rotation: { periodDays: 30 },
    });
    expect(await stored(name)).toMatchObject({
      enabled: true,
      rotate: { timeAfterCreate: 'P30D' },
      versions: 1,
    });
  });

  it('a connection lost while enabling: the error says the policy is written; enableKey finishes it and drops the marker', async () => {
    const name = uniqueName('enable-lost');
    const keyport = keyportAs(DEFAULT_AZURE_TOKEN, 1);
    arm((method, path) => method === 'PATCH' && path.startsWith(`/keys/${name}/`), dropIt);
    const e = await failureOf(keyport.createKey('azurekeyvault', request(name)));
    expect(e).toMatchObject({ code: 'Unavailable', keyUri: uriOf(name), retryable: true });
    expect(e.message).toContain('rotation policy (rotate every 30 days) written, but enabling it failed');
    expect(e.message).toContain('enableKey(uri)');
    expect(await stored(name)).toMatchObject({ enabled: false, rotate: { timeAfterCreate: 'P30D' } });

    const enabled = await keyport.enableKey(uriOf(name));
    expect(enabled).toMatchObject({
      state: 'enabled',
      rotation: { periodDays: 30 },
      labels: { team: 'payments' },
    });
    expect((await stored(name)).tags).not.toHaveProperty(PENDING_ROTATION_TAG);
    // Finished by hand: a later createKey of the name is AlreadyExists, not a takeover.
    await expect(keyport.createKey('azurekeyvault', request(name))).rejects.toMatchObject({
      code: 'AlreadyExists',
      message: expect.stringContaining('rotateKey adds a version'),
    });
  });

  it("with Key Vault's 15 tags taken by labels: created disabled without the marker, and the error's manual path finishes it", async () => {
    const name = uniqueName('full-tags');
    const labels = Object.fromEntries(Array.from({ length: 15 }, (_, i) => [`label-${i}`, `v${i}`]));
    const keyport = keyportAs(DEFAULT_AZURE_TOKEN, 3);
    arm(isPolicyWrite(name), throttleIt);
    const e = await failureOf(
      keyport.createKey('azurekeyvault', { name, spec: 'EC_P256', labels, rotation: { periodDays: 30 } }),
    );
    // A retry could not recognise the key: not retryable (core did not retry), and not offered.
    expect(e).toMatchObject({ code: 'Throttled', keyUri: uriOf(name), retryable: false });
    expect(e.message).not.toContain('repeat this createKey');
    expect(e.message).toContain('call setRotationPolicy(uri, { periodDays: 30 }) and then enableKey(uri)');
    expect(await stored(name)).toMatchObject({ enabled: false, tags: labels });

    await keyport.setRotationPolicy(uriOf(name), { periodDays: 30 });
    await expect(keyport.enableKey(uriOf(name))).resolves.toMatchObject({
      state: 'enabled',
      labels,
      rotation: { periodDays: 30 },
    });
    // Unfailing, the same request creates the key whole.
    const whole = await keyport.createKey('azurekeyvault', {
      name: uniqueName('full-tags'),
      spec: 'EC_P256',
      labels,
      rotation: { periodDays: 30 },
    });
    expect(whole).toMatchObject({ state: 'enabled', labels, rotation: { periodDays: 30 } });
  });

  it('concurrent createKey calls of one request: one creates and finishes the key, the others AlreadyExists', async () => {
    const name = uniqueName('race-rotation');
    const keyport = keyportAs(DEFAULT_AZURE_TOKEN, 1);
    const results = await Promise.allSettled(
      Array.from({ length: 4 }, () => keyport.createKey('azurekeyvault', request(name))),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results) {
      if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'AlreadyExists' });
    }
    expect(await stored(name)).toMatchObject({ enabled: true, versions: 1 });
  });

  it("two provider instances in one process creating one name at once: one creates it, the other AlreadyExists (never finishing the other's key)", async () => {
    const name = uniqueName('two-instances');
    const first = keyportAs(DEFAULT_AZURE_TOKEN, 1);
    const second = keyportAs(DEFAULT_AZURE_TOKEN, 1);
    // The first's policy write waits until the second's createKey of the same request has
    // settled: the second meets the first's key created, marked and not yet finished.
    let secondSettled: Promise<PromiseSettledResult<unknown>[]> | undefined;
    arm(isPolicyWrite(name), () => {
      secondSettled = Promise.allSettled([second.createKey('azurekeyvault', request(name))]);
      return secondSettled;
    });
    await expect(first.createKey('azurekeyvault', request(name))).resolves.toMatchObject({
      state: 'enabled',
      rotation: { periodDays: 30 },
    });
    const [secondResult] = (await secondSettled) ?? [];
    expect(secondResult).toMatchObject({ status: 'rejected', reason: { code: 'AlreadyExists' } });
    expect(await stored(name)).toMatchObject({ enabled: true, versions: 1 });
  });

  it("another provider instance does not finish a create cut short in this one; this one's repeat does", async () => {
    const name = uniqueName('other-instance');
    const mine = keyportAs(DEFAULT_AZURE_TOKEN, 1);
    arm(isPolicyWrite(name), throttleIt);
    await expect(mine.createKey('azurekeyvault', request(name))).rejects.toMatchObject({ code: 'Throttled' });

    const e = await failureOf(keyportAs(DEFAULT_AZURE_TOKEN, 1).createKey('azurekeyvault', request(name)));
    expect(e).toMatchObject({ code: 'AlreadyExists', keyUri: uriOf(name) });
    expect(await stored(name)).toMatchObject({
      enabled: false,
      tags: { [PENDING_ROTATION_TAG]: expect.stringMatching(MARKER) },
      rotate: undefined,
    });
    await expect(mine.createKey('azurekeyvault', request(name))).resolves.toMatchObject({
      state: 'enabled',
      rotation: { periodDays: 30 },
    });
  });

  it('a disabled key planted under the name with a marker of the right shape is never finished (its material may be known)', async () => {
    const keyport = keyportAs(DEFAULT_AZURE_TOKEN, 3);
    for (const planted of ['P30D', 'P30D 00000000-0000-4000-8000-000000000000']) {
      const name = uniqueName('planted');
      // Anyone who may import keys could plant one of known material; a created one stands in here.
      await sdkClient(server).createRsaKey(name, {
        keySize: 2048,
        keyOps: ['wrapKey', 'unwrapKey'],
        enabled: false,
        tags: { team: 'payments', [DESCRIPTION_TAG]: 'orders at rest', [PENDING_ROTATION_TAG]: planted },
      });
      const e = await failureOf(keyport.createKey('azurekeyvault', request(name)));
      expect(e).toMatchObject({ code: 'AlreadyExists', keyUri: uriOf(name) });
      expect(e.message).toContain('look at the key');
      expect(await stored(name)).toMatchObject({ enabled: false });
    }
  });

  it('the marker is a reserved label name, like the description tag: refused, no key made', async () => {
    const name = uniqueName('reserved');
    await expect(
      keyportAs(DEFAULT_AZURE_TOKEN, 1).createKey('azurekeyvault', {
        name,
        spec: 'RSA_2048',
        labels: { [PENDING_ROTATION_TAG]: 'P30D' },
      }),
    ).rejects.toMatchObject({ code: 'InvalidArgument' });
    await expect(sdkClient(server).getKey(name)).rejects.toMatchObject({ statusCode: 404 });
  });
});

describe('a write, then a describe: a failed describe is not retried into a second write', () => {
  it('rotateKey: the error says the key was rotated (its new version), and it was rotated once', async () => {
    const keyport = keyportAs(DEFAULT_AZURE_TOKEN, 3);
    const name = uniqueName('rotate-once');
    await keyport.createKey('azurekeyvault', { name, spec: 'RSA_2048' });
    arm(
      (method, path) => method === 'POST' && path === `/keys/${name}/rotate`,
      () => arm(isLatestGet(name), throttleIt),
    );
    const e = await failureOf(keyport.rotateKey(uriOf(name)));
    expect(e).toMatchObject({ code: 'Throttled', keyUri: uriOf(name), retryable: false });
    expect(e.message).toMatch(/^the key was rotated \(new version [A-Za-z0-9]+\), but reading/);
    expect(e.message).toContain('do not repeat the call');
    expect((await stored(name)).versions).toBe(2);
    expect((await keyport.describeKey(uriOf(name))).versions).toHaveLength(2);
  });

  it('restoreKey: the error says the backup was restored (a retried restore answered AlreadyExists)', async () => {
    const keyport = keyportAs(DEFAULT_AZURE_TOKEN, 3);
    const name = uniqueName('restore-once');
    const key = await keyport.createKey('azurekeyvault', { name, spec: 'EC_P256' });
    const blob = await backupKey(keyport, key.uri);
    await keyport.scheduleKeyDeletion(key.uri);
    await purgeDeletedKey(keyport, key.uri);
    arm(
      (method, path) => method === 'POST' && path === '/keys/restore',
      () => arm(isLatestGet(name), throttleIt),
    );
    const e = await failureOf(restoreKey(keyport, 'azurekeyvault', blob));
    expect(e).toMatchObject({ code: 'Throttled', keyUri: uriOf(name), retryable: false });
    expect(e.message).toContain('the backup was restored, but reading');
    await expect(keyport.describeKey(key.uri)).resolves.toMatchObject({ state: 'enabled', spec: 'EC_P256' });
  });

  it('scheduleKeyDeletion: a failed read after the delete says the key was deleted (a retried delete answered "recover it first")', async () => {
    const keyport = keyportAs(DEFAULT_AZURE_TOKEN, 3);
    const name = uniqueName('delete-once');
    await keyport.createKey('azurekeyvault', { name, spec: 'EC_P256' });
    arm(
      (method, path) => method === 'DELETE' && path === `/keys/${name}`,
      () =>
        arm(
          (method, path) => method === 'GET' && new RegExp(`^/deletedkeys/${name}/?$`).test(path),
          throttleIt,
        ),
    );
    const e = await failureOf(keyport.scheduleKeyDeletion(uriOf(name)));
    expect(e).toMatchObject({ code: 'Throttled', keyUri: uriOf(name), retryable: false });
    expect(e.message).toContain('the key was deleted (soft delete), but reading');
    await expect(keyport.describeKey(uriOf(name))).resolves.toMatchObject({ state: 'pending_deletion' });
  });

  it('cancelKeyDeletion: a failed read after the recovery says the key was recovered (a retried one answered "not pending deletion")', async () => {
    const keyport = keyportAs(DEFAULT_AZURE_TOKEN, 3);
    const name = uniqueName('recover-once');
    await keyport.createKey('azurekeyvault', { name, spec: 'EC_P256' });
    await keyport.scheduleKeyDeletion(uriOf(name));
    arm(
      (method, path) => method === 'POST' && path === `/deletedkeys/${name}/recover`,
      () => arm(isLatestGet(name), throttleIt),
    );
    const e = await failureOf(keyport.cancelKeyDeletion(uriOf(name)));
    expect(e).toMatchObject({ code: 'Throttled', keyUri: uriOf(name), retryable: false });
    expect(e.message).toContain('the key was recovered, but reading');
    await expect(keyport.describeKey(uriOf(name))).resolves.toMatchObject({ state: 'enabled' });
  });
});
