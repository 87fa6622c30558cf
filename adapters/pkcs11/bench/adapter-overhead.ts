import { performance } from 'node:perf_hooks';
import { encodeContext, Keyport } from '@keyport/core';
import pkcs11js from 'pkcs11js';
import { expect, it } from 'vitest';
import { againstBaseline, interleavedLatencies } from '../../../scripts/bench-latency.mjs';
import { writeBenchResults } from '../../../scripts/bench-results.mjs';
import { pkcs11 } from '../src/index.js';
import { benchToken, SOFTHSM_MODULE } from './softhsm-token.js';

const P = pkcs11js;
const QUICK = process.env.KEYPORT_BENCH_QUICK === '1'; // `pnpm bench --quick`
const ROUNDS = Number(process.env.KEYPORT_BENCH_ROUNDS ?? (QUICK ? 2 : 7));
const OPS = Number(process.env.KEYPORT_BENCH_OPS ?? (QUICK ? 50 : 400));
/**
 * Operations per throughput round: 400 at ~20,000 ops/s made 20 ms rounds, whose best and
 * spread (0.2-0.45) moved with every scheduler hiccup; 4,000 make ~0.2 s rounds.
 */
const THROUGHPUT_OPS = Number(process.env.KEYPORT_BENCH_THROUGHPUT_OPS ?? (QUICK ? 100 : 4000));
const SESSIONS = 4;
const context = { purpose: 'bench', tenant: 't-1' };
const dataKey = Buffer.alloc(32, 7);
const signal = new AbortController().signal;

interface Result {
  name: string;
  unit: string;
  value: number;
  baseline: string;
  baselineValue: number;
  ratio: number;
  /** Latency rows: the lowest and highest per-round ratio. */
  ratioSpread?: [number, number];
  spread: number;
  baselineSpread: number;
  concurrency: number;
  /** KMS calls, not envelope messages: no suite, no frame length. */
  suite: null;
  frameLength: null;
  sessions: number;
  rounds: number;
  opsPerRound: number;
  node: string;
}

type Op = () => Promise<unknown>;
const round3 = (x: number): number => Math.round(x * 1000) / 1000;

/** Seconds for `total` operations shared by `callers` concurrent loops. */
async function timed(callers: number, total: number, op: Op): Promise<number> {
  let left = total;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (left-- > 0) await op();
    }),
  );
  return (performance.now() - start) / 1000;
}

/** Alternating rounds; per contender the best and the spread of seconds per round. */
async function race(callers: number, contenders: Record<string, Op>) {
  const entries = Object.entries(contenders);
  for (const [, op] of entries) await timed(callers, Math.max(50, THROUGHPUT_OPS / 4), op); // warm-up
  const samples = new Map<string, number[]>(entries.map(([k]) => [k, []]));
  for (let r = 0; r < ROUNDS; r++) {
    for (let i = 0; i < entries.length; i++) {
      const [name, op] = entries[(r + i) % entries.length] as [string, Op];
      samples.get(name)?.push(await timed(callers, THROUGHPUT_OPS, op));
    }
  }
  const out: Record<string, { best: number; spread: number }> = {};
  for (const [name, xs] of samples) {
    const best = Math.min(...xs);
    out[name] = { best, spread: (Math.max(...xs) - best) / best };
  }
  return out;
}

/** A session pool as a careful bare pkcs11js program would keep one. */
function barePool(sessions: Buffer[]) {
  const idle = [...sessions];
  const waiting: Array<(s: Buffer) => void> = [];
  return {
    borrow: (): Buffer | Promise<Buffer> => idle.pop() ?? new Promise<Buffer>((r) => waiting.push(r)),
    giveBack(s: Buffer): void {
      const w = waiting.shift();
      if (w) w(s);
      else idle.push(s);
    },
  };
}

it('measures adapter AES-GCM wrap/unwrap against bare pkcs11js', async () => {
  const token = benchToken();
  const options = {
    modulePath: SOFTHSM_MODULE,
    token: { label: token.label },
    pin: { callback: () => token.pin },
    maxSessions: SESSIONS,
  };
  const driver = pkcs11(options);
  // Keyport gets its own provider instance: bare, the driver and Keyport each have SESSIONS
  // sessions, so with 16 callers interleaved none waits for another's sessions.
  const client = new Keyport({ providers: [pkcs11(options)], retry: { maxAttempts: 1 } });
  try {
    const key = await client.createKey('pkcs11', { name: 'bench-aes', spec: 'AES_256' });
    const sealed = await client.encrypt(key.uri, dataKey, { context });

    // Bare pkcs11js on the same (already initialised, logged-in) module.
    const p11 = driver.p11;
    const slot = p11.C_GetSlotList(true).find((s) => p11.C_GetTokenInfo(s).label.trimEnd() === token.label);
    if (slot === undefined) throw new Error('bench token not found');
    const sessions = Array.from({ length: SESSIONS }, () =>
      p11.C_OpenSession(slot, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION),
    );
    const s0 = sessions[0] as Buffer;
    p11.C_FindObjectsInit(s0, [
      { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
      { type: P.CKA_LABEL, value: 'bench-aes' },
    ]);
    const handle = p11.C_FindObjects(s0);
    p11.C_FindObjectsFinal(s0);
    if (handle === null) throw new Error('bench key not found');
    const gcm = (iv: Buffer, aad: Uint8Array) => ({
      mechanism: P.CKM_AES_GCM,
      parameter: { type: P.CK_PARAMS_GCM, iv, ivBits: 96, aad: Buffer.from(aad), tagBits: 128 },
    });
    const pool = barePool(sessions);
    const bareEncrypt = async (): Promise<Buffer> => {
      const aad = encodeContext(context);
      const s = await pool.borrow();
      try {
        const iv = p11.C_GenerateRandom(s, Buffer.alloc(12));
        p11.C_EncryptInit(s, gcm(iv, aad), handle);
        const sealed = await p11.C_EncryptAsync(s, dataKey, Buffer.alloc(48));
        return Buffer.concat([iv, sealed]);
      } finally {
        pool.giveBack(s);
      }
    };
    const bareSealed = await bareEncrypt();
    const bareDecrypt = async (): Promise<Buffer> => {
      const aad = encodeContext(context);
      const s = await pool.borrow();
      try {
        p11.C_DecryptInit(s, gcm(bareSealed.subarray(0, 12), aad), handle);
        return await p11.C_DecryptAsync(s, bareSealed.subarray(12), Buffer.alloc(48));
      } finally {
        pool.giveBack(s);
      }
    };
    expect(await bareDecrypt()).toEqual(dataKey);
    const ref = { uri: key.uri };
    const driverEncrypt = () => driver.encrypt(ref, dataKey, { context }, { signal });
    const driverDecrypt = () => driver.decrypt(ref, sealed.ciphertext, { context }, { signal });

    const results: Result[] = [];
    const common = {
      baseline: `bare pkcs11js (same module and token, ${SESSIONS} sessions, handle found once)`,
      sessions: SESSIONS,
      suite: null,
      frameLength: null,
      rounds: ROUNDS,
      opsPerRound: OPS,
      node: process.version,
    };
    const ops = {
      encrypt: {
        what: 'AES-GCM wrap 32-byte data key',
        bare: bareEncrypt,
        driver: driverEncrypt,
        keyport: () => client.encrypt(key.uri, dataKey, { context }),
      },
      decrypt: {
        what: 'AES-GCM unwrap 32-byte data key',
        bare: bareDecrypt,
        driver: driverDecrypt,
        keyport: () => client.decrypt(key.uri, sealed.ciphertext, { context }),
      },
    };
    for (const callers of [1, 16]) {
      for (const [op, { what, ...contenders }] of Object.entries(ops)) {
        const rounds = await interleavedLatencies(contenders, {
          callers,
          rounds: ROUNDS,
          ops: OPS,
          warmup: Math.max(50, OPS / 2),
        });
        const bare = rounds.get('bare') ?? [];
        for (const who of ['driver', 'keyport'] as const) {
          const ours = rounds.get(who) ?? [];
          const { value, baselineValue, ratio, ratioSpread } = againstBaseline(rounds, who, 'bare');
          results.push({
            ...common,
            name: `${what} (${who === 'driver' ? 'driver' : 'Keyport'}.${op}), ${callers} caller(s), median latency`,
            unit: 'µs/op (median)',
            value: round3(value),
            baselineValue: round3(baselineValue),
            ratio,
            ratioSpread,
            spread: round3((Math.max(...ours) - value) / value),
            baselineSpread: round3((Math.max(...bare) - baselineValue) / baselineValue),
            concurrency: callers,
          });
        }
      }
    }
    for (const callers of [4, 16]) {
      for (const [op, { what, ...contenders }] of Object.entries(ops)) {
        const raced = await race(callers, contenders);
        const bare = raced.bare as { best: number; spread: number };
        for (const who of ['driver', 'keyport'] as const) {
          const ours = raced[who] as { best: number; spread: number };
          results.push({
            ...common,
            name: `${what} (${who === 'driver' ? 'driver' : 'Keyport'}.${op}), ${callers} caller(s), throughput`,
            unit: 'ops/s',
            value: round3(THROUGHPUT_OPS / ours.best),
            baselineValue: round3(THROUGHPUT_OPS / bare.best),
            ratio: round3(ours.best / bare.best),
            spread: round3(ours.spread),
            baselineSpread: round3(bare.spread),
            concurrency: callers,
            opsPerRound: THROUGHPUT_OPS,
          });
        }
      }
    }

    writeBenchResults('pkcs11', results);
    console.table(
      results.map(({ name, unit, value, baselineValue, ratio, spread, baselineSpread }) => ({
        name,
        unit,
        value,
        baselineValue,
        ratio,
        spread,
        baselineSpread,
      })),
    );
    expect(results.every((r) => Number.isFinite(r.ratio) && r.ratio > 0)).toBe(true);
    for (const s of sessions) p11.C_CloseSession(s);
  } finally {
    await client.close();
    await driver.close();
    token.remove();
  }
});
