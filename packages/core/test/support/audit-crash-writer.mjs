// A writer killed between writing its records and replacing the anchor, as a power cut or a
// SIGKILL there would: `node --import <ts hooks> audit-crash-writer.mjs <log> <events> <bytes>`.
// It opens the log, writes <events> events at once, each with one context key of <bytes>
// characters (so they share one append), and SIGKILLs itself as the log is first fsynced.
import { JsonlAuditSink } from '../../src/index.ts';

const [log, count, bytes] = process.argv.slice(2);
const sink = await JsonlAuditSink.open(log, { hmacKey: new Uint8Array(32).fill(7) });
// The sink's own file handle (a private field): its fsync is where the crash goes.
const handle = sink.handle;
const proto = Object.getPrototypeOf(handle);
const sync = proto.sync;
proto.sync = async function (...args) {
  const result = await sync.apply(this, args);
  if (this === handle) process.kill(process.pid, 'SIGKILL');
  return result;
};
const key = 'k'.repeat(Number(bytes));
await Promise.all(
  Array.from({ length: Number(count) }, (_, i) =>
    sink.write({
      ts: new Date().toISOString(),
      op: 'encrypt',
      provider: 'crash',
      keyUri: `local://k.kp#c${i}`,
      keyVersion: '1',
      outcome: 'failure',
      errorCode: 'InvalidArgument',
      durationMs: 0.5,
      attempts: 1,
      requestId: undefined,
      contextKeys: [key],
      contextDigest: undefined,
    }),
  ),
);
