/**
 * Operations that must not run twice (rotateKey, createGrant, createKey where the provider does
 * not key creation by name, importKeyMaterial): after an ambiguous failure — the attempt timed
 * out, or the connection failed after the request may have been sent — core does not send them
 * again. The call ends with the code the attempt failed with, not retryable, saying what to
 * check. Failures that certainly had no effect (Throttled, a connection never made) are still
 * retried, and operations that are harmless to repeat keep every retry.
 */
import { describe, expect, it } from 'vitest';
import {
  type Capabilities,
  type Grant,
  type KeyInfo,
  Keyport,
  KeyportError,
  type KeyRef,
  type KmsProvider,
  MemoryAuditSink,
  type ProviderCallOptions,
  type RetryPolicy,
} from '../src/index.js';
import { AES_ONLY_CAPABILITIES } from './support/capabilities.js';

/** What one driver call does: answer, hang until its signal fires, or fail one way or another. */
type Outcome = 'ok' | 'hang' | 'unavailable' | 'throttled' | 'refused' | 'passing-state' | 'state';

/** Every lifecycle capability the scripted operations need, beside core's AES-only fake. */
const caps: Capabilities = {
  ...AES_ONLY_CAPABILITIES,
  rotation: 'versioned',
  autoRotation: true,
  enableDisable: true,
  scheduledDeletion: 'native',
  destroyVersion: true,
  grants: 'native',
  grantExpiry: 'native',
  import: ['RSAES_OAEP_SHA_256'],
};

const KEY = 'acme://orders';
const SECRET_GRANTEE = 'arn:aws:iam::111122223333:role/do-not-print-me';

/**
 * Small budgets: an attempt is cut off after 40 ms and retries wait 1 ms, so the old behaviour
 * (three attempts) and the new (one) differ by calls counted, not by seconds waited.
 */
const POLICY: Partial<RetryPolicy> = {
  maxAttempts: 3,
  baseDelayMs: 1,
  maxDelayMs: 1,
  attemptTimeoutMs: 40,
  deadlineMs: 2_000,
};

const info: KeyInfo = {
  uri: KEY,
  spec: 'AES_256',
  usage: 'encrypt_decrypt',
  state: 'enabled',
  labels: {},
  primaryVersion: '2',
};

/** A third-party driver (scheme `acme`) whose calls follow a script and are counted per method. */
function scriptedDriver(scheme = 'acme') {
  const calls: Record<string, number> = {};
  const scripts: Record<string, Outcome[]> = {};
  /** Runs the next scripted outcome of `method` (default 'ok'), then `answer`. */
  const step = async <T>(method: string, o: ProviderCallOptions, answer: () => T): Promise<T> => {
    calls[method] = (calls[method] ?? 0) + 1;
    const outcome = scripts[method]?.shift() ?? 'ok';
    switch (outcome) {
      case 'ok':
        return answer();
      case 'hang':
        // A well-behaved SDK: nothing comes back until the attempt's signal fires.
        return new Promise<T>((_resolve, reject) => {
          o.signal.addEventListener('abort', () =>
            reject(Object.assign(new Error('aborted'), { name: 'AbortError' })),
          );
        });
      case 'unavailable':
        // The connection dropped after the request went out: the provider may have acted on it.
        throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
      case 'throttled':
        throw Object.assign(new Error('slow down'), { status: 429 });
      case 'refused':
        // No connection was ever made: the request cannot have reached the provider.
        throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' });
      case 'passing-state':
        // The provider refused for a state it says passes (a name whose purge is completing).
        throw new KeyportError('KeyStateConflict', 'acme: the name is still being purged', {
          provider: scheme,
          retryable: true,
        });
      case 'state':
        throw new KeyportError('KeyStateConflict', 'acme: the key is disabled', { provider: scheme });
    }
  };
  const driver: KmsProvider = {
    scheme,
    capabilities: caps,
    parseUri: (uri: string): KeyRef => {
      if (!uri.startsWith(`${scheme}://`)) throw new KeyportError('InvalidArgument', 'not ours');
      return { uri };
    },
    formatUri: (ref: KeyRef) => ref.uri,
    encrypt: (_ref, _plaintext, _req, o) =>
      step('encrypt', o, () => ({ ciphertext: new Uint8Array([7]), keyVersion: '2' })),
    decrypt: (_ref, _ciphertext, _req, o) =>
      step('decrypt', o, () => ({ plaintext: new Uint8Array([1]), keyVersion: '2' })),
    createKey: (req, o) => step('createKey', o, () => ({ ...info, uri: `${scheme}://${req.name}` })),
    describeKey: (_ref, o) => step('describeKey', o, () => info),
    rotateKey: (_ref, o) => step('rotateKey', o, () => ({ ...info, primaryVersion: '3' })),
    scheduleKeyDeletion: (_ref, _req, o) => step('scheduleKeyDeletion', o, () => info),
    importKeyMaterial: (_ref, _req, o) => step('importKeyMaterial', o, () => info),
    createGrant: (ref, req, o) =>
      step('createGrant', o, (): Grant => ({ ...req, id: 'grant-1', keyUri: ref.uri })),
    revokeGrant: (_ref, _id, o) => step('revokeGrant', o, () => undefined),
    mapError: (e: unknown) => {
      const raw = e as { code?: unknown; status?: unknown };
      if (raw.status === 429)
        return new KeyportError('Throttled', 'acme throttled the request', { cause: e });
      if (raw.code === 'ECONNRESET' || raw.code === 'ECONNREFUSED')
        return new KeyportError('Unavailable', `acme unreachable (${String(raw.code)})`, { cause: e });
      return undefined;
    },
    close: async () => {},
  };
  return { driver, calls, scripts };
}

function client(driver: KmsProvider, policy: Partial<RetryPolicy> = POLICY) {
  const audit = new MemoryAuditSink();
  const kp = new Keyport({ providers: [driver], retry: policy, audit: [audit], random: () => 0 });
  return { kp, audit };
}

const grantRequest = { grantee: SECRET_GRANTEE, operations: ['decrypt'] as const };
const importRequest = { wrappedMaterial: new Uint8Array(32), algorithm: 'RSAES_OAEP_SHA_256' } as const;

/** The typed error of a call that ended after one ambiguous attempt. */
async function ambiguous(call: Promise<unknown>, code: 'Timeout' | 'Unavailable'): Promise<KeyportError> {
  const error = await call.then(
    () => {
      throw new Error('the call should have failed');
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(KeyportError);
  expect(error).toMatchObject({ code, retryable: false, provider: 'acme' });
  const message = (error as KeyportError).message;
  expect(message).toMatch(/may have taken effect/);
  expect(message).not.toContain(SECRET_GRANTEE);
  return error as KeyportError;
}

describe('operations that must not run twice, after an ambiguous failure', () => {
  it('rotateKey whose attempt timed out is sent once: Timeout, not retryable, describe before rotating again', async () => {
    const { driver, calls, scripts } = scriptedDriver();
    scripts.rotateKey = ['hang', 'ok', 'ok'];
    const { kp, audit } = client(driver);
    const error = await ambiguous(kp.rotateKey(KEY), 'Timeout');
    expect(calls.rotateKey).toBe(1);
    expect(error.keyUri).toBe(KEY);
    expect(error.message).toMatch(/rotateKey/);
    expect(error.message).toMatch(/describe the key/);
    expect(audit.events).toMatchObject([
      { op: 'rotateKey', outcome: 'failure', errorCode: 'Timeout', attempts: 1 },
    ]);
  });

  it('rotateKey whose connection dropped is sent once: Unavailable, not retryable', async () => {
    const { driver, calls, scripts } = scriptedDriver();
    scripts.rotateKey = ['unavailable', 'ok'];
    const { kp } = client(driver);
    const error = await ambiguous(kp.rotateKey(KEY), 'Unavailable');
    expect(calls.rotateKey).toBe(1);
    // The attempt's own error stays reachable as the cause.
    expect(error.cause).toMatchObject({ code: 'Unavailable', message: 'acme unreachable (ECONNRESET)' });
  });

  it('createGrant is sent once after a timeout or a dropped connection: list the grants, no secret in the message', async () => {
    for (const [outcome, code] of [
      ['hang', 'Timeout'],
      ['unavailable', 'Unavailable'],
    ] as const) {
      const { driver, calls, scripts } = scriptedDriver();
      scripts.createGrant = [outcome, 'ok'];
      const { kp } = client(driver);
      const error = await ambiguous(kp.createGrant(KEY, grantRequest), code);
      expect(calls.createGrant).toBe(1);
      expect(error.message).toMatch(/list the key's grants/);
    }
  });

  it('createKey on a provider that does not key creation by name is sent once', async () => {
    for (const [outcome, code] of [
      ['hang', 'Timeout'],
      ['unavailable', 'Unavailable'],
    ] as const) {
      const { driver, calls, scripts } = scriptedDriver();
      scripts.createKey = [outcome, 'ok'];
      const { kp } = client(driver);
      const error = await ambiguous(kp.createKey('acme', { name: 'orders', spec: 'AES_256' }), code);
      expect(calls.createKey).toBe(1);
      expect(error.message).toMatch(/createKey/);
    }
  });

  it('importKeyMaterial whose attempt timed out is sent once', async () => {
    const { driver, calls, scripts } = scriptedDriver();
    scripts.importKeyMaterial = ['hang', 'ok'];
    const { kp } = client(driver);
    await ambiguous(kp.importKeyMaterial(KEY, importRequest), 'Timeout');
    expect(calls.importKeyMaterial).toBe(1);
  });

  it("an attempt cut off by the call's own deadline says the same", async () => {
    const { driver, calls, scripts } = scriptedDriver();
    scripts.rotateKey = ['hang'];
    const { kp } = client(driver, { ...POLICY, attemptTimeoutMs: 10_000 });
    const error = await ambiguous(kp.rotateKey(KEY, { timeoutMs: 40 }), 'Timeout');
    expect(calls.rotateKey).toBe(1);
    expect(error.message).toMatch(/describe the key/);
  });

  it('with retries off (maxAttempts: 1) the one failed attempt is reported the same way', async () => {
    const { driver, scripts } = scriptedDriver();
    scripts.createGrant = ['unavailable'];
    const { kp } = client(driver, { ...POLICY, maxAttempts: 1 });
    await ambiguous(kp.createGrant(KEY, grantRequest), 'Unavailable');
  });
});

describe('failures that certainly had no effect are still retried', () => {
  it('Throttled rotateKey and createGrant are retried until they succeed', async () => {
    const { driver, calls, scripts } = scriptedDriver();
    scripts.rotateKey = ['throttled', 'throttled', 'ok'];
    scripts.createGrant = ['throttled', 'ok'];
    const { kp, audit } = client(driver);
    await expect(kp.rotateKey(KEY)).resolves.toMatchObject({ primaryVersion: '3' });
    await expect(kp.createGrant(KEY, grantRequest)).resolves.toMatchObject({ id: 'grant-1' });
    expect(calls.rotateKey).toBe(3);
    expect(calls.createGrant).toBe(2);
    expect(audit.events).toMatchObject([
      { op: 'rotateKey', outcome: 'success', attempts: 3 },
      { op: 'createGrant', outcome: 'success', attempts: 2 },
    ]);
  });

  it('Throttled on every attempt ends as Throttled, still retryable (the operation never ran)', async () => {
    const { driver, calls, scripts } = scriptedDriver();
    scripts.createKey = ['throttled', 'throttled', 'throttled'];
    const { kp } = client(driver);
    await expect(kp.createKey('acme', { name: 'orders', spec: 'AES_256' })).rejects.toMatchObject({
      code: 'Throttled',
      retryable: true,
    });
    expect(calls.createKey).toBe(3);
  });

  it('a connection that was never made (ECONNREFUSED) is retried', async () => {
    const { driver, calls, scripts } = scriptedDriver();
    scripts.createGrant = ['refused', 'ok'];
    const { kp } = client(driver);
    await expect(kp.createGrant(KEY, grantRequest)).resolves.toMatchObject({ id: 'grant-1' });
    expect(calls.createGrant).toBe(2);
  });

  it('a refusal for a state that passes (retryable KeyStateConflict) is retried until it succeeds', async () => {
    const { driver, calls, scripts } = scriptedDriver();
    scripts.rotateKey = ['passing-state', 'passing-state', 'ok'];
    scripts.createGrant = ['passing-state', 'ok'];
    scripts.importKeyMaterial = ['passing-state', 'ok'];
    const { kp, audit } = client(driver);
    await expect(kp.rotateKey(KEY)).resolves.toMatchObject({ primaryVersion: '3' });
    await expect(kp.createGrant(KEY, grantRequest)).resolves.toMatchObject({ id: 'grant-1' });
    await expect(kp.importKeyMaterial(KEY, importRequest)).resolves.toMatchObject({ uri: KEY });
    expect(calls).toMatchObject({ rotateKey: 3, createGrant: 2, importKeyMaterial: 2 });
    expect(audit.events).toMatchObject([
      { op: 'rotateKey', outcome: 'success', attempts: 3 },
      { op: 'createGrant', outcome: 'success', attempts: 2 },
      { op: 'importKeyMaterial', outcome: 'success', attempts: 2 },
    ]);
  });

  it("Key Vault's importJwk refused while a purge completes is retried: the refusal imported nothing", async () => {
    const { driver } = scriptedDriver('azurekeyvault');
    let calls = 0;
    const kp = new Keyport({ providers: [driver], retry: POLICY, random: () => 0 });
    const answer = await kp.instanceCall('azurekeyvault', 'importJwk', () => {
      calls++;
      if (calls === 1) {
        const why = 'Azure Key Vault answered 409 to an import of a name no key or deleted key holds';
        return Promise.reject(new KeyportError('KeyStateConflict', why, { retryable: true }));
      }
      return Promise.resolve('imported');
    });
    expect(answer).toBe('imported');
    expect(calls).toBe(2);
  });

  it('a refusal for a state that passes, on every attempt, ends as it is: KeyStateConflict, retryable', async () => {
    const { driver, calls, scripts } = scriptedDriver();
    scripts.rotateKey = ['passing-state', 'passing-state', 'passing-state'];
    const { kp } = client(driver);
    const error = await kp.rotateKey(KEY).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'KeyStateConflict', retryable: true });
    expect((error as Error).message).not.toMatch(/may have taken effect/);
    expect(calls.rotateKey).toBe(3);
  });

  it('a refusal for a state that does not pass is not retried, and says nothing of an effect', async () => {
    const { driver, calls, scripts } = scriptedDriver();
    scripts.rotateKey = ['state', 'ok'];
    const { kp } = client(driver);
    const error = await kp.rotateKey(KEY).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'KeyStateConflict', retryable: false });
    expect((error as Error).message).not.toMatch(/may have taken effect/);
    expect(calls.rotateKey).toBe(1);
  });

  it('createKey where the provider keys creation by name keeps its retries', async () => {
    // Vault transit refuses a second creation of one name (AlreadyExists): a repeat makes no key.
    const { driver, calls, scripts } = scriptedDriver('hcvault');
    scripts.createKey = ['unavailable', 'ok'];
    const kp = new Keyport({ providers: [driver], retry: POLICY, random: () => 0 });
    await expect(kp.createKey('hcvault', { name: 'orders', spec: 'AES_256' })).resolves.toMatchObject({
      uri: 'hcvault://orders',
    });
    expect(calls.createKey).toBe(2);
  });
});

describe('driver-only operations', () => {
  it("a built-in driver's operation that must not run twice (Key Vault's importJwk) is sent once", async () => {
    const { driver } = scriptedDriver('azurekeyvault');
    let calls = 0;
    const kp = new Keyport({ providers: [driver], retry: POLICY, random: () => 0 });
    const error = await kp
      .instanceCall('azurekeyvault', 'importJwk', () => {
        calls++;
        return Promise.reject(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
      })
      .catch((e: unknown) => e);
    expect(calls).toBe(1);
    expect(error).toMatchObject({ code: 'Unavailable', retryable: false });
    expect((error as Error).message).toMatch(/azurekeyvault:importJwk .*may have taken effect/);
  });

  it("a third-party driver's own operation keeps its retries: keyport cannot judge it", async () => {
    const { driver } = scriptedDriver();
    let calls = 0;
    const kp = new Keyport({ providers: [driver], retry: POLICY, random: () => 0 });
    const answer = await kp.driverCall(KEY, 'frobnicate', () => {
      calls++;
      if (calls < 3)
        return Promise.reject(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
      return Promise.resolve('done');
    });
    expect(answer).toBe('done');
    expect(calls).toBe(3);
  });
});

describe("a driver's own declarations (repeats)", () => {
  const droppedOnce = (calls: { n: number }) => () => {
    calls.n++;
    if (calls.n < 2)
      return Promise.reject(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
    return Promise.resolve('done');
  };

  it("a driver's own operation declared once is sent once after a dropped connection", async () => {
    const { driver } = scriptedDriver();
    const calls = { n: 0 };
    const kp = new Keyport({
      providers: [{ ...driver, repeats: { frobnicate: 'once' } }],
      retry: POLICY,
      random: () => 0,
    });
    const error = await kp.driverCall(KEY, 'frobnicate', droppedOnce(calls)).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'Unavailable', retryable: false });
    expect((error as Error).message).toMatch(
      /acme:frobnicate failed \(Unavailable\) and may have taken effect/,
    );
    expect(calls.n).toBe(1);
  });

  it('a declaration overrides core for this driver: createKey harmless is retried, rotateKey once stays once', async () => {
    const { driver, calls, scripts } = scriptedDriver();
    scripts.createKey = ['hang', 'ok'];
    scripts.rotateKey = ['hang', 'ok'];
    const { kp } = client({ ...driver, repeats: { createKey: 'harmless', rotateKey: 'once' } });
    await expect(kp.createKey('acme', { name: 'orders', spec: 'AES_256' })).resolves.toMatchObject({
      uri: 'acme://orders',
    });
    expect(calls.createKey).toBe(2);
    await ambiguous(kp.rotateKey(KEY), 'Timeout');
    expect(calls.rotateKey).toBe(1);
  });

  it('a malformed declaration is refused when the driver is registered', () => {
    const { driver } = scriptedDriver();
    for (const repeats of ['once', ['createKey'], { createKey: 'twice' }, { 'acme:x': 'once' }, null])
      expect(
        () => new Keyport({ providers: [{ ...driver, repeats } as never] }),
        JSON.stringify(repeats),
      ).toThrow(/driver\.repeats/);
  });
});

describe('operations harmless to repeat keep every retry', () => {
  it.each([
    ['describeKey', (kp: Keyport) => kp.describeKey(KEY)],
    ['decrypt', (kp: Keyport) => kp.decrypt(KEY, new Uint8Array([7]))],
    ['encrypt', (kp: Keyport) => kp.encrypt(KEY, new Uint8Array([1]))],
    ['scheduleKeyDeletion', (kp: Keyport) => kp.scheduleKeyDeletion(KEY)],
    ['revokeGrant', (kp: Keyport) => kp.revokeGrant(KEY, 'grant-1')],
  ] as const)('%s is retried after a timeout and after a dropped connection', async (op, run) => {
    const { driver, calls, scripts } = scriptedDriver();
    scripts[op] = ['hang', 'unavailable', 'ok'];
    const { kp, audit } = client(driver);
    await run(kp);
    expect(calls[op]).toBe(3);
    expect(audit.events).toMatchObject([{ op, outcome: 'success', attempts: 3 }]);
  });
});
