/**
 * A migration worker as its own process, for the kill tests: `node --import register-ts.mjs
 * worker-child.ts '<json options>'`. Opens the shared local keystore, runs its shard, prints
 * the shard report as one JSON line, exits 0 (or 3 when the journal has another writer).
 */
import { Keyport } from '@keyport/core';
import { openLocalKeystore } from '@keyport/local';
import { JournalTakenError } from '../../src/journal.js';
import { runShard } from '../../src/worker.js';
import { KDF, PASSPHRASE } from '../helpers/keys.js';

const o = JSON.parse(process.argv[2] as string);
const provider = await openLocalKeystore({ path: o.keystore, passphrase: PASSPHRASE, kdf: KDF });
const keys = new Keyport({ providers: [provider], onAuditError: () => {} });
try {
  const report = await runShard({ ...o.run, keys });
  process.stdout.write(`${JSON.stringify(report)}\n`);
} catch (e) {
  process.stderr.write(
    `${(e as Error).name}: ${(e as Error).message} cause: ${String((e as { cause?: unknown }).cause)} ${JSON.stringify(Object.getOwnPropertyNames((e as { cause?: object }).cause ?? {}).map((n) => [n, String(((e as { cause?: Record<string, unknown> }).cause ?? {})[n]).slice(0, 300)]))} ${(e as Error).stack}\n`,
  );
  if (process.env.KEYPORT_OBJMIG_CHILD_ERRORS !== undefined)
    (await import('node:fs')).writeFileSync(
      `${process.env.KEYPORT_OBJMIG_CHILD_ERRORS}-${process.pid}`,
      `${String((e as Error).stack)}\n${String((e as { cause?: unknown }).cause)}\n${JSON.stringify((e as { cause?: unknown }).cause)}`,
    );
  process.exitCode = e instanceof JournalTakenError ? 3 : 1;
} finally {
  await provider.close();
}
