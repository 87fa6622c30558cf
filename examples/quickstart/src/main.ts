/**
 * keyport quickstart, on the embedded `local` provider: create a keystore and a key, encrypt
 * with a context, decrypt, see a wrong context refused, rotate and still open the old
 * ciphertext, disable the key and see it refused, then print and verify the audit trail.
 *
 * Run it with `pnpm quickstart`. Set KEYPORT_QUICKSTART_DIR to keep the keystore somewhere.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isKeyportError, JsonlAuditSink, Keyport, MemoryAuditSink, verifyAuditLog } from '@keyport/core';
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
  // A demo passphrase; real deployments read it from a secret store or a prompt.
  const passphrase = process.env.KEYPORT_PASSPHRASE ?? 'correct horse battery staple';
  const auditKey = randomBytes(32);

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

const isMain = process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isMain) {
  const dir = process.env.KEYPORT_QUICKSTART_DIR ?? (await mkdtemp(join(tmpdir(), 'keyport-quickstart-')));
  await quickstart(dir);
}
