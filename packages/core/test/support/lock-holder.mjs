// A process that takes an audit log's lock and holds it until killed: `node --import <ts hooks>
// lock-holder.mjs <lock path> <ready file>`; the ready file gets its pid once the lock is held.
import { writeFile } from 'node:fs/promises';
import { acquireAuditLock } from '../../src/audit-lock.ts';

const [lockPath, ready] = process.argv.slice(2);
await acquireAuditLock(lockPath);
await writeFile(ready, String(process.pid));
setInterval(() => undefined, 60_000);
