import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { requireTarget } from '@keyport/conformance/harness';
import { describe, expect, it, vi } from 'vitest';
import { isEntryPoint, migrateAwsToGcp } from '../src/main.js';

describe('examples/migrate-aws-to-gcp', () => {
  it('moves an archive from AWS KMS (local-kms) to Cloud KMS (keyport test server), verified and idempotent', {
    timeout: 60_000,
  }, async () => {
    const awsEndpoint = requireTarget('local-kms').KEYPORT_LOCALKMS_ENDPOINT;
    const lines: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((line: string) => {
      lines.push(line);
    });
    let result: Awaited<ReturnType<typeof migrateAwsToGcp>>;
    try {
      result = await migrateAwsToGcp({
        dir: await mkdtemp(join(tmpdir(), 'kp-mig-')),
        awsEndpoint,
        files: 30,
      });
    } finally {
      log.mockRestore();
    }
    expect(result.awsKey).toMatch(/^aws-kms:\/\/arn:aws:kms:us-east-1:111122223333:key\//);
    expect(result.gcpKey).toMatch(
      /^gcp-kms:\/\/projects\/keyport-example\/locations\/global\/keyRings\/archive\/cryptoKeys\//,
    );
    expect(result.summary).toMatchObject({ total: 30, migrated: 30, failed: 0, skipped: 0 });
    expect(result.verified).toBe(30);
    expect(result.stillOpenWithAws).toBe(0);
    // One unwrap under AWS and one wrap under GCP per file, plus the verification under GCP.
    expect(result.summary.calls.byOperation).toEqual({
      'from:decrypt': 30,
      'to:decrypt': 30,
      'to:encrypt': 30,
    });
    expect(result.summary.calls.wrapPerFile).toBe(1);
    const text = lines.join('\n');
    expect(text).toContain('3. dry run: 30 of 30 files would move to the GCP key');
    expect(text).toContain('5. 30 of 30 files open with the GCP key alone, plaintext digests unchanged');
    expect(text).toContain('6. run again: 0 migrated, 30 already done');
  });
});

describe('isEntryPoint', () => {
  it('knows it is the program when its path has a # or % in it, or goes through a symlink', async () => {
    const root = await mkdtemp(join(tmpdir(), 'kp-example-main-'));
    try {
      const dir = join(root, 'C# 100%?');
      await mkdir(dir);
      const file = join(dir, 'main.js');
      await writeFile(file, '');
      const url = pathToFileURL(file).href;
      expect(isEntryPoint(url, file)).toBe(true);
      await symlink(dir, join(root, 'link'));
      expect(isEntryPoint(url, join(root, 'link', 'main.js'))).toBe(true);
      expect(isEntryPoint(url, join(root, 'other.js'))).toBe(false);
      expect(isEntryPoint(url, undefined)).toBe(false);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
