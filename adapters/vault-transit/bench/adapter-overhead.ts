import { encodeContext, Keyport } from '@keyport/core';
import NodeVault from 'node-vault';
import { expect, it } from 'vitest';
import { againstBaseline, interleavedLatencies } from '../../../scripts/bench-latency.mjs';
import { writeBenchResults } from '../../../scripts/bench-results.mjs';
import { VaultTransitProvider } from '../src/index.js';
import { openbaoTarget } from './openbao-target.js';

// `pnpm bench --quick` (KEYPORT_BENCH_QUICK=1): a small size that keeps the bench working.
const QUICK = process.env.KEYPORT_BENCH_QUICK === '1';
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (QUICK ? 2 : 7));
const OPS = Number(process.env.BENCH_OPS ?? (QUICK ? 32 : 320));
const WARMUP = Number(process.env.BENCH_WARMUP ?? (QUICK ? 16 : 320));
const CALLERS = [1, 16] as const;
const context = { purpose: 'bench', tenant: 't-1' };
const plaintext = new Uint8Array(32).fill(7); // a data key: what a KMS encrypts in practice

interface Row {
  name: string;
  unit: string;
  value: number;
  baseline: string;
  baselineValue: number;
  ratio: number;
  /** The lowest and highest per-round ratio. */
  ratioSpread: [number, number];
  rounds: number;
  opsPerRound: number;
  concurrency: number;
  /** KMS calls, not envelope messages: no suite, no frame length. */
  suite: null;
  frameLength: null;
  node: string;
}

it('measures adapter encrypt/decrypt against bare node-vault', async () => {
  const target = openbaoTarget();
  const provider = new VaultTransitProvider({ endpoint: target.addr, auth: target.token });
  const keyport = new Keyport({ providers: [provider] });
  const bare = NodeVault({ endpoint: target.addr, token: target.token });
  try {
    const name = `bench-${Date.now().toString(36)}`;
    const { uri } = await keyport.createKey('hcvault', { name, spec: 'AES_256' });
    // Each bare call encodes the context and the plaintext itself, as the adapter does (a caller's
    // context and data vary per call; the Azure and pkcs11 benches' bare paths do the same).
    const aad = () => Buffer.from(encodeContext(context)).toString('base64');
    const signal = new AbortController().signal;
    const sealed = (await keyport.encrypt(uri, plaintext, { context })).ciphertext;
    const sealedText = Buffer.from(sealed).toString('utf8');

    const ops = {
      encrypt: {
        keyport: () => keyport.encrypt(uri, plaintext, { context }),
        provider: () => provider.encrypt({ uri }, plaintext, { context }, { signal }),
        bare: async () => {
          const r = (await bare.write(`transit/encrypt/${name}`, {
            plaintext: Buffer.from(plaintext).toString('base64'),
            associated_data: aad(),
          })) as {
            data: { ciphertext: string };
          };
          return Buffer.from(r.data.ciphertext, 'utf8');
        },
      },
      decrypt: {
        keyport: () => keyport.decrypt(uri, sealed, { context }),
        provider: () => provider.decrypt({ uri }, sealed, { context }, { signal }),
        bare: async () => {
          const r = (await bare.write(`transit/decrypt/${name}`, {
            ciphertext: sealedText,
            associated_data: aad(),
          })) as { data: { plaintext: string } };
          return Buffer.from(r.data.plaintext, 'base64');
        },
      },
    };
    const results: Row[] = [];
    for (const callers of CALLERS) {
      for (const [op, contenders] of Object.entries(ops)) {
        const samples = await interleavedLatencies(contenders, {
          callers,
          rounds: ROUNDS,
          ops: OPS,
          warmup: WARMUP,
        });
        for (const who of ['keyport', 'provider'] as const) {
          const { value, baselineValue, ratio, ratioSpread } = againstBaseline(samples, who, 'bare');
          results.push({
            name: `${op} 32 B with context, ${callers} caller${callers > 1 ? 's' : ''} (${who === 'keyport' ? 'Keyport -> adapter' : 'adapter alone'})`,
            unit: 'us (median latency)',
            value: Math.round(value * 10) / 10,
            baseline: `node-vault ${op} (same request, its own axios transport, same OpenBao)`,
            baselineValue: Math.round(baselineValue * 10) / 10,
            ratio,
            ratioSpread,
            rounds: ROUNDS,
            opsPerRound: OPS,
            concurrency: callers,
            suite: null,
            frameLength: null,
            node: process.version,
          });
        }
      }
    }
    writeBenchResults('vault-transit', results);
    console.table(
      results.map(({ name, value, baselineValue, ratio, ratioSpread }) => ({
        name,
        value,
        baselineValue,
        ratio,
        spread: ratioSpread.join('–'),
      })),
    );
    expect(results.every((r) => Number.isFinite(r.ratio) && r.ratio > 0)).toBe(true);
  } finally {
    await provider.close();
    target.release();
  }
});
