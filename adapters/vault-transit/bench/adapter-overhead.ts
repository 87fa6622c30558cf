import { performance } from 'node:perf_hooks';
import { encodeContext, Keyport } from '@keyport/core';
import NodeVault from 'node-vault';
import { expect, it } from 'vitest';
import { writeBenchResults } from '../../../scripts/bench-results.mjs';
import { VaultTransitProvider } from '../src/index.js';
import { openbaoTarget } from './openbao-target.js';

const ROUNDS = process.env.KEYPORT_BENCH_QUICK === '1' ? 2 : 7; // `pnpm bench --quick`: a small size
const OPS_PER_ROUND = 200;
const WARMUP = 200;
const context = { purpose: 'bench', tenant: 't-1' };
const plaintext = new Uint8Array(32).fill(7); // a data key: what a KMS encrypts in practice

interface Result {
  name: string;
  unit: string;
  value: number;
  baseline: string;
  baselineValue: number;
  ratio: number;
  concurrency: number;
  suite: null;
  frameLength: null;
}

async function timePerOp(op: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < OPS_PER_ROUND; i++) await op();
  return ((performance.now() - start) * 1000) / OPS_PER_ROUND;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

/** Alternates contenders round by round; returns each one's median µs/op. */
async function race(contenders: Record<string, () => Promise<unknown>>): Promise<Record<string, number>> {
  const samples: Record<string, number[]> = {};
  for (const [name, op] of Object.entries(contenders)) {
    samples[name] = [];
    for (let i = 0; i < WARMUP; i++) await op();
  }
  const entries = Object.entries(contenders);
  for (let r = 0; r < ROUNDS; r++) {
    // Rotate who goes first each round: on a busy machine the first slot is not a fair one.
    for (let i = 0; i < entries.length; i++) {
      const [name, op] = entries[(r + i) % entries.length] as [string, () => Promise<unknown>];
      samples[name]?.push(await timePerOp(op));
    }
  }
  return Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]));
}

it('measures adapter encrypt/decrypt against bare node-vault', async () => {
  const target = openbaoTarget();
  const provider = new VaultTransitProvider({ endpoint: target.addr, auth: target.token });
  const keyport = new Keyport({ providers: [provider] });
  const bare = NodeVault({ endpoint: target.addr, token: target.token });
  try {
    const name = `bench-${Date.now().toString(36)}`;
    const { uri } = await keyport.createKey('hcvault', { name, spec: 'AES_256' });
    const aad = Buffer.from(encodeContext(context)).toString('base64');
    const b64 = Buffer.from(plaintext).toString('base64');
    const signal = new AbortController().signal;
    const sealed = (await keyport.encrypt(uri, plaintext, { context })).ciphertext;
    const sealedText = Buffer.from(sealed).toString('utf8');

    const enc = await race({
      keyport: () => keyport.encrypt(uri, plaintext, { context }),
      provider: () => provider.encrypt({ uri }, plaintext, { context }, { signal }),
      bare: async () => {
        const r = (await bare.write(`transit/encrypt/${name}`, { plaintext: b64, associated_data: aad })) as {
          data: { ciphertext: string };
        };
        return Buffer.from(r.data.ciphertext, 'utf8');
      },
    });
    const dec = await race({
      keyport: () => keyport.decrypt(uri, sealed, { context }),
      provider: () => provider.decrypt({ uri }, sealed, { context }, { signal }),
      bare: async () => {
        const r = (await bare.write(`transit/decrypt/${name}`, {
          ciphertext: sealedText,
          associated_data: aad,
        })) as {
          data: { plaintext: string };
        };
        return Buffer.from(r.data.plaintext, 'base64');
      },
    });

    const row = (op: string, who: 'keyport' | 'provider', m: Record<string, number>): Result => {
      const value = m[who] as number;
      const baselineValue = m.bare as number;
      return {
        name: `${op} 32 B with context (${who === 'keyport' ? 'Keyport -> adapter' : 'adapter alone'})`,
        unit: 'us/op',
        value: Math.round(value * 10) / 10,
        baseline: `node-vault ${op} (same request, its own axios transport)`,
        baselineValue: Math.round(baselineValue * 10) / 10,
        ratio: Math.round((value / baselineValue) * 1000) / 1000,
        // One call at a time; KMS calls, not envelope messages.
        concurrency: 1,
        suite: null,
        frameLength: null,
      };
    };
    const results = [
      row('encrypt', 'keyport', enc),
      row('encrypt', 'provider', enc),
      row('decrypt', 'keyport', dec),
      row('decrypt', 'provider', dec),
    ];
    writeBenchResults('vault-transit', results);
    console.table(results);
    expect(results.every((r) => Number.isFinite(r.ratio) && r.ratio > 0)).toBe(true);
  } finally {
    await provider.close();
    target.release();
  }
});
