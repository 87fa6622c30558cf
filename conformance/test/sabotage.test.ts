/**
 * The suite can fail: it runs (in a child vitest) against providers with one defect each and
 * must fail exactly the tests that cover the defect while the rest still pass.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));

function vitestEntry(): string {
  for (let dir = here; dir !== dirname(dir); dir = dirname(dir)) {
    const entry = join(dir, 'node_modules', 'vitest', 'vitest.mjs');
    if (existsSync(entry)) return entry;
  }
  throw new Error('vitest is not installed');
}

interface Assertion {
  fullName: string;
  status: string;
}

describe('the suite against sabotaged providers', () => {
  it('fails the tests that cover each defect, and only those', () => {
    const out = mkdtempSync(join(tmpdir(), 'keyport-sabotage-'));
    try {
      const report = join(out, 'report.json');
      const run = spawnSync(
        process.execPath,
        [
          vitestEntry(),
          'run',
          '--config',
          join(here, 'sabotage', 'vitest.config.mjs'),
          '--reporter=json',
          `--outputFile=${report}`,
        ],
        { cwd: join(here, '..'), encoding: 'utf8', timeout: 150_000 },
      );
      expect(run.status, run.stderr).toBe(1); // failures expected
      const results = JSON.parse(readFileSync(report, 'utf8')) as {
        testResults: Array<{ assertionResults: Assertion[] }>;
      };
      const all = results.testResults.flatMap((f) => f.assertionResults);
      const failed = all.filter((a) => a.status === 'failed').map((a) => a.fullName);
      expect(failed.sort()).toEqual(
        [
          // Encrypt and decrypt drop the context: mismatches open, and keys made with one no longer do.
          'keyport conformance: context-dropping encryption context a changed, missing, extra or dropped pair fails (InvalidCiphertext) without leaking values',
          'keyport conformance: context-dropping data keys the plaintext data key decrypts from its wrapped form; each call gives a new key',
          'keyport conformance: context-dropping envelope seal/open seals to two keys of this provider; either one opens the message',
          // disableKey only pretends; enableKey after a cancelled deletion does nothing either.
          'keyport conformance: disable-ignoring disable and enable a disabled key refuses use (KeyStateConflict); enabling restores it',
          'keyport conformance: disable-ignoring error codes a disabled key fails with KeyStateConflict, not retryable',
          'keyport conformance: disable-ignoring scheduled deletion a key pending deletion refuses use (KeyStateConflict); cancelling restores it',
          // Ciphertexts and wrapped data keys carry the plaintext after the real (authenticated) ciphertext.
          'keyport conformance: plaintext-carrying encrypt/decrypt: AES_256 round-trips with an encryption context and names the key version',
          'keyport conformance: plaintext-carrying data keys the plaintext data key decrypts from its wrapped form; each call gives a new key',
          // A principal without a grant of its own is let in on another principal's grant.
          'keyport conformance: grantee-ignoring grants an encrypt grant allows its grantee encrypt and nothing else, and lets no other principal in; it is listed, and revoking it ends it',
          // AccessDenied marked retryable.
          'keyport conformance: refusal-retrying error codes a principal without rights is refused with AccessDenied, not retryable',
          // grantExpiry declared 'none': expiresAt is refused with UnsupportedError, after granting without it.
          'keyport conformance: expiry-dropping declared unavailable → UnsupportedError grantExpiry: a grant with expiresAt throws UnsupportedError and grants nothing',
        ].sort(),
      );
      expect(all.filter((a) => a.status === 'passed').length).toBeGreaterThan(150);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 180_000);
});
