/**
 * Migrate an archive of envelope files from AWS KMS to Google Cloud KMS without decrypting the
 * payloads: only each file's data key moves (unwrapped under the AWS key, wrapped under the GCP
 * key), the body bytes stay as they are, every new file is verified to open with the GCP key alone
 * before it replaces the original, and a journal makes the run resumable.
 *
 * Here AWS KMS is an emulator (local-kms or moto, `pnpm emulators up local-kms`) and Cloud KMS is
 * keyport's own gRPC test server, started in this process. Against the real services, build the
 * same two providers with real credentials: nothing else changes.
 *
 * Run, from the repository root: `pnpm emulators up local-kms`, export KEYPORT_LOCALKMS_ENDPOINT
 * from `.emulators/env`, then `pnpm exec turbo run build --filter=@keyport/example-migrate-aws-to-gcp...
 * && node examples/migrate-aws-to-gcp/dist/main.js` (the build takes the workspace packages it
 * imports with it). The archive and journal go to KEYPORT_EXAMPLE_DIR, or to a new temporary
 * directory (kept, to look at).
 */
import { createHash, randomBytes } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { credentials } from '@grpc/grpc-js';
import { awsKms } from '@keyport/aws-kms';
import { type MigrateSummary, migrateFiles } from '@keyport/cli';
import { isKeyportError, Keyport } from '@keyport/core';
import { openEnvelope, sealEnvelope } from '@keyport/envelope';
import { gcpKms } from '@keyport/gcp-kms';
import { startCloudKmsServer } from '@keyport/test-servers';
import { OAuth2Client } from 'google-auth-library';

const say = (line: string): void => console.log(line);
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

export interface MigrationDemoOptions {
  /** Working directory: the archive and the journal go here. */
  readonly dir: string;
  /** The AWS KMS emulator, e.g. local-kms's `http://127.0.0.1:<port>`. */
  readonly awsEndpoint: string;
  /** How many files the archive holds (default 50). */
  readonly files?: number;
}

export interface MigrationDemoResult {
  readonly awsKey: string;
  readonly gcpKey: string;
  readonly summary: MigrateSummary;
  /** Files that opened with the GCP key alone, their plaintext digest unchanged. */
  readonly verified: number;
  /** Files the AWS key could still open (0 after --remove-source). */
  readonly stillOpenWithAws: number;
}

export async function migrateAwsToGcp(o: MigrationDemoOptions): Promise<MigrationDemoResult> {
  const count = o.files ?? 50;
  const gcpServer = await startCloudKmsServer();
  // A static token: the test server does not check Google credentials.
  const auth = new OAuth2Client();
  auth.setCredentials({ access_token: 'example-token', expiry_date: Date.now() + 3_600_000 });
  const keys = new Keyport({
    providers: [
      awsKms({
        region: 'us-east-1',
        endpoint: o.awsEndpoint,
        credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
      }),
      gcpKms({
        apiEndpoint: '127.0.0.1',
        port: gcpServer.port,
        sslCreds: credentials.createInsecure(),
        authClient: auth,
        keyRing: 'projects/keyport-example/locations/global/keyRings/archive',
      }),
    ],
  });
  try {
    const stamp = Date.now().toString(36);
    const awsKey = (await keys.createKey('aws-kms', { name: `archive-${stamp}`, spec: 'AES_256' })).uri;
    const gcpKey = (await keys.createKey('gcp-kms', { name: `archive-${stamp}`, spec: 'AES_256' })).uri;
    say(`1. AWS key ${awsKey}`);
    say(`   GCP key ${gcpKey}`);

    const archive = join(o.dir, 'archive');
    await mkdir(archive, { recursive: true });
    const digests = new Map<string, string>();
    for (let i = 0; i < count; i++) {
      const invoice = randomBytes(256 + i * 16);
      const path = join(archive, `invoice-${String(i).padStart(4, '0')}.enc`);
      await writeFile(
        path,
        await sealEnvelope(invoice, {
          recipients: [awsKey],
          keys,
          context: { kind: 'invoice', n: String(i) },
        }),
      );
      digests.set(path, sha256(invoice));
    }
    say(`2. sealed ${count} files under the AWS key in ${archive}`);

    const journal = join(o.dir, 'migrate.journal');
    const plan = await migrateFiles({
      keys,
      from: awsKey,
      to: gcpKey,
      target: archive,
      dryRun: true,
      journal,
    });
    say(`3. dry run: ${plan.wouldMigrate} of ${plan.total} files would move to the GCP key`);

    const summary = await migrateFiles({
      keys,
      from: awsKey,
      to: gcpKey,
      target: archive,
      removeSource: true,
      jobs: 8,
      journal,
    });
    say(
      `4. migrated ${summary.migrated} files in ${(summary.durationMs / 1000).toFixed(1)}s (${summary.filesPerSecond}/s), failed ${summary.failed}`,
    );
    say(
      `   provider calls per file: ${summary.calls.perFile} (wrapping under GCP: ${summary.calls.wrapPerFile}); bodies untouched`,
    );

    let verified = 0;
    let stillOpenWithAws = 0;
    for (const [path, digest] of digests) {
      const bytes = await readFile(path);
      const opened = await openEnvelope(bytes, { trust: [gcpKey], keys });
      if (sha256(opened.plaintext) === digest) verified++;
      try {
        await openEnvelope(bytes, { trust: [awsKey], keys });
        stillOpenWithAws++;
      } catch (error) {
        if (!isKeyportError(error)) throw error;
      }
    }
    say(`5. ${verified} of ${count} files open with the GCP key alone, plaintext digests unchanged`);
    say(`   ${stillOpenWithAws} files still open with the AWS key (the source recipient was removed)`);

    const again = await migrateFiles({
      keys,
      from: awsKey,
      to: gcpKey,
      target: archive,
      removeSource: true,
      journal,
    });
    say(
      `6. run again: ${again.migrated} migrated, ${again.alreadyDone} already done (resumable, idempotent)`,
    );
    return { awsKey, gcpKey, summary, verified, stillOpenWithAws };
  } finally {
    await keys.close();
    await gcpServer.stop();
  }
}

/**
 * True when `argv1` (the script node was given) is this module, compared as real paths: a URL
 * built from the path by hand breaks on `#`, `%` or `?` in a directory name, and a path through
 * a symlink names the module by another path; either way the program would do nothing, silently.
 */
export function isEntryPoint(moduleUrl: string, argv1: string | undefined): boolean {
  if (argv1 === undefined) return false;
  try {
    return realpathSync(argv1) === realpathSync(fileURLToPath(moduleUrl));
  } catch {
    return false; // not a file (a REPL, `node -e`): not run as the program
  }
}

if (isEntryPoint(import.meta.url, process.argv[1])) {
  const awsEndpoint = process.env.KEYPORT_LOCALKMS_ENDPOINT ?? process.env.KEYPORT_MOTO_ENDPOINT;
  if (awsEndpoint === undefined || awsEndpoint === '') {
    console.error(
      'target local-kms is not running: run "pnpm emulators up local-kms" and export KEYPORT_LOCALKMS_ENDPOINT',
    );
    process.exit(1);
  }
  const dir = process.env.KEYPORT_EXAMPLE_DIR ?? (await mkdtemp(join(tmpdir(), 'keyport-migrate-')));
  await migrateAwsToGcp({ dir, awsEndpoint });
}
