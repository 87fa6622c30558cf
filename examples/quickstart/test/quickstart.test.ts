import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { quickstart } from '../src/main.js';

describe('quickstart', () => {
  it('runs every step and verifies its audit log', async () => {
    const lines: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((line: string) => {
      lines.push(line);
    });
    try {
      await quickstart(await mkdtemp(join(tmpdir(), 'kp-qs-')));
    } finally {
      log.mockRestore();
    }
    const text = lines.join('\n');
    expect(text).toContain('refused as expected: decrypt with tenant=evil -> InvalidCiphertext');
    expect(text).toContain('refused as expected: encrypt with a disabled key -> KeyStateConflict');
    expect(text).toMatch(
      /rotated to version 2: new ciphertexts use version 2, the old one still opens \(version 1\)/,
    );
    expect(text).toMatch(/chained records, each HMACed, anchored at \d+, verified/);
    expect(text).not.toContain('acme');
  });
});
