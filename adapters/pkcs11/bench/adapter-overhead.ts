/**
 * Adapter overhead against SoftHSM2 in the same run: keyport's AES-GCM wrap (encrypt) and unwrap
 * (decrypt) of a 32-byte data key with a context — through the provider alone and through
 * `Keyport` — against bare pkcs11js doing the same PKCS#11 work (C_GenerateRandom for the IV,
 * C_EncryptInit + C_EncryptAsync / C_DecryptInit + C_DecryptAsync) on a session it holds, with
 * the key handle looked up once. Rounds alternate between contenders (order rotating per round)
 * and the median round is reported. Then ops/s at 1, 4 and 16 concurrent callers, adapter and
 * bare on the same session count (4). Writes bench-results/pkcs11.json as
 * `{ name, unit, value, baseline, baselineValue, ratio }` (ratio = adapter cost / bare cost).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { encodeContext, Keyport } from '@keyport/core';
import pkcs11js from 'pkcs11js';
import { expect, it } from 'vitest';
import { Pkcs11Provider } from '../src/index.js';
import { benchToken, SOFTHSM_MODULE } from './softhsm-token.js';

const P = pkcs11js;
const ROUNDS = 7;
const OPS_PER_ROUND = 300;
const WARMUP = 300;
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
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const round3 = (x: number): number => Math.round(x * 1000) / 1000;

async function timePerOp(op: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < OPS_PER_ROUND; i++) await op();
  return ((performance.now() - start) * 1000) / OPS_PER_ROUND;
}

async function race(contenders: Record<string, () => Promise<unknown>>): Promise<Record<string, number>> {
  const entries = Object.entries(contenders);
  const samples: Record<string, number[]> = Object.fromEntries(entries.map(([k]) => [k, []]));
  for (const [, op] of entries) for (let i = 0; i < WARMUP; i++) await op();
  for (let r = 0; r < ROUNDS; r++) {
    for (let i = 0; i < entries.length; i++) {
      const [name, op] = entries[(r + i) % entries.length] as [string, () => Promise<unknown>];
      samples[name]?.push(await timePerOp(op));
    }
  }
  return Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]));
}

/** ops/s with `callers` concurrent loops sharing `total` operations. */
async function throughput(callers: number, total: number, op: () => Promise<unknown>): Promise<number> {
  let left = total;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (left-- > 0) await op();
    }),
  );
  return total / ((performance.now() - start) / 1000);
}

it('measures adapter AES-GCM wrap/unwrap against bare pkcs11js', async () => {
  const token = benchToken();
  const provider = new Pkcs11Provider({
    modulePath: SOFTHSM_MODULE,
    token: { label: token.label },
    pin: { callback: () => token.pin },
    maxSessions: SESSIONS,
  });
  const client = new Keyport({ providers: [provider], retry: { maxAttempts: 1 } });
  try {
    const key = await client.createKey('pkcs11', { name: 'bench-aes', spec: 'AES_256' });
    const sealed = await client.encrypt(key.uri, dataKey, { context });

    // Bare pkcs11js on the same (already initialised, logged-in) module: own sessions, handle found once.
    const p11 = provider.p11;
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
    const aad = Buffer.from(encodeContext(context));
    const gcm = (iv: Buffer) => ({
      mechanism: P.CKM_AES_GCM,
      parameter: { type: P.CK_PARAMS_GCM, iv, ivBits: 96, aad, tagBits: 128 },
    });
    const sealedBody = Buffer.from(sealed.ciphertext.subarray(5));
    const idle = [...sessions];
    const waiting: Array<(s: Buffer) => void> = [];
    const borrow = async (): Promise<Buffer> => idle.pop() ?? new Promise<Buffer>((r) => waiting.push(r));
    const giveBack = (s: Buffer) => {
      const w = waiting.shift();
      if (w) w(s);
      else idle.push(s);
    };
    const bareEncrypt = async () => {
      const s = await borrow();
      try {
        const iv = Buffer.from(p11.C_GenerateRandom(s, Buffer.alloc(12)));
        p11.C_EncryptInit(s, gcm(iv), handle);
        return await p11.C_EncryptAsync(s, dataKey, Buffer.alloc(48));
      } finally {
        giveBack(s);
      }
    };
    const bareDecrypt = async () => {
      const s = await borrow();
      try {
        p11.C_DecryptInit(s, gcm(sealedBody.subarray(0, 12)), handle);
        return await p11.C_DecryptAsync(s, sealedBody.subarray(12), Buffer.alloc(48));
      } finally {
        giveBack(s);
      }
    };
    const ref = { uri: key.uri };
    const enc = await race({
      bare: bareEncrypt,
      provider: () => provider.encrypt(ref, dataKey, { context }, { signal }),
      keyport: () => client.encrypt(key.uri, dataKey, { context }),
    });
    const dec = await race({
      bare: bareDecrypt,
      provider: () => provider.decrypt(ref, sealed.ciphertext, { context }, { signal }),
      keyport: () => client.decrypt(key.uri, sealed.ciphertext, { context }),
    });

    const results: Result[] = [];
    const latency = (name: string, value: number, baselineValue: number) =>
      results.push({
        name,
        unit: 'µs/op',
        value: round3(value),
        baseline: 'bare pkcs11js (same module, same token, handle cached)',
        baselineValue: round3(baselineValue),
        ratio: round3(value / baselineValue),
      });
    latency('AES-GCM wrap 32-byte data key (provider.encrypt)', enc.provider as number, enc.bare as number);
    latency('AES-GCM wrap 32-byte data key (Keyport.encrypt)', enc.keyport as number, enc.bare as number);
    latency('AES-GCM unwrap 32-byte data key (provider.decrypt)', dec.provider as number, dec.bare as number);
    latency('AES-GCM unwrap 32-byte data key (Keyport.decrypt)', dec.keyport as number, dec.bare as number);

    for (const callers of [1, 4, 16]) {
      const total = 1500;
      const b: number[] = [];
      const a: number[] = [];
      for (let r = 0; r < 3; r++) {
        b.push(await throughput(callers, total, bareEncrypt));
        a.push(
          await throughput(callers, total, () => provider.encrypt(ref, dataKey, { context }, { signal })),
        );
      }
      const adapterOps = median(a);
      const bareOps = median(b);
      results.push({
        name: `AES-GCM wrap, ${callers} concurrent caller(s), ${SESSIONS} sessions (provider.encrypt)`,
        unit: 'ops/s',
        value: Math.round(adapterOps),
        baseline: `bare pkcs11js, ${SESSIONS} sessions`,
        baselineValue: Math.round(bareOps),
        ratio: round3(bareOps / adapterOps),
      });
    }

    const outDir = join(new URL('../../..', import.meta.url).pathname, 'bench-results');
    mkdirSync(outDir, { recursive: true });
    writeFileSync(join(outDir, 'pkcs11.json'), `${JSON.stringify(results, null, 2)}\n`);
    console.table(results);
    expect(results.every((r) => Number.isFinite(r.ratio) && r.ratio > 0)).toBe(true);
    for (const s of sessions) p11.C_CloseSession(s);
  } finally {
    await client.close();
    token.remove();
  }
});
