// A child process appending events to a shared audit log: `node --import <ts hooks>
// audit-writer.mjs <log> <writer id> <count>`. The key is the tests' fixed key.
import { JsonlAuditSink } from '../../src/index.ts';

const [log, id, count] = process.argv.slice(2);
const sink = await JsonlAuditSink.open(log, { hmacKey: new Uint8Array(32).fill(7) });
const writes = [];
for (let i = 0; i < Number(count); i++) {
  const write = sink.write({
    ts: new Date().toISOString(),
    op: 'encrypt',
    provider: `writer-${id}`,
    keyUri: `local://k.kp#w${id}-${i}`,
    keyVersion: '1',
    outcome: 'success',
    errorCode: undefined,
    durationMs: 0.5,
    attempts: 1,
    requestId: undefined,
    contextKeys: [],
    contextDigest: undefined,
  });
  writes.push(write);
  // Every few events wait, so appends of all writers interleave rather than one batch each.
  if (i % 5 === 4) await write;
}
await Promise.all(writes);
await sink.close();
