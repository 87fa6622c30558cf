/**
 * A migration worker as its own process, for the kill tests: `node --import ../../cli/test/support/register-ts.mjs
 * worker-child.ts '<json options>'`. Opens the shared local keystore, runs its shard, prints
 * the shard report as one JSON line, exits 0, 1 when objects failed or the run did, 3 when the
 * journal has another writer.
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
  // As the CLI does: objects that failed or vanished (and are in the journal) make the exit code 1.
  if (report.counts.failed > 0 || report.counts.vanished > 0) {
    process.stderr.write(
      `failed objects: ${JSON.stringify(report.failures)}, vanished: ${JSON.stringify(report.vanished)}\n`,
    );
    process.exitCode = 1;
  }
} catch (e) {
  const cause = (e as { cause?: unknown }).cause;
  process.stderr.write(`${String((e as Error).stack)}\ncaused by: ${String(cause)}\n`);
  process.exitCode = e instanceof JournalTakenError ? 3 : 1;
} finally {
  await provider.close();
}
