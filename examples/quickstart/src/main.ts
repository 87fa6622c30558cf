/**
 * keyport quickstart, on the embedded `local` provider: create a keystore and a key, encrypt
 * with a context, decrypt, see a wrong context refused, rotate and still open the old
 * ciphertext, disable the key and see it refused, then print and verify the audit trail.
 *
 * Run it with `pnpm quickstart`. It works in a temporary directory it removes at exit; set
 * KEYPORT_QUICKSTART_DIR to keep the keystore, the audit log and its key in a directory of your
 * own (created if missing; rerunning on it adds a key and appends to the same verified log).
 */
import { realpathSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  isKeyportError,
  JsonlAuditSink,
  Keyport,
  loadOrCreateAuditKey,
  MemoryAuditSink,
  verifyAuditLog,
} from '@keyport/core';
import { openLocalKeystore } from '@keyport/local';

const say = (line: string): void => console.log(line);

async function expectRefused(what: string, action: () => Promise<unknown>): Promise<void> {
  try {
    await action();
  } catch (error) {
    if (isKeyportError(error)) {
      say(`  refused as expected: ${what} -> ${error.code}`);
      return;
    }
    throw error;
  }
  throw new Error(`quickstart: ${what} was not refused`);
}

export async function quickstart(dir: string): Promise<void> {
  const keystorePath = join(dir, 'quickstart.kp');
  const auditPath = join(dir, 'audit.jsonl');
  // A demo passphrase: never ship a default like this; real deployments read it from a secret
  // store or a prompt.
  const passphrase = process.env.KEYPORT_PASSPHRASE ?? 'correct horse battery staple';
  // The audit key lives in its own file (mode 0600), as the CLI keeps it (`<log>.key`): a key
  // drawn afresh each run could not extend a log an earlier run wrote. In production keep it
  // away from the log, where whoever can rewrite the log cannot read it.
  const { key: auditKey } = await loadOrCreateAuditKey(`${auditPath}.key`);

  const trail = new MemoryAuditSink();
  const kp = new Keyport({
    providers: [await openLocalKeystore({ path: keystorePath, passphrase, create: true })],
    audit: [trail, await JsonlAuditSink.open(auditPath, { hmacKey: auditKey })],
  });

  say(`1. keystore ${keystorePath}`);
  const key = await kp.createKey('local', { name: `orders-${Date.now()}`, spec: 'AES_256' });
  say(`   created ${key.uri} (version ${key.primaryVersion})`);

  const context = { tenant: 'acme', purpose: 'orders' };
  const message = new TextEncoder().encode('order #1001: 3 widgets');
  const sealed = await kp.encrypt(key.uri, message, { context });
  say(
    `2. encrypted ${message.length} bytes -> ${sealed.ciphertext.length} bytes with key version ${sealed.keyVersion}`,
  );

  const opened = await kp.decrypt(key.uri, sealed.ciphertext, { context });
  say(`3. decrypted: "${new TextDecoder().decode(opened.plaintext)}"`);

  say('4. the same ciphertext under a different context:');
  await expectRefused('decrypt with tenant=evil', () =>
    kp.decrypt(key.uri, sealed.ciphertext, { context: { ...context, tenant: 'evil' } }),
  );

  const rotated = await kp.rotateKey(key.uri);
  const fresh = await kp.encrypt(key.uri, message, { context });
  const old = await kp.decrypt(key.uri, sealed.ciphertext, { context });
  say(
    `5. rotated to version ${rotated.primaryVersion}: new ciphertexts use version ${fresh.keyVersion}, ` +
      `the old one still opens (version ${old.keyVersion})`,
  );

  await kp.disableKey(key.uri);
  say('6. disabled the key:');
  await expectRefused('encrypt with a disabled key', () => kp.encrypt(key.uri, message, { context }));
  await expectRefused('decrypt with a disabled key', () =>
    kp.decrypt(key.uri, sealed.ciphertext, { context }),
  );
  await kp.enableKey(key.uri);

  await kp.close();
  say('7. audit trail (context values are never recorded, only keys and a digest):');
  for (const e of trail.events) {
    const version = e.keyVersion === undefined ? '' : ` v${e.keyVersion}`;
    const code = e.errorCode === undefined ? '' : ` ${e.errorCode}`;
    say(`   ${e.ts} ${e.op.padEnd(10)} ${e.outcome}${code}${version} [${e.contextKeys.join(',')}]`);
  }
  const verified = await verifyAuditLog(auditPath, auditKey);
  if (!verified.ok) throw new Error(`audit log failed verification: ${JSON.stringify(verified.problem)}`);
  say(
    `8. ${auditPath}: ${verified.records} chained records, each HMACed, anchored at ${verified.head.count}, verified`,
  );
}

/**
 * The command: in KEYPORT_QUICKSTART_DIR when set (kept), else in a temporary directory that is
 * removed however the run ends.
 */
export async function main(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const kept = env.KEYPORT_QUICKSTART_DIR;
  if (kept !== undefined && kept !== '') {
    await mkdir(kept, { recursive: true });
    await quickstart(resolve(kept));
    return;
  }
  const dir = await mkdtemp(join(tmpdir(), 'keyport-quickstart-'));
  try {
    await quickstart(dir);
    say(`(${dir} is removed now; set KEYPORT_QUICKSTART_DIR to keep it)`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * True when `argv1` (the script node was given) is this module. Compared as real paths: a URL
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

if (isEntryPoint(import.meta.url, process.argv[1])) await main();
