// A writer paused mid-append, at the worst moment: `node --import <ts hooks>
// audit-paused-writer.mjs <log> <ready file>`. It opens the log, then appends one event and
// stops itself (SIGSTOP) under the lock, right after reading the log's size — after its head
// is read, before its records are written — as Ctrl-Z, a suspended laptop or a debugger would.
// It says so by creating the ready file first. Once continued (SIGCONT) it finishes the append
// and exits: 0 when the event was written, 3 when the append was refused.
import { writeFileSync } from 'node:fs';
import { JsonlAuditSink } from '../../src/index.ts';

const [log, ready] = process.argv.slice(2);
const sink = await JsonlAuditSink.open(log, { hmacKey: new Uint8Array(32).fill(7) });
// The sink's own file handle (a private field): its size read is where the pause goes.
const handle = sink.handle;
const proto = Object.getPrototypeOf(handle);
const stat = proto.stat;
let armed = true;
proto.stat = async function (...args) {
  const result = await stat.apply(this, args);
  if (armed && this === handle) {
    armed = false;
    writeFileSync(ready, '');
    process.kill(process.pid, 'SIGSTOP');
  }
  return result;
};
try {
  await sink.write({
    ts: new Date().toISOString(),
    op: 'encrypt',
    provider: 'paused',
    keyUri: 'local://k.kp#paused',
    keyVersion: '1',
    outcome: 'success',
    errorCode: undefined,
    durationMs: 0.5,
    attempts: 1,
    requestId: undefined,
    contextKeys: [],
    contextDigest: undefined,
  });
} catch {
  process.exitCode = 3;
}
await sink.close();
