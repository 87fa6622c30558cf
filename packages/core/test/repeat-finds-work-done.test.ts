/**
 * Operations whose repeat finds the work already done: a deletion scheduled, a deletion
 * cancelled, a grant revoked. Core repeats them after an ambiguous failure (harmless: nothing is
 * done twice), and when the first attempt had landed and only its answer was lost, the provider
 * refuses the repeat (AWS: KMSInvalidStateException, "already pending deletion"; a revoked grant
 * is not found). The call then answers with what the provider's state shows, not with the
 * refusal of work that was done. Only after an ambiguous failure: the same refusal on a first
 * attempt, or after a failure that certainly had no effect, is the caller's to see.
 */
import { describe, expect, it } from 'vitest';
import {
  type Capabilities,
  type KeyInfo,
  Keyport,
  KeyportError,
  type KeyRef,
  type KeyState,
  type KmsProvider,
  MemoryAuditSink,
  type ProviderCallOptions,
} from '../src/index.js';
import { AES_ONLY_CAPABILITIES } from './support/capabilities.js';

const caps: Capabilities = {
  ...AES_ONLY_CAPABILITIES,
  scheduledDeletion: 'native',
  grants: 'native',
  grantExpiry: 'native',
};
const KEY = 'acme://orders';

/** How one attempt ends: normally, or done on the provider with its answer lost on the way back. */
type Attempt = 'ok' | 'landed-then-dropped' | 'refused-before-sending';

/** A provider with one key and one grant, whose lifecycle calls follow a script per method. */
function provider(initial: KeyState = 'enabled') {
  let state: KeyState = initial;
  let grantLive = true;
  let hook: (() => void) | undefined;
  const calls: Record<string, number> = {};
  const scripts: Record<string, Attempt[]> = {};
  const run = <T>(method: string, work: () => T): T => {
    calls[method] = (calls[method] ?? 0) + 1;
    const attempt = scripts[method]?.shift() ?? 'ok';
    if (attempt === 'refused-before-sending')
      throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    const answer = work();
    if (attempt === 'landed-then-dropped')
      throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    return answer;
  };
  const info = (): KeyInfo => ({ uri: KEY, spec: 'AES_256', usage: 'encrypt_decrypt', state, labels: {} });
  const conflict = (why: string) => new KeyportError('KeyStateConflict', why);
  const driver: KmsProvider = {
    scheme: 'acme',
    capabilities: caps,
    parseUri: (uri: string): KeyRef => ({ uri }),
    formatUri: (ref: KeyRef) => ref.uri,
    encrypt: async () => ({ ciphertext: new Uint8Array([1]), keyVersion: '1' }),
    decrypt: async () => ({ plaintext: new Uint8Array([1]), keyVersion: '1' }),
    describeKey: async () => {
      calls.describeKey = (calls.describeKey ?? 0) + 1;
      hook?.();
      return info();
    },
    scheduleKeyDeletion: async (_ref: KeyRef, _req: unknown, _o: ProviderCallOptions) =>
      run('scheduleKeyDeletion', () => {
        if (state === 'pending_deletion') throw conflict('the key is already pending deletion');
        state = 'pending_deletion';
        return info();
      }),
    cancelKeyDeletion: async () =>
      run('cancelKeyDeletion', () => {
        if (state !== 'pending_deletion') throw conflict('the key is not pending deletion');
        state = 'disabled';
        return info();
      }),
    revokeGrant: async () =>
      run('revokeGrant', () => {
        if (!grantLive) throw new KeyportError('NotFound', 'no such grant');
        grantLive = false;
      }),
    mapError: (e: unknown) => {
      const code = (e as { code?: unknown }).code;
      return code === 'ECONNRESET' || code === 'ECONNREFUSED'
        ? new KeyportError('Unavailable', `acme unreachable (${String(code)})`, { cause: e })
        : undefined;
    },
    close: async () => {},
  };
  const audit = new MemoryAuditSink();
  const kp = new Keyport({
    providers: [driver],
    retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 1 },
    audit: [audit],
    random: () => 0,
  });
  return {
    kp,
    audit,
    calls,
    scripts,
    setState: (s: KeyState) => {
      state = s;
    },
    beforeDescribe: (f: () => void) => {
      hook = f;
    },
  };
}

const failure = (call: Promise<unknown>) =>
  call.then(
    () => {
      throw new Error('the call should have failed');
    },
    (e: unknown) => e as KeyportError,
  );

describe('a repeat that finds the work done answers with it', () => {
  it('scheduleKeyDeletion whose answer was lost: the repeat is refused, the call answers pending_deletion', async () => {
    const { kp, audit, calls, scripts } = provider();
    scripts.scheduleKeyDeletion = ['landed-then-dropped'];
    const info = await kp.scheduleKeyDeletion(KEY, { days: 7 });
    expect(info.state).toBe('pending_deletion');
    expect(calls.scheduleKeyDeletion).toBe(2);
    expect(calls.describeKey).toBe(1);
    expect(audit.events).toMatchObject([{ op: 'scheduleKeyDeletion', outcome: 'success', attempts: 2 }]);
  });

  it('cancelKeyDeletion whose answer was lost: the call answers with the key no longer pending deletion', async () => {
    const { kp, calls, scripts } = provider('pending_deletion');
    scripts.cancelKeyDeletion = ['landed-then-dropped'];
    const info = await kp.cancelKeyDeletion(KEY);
    expect(info.state).toBe('disabled');
    expect(calls.cancelKeyDeletion).toBe(2);
  });

  it('revokeGrant whose answer was lost: the repeat finds no such grant, and the call succeeds', async () => {
    const { kp, calls, scripts } = provider();
    scripts.revokeGrant = ['landed-then-dropped'];
    await expect(kp.revokeGrant(KEY, 'grant-1')).resolves.toBeUndefined();
    expect(calls.revokeGrant).toBe(2);
  });
});

describe('the refusal stays the caller’s when nothing may have been done', () => {
  it('a key already pending deletion: the first attempt’s KeyStateConflict is the answer (no look-up)', async () => {
    const { kp, calls } = provider('pending_deletion');
    const error = await failure(kp.scheduleKeyDeletion(KEY, { days: 7 }));
    expect(error).toMatchObject({ code: 'KeyStateConflict' });
    expect(calls.scheduleKeyDeletion).toBe(1);
    expect(calls.describeKey).toBeUndefined();
  });

  it('after a failure that certainly had no effect (connection refused), the repeat’s refusal stands', async () => {
    const { kp, calls, scripts, setState } = provider();
    scripts.scheduleKeyDeletion = ['refused-before-sending'];
    // Someone else schedules the deletion between the two attempts.
    const original = kp.scheduleKeyDeletion(KEY, { days: 7 });
    setState('pending_deletion');
    const error = await failure(original);
    expect(error).toMatchObject({ code: 'KeyStateConflict' });
    expect(calls.scheduleKeyDeletion).toBe(2);
    expect(calls.describeKey).toBeUndefined();
  });

  it('a grant that never existed is NotFound on the first attempt', async () => {
    const { kp, scripts } = provider();
    scripts.revokeGrant = ['ok'];
    await kp.revokeGrant(KEY, 'grant-1');
    await expect(kp.revokeGrant(KEY, 'grant-1')).rejects.toMatchObject({ code: 'NotFound' });
  });

  it('the look-up must show the work done: a deletion cancelled before it keeps the refusal', async () => {
    const p = provider();
    p.scripts.scheduleKeyDeletion = ['landed-then-dropped'];
    // Someone cancels the deletion between the refused repeat and the look-up.
    p.beforeDescribe(() => p.setState('enabled'));
    const error = await failure(p.kp.scheduleKeyDeletion(KEY, { days: 7 }));
    expect(error).toMatchObject({ code: 'KeyStateConflict' });
    expect(p.calls.describeKey).toBe(1);
  });
});
