// Envelope benchmarks. Run with `pnpm bench` (builds dist first). Writes
// <repo>/bench-results/envelope.json as [{ name, unit, value, baseline, baselineValue, ratio }]
// and prints a table. Ratios are measured in one run, each pair interleaved to share noise.

import { spawn as spawnChild, spawnSync as spawnSyncChild } from 'node:child_process';
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { Keyport } from '@keyport/core';
import { openLocalKeystore } from '@keyport/local';
import { benchResultsFile } from '../../../scripts/bench-results.mjs';
import {
  DataKeyCache,
  DEFAULT_FRAME_LENGTH,
  openEnvelope,
  openStream,
  rawAesRecipient,
  rawRsaRecipient,
  sealEnvelope,
  sealStream,
} from '../dist/index.js';

// Loaded on first use: the AWS SDK grows the heap, which makes every later GC dearer.
let esdkModule;
const esdk = () => {
  esdkModule ??= createRequire(import.meta.url)('@aws-crypto/client-node');
  return esdkModule;
};
const MiB = 1024 * 1024;
const results = [];
// `pnpm bench --quick` reaches this as `--quick` and as KEYPORT_BENCH_QUICK=1 (scripts/bench.mjs).
const quick = process.argv.includes('--quick') || process.env.KEYPORT_BENCH_QUICK === '1';
const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length);
// Without --only, every section runs in its own child process: a fresh heap and a clean RSS
// baseline for each, so one section's garbage or loaded SDKs do not tax the next.
const SECTIONS = ['memory', 'flood', 'stream', '64mib', 'parallel', 'cached', 'kms'];
if (only === undefined) {
  for (const name of SECTIONS) results.push(...(await runSection(name)));
  const tunables = hugePagesTunables();
  if (tunables !== undefined) results.push(...(await runSection('hugepages', { GLIBC_TUNABLES: tunables })));
}

/** 'always', 'madvise' or 'never': the kernel's transparent huge pages; undefined off Linux. */
function thpMode() {
  try {
    return /\[(\w+)\]/.exec(readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8'))?.[1];
  } catch {
    return undefined;
  }
}

/**
 * GLIBC_TUNABLES with glibc.malloc.hugetlb=1 added, where it can matter: glibc (2.35 or later
 * reads it; older ones ignore it) on a kernel with transparent huge pages not 'never'.
 */
function hugePagesTunables() {
  const glibc = process.report?.getReport().header.glibcVersionRuntime;
  const mode = thpMode();
  if (glibc === undefined || mode === undefined || mode === 'never') return undefined;
  const own = process.env.GLIBC_TUNABLES;
  return own ? `${own}:glibc.malloc.hugetlb=1` : 'glibc.malloc.hugetlb=1';
}

/**
 * One section in a child process; its rows (the JSON array it prints last). A child that has
 * printed its rows but not exited EXIT_GRACE_MS later is killed and its rows kept: Node can
 * deadlock in exit (a concurrent Maglev compile waiting for a GC while the main thread joins the
 * platform's worker threads, nodejs/node#54918), seen once here in a CI run of this bench. A
 * section still running after its limit fails the bench rather than hanging it.
 */
function runSection(name, env = {}) {
  const EXIT_GRACE_MS = 15_000;
  const limitMs = (quick ? 10 : 90) * 60_000;
  const args = ['--expose-gc', fileURLToPath(import.meta.url), `--only=${name}`, '--json'];
  if (quick) args.push('--quick');
  const rowsIn = (out) => {
    if (!out.endsWith('\n')) return undefined;
    try {
      const rows = JSON.parse(out.trimEnd().split('\n').at(-1));
      return Array.isArray(rows) ? rows : undefined;
    } catch {
      return undefined;
    }
  };
  return new Promise((resolve, reject) => {
    const child = spawnChild(process.execPath, args, {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, ...env },
    });
    let out = '';
    let grace;
    let reapedAfterRows = false;
    const limit = setTimeout(() => child.kill('SIGKILL'), limitMs);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (text) => {
      out += text;
      if (grace === undefined && rowsIn(out) !== undefined) {
        grace = setTimeout(() => {
          reapedAfterRows = true;
          process.stderr.write(`bench section ${name}: printed its rows, then did not exit; killed\n`);
          child.kill('SIGKILL');
        }, EXIT_GRACE_MS);
      }
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(limit);
      clearTimeout(grace);
      const rows = rowsIn(out);
      if (rows !== undefined && (code === 0 || reapedAfterRows)) resolve(rows);
      else reject(new Error(`bench section ${name} failed (${signal ?? `exit ${code}`})`));
    });
  });
}
const section = (name) => only === name;
/** The `update` slice sizes the plain loops are tried with (the fastest is the floor). */
const UPDATE_SLICES = [16 * 1024, 64 * 1024, 256 * 1024, MiB];
const HUGETLB_TUNABLE = /(^|:)glibc\.malloc\.hugetlb=1(:|$)/;

/** `openssl speed -evp aes-256-gcm` in MiB/s over all `multi` processes (NaN without openssl). */
function opensslSpeed(bytes, multi, seconds) {
  const args = ['speed', '-evp', 'aes-256-gcm', '-bytes', String(bytes), '-seconds', String(seconds)];
  if (multi > 1) args.push('-multi', String(multi));
  const r = spawnSyncChild('openssl', args, { encoding: 'utf8' });
  const line = r.stdout?.split('\n').find((l) => /^aes-256-gcm/i.test(l));
  const kbps = line === undefined ? Number.NaN : Number.parseFloat(line.trim().split(/\s+/).at(-1));
  return (kbps * 1000) / MiB;
}

function record(name, unit, value, baseline, baselineValue, higherIsBetter = true) {
  const ratio = higherIsBetter ? value / baselineValue : baselineValue === 0 ? 0 : value / baselineValue;
  results.push({
    name,
    unit,
    value: round(value),
    baseline,
    baselineValue: round(baselineValue),
    ratio: round(ratio, 3),
    // Defaults every row names; sections override them where they differ.
    suite: '0x0478',
    frameLength: DEFAULT_FRAME_LENGTH,
    concurrency: 1,
    node: process.version,
  });
}
/** (max − min) / min of a list of timings: how much the runs disagreed. */
const spread = (xs) => round((Math.max(...xs) - Math.min(...xs)) / Math.min(...xs), 3);
async function collect(it) {
  const parts = [];
  for await (const p of it) parts.push(p);
  return parts;
}
const round = (v, d = 2) => Math.round(v * 10 ** d) / 10 ** d;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Wall-clock milliseconds (for latency-bound runs: KMS round trips). */
async function wallTime(fn) {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

/**
 * CPU milliseconds of this process (user + system) for CPU-bound runs. The benchmark machine
 * has 2 cores shared with other jobs, so wall time mostly measures the neighbours; CPU time
 * measures the work. Both sides of every ratio are measured the same way.
 */
async function cpuTime(fn) {
  const t = process.cpuUsage();
  await fn();
  const d = process.cpuUsage(t);
  return (d.user + d.system) / 1000;
}

/**
 * Runs a and b alternately `runs` times after a warm-up, which side goes first alternating so
 * that neither always inherits the other's garbage; the times of each.
 */
async function alternate(runs, a, b, time) {
  await a();
  await b();
  const ta = [];
  const tb = [];
  for (let i = 0; i < runs; i++) {
    for (const [fn, into] of i % 2 === 0
      ? [
          [a, ta],
          [b, tb],
        ]
      : [
          [b, tb],
          [a, ta],
        ]) {
      globalThis.gc?.();
      into.push(await time(fn));
    }
  }
  return [ta, tb];
}

/** `alternate` in CPU time (by default); the median of each. */
async function pair(runs, a, b, time = cpuTime) {
  const [ta, tb] = await alternate(runs, a, b, time);
  // The medians, then how much each side's runs disagreed.
  return [median(ta), median(tb), { runs, a: spread(ta), b: spread(tb) }];
}

const wrappingKey = randomBytes(32);
const aes = rawAesRecipient({ namespace: 'bench', name: 'aes', key: wrappingKey });
const esdkClient = () => esdk().buildClient(esdk().CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);
const esdkAes = () =>
  new (esdk().RawAesKeyringNode)({
    keyName: 'aes',
    keyNamespace: 'bench',
    unencryptedMasterKey: new Uint8Array(wrappingKey),
    wrappingSuite: esdk().RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
  });

/** Peak-RSS growth of opening `file` in a fresh child process (VmHWM, read from the OS). */
function openInChild(file, key, maxFrameLength) {
  const child = fileURLToPath(new URL('./open-memory-child.mjs', import.meta.url));
  const r = spawnSyncChild(
    process.execPath,
    ['--expose-gc', child, file, key.toString('hex'), String(maxFrameLength)],
    {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  if (r.status !== 0) throw new Error('memory child failed');
  return JSON.parse(r.stdout.trim().split('\n').at(-1));
}

// ---------------------------------------------------------------- streaming open: peak RSS by frame length
// Each case: a message of `total` bytes sealed to a file at frame length F, then opened from the
// file in 64 KiB chunks in a fresh child; the peak RSS growth (VmHWM − RSS before the open) is
// compared with the frame length (target: at most ~2× the frame plus a constant).
if (section('memory')) {
  const dir = mkdtempSync(join(tmpdir(), 'keyport-bench-mem-'));
  const total = quick ? 8 * MiB : 256 * MiB;
  const frames = quick ? [1, 4] : [1, 4, 16, 64];
  const chunk = randomBytes(64 * 1024);
  try {
    for (const fMiB of frames) {
      const F = fMiB * MiB;
      const file = join(dir, `m-${fMiB}.bin`);
      async function* source() {
        for (let sent = 0; sent < total; sent += chunk.length) yield chunk;
      }
      await pipeline(
        Readable.from(sealStream(source(), { recipients: [aes], frameLength: F })),
        createWriteStream(file),
      );
      const r = openInChild(file, wrappingKey, 64 * MiB);
      rmSync(file);
      if (r.error !== undefined || r.bytes !== total) throw new Error(`memory child: ${r.error ?? r.bytes}`);
      record(
        `streaming open ${total / MiB} MiB from a file in 64 KiB chunks, ${fMiB} MiB frames: peak RSS growth (VmHWM, child process)`,
        'MiB',
        (r.hwm - r.rssStart) / MiB,
        'frame length',
        fMiB,
        false,
      );
      Object.assign(results.at(-1), {
        suite: '0x0478',
        frameLength: F,
        concurrency: 1,
        node: process.version,
      });
    }
    // A header declaring 64 MiB frames (within the default limit) followed by 64 MiB of junk.
    const F = (quick ? 4 : 64) * MiB;
    const file = join(dir, 'junk.bin');
    const real = Buffer.concat(
      await collect(sealStream([Buffer.alloc(10)], { recipients: [aes], frameLength: F })),
    );
    const headerLength = real.length - (4 + 4 + 12 + 4 + 10 + 16);
    await pipeline(
      Readable.from(
        (function* () {
          yield real.subarray(0, headerLength);
          // A plausible first frame: sequence number 1 and an IV, then junk where content and
          // tag should be, so the whole frame is read and fails only at its tag.
          yield Buffer.concat([Buffer.of(0, 0, 0, 1), randomBytes(12)]);
          for (let sent = 0; sent < F + 64; sent += chunk.length) yield chunk;
        })(),
      ),
      createWriteStream(file),
    );
    const r = openInChild(file, wrappingKey, 64 * MiB);
    rmSync(file);
    if (r.error === undefined) throw new Error('junk opened');
    record(
      `streaming open: header declaring ${F / MiB} MiB frames, then junk: peak RSS growth (VmHWM, child process)`,
      'MiB',
      (r.hwm - r.rssStart) / MiB,
      'frame length',
      F / MiB,
      false,
    );
    Object.assign(results.at(-1), { suite: '0x0478', frameLength: F, concurrency: 1, node: process.version });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- EDK flood: CPU cost of refusing it
// A 1 MiB header repeating one corrupted EDK of a trusted RSA-4096 key (~1,900 copies), opened
// at the defaults (refused at the EDK count) and with the EDK limit raised (identical EDKs tried
// once; distinct ones at most maxUnwrapAttempts per recipient). Target: 50 ms of CPU.
if (section('flood')) {
  const { generateKeyPairSync } = await import('node:crypto');
  const pair4096 = generateKeyPairSync('rsa', { modulusLength: 4096 });
  const rsa = rawRsaRecipient({ namespace: 'bench', name: 'rsa-4096', privateKey: pair4096.privateKey });
  const msg = Buffer.from(await sealEnvelope(Buffer.from('x'), { recipients: [rsa], frameLength: 4096 }));
  // Empty context: the EDK count is at 37 (1 version + 2 suite + 32 message id + 2 context length).
  const edkStart = 39;
  let at = edkStart;
  for (let i = 0; i < 3; i++) at += 2 + msg.readUInt16BE(at);
  const edk = msg.subarray(edkStart, at);
  const flood = (distinct) => {
    const count = Math.floor((1024 * 1024 - 200) / edk.length);
    const copies = Array.from({ length: count }, (_, i) => {
      const c = Buffer.from(edk);
      c[c.length - 1 - (distinct ? i % 300 : 0)] ^= 1 + (distinct ? i >> 8 : 0);
      return c;
    });
    const countBytes = Buffer.alloc(2);
    countBytes.writeUInt16BE(count);
    return Buffer.concat([msg.subarray(0, 37), countBytes, ...copies, msg.subarray(at)]);
  };
  const runs = quick ? 1 : 5;
  for (const [name, m, opts] of [
    ['defaults', flood(false), {}],
    ['maxEncryptedDataKeys 65535, one EDK repeated', flood(false), { maxEncryptedDataKeys: 0xffff }],
    ['maxEncryptedDataKeys 65535, distinct corrupted EDKs', flood(true), { maxEncryptedDataKeys: 0xffff }],
  ]) {
    const times = [];
    for (let i = 0; i < runs; i++) {
      times.push(
        await cpuTime(async () => {
          const ok = await openEnvelope(m, { trust: [rsa], ...opts }).then(
            () => true,
            () => false,
          );
          if (ok) throw new Error('flood opened');
        }),
      );
    }
    record(
      `open: EDK flood (1 MiB header, corrupted RSA-4096 EDK), ${name}: CPU`,
      'ms',
      Math.min(...times),
      'target',
      50,
      false,
    );
    Object.assign(results.at(-1), { spread: spread(times), runs, node: process.version, concurrency: 1 });
  }
}

// ---------------------------------------------------------------- streaming 1 GiB, RSS growth
// First, before any large buffer exists, so the baseline RSS is the process at rest.
if (section('stream')) {
  const total = quick ? 32 * MiB : 1024 * MiB;
  const chunk = randomBytes(64 * 1024);
  async function* source() {
    for (let sent = 0; sent < total; sent += chunk.length) yield chunk;
  }
  // Peak RSS as the kernel counts it (this section runs in its own process): VmHWM at the end
  // against the resident size before the run.
  const status = (field) =>
    Number(readFileSync('/proc/self/status', 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'))?.[1]) *
    1024;
  globalThis.gc?.();
  const before = status('VmRSS');
  let received = 0;
  const ms = await wallTime(async () => {
    for await (const p of openStream(sealStream(source(), { recipients: [aes] }), { trust: [aes] })) {
      received += p.length;
    }
  });
  if (received !== total) throw new Error('streaming lost bytes');
  record(
    `streaming seal+open ${total / MiB} MiB, 1 MiB frames: peak RSS growth (VmHWM)`,
    'MiB',
    (status('VmHWM') - before) / MiB,
    'target',
    64,
    false,
  );
  // Streams run one frame at a time by default (see the README's "Every core").
  record(`streaming seal+open ${total / MiB} MiB: throughput`, 'MiB/s', total / MiB / (ms / 1000), 'none', 0);
  results.at(-1).ratio = null;
}

// ---------------------------------------------------------------- 64 MiB seal / open, one core
// Baselines: the fastest plain Node AES-256-GCM loop (one cipher per frame, fed in `update`
// slices; several slice sizes are measured and the fastest is the floor; its output is
// dropped, so it pays no copy at all), and the same loop writing into a fresh output buffer
// (what any API returning the message must do). ESDK-JS runs the same suite and frame length.
// Every figure is the best of N runs in process CPU time, with the spread of the N runs.
const NODE = process.version;
function meta(extra) {
  Object.assign(results.at(-1), { node: NODE, timing: 'cpu, best of N', ...extra });
}
async function best(fn, runs) {
  await fn();
  const times = [];
  for (let i = 0; i < runs; i++) {
    globalThis.gc?.();
    times.push(await cpuTime(fn));
  }
  return { ms: Math.min(...times), spread: spread(times), runs };
}
/** UPDATE_SLICES' fastest `make(slice)` in CPU time, best of `runs`; `each` sees every slice's. */
async function fastestCpu(make, runs, each = () => {}) {
  let fastest;
  for (const slice of UPDATE_SLICES) {
    const r = { ...(await best(make(slice), runs)), slice };
    each(r);
    if (fastest === undefined || r.ms < fastest.ms) fastest = r;
  }
  return fastest;
}
/** `into`: false (output dropped), true (a fresh output buffer per run) or 'reused' (one buffer). */
function rawLoop(pt, F, slice, into) {
  const key = randomBytes(32);
  const iv = randomBytes(12);
  const reused = into === 'reused' ? Buffer.alloc(pt.length) : undefined;
  return () => {
    const out = reused ?? (into ? Buffer.allocUnsafeSlow(pt.length) : undefined);
    for (let f = 0; f < pt.length; f += F) {
      const c = createCipheriv('aes-256-gcm', key, iv);
      const end = Math.min(pt.length, f + F);
      for (let i = f; i < end; i += slice) {
        const o = c.update(pt.subarray(i, Math.min(end, i + slice)));
        if (out !== undefined) out.set(o, i);
      }
      c.final();
      c.getAuthTag();
    }
    return out;
  };
}
/**
 * The plain decrypt loop. `mode`: 'dropped' (each `update`'s output dropped at once: less work
 * than any API that releases only verified plaintext), 'held' (each frame's output kept until
 * its tag verifies, then dropped: what a verifying stream must do), 'fresh' (written into a
 * fresh output buffer: what a function returning the plaintext must do) or 'reused' (written
 * into one buffer every run reuses).
 */
function rawOpenLoop(pt, F, slice, mode = 'dropped') {
  const key = randomBytes(32);
  const iv = randomBytes(12);
  const tags = [];
  const ct = Buffer.allocUnsafe(pt.length);
  for (let f = 0; f < pt.length; f += F) {
    const c = createCipheriv('aes-256-gcm', key, iv);
    ct.set(c.update(pt.subarray(f, Math.min(pt.length, f + F))), f);
    c.final();
    tags.push(c.getAuthTag());
  }
  const reused = mode === 'reused' ? Buffer.alloc(ct.length) : undefined;
  return () => {
    let n = 0;
    const out = reused ?? (mode === 'fresh' ? Buffer.allocUnsafeSlow(ct.length) : undefined);
    for (let f = 0; f < ct.length; f += F) {
      const d = createDecipheriv('aes-256-gcm', key, iv);
      d.setAuthTag(tags[n++]);
      const end = Math.min(ct.length, f + F);
      const held = [];
      for (let i = f; i < end; i += slice) {
        const o = d.update(ct.subarray(i, Math.min(end, i + slice)));
        if (mode === 'held') held.push(o);
        else if (out !== undefined) out.set(o, i);
      }
      d.final();
    }
    return out;
  };
}

if (section('64mib')) {
  const size = (quick ? 4 : 64) * MiB;
  const F = DEFAULT_FRAME_LENGTH;
  const pt = randomBytes(size);
  const runs = quick ? 2 : 9;
  const mbps = (ms) => size / MiB / (ms / 1000);
  const label = `${size / MiB} MiB`;

  // The machine's own AES-256-GCM speed, as OpenSSL measures it (the physical reference).
  const osslMbps = opensslSpeed(MiB, 1, quick ? 1 : 3);
  if (Number.isFinite(osslMbps)) {
    record('openssl speed -evp aes-256-gcm, 1 MiB blocks, one core', 'MiB/s', osslMbps, 'none', 0);
    results.at(-1).ratio = null;
    meta({ timing: 'openssl speed', concurrency: 1, frameLength: MiB });
  }

  // Which update slice makes the fastest plain loop on this machine (each one recorded).
  const floor = await fastestCpu(
    (slice) => rawLoop(pt, F, slice, false),
    runs,
    (r) => {
      record(
        `raw AES-256-GCM loop, ${label}, ${F / MiB} MiB frames, update slices of ${r.slice / 1024} KiB`,
        'MiB/s',
        mbps(r.ms),
        'none',
        0,
      );
      results.at(-1).ratio = null;
      meta({ frameLength: F, concurrency: 1, slice: r.slice, spread: r.spread, runs });
    },
  );
  const floorName = `fastest plain Node loop (one cipher per ${F / MiB} MiB frame, ${floor.slice / 1024} KiB update slices, output dropped)`;
  const fresh = await best(rawLoop(pt, F, floor.slice, true), runs);
  const freshName = `same loop writing into a fresh ${label} output buffer`;
  record(`raw loop into a fresh output buffer, ${label}`, 'MiB/s', mbps(fresh.ms), floorName, mbps(floor.ms));
  meta({ frameLength: F, concurrency: 1, spread: fresh.spread, runs });
  const reusedLoop = await best(rawLoop(pt, F, floor.slice, 'reused'), runs);
  const reusedName = `same loop writing into one reused ${label} output buffer`;
  const rawOpen = await best(rawOpenLoop(pt, F, floor.slice), runs);
  const rawOpenReused = await best(rawOpenLoop(pt, F, floor.slice, 'reused'), runs);
  const reusedOpenName = `plain Node decrypt loop (${F / MiB} MiB frames, ${floor.slice / 1024} KiB slices) writing into one reused ${label} output buffer`;
  const rawOpenHeld = await best(rawOpenLoop(pt, F, floor.slice, 'held'), runs);
  const rawOpenFresh = await best(rawOpenLoop(pt, F, floor.slice, 'fresh'), runs);
  const heldName = `plain Node decrypt loop (${F / MiB} MiB frames, ${floor.slice / 1024} KiB slices) holding each frame's plaintext until its tag verifies`;
  const freshOpenName = `plain Node decrypt loop (${F / MiB} MiB frames, ${floor.slice / 1024} KiB slices) writing into a fresh ${label} output buffer`;
  record(
    `raw decrypt loop into a fresh output buffer, ${label}`,
    'MiB/s',
    mbps(rawOpenFresh.ms),
    `${floorName}, decrypt`,
    mbps(rawOpen.ms),
  );
  meta({ frameLength: F, concurrency: 1, spread: rawOpenFresh.spread, runs });

  for (const suite of [0x0478, 0x0578]) {
    const hex = `0x0${suite.toString(16)}`;
    const opts = { recipients: [aes], suite, frameLength: F, concurrency: 1 };
    const seal = await best(() => sealEnvelope(pt, opts), runs);
    record(
      `seal ${label} (keyport ${hex}, buffer, one core)`,
      'MiB/s',
      mbps(seal.ms),
      floorName,
      mbps(floor.ms),
    );
    meta({ suite: hex, frameLength: F, concurrency: 1, spread: seal.spread, runs });
    record(
      `seal ${label} (keyport ${hex}, buffer) vs raw into a fresh buffer (same work: one fresh message buffer)`,
      'MiB/s',
      mbps(seal.ms),
      freshName,
      mbps(fresh.ms),
    );
    meta({
      suite: hex,
      frameLength: F,
      concurrency: 1,
      spread: seal.spread,
      baselineSpread: fresh.spread,
      runs,
    });
    // The same call writing into memory the caller reuses (`output`): no fresh result, so none
    // of its page faults; the same work as the floor's (which writes its output into buffers
    // the allocator recycles).
    const sealOutput = Buffer.allocUnsafe(size + MiB);
    const sealReused = await best(() => sealEnvelope(pt, { ...opts, output: sealOutput }), runs);
    record(
      `seal ${label} (keyport ${hex}, buffer, one core) into a reused output buffer`,
      'MiB/s',
      mbps(sealReused.ms),
      floorName,
      mbps(floor.ms),
    );
    meta({ suite: hex, frameLength: F, concurrency: 1, output: 'reused', spread: sealReused.spread, runs });
    record(
      `seal ${label} (keyport ${hex}, buffer) into a reused output buffer vs raw into a reused buffer (same work)`,
      'MiB/s',
      mbps(sealReused.ms),
      reusedName,
      mbps(reusedLoop.ms),
    );
    meta({
      suite: hex,
      frameLength: F,
      concurrency: 1,
      output: 'reused',
      spread: sealReused.spread,
      baselineSpread: reusedLoop.spread,
      runs,
    });
    const streamSeal = await best(async () => {
      for await (const _ of sealStream([pt], opts));
    }, runs);
    record(
      `sealStream ${label} (keyport ${hex}, output dropped)`,
      'MiB/s',
      mbps(streamSeal.ms),
      floorName,
      mbps(floor.ms),
    );
    meta({ suite: hex, frameLength: F, concurrency: 1, spread: streamSeal.spread, runs });
    const msg = await sealEnvelope(pt, opts);
    const open = await best(() => openEnvelope(msg, { trust: [aes], concurrency: 1 }), runs);
    record(
      `open ${label} (keyport ${hex}, buffer, one core)`,
      'MiB/s',
      mbps(open.ms),
      `${floorName}, decrypt`,
      mbps(rawOpen.ms),
    );
    meta({ suite: hex, frameLength: F, concurrency: 1, spread: open.spread, runs });
    record(
      `open ${label} (keyport ${hex}, buffer) vs raw decrypt into a fresh buffer (same work: one fresh plaintext buffer)`,
      'MiB/s',
      mbps(open.ms),
      freshOpenName,
      mbps(rawOpenFresh.ms),
    );
    meta({
      suite: hex,
      frameLength: F,
      concurrency: 1,
      spread: open.spread,
      baselineSpread: rawOpenFresh.spread,
      runs,
    });
    const openOutput = Buffer.allocUnsafe(size);
    const openReused = await best(
      () => openEnvelope(msg, { trust: [aes], concurrency: 1, output: openOutput }),
      runs,
    );
    record(
      `open ${label} (keyport ${hex}, buffer, one core) into a reused output buffer`,
      'MiB/s',
      mbps(openReused.ms),
      `${floorName}, decrypt`,
      mbps(rawOpen.ms),
    );
    meta({ suite: hex, frameLength: F, concurrency: 1, output: 'reused', spread: openReused.spread, runs });
    record(
      `open ${label} (keyport ${hex}, buffer) into a reused output buffer vs raw decrypt into a reused buffer (same work)`,
      'MiB/s',
      mbps(openReused.ms),
      reusedOpenName,
      mbps(rawOpenReused.ms),
    );
    meta({
      suite: hex,
      frameLength: F,
      concurrency: 1,
      output: 'reused',
      spread: openReused.spread,
      baselineSpread: rawOpenReused.spread,
      runs,
    });
    const streamOpen = await best(async () => {
      for await (const _ of openStream([msg], { trust: [aes], concurrency: 1 }));
    }, runs);
    record(
      `openStream ${label} (keyport ${hex}, output dropped)`,
      'MiB/s',
      mbps(streamOpen.ms),
      `${floorName}, decrypt`,
      mbps(rawOpen.ms),
    );
    meta({ suite: hex, frameLength: F, concurrency: 1, spread: streamOpen.spread, runs });
    record(
      `openStream ${label} (keyport ${hex}, output dropped) vs raw decrypt holding each frame until its tag verifies (same work)`,
      'MiB/s',
      mbps(streamOpen.ms),
      heldName,
      mbps(rawOpenHeld.ms),
    );
    meta({
      suite: hex,
      frameLength: F,
      concurrency: 1,
      spread: streamOpen.spread,
      baselineSpread: rawOpenHeld.spread,
      runs,
    });

    // ESDK-JS on the same suite and frame length.
    const client = esdkClient();
    const kr = esdkAes();
    const esdkRuns = quick ? 1 : 3;
    const eOpts = { suiteId: suite, frameLength: F };
    const eSeal = await best(() => client.encrypt(kr, pt, eOpts), esdkRuns);
    record(
      `seal ${label} keyport vs ESDK-JS 5.0.2, both ${hex}, ${F / MiB} MiB frames`,
      'MiB/s',
      mbps(seal.ms),
      `ESDK-JS encrypt ${hex}`,
      mbps(eSeal.ms),
    );
    meta({ suite: hex, frameLength: F, concurrency: 1, spread: eSeal.spread, runs: esdkRuns });
    const { result: esdkMsg } = await client.encrypt(kr, pt, eOpts);
    const eOpen = await best(() => client.decrypt(kr, esdkMsg), esdkRuns);
    record(
      `open ${label} keyport vs ESDK-JS 5.0.2, both ${hex}, ${F / MiB} MiB frames`,
      'MiB/s',
      mbps(open.ms),
      `ESDK-JS decrypt ${hex}`,
      mbps(eOpen.ms),
    );
    meta({ suite: hex, frameLength: F, concurrency: 1, spread: eOpen.spread, runs: esdkRuns });
  }

  // The default frame length, by measurement: seal and open at several frame lengths, one core.
  for (const frameLength of [64 * 1024, 256 * 1024, MiB, 4 * MiB]) {
    const opts = { recipients: [aes], frameLength, concurrency: 1 };
    const seal = await best(() => sealEnvelope(pt, opts), runs);
    const msg = await sealEnvelope(pt, opts);
    const open = await best(() => openEnvelope(msg, { trust: [aes], concurrency: 1 }), runs);
    record(
      `seal ${label} at frame length ${frameLength / 1024} KiB (0x0478, one core)`,
      'MiB/s',
      mbps(seal.ms),
      floorName,
      mbps(floor.ms),
    );
    meta({ suite: '0x0478', frameLength, concurrency: 1, spread: seal.spread, runs });
    record(
      `open ${label} at frame length ${frameLength / 1024} KiB (0x0478, one core)`,
      'MiB/s',
      mbps(open.ms),
      `${floorName}, decrypt`,
      mbps(rawOpen.ms),
    );
    meta({ suite: '0x0478', frameLength, concurrency: 1, spread: open.spread, runs });
  }
}

// ---------------------------------------------------------------- helpers for the sections below
/** Wall time of `fn` and the process CPU time it took (every thread: workers, V8's helpers). */
async function wallAndCpu(fn) {
  const cpu = process.cpuUsage();
  const ms = await wallTime(fn);
  const d = process.cpuUsage(cpu);
  return { ms, cpuMs: (d.user + d.system) / 1000 };
}
/**
 * `alternate` in wall time: the best of each, each pair's ratio, and how many cores each side
 * kept busy (median process CPU / wall): one thread of JavaScript also keeps V8's collector
 * threads busy, so "concurrency 1" already uses more than one core.
 */
async function interleaved(n, one, many) {
  const [ra, rb] = await alternate(n, one, many, wallAndCpu);
  const a = ra.map((r) => r.ms);
  const b = rb.map((r) => r.ms);
  const busy = (rs) => round(median(rs.map((r) => r.cpuMs / r.ms)), 2);
  // Each pair's own ratio too: neighbours' load shifts between pairs, less within one.
  const pairs = a.map((t, i) => t / b[i]).sort((x, y) => x - y);
  return {
    one: { ms: Math.min(...a), spread: spread(a), coresBusy: busy(ra) },
    many: { ms: Math.min(...b), spread: spread(b), coresBusy: busy(rb) },
    pairRatios: { min: round(pairs[0], 3), median: round(median(pairs), 3), max: round(pairs.at(-1), 3) },
  };
}
/** The fastest of `make(slice)` over every update slice, in wall time (best of 3 each). */
async function fastestWall(make) {
  let fastest;
  for (const slice of UPDATE_SLICES) {
    const run = make(slice);
    await run();
    const ms = Math.min(await wallTime(run), await wallTime(run), await wallTime(run));
    if (fastest === undefined || ms < fastest.ms) fastest = { ms, slice, run };
  }
  return fastest;
}

// At default settings (no `concurrency` given: the available cores, at most 8) against the
// fastest plain Node loop on one thread, both in wall time, interleaved: what a user calling
// sealEnvelope/openEnvelope gets next to what one core of plain Node reaches. The loop is
// the 64mib section's (each update slice tried; output dropped, the least work there is).
// `tag` names a variant (its fields go into each row, its `label` into each name);
// `reusedOutput` adds the same calls writing into a reused SharedArrayBuffer (`output`).
async function recordDefaultSettingsRows(pt, msg, runs, tag = {}, { reusedOutput = true } = {}) {
  const { label, ...fields } = tag;
  const size = pt.length;
  const { availableParallelism, loadavg } = await import('node:os');
  const cores = availableParallelism();
  const defaultRows = [
    [
      'seal',
      await fastestWall((slice) => rawLoop(pt, DEFAULT_FRAME_LENGTH, slice, false)),
      () => sealEnvelope(pt, { recipients: [aes] }),
    ],
    [
      'open',
      await fastestWall((slice) => rawOpenLoop(pt, DEFAULT_FRAME_LENGTH, slice)),
      () => openEnvelope(msg, { trust: [aes] }),
    ],
  ];
  if (reusedOutput) {
    // The same calls writing into a reused SharedArrayBuffer (`output`): the workers write it in
    // place, and no fresh result is faulted in.
    const sealOutput = Buffer.from(new SharedArrayBuffer(size + MiB));
    const openOutput = Buffer.from(new SharedArrayBuffer(size));
    // Plaintext in shared memory too (read from a file into one, say): the workers read it in
    // place, and the calling thread copies nothing for them.
    const sharedPt = Buffer.from(new SharedArrayBuffer(size));
    sharedPt.set(pt);
    defaultRows.push(
      [
        'seal',
        defaultRows[0][1],
        () => sealEnvelope(pt, { recipients: [aes], output: sealOutput }),
        'reused',
      ],
      [
        'seal',
        defaultRows[0][1],
        () => sealEnvelope(sharedPt, { recipients: [aes], output: sealOutput }),
        'reused, plaintext shared',
      ],
      ['open', defaultRows[1][1], () => openEnvelope(msg, { trust: [aes], output: openOutput }), 'reused'],
    );
  }
  for (const [op, loop, ours, output] of defaultRows) {
    const r = await interleaved(runs, loop.run, ours);
    const rate = (ms) => size / MiB / (ms / 1000);
    record(
      `${op} ${size / MiB} MiB at default settings (${cores} cores)${output === undefined ? '' : ` into a reused SharedArrayBuffer output${output === 'reused' ? '' : ', plaintext in a SharedArrayBuffer'}`} vs the fastest plain Node loop on one thread (wall time, interleaved)${label ?? ''}`,
      'MiB/s',
      rate(r.many.ms),
      `plain Node ${op === 'seal' ? 'encrypt' : 'decrypt'} loop, 1 MiB frames, ${loop.slice / 1024} KiB update slices, output dropped, same process`,
      rate(r.one.ms),
    );
    Object.assign(results.at(-1), {
      concurrency: Math.min(8, cores),
      spread: r.many.spread,
      baselineSpread: r.one.spread,
      pairRatios: r.pairRatios,
      coresBusy: r.many.coresBusy,
      baselineCoresBusy: r.one.coresBusy,
      runs,
      cores,
      loadavg1: round(loadavg()[0]),
      timing: 'wall, best of N, interleaved',
      output: output ?? 'fresh',
      ...fields,
    });
  }
}

// ---------------------------------------------------------------- every core: concurrency
// Wall time (the point is to use more than one core). The machine is shared with other jobs,
// so each figure is a ratio to concurrency 1 measured in the same process, the two runs
// interleaved (1, c, 1, c, ...) so that load hits both alike; each side is the best of N, and the
// spread of the N runs and the per-pair ratios (min, median, max) are written with the row, as is
// the load average.
if (section('parallel')) {
  const { availableParallelism, loadavg } = await import('node:os');
  const size = (quick ? 8 : 64) * MiB;
  const pt = randomBytes(size);
  const runs = quick ? 2 : 9;
  const cores = availableParallelism();
  /** One row: `run(c)` against `run(1)` over `bytes`, interleaved, best of `n`, in wall time. */
  const scalingRow = async (what, bytes, n, c, run, baseline) => {
    const r = await interleaved(
      n,
      () => run(1),
      () => run(c),
    );
    const rate = (ms) => bytes / MiB / (ms / 1000);
    record(
      `${what}, concurrency ${c} vs 1 (wall time, interleaved, ${cores} cores)`,
      'MiB/s',
      rate(r.many.ms),
      `${baseline}, same process, interleaved`,
      rate(r.one.ms),
    );
    Object.assign(results.at(-1), {
      concurrency: c,
      spread: r.many.spread,
      baselineSpread: r.one.spread,
      pairRatios: r.pairRatios,
      // Process CPU / wall of each side (median). With every core busy and the same total CPU
      // work as concurrency 1, the ratio would be cores / coresBusyAt1 (`ratioAtEqualWork`):
      // a row below it lost to idle cores or added work (hand-off), one above it did less work
      // (the 64 MiB pool writes frames straight into the shared result).
      coresBusyAt1: r.one.coresBusy,
      coresBusy: r.many.coresBusy,
      ratioAtEqualWork: round(cores / r.one.coresBusy, 2),
      runs: n,
      cores,
      loadavg1: round(loadavg()[0]),
      timing: 'wall, best of N, interleaved',
    });
  };
  // What the machine itself gains from its cores (OpenSSL, one process per core): at 1 MiB
  // blocks AES-GCM streams through memory, at 16 KiB it stays in cache. No Node code can scale
  // better than these.
  for (const bytes of [MiB, 16 * 1024]) {
    const one = opensslSpeed(bytes, 1, quick ? 1 : 3);
    const all = opensslSpeed(bytes, cores, quick ? 1 : 3);
    if (!Number.isFinite(one) || !Number.isFinite(all)) continue;
    record(
      `openssl speed -multi ${cores} vs one core, ${bytes / 1024} KiB blocks (the machine's own scaling)`,
      'MiB/s',
      all,
      'openssl speed, one core',
      one,
    );
    Object.assign(results.at(-1), { concurrency: cores, frameLength: bytes, cores, timing: 'openssl speed' });
  }
  const msg = await sealEnvelope(pt, { recipients: [aes] });

  await recordDefaultSettingsRows(pt, msg, runs);

  for (const [op, fn] of [
    ['seal', (c) => sealEnvelope(pt, { recipients: [aes], concurrency: c })],
    ['open', (c) => openEnvelope(msg, { trust: [aes], concurrency: c })],
  ]) {
    for (const c of [...new Set([Math.min(8, cores), 4])]) {
      await scalingRow(`${op} ${size / MiB} MiB`, size, runs, c, fn, `${op} concurrency 1`);
    }
  }

  // Streams of 1 GiB (quick: 32 MiB) in 64 KiB chunks, 1 MiB frames: sealed, opened, and sealed
  // and opened piped in one process, at the default concurrency (1) and at `c`.
  const streamTotal = (quick ? 32 : 1024) * MiB;
  const chunk = randomBytes(64 * 1024);
  async function* plainChunks() {
    for (let sent = 0; sent < streamTotal; sent += chunk.length) yield chunk;
  }
  const streamMessage = Buffer.from(
    await sealEnvelope(Buffer.alloc(streamTotal, 7), { recipients: [aes], concurrency: 1 }),
  );
  async function* messageChunks() {
    for (let at = 0; at < streamMessage.length; at += chunk.length)
      yield streamMessage.subarray(at, at + chunk.length);
  }
  const drain = async (it) => {
    let n = 0;
    for await (const p of it) n += p.length;
    return n;
  };
  const streams = [
    ['sealStream', (c) => drain(sealStream(plainChunks(), { recipients: [aes], concurrency: c }))],
    ['openStream', (c) => drain(openStream(messageChunks(), { trust: [aes], concurrency: c }))],
    [
      'sealStream piped into openStream',
      async (c) => {
        const n = await drain(
          openStream(sealStream(plainChunks(), { recipients: [aes], concurrency: c }), {
            trust: [aes],
            concurrency: c,
          }),
        );
        if (n !== streamTotal) throw new Error('stream lost bytes');
      },
    ],
  ];
  const streamRuns = quick ? 1 : 5;
  for (const [what, run] of streams) {
    await scalingRow(
      `${what} ${streamTotal / MiB} MiB`,
      streamTotal,
      streamRuns,
      Math.min(8, cores),
      run,
      'concurrency 1',
    );
  }
}

// ---------------------------------------------------------------- huge pages (glibc)
// A buffer API returns fresh memory, and on a kernel whose transparent huge pages are
// 'madvise' (Debian's and Ubuntu's default) glibc maps a large buffer in 4 KiB pages: one page
// fault per 4 KiB on first touch, which costs as much as the AES-GCM itself on this VM. glibc
// asks for huge pages when GLIBC_TUNABLES has glibc.malloc.hugetlb=1; a library cannot set that
// for its process, a deployment can. This section runs in its own child with the tunable set
// (runSection passes it) and repeats the one-core and default-settings 64 MiB rows there; every
// baseline runs in the same child, so it gets the huge pages too.
if (section('hugepages')) {
  if (!HUGETLB_TUNABLE.test(process.env.GLIBC_TUNABLES ?? '')) {
    throw new Error('the hugepages section needs GLIBC_TUNABLES=glibc.malloc.hugetlb=1 (the bench sets it)');
  }
  const size = (quick ? 8 : 64) * MiB;
  const F = DEFAULT_FRAME_LENGTH;
  const pt = randomBytes(size);
  const runs = quick ? 2 : 9;
  const mbps = (ms) => size / MiB / (ms / 1000);
  const tag = { malloc: 'glibc.malloc.hugetlb=1', thp: thpMode() };
  const label = ' [glibc.malloc.hugetlb=1]';
  // One core, process CPU time: the fastest loop over the update slices, then the same loop
  // into a fresh buffer, for encrypt and decrypt.
  const sealFloor = await fastestCpu((slice) => rawLoop(pt, F, slice, false), runs);
  const openFloor = await fastestCpu((slice) => rawOpenLoop(pt, F, slice), runs);
  const one = { recipients: [aes], concurrency: 1 };
  const msg = await sealEnvelope(pt, one);
  const rows = [
    ['seal', () => sealEnvelope(pt, one), sealFloor, await best(rawLoop(pt, F, sealFloor.slice, true), runs)],
    [
      'open',
      () => openEnvelope(msg, { trust: [aes], concurrency: 1 }),
      openFloor,
      await best(rawOpenLoop(pt, F, openFloor.slice, 'fresh'), runs),
    ],
  ];
  for (const [op, ours, floor, fresh] of rows) {
    const r = await best(ours, runs);
    const loop = `plain Node ${op === 'seal' ? 'encrypt' : 'decrypt'} loop (${F / MiB} MiB frames, ${floor.slice / 1024} KiB update slices)`;
    record(
      `${op} ${size / MiB} MiB (keyport 0x0478, buffer, one core)${label}`,
      'MiB/s',
      mbps(r.ms),
      `fastest ${loop}, output dropped`,
      mbps(floor.ms),
    );
    meta({ ...tag, spread: r.spread, baselineSpread: floor.spread, runs });
    record(
      `${op} ${size / MiB} MiB (keyport 0x0478, buffer, one core) vs the loop into a fresh buffer (same work)${label}`,
      'MiB/s',
      mbps(r.ms),
      `${loop} writing into a fresh ${size / MiB} MiB buffer`,
      mbps(fresh.ms),
    );
    meta({ ...tag, spread: r.spread, baselineSpread: fresh.spread, runs });
  }
  await recordDefaultSettingsRows(
    pt,
    await sealEnvelope(pt, { recipients: [aes] }),
    runs,
    { ...tag, label },
    {
      reusedOutput: false,
    },
  );
}

// ---------------------------------------------------------------- 1 KiB cached seal
if (section('cached')) {
  const { createHmac, createSecretKey, randomFillSync } = await import('node:crypto');
  const pt = randomBytes(1024);
  const n = quick ? 2000 : 20000;
  const cache = new DataKeyCache({ maxAgeMs: 600_000 });
  const dataKey = randomBytes(32);
  const dataKeyObject = createSecretKey(dataKey);
  const opsPerSec = (ms) => n / (ms / 1000);
  // The floor is plain Node code doing the format's per-message work with a cached data key:
  // a 32-byte message id (from a pooled CSPRNG, as keyport and Node's randomUUID draw it), two
  // HKDF-SHA512 derivations, the header's GMAC tag (optional, see the rows) and AES-256-GCM over
  // 1 KiB with a fixed IV (the format's IV is the frame's sequence number). Keys are passed
  // as bytes or as KeyObjects (on Node 24 byte keys cost two thrown errors per call inside Node),
  // and the derivation is one-shot or by HMAC: every way is measured, the fastest is the floor.
  const info = Buffer.from([0x04, 0x78, ...Buffer.from('DERIVEKEY')]);
  const commitInfo = Buffer.from('COMMITKEY');
  const zeroIv = Buffer.alloc(12);
  const frameIv = Buffer.alloc(12);
  frameIv[11] = 1;
  const header = randomBytes(150);
  let idPool = Buffer.alloc(0);
  let idAt = 0;
  const messageId = () => {
    if (idAt + 32 > idPool.length) {
      idPool = randomFillSync(Buffer.allocUnsafe(4096));
      idAt = 0;
    }
    idAt += 32;
    return Buffer.from(idPool.subarray(idAt - 32, idAt));
  };
  // HKDF-SHA512 with a 32-byte output is one extract and one expand HMAC, so the two keys can also
  // be derived with three HMACs (one extract shared): cheaper than two one-shot calls on Node 20
  // and 22. The floor takes whichever way is fastest on the Node running it.
  const one = Buffer.of(1);
  const hmacDerive = (id) => {
    const prk = createHmac('sha512', id).update(dataKey).digest();
    const k = createHmac('sha512', prk).update(info).update(one).digest().subarray(0, 32);
    createHmac('sha512', prk).update(commitInfo).update(one).digest();
    return k;
  };
  // The final frame's AAD (data-format/message-body-aad.md): message id || "AWSKMSEncryptionClient
  // Final Frame" || u32 sequence number 1 || u64 content length, built per message as the format
  // requires (the tail after the id is the same for every 1 KiB message).
  const aadTail = Buffer.alloc(34 + 12);
  aadTail.write('AWSKMSEncryptionClient Final Frame', 0, 'latin1');
  aadTail.writeUInt32BE(1, 34);
  aadTail.writeUInt32BE(pt.length, 42);
  const floorLoop =
    (how, withHeader, withFrameAad = false) =>
    async () => {
      const ikm = how === 'hkdf, KeyObjects' ? dataKeyObject : dataKey;
      for (let i = 0; i < n; i++) {
        const id = messageId();
        let k;
        if (how === 'HMAC, bytes') k = hmacDerive(id);
        else {
          const raw = Buffer.from(hkdfSync('sha512', ikm, id, info, 32));
          k = how === 'hkdf, KeyObjects' ? createSecretKey(raw) : raw;
          hkdfSync('sha512', ikm, id, commitInfo, 32);
        }
        if (withHeader) {
          const h = createCipheriv('aes-256-gcm', k, zeroIv);
          h.setAAD(header);
          h.final();
          h.getAuthTag();
        }
        const c = createCipheriv('aes-256-gcm', k, frameIv);
        if (withFrameAad) {
          const aad = Buffer.allocUnsafe(32 + aadTail.length);
          id.copy(aad, 0);
          aadTail.copy(aad, 32);
          c.setAAD(aad);
        }
        c.update(pt);
        c.final();
        c.getAuthTag();
      }
    };
  const WAYS = ['hkdf, bytes', 'hkdf, KeyObjects', 'HMAC, bytes'];
  const cached = async () => {
    for (let i = 0; i < n; i++) await sealEnvelope(pt, { recipients: [aes], cache });
  };
  const floorRuns = quick ? 1 : 5;
  const floors = [
    { withHeader: true, withFrameAad: true },
    { withHeader: true, withFrameAad: false },
    { withHeader: false, withFrameAad: false },
  ];
  for (const { withHeader, withFrameAad } of floors) {
    // Each way of writing the floor, best of N; the fastest is the floor.
    const wayMs = [];
    for (const way of WAYS) wayMs.push((await best(floorLoop(way, withHeader, withFrameAad), floorRuns)).ms);
    const keys = WAYS[wayMs.indexOf(Math.min(...wayMs))];
    const what = withFrameAad
      ? '2x HKDF-SHA512 + header GMAC + AES-256-GCM with the frame AAD'
      : withHeader
        ? '2x HKDF-SHA512 + header GMAC + AES-256-GCM'
        : '2x HKDF-SHA512 + AES-256-GCM';
    const oursTimes = [];
    const floorTimes = [];
    const fl = floorLoop(keys, withHeader, withFrameAad);
    await cached();
    await fl();
    for (let i = 0; i < floorRuns; i++) {
      for (const [fn, into] of i % 2 === 0
        ? [
            [cached, oursTimes],
            [fl, floorTimes],
          ]
        : [
            [fl, floorTimes],
            [cached, oursTimes],
          ]) {
        globalThis.gc?.();
        into.push(await cpuTime(fn));
      }
    }
    record(
      withFrameAad
        ? 'seal 1 KiB, cached data key (keyport) vs floor with the header tag and the frame AAD (the same crypto)'
        : withHeader
          ? 'seal 1 KiB, cached data key (keyport) vs floor with the header tag'
          : 'seal 1 KiB, cached data key (keyport) vs floor without the header tag',
      'ops/s',
      opsPerSec(Math.min(...oursTimes)),
      `raw floor: pooled message id + ${what}, ${keys} (the fastest of ${WAYS.join(' / ')})`,
      opsPerSec(Math.min(...floorTimes)),
    );
    Object.assign(results.at(-1), {
      suite: '0x0478',
      frameLength: DEFAULT_FRAME_LENGTH,
      concurrency: 1,
      node: process.version,
      timing: 'cpu, best of N, interleaved',
      runs: floorRuns,
      spread: spread(oursTimes),
      baselineSpread: spread(floorTimes),
      floorWay: keys,
    });
  }

  const client = esdkClient();
  const cmm = new (esdk().NodeCachingMaterialsManager)({
    backingMaterials: esdkAes(),
    cache: esdk().getLocalCryptographicMaterialsCache(100),
    maxAge: 600_000,
    maxMessagesEncrypted: 2 ** 32,
  });
  const en = quick ? 200 : 2000;
  const esdkCached = async () => {
    // The same suite as keyport's default (0x0478), not ESDK's default signed suite.
    for (let i = 0; i < en; i++)
      await client.encrypt(cmm, pt, { plaintextLength: pt.length, suiteId: 0x0478 });
  };
  const oursShort = async () => {
    for (let i = 0; i < en; i++) await sealEnvelope(pt, { recipients: [aes], cache });
  };
  const [ks, es, esdkSpread] = await pair(quick ? 1 : 3, oursShort, esdkCached);
  record(
    'seal 1 KiB, cached data key (keyport vs ESDK-JS caching CMM)',
    'ops/s',
    en / (ks / 1000),
    'ESDK-JS 5.0.2 caching CMM, same suite 0x0478',
    en / (es / 1000),
  );
  Object.assign(results.at(-1), {
    suite: '0x0478',
    frameLength: DEFAULT_FRAME_LENGTH,
    concurrency: 1,
    node: process.version,
    timing: 'cpu, median, interleaved',
    runs: esdkSpread.runs,
    spread: esdkSpread.a,
    baselineSpread: esdkSpread.b,
  });
}

// ---------------------------------------------------------------- KMS: 3 recipients, cache windows
if (section('kms')) {
  const dir = mkdtempSync(join(tmpdir(), 'keyport-bench-'));
  const provider = await openLocalKeystore({
    path: join(dir, 'k.keystore'),
    passphrase: 'bench',
    create: true,
    kdf: { log2N: 10, r: 8, p: 1 },
  });
  try {
    const keyport = new Keyport({ providers: [provider], onAuditError: () => {} });
    const uris = [];
    for (const name of ['a', 'b', 'c'])
      uris.push((await keyport.createKey('local', { name, spec: 'AES_256' })).uri);
    const latency = { [uris[0]]: 20, [uris[1]]: 30, [uris[2]]: 50 };
    const slow = new Proxy(keyport, {
      get(target, prop) {
        const v = Reflect.get(target, prop);
        if (!['encrypt', 'generateDataKey', 'decrypt'].includes(prop))
          return typeof v === 'function' ? v.bind(target) : v;
        return async (key, ...rest) => {
          await new Promise((r) => setTimeout(r, latency[key] ?? 0));
          return v.call(target, key, ...rest);
        };
      },
    });
    const pt = randomBytes(1024);
    const runs = quick ? 3 : 9;
    const [single, three, threeSpread] = await pair(
      runs,
      () => sealEnvelope(pt, { recipients: [uris[2]], keys: slow }),
      () => sealEnvelope(pt, { recipients: [uris[2], uris[0], uris[1]], keys: slow }),
      wallTime,
    );
    record(
      "seal to 3 recipients (20/30/50 ms), defaults (dataKeySource 'auto': a local data key, all wrap in parallel)",
      'ms',
      three,
      'slowest single recipient (50 ms)',
      single,
      false,
    );
    Object.assign(results.at(-1), {
      timing: 'wall, median, interleaved',
      runs: threeSpread.runs,
      spread: threeSpread.b,
      baselineSpread: threeSpread.a,
    });
    const [single2, threeLocal, threeLocalSpread] = await pair(
      runs,
      () => sealEnvelope(pt, { recipients: [uris[2]], keys: slow, dataKeySource: 'first-recipient' }),
      () =>
        sealEnvelope(pt, {
          recipients: [uris[2], uris[0], uris[1]],
          keys: slow,
          dataKeySource: 'first-recipient',
        }),
      wallTime,
    );
    record(
      "seal to 3 recipients (20/30/50 ms), dataKeySource 'first-recipient' (slowest generates, then the others wrap)",
      'ms',
      threeLocal,
      'slowest single recipient (50 ms)',
      single2,
      false,
    );
    Object.assign(results.at(-1), {
      timing: 'wall, median, interleaved',
      runs: threeLocalSpread.runs,
      spread: threeLocalSpread.b,
      baselineSpread: threeLocalSpread.a,
    });

    let calls = 0;
    const counted = new Proxy(keyport, {
      get(target, prop) {
        const v = Reflect.get(target, prop);
        if (prop === 'generateDataKey') {
          return (...a) => {
            calls++;
            return v.apply(target, a);
          };
        }
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    const cache = new DataKeyCache({ maxAgeMs: 600_000, maxMessages: 2 ** 32 });
    const total = 10_000;
    let next = 0;
    const worker = async () => {
      while (next < total) {
        next++;
        await sealEnvelope(pt, { recipients: [uris[0]], keys: counted, cache });
      }
    };
    await Promise.all(Array.from({ length: 64 }, worker));
    record(
      'provider calls for 10,000 seals, 64 in flight, cache on (one window)',
      'calls',
      calls,
      'cache windows',
      1,
      false,
    );
  } finally {
    await provider.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- output
if (only !== undefined) {
  if (process.argv.includes('--json')) process.stdout.write(`${JSON.stringify(results)}\n`);
  else console.table(results);
  process.exit(0);
}
// --quick runs at a small size to keep the bench working (CI); its figures mean nothing, so it
// never overwrites the real results. --out=<file> writes elsewhere.
const outArg = process.argv.find((a) => a.startsWith('--out='))?.slice('--out='.length);
const outFile = outArg ?? benchResultsFile('envelope', quick);
mkdirSync(join(outFile, '..'), { recursive: true });
writeFileSync(outFile, `${JSON.stringify(results, null, 2)}\n`);
console.log(`default frame length: ${DEFAULT_FRAME_LENGTH} bytes`);
console.table(
  results.map((r) => ({
    name: r.name,
    value: `${r.value} ${r.unit}`,
    baseline: `${r.baselineValue} (${r.baseline})`,
    ratio: r.ratio,
  })),
);
