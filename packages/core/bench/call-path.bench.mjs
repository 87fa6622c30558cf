// What core's call path (validation, key resolution, capability check, call policy with its
// deadline, telemetry check, audit-free emit) costs per call, over calling the same driver
// directly. Run with `pnpm bench` (builds dist first); `--quick` or KEYPORT_BENCH_QUICK=1 for a
// small run. Writes <repo>/bench-results/core-call-path.json as [{ name, unit, value, baseline,
// baselineValue, ratio, spread, rounds, calls, node }] and prints a table.
//
// Two drivers, both in-process and deterministic, so the figure is core's own:
// - `answers at once`: encrypt resolves immediately. Core's code stays hot in the CPU caches,
//   the best case.
// - `cold caches`: encrypt answers on the next event-loop turn after touching 4 MiB, as a
//   provider SDK does (a request built, signed, sent, parsed): core's code and data run with the
//   caches cleared, which is where it costs most. On a real SDK the same cost hides in the
//   SDK's noise (the adapter benches); here it is measured alone.
// Keyport.encrypt and the driver's encrypt alternate round by round (the order flipping), each
// figure is the median of the rounds' process CPU per call (the OS's count, via
// process.cpuUsage), spread min..max over rounds.
import { writeBenchResults } from '../../../scripts/bench-results.mjs';
import { Keyport, parseKeyRef, withKeyVersion } from '../dist/index.js';

const quick = process.argv.includes('--quick') || process.env.KEYPORT_BENCH_QUICK === '1';
const ROUNDS = quick ? 3 : 21;
// A built-in scheme's grammar (local://), so the fake driver parses URIs as a real one does.
const uri = 'local://bench.kp#key';
const plaintext = new Uint8Array(32).fill(7);
const context = { purpose: 'bench', tenant: 't-1' };
const answer = { ciphertext: new Uint8Array(60), keyVersion: '1' };
const polluted = new Uint8Array(4 * 1024 * 1024);

function driver(encrypt) {
  return {
    scheme: 'local',
    name: 'local',
    capabilities: {
      keySpecs: { AES_256: ['encrypt_decrypt'] },
      context: 'native',
      dataKeys: 'none',
      listKeys: false,
      rotation: 'none',
      autoRotation: false,
      enableDisable: false,
      scheduledDeletion: 'none',
      destroyVersion: false,
      grants: 'none',
      grantExpiry: 'none',
      grantConstraints: false,
      import: [],
      signingAlgorithms: [],
    },
    parseUri: parseKeyRef,
    formatUri: (ref) => withKeyVersion(ref.uri, ref.version),
    mapError: () => undefined,
    close: async () => {},
    encrypt,
    decrypt: encrypt,
  };
}

const cases = [
  { label: 'answers at once', calls: quick ? 2_000 : 40_000, encrypt: () => Promise.resolve(answer) },
  // The same, the caller passing an AbortSignal (as the CLI and most services do): the call
  // policy then follows that signal for every attempt.
  {
    label: 'answers at once, the caller passing an AbortSignal',
    calls: quick ? 2_000 : 40_000,
    encrypt: () => Promise.resolve(answer),
    callerSignal: true,
  },
  {
    label: 'cold caches (4 MiB touched per call, next event-loop turn)',
    calls: quick ? 100 : 800,
    encrypt: () =>
      new Promise((resolve) =>
        setImmediate(() => {
          for (let i = 0; i < polluted.length; i += 64) polluted[i]++;
          resolve(answer);
        }),
      ),
  },
];

const signal = new AbortController().signal;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const round = (v) => Math.round(v * 1000) / 1000;

async function cpuPerCall(fn, calls) {
  const before = process.cpuUsage();
  for (let i = 0; i < calls; i++) await fn();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / calls; // µs
}

const results = [];
for (const { label, calls, encrypt, callerSignal } of cases) {
  const d = driver(encrypt);
  const keyport = new Keyport({ providers: [d] });
  const ref = { uri };
  const sides = {
    keyport: callerSignal
      ? () => keyport.encrypt(uri, plaintext, { context, signal })
      : () => keyport.encrypt(uri, plaintext, { context }),
    driver: () => d.encrypt(ref, plaintext, { context }, { signal }),
  };
  for (const fn of Object.values(sides)) await cpuPerCall(fn, Math.ceil(calls / 4)); // warm-up
  const rounds = { keyport: [], driver: [] };
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? ['keyport', 'driver'] : ['driver', 'keyport'];
    for (const side of order) rounds[side].push(await cpuPerCall(sides[side], calls));
  }
  const ours = median(rounds.keyport);
  const base = median(rounds.driver);
  const added = rounds.keyport.map((k, i) => k - rounds.driver[i]);
  results.push({
    name: `Keyport.encrypt over the driver's encrypt, driver ${label}`,
    unit: 'µs CPU/call',
    value: round(ours),
    baseline: `the same driver's encrypt called directly (${label})`,
    baselineValue: round(base),
    ratio: round(ours / base),
    addedMicroseconds: round(median(added)),
    spread: [round(Math.min(...added)), round(Math.max(...added))],
    rounds: ROUNDS,
    calls,
    // One call at a time; KMS calls, not envelope messages.
    concurrency: 1,
    suite: null,
    frameLength: null,
    node: process.version,
  });
  await keyport.close();
}

writeBenchResults('core-call-path', results, quick);
console.table(
  results.map(({ name, value, baselineValue, addedMicroseconds, spread }) => ({
    name,
    'keyport µs': value,
    'driver µs': baselineValue,
    'added µs (median)': addedMicroseconds,
    'added spread': spread.join('..'),
  })),
);
