/**
 * Key policy as code, end to end on the embedded `local` provider: seed a keystore with keys
 * that keep and break the rules of `policy.yaml` (on a settable clock, so keys can be old),
 * inventory it, check the policy, and write the four reports: table, JSON, SARIF and HTML.
 *
 * From the repository root (the build takes the workspace packages it imports with it):
 * `pnpm exec turbo run build --filter=@keyport/example-key-policy... && node examples/key-policy/dist/main.js [outDir]`
 * (default outDir: examples/key-policy/report).
 */
import { realpathSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Keyport } from '@keyport/core';
import { openLocalKeystore } from '@keyport/local';
import {
  type CheckResult,
  checkPolicy,
  collectInventory,
  findingsTable,
  parsePolicyText,
  toHtml,
  toSarif,
} from '@keyport/policy';

const DAY = 86_400_000;
const exampleDir = fileURLToPath(new URL('..', import.meta.url));

export async function keyPolicyExample(
  outDir: string,
  start = new Date('2031-01-01T00:00:00Z'),
): Promise<CheckResult> {
  const policyText = await readFile(join(exampleDir, 'policy.yaml'), 'utf8');
  const policy = parsePolicyText(policyText);
  const work = await mkdtemp(join(tmpdir(), 'keyport-key-policy-'));
  let now = new Date(start.getTime() - 500 * DAY);
  const provider = await openLocalKeystore({
    path: join(work, 'payments.keystore'),
    passphrase: 'example only',
    create: true,
    kdf: { log2N: 10 },
    clock: () => now,
  });
  const kp = new Keyport({ providers: [provider] });
  try {
    // 500 days ago: a legacy key, never rotated, and a signing key of a retired size
    await kp.createKey('local', { name: 'legacy-orders', spec: 'AES_256', labels: { owner: 'orders' } });
    await kp.createKey('local', {
      name: 'old-signer',
      spec: 'RSA_2048',
      usage: 'sign_verify',
      labels: { owner: 'identity' },
    });
    now = start;
    // today: well-kept keys, and a few that break one rule each
    const cards = await kp.createKey('local', {
      name: 'cards',
      spec: 'AES_256',
      labels: { owner: 'payments', classification: 'pci' },
      rotation: { periodDays: 90 },
    });
    await kp.createKey('local', {
      name: 'sessions',
      spec: 'AES_256',
      labels: { owner: 'web' },
      rotation: { periodDays: 180 },
    });
    await kp.createKey('local', {
      name: 'tokens',
      spec: 'EC_P384',
      usage: 'sign_verify',
      labels: { owner: 'identity' },
    });
    await kp.createKey('local', { name: 'scratch', spec: 'AES_256', rotation: { periodDays: 30 } });
    await kp.createGrant(cards.uri, {
      grantee: 'settlement',
      operations: ['decrypt'],
      expiresAt: new Date(start.getTime() + 30 * DAY),
      constraints: { contextEquals: { merchant: 'm-42' } },
    });
    await kp.createGrant(cards.uri, { grantee: 'analytics', operations: ['decrypt'] });
    const old = await kp.createKey('local', {
      name: 'retired',
      spec: 'AES_256',
      labels: { owner: 'orders' },
    });
    await kp.scheduleKeyDeletion(old.uri, { days: 7 });

    const inventory = await collectInventory(kp, { sources: ['local'], now: () => now });
    const result = checkPolicy(inventory, policy);
    await mkdir(outDir, { recursive: true });
    await writeFile(join(outDir, 'findings.txt'), findingsTable(result));
    await writeFile(join(outDir, 'report.json'), `${JSON.stringify({ inventory, result }, null, 2)}\n`);
    await writeFile(
      join(outDir, 'report.sarif'),
      `${JSON.stringify(toSarif(result, policy, { policyUri: 'examples/key-policy/policy.yaml' }), null, 2)}\n`,
    );
    await writeFile(join(outDir, 'report.html'), await toHtml(inventory, policy, result));
    return result;
  } finally {
    await kp.close();
    await rm(work, { recursive: true, force: true });
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
  const out = process.argv[2] ?? join(exampleDir, 'report');
  const result = await keyPolicyExample(out);
  process.stdout.write(findingsTable(result));
  console.log(`reports written to ${out}`);
}
