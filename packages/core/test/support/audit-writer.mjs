// A child process appending events to a shared audit log: `node --import <ts hooks>
// audit-writer.mjs <log> <writer id> <count> [<start file>]`. With a start file, the writer
// says it is ready (`<start file>.ready-<id>`) and waits for the start file, so all writers
// append at the same time. The key is the tests' fixed key.
import { access, writeFile } from 'node:fs/promises';
import { JsonlAuditSink } from '../../src/index.ts';

const [log, id, count, start] = process.argv.slice(2);
const sink = await JsonlAuditSink.open(log, { hmacKey: new Uint8Array(32).fill(7) });
if (start !== undefined) {
  await writeFile(`${start}.ready-${id}`, '');
  for (;;) {
    try {
      await access(start);
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}
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
