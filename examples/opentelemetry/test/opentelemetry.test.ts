import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { tracedSession } from '../src/main.js';

describe('examples/opentelemetry', () => {
  it('prints the keyport spans and metrics to the console, without context values', async () => {
    const printed: string[] = [];
    const capture = (...args: unknown[]): void => {
      printed.push(args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' '));
    };
    const spies = (['log', 'dir', 'info'] as const).map((m) =>
      vi.spyOn(console, m).mockImplementation(capture),
    );
    const dir = await mkdtemp(join(tmpdir(), 'keyport-otel-test-'));
    try {
      await tracedSession(dir);
    } finally {
      for (const s of spies) s.mockRestore();
      await rm(dir, { recursive: true, force: true });
    }
    const text = printed.join('\n');
    for (const name of ['keyport createKey', 'keyport encrypt', 'keyport decrypt', 'keyport orders.reseal', 'keyport envelope.seal', 'keyport envelope.open']) {
      expect(text).toContain(name);
    }
    expect(text).toContain('keyport.client.calls');
    expect(text).toContain('keyport.client.duration');
    expect(text).toContain('InvalidCiphertext');
    expect(text).not.toContain('acme');
    expect(text).not.toContain('someone else');
    expect(text).not.toContain('order #1');
    expect(text).not.toContain('order #3');
  });
});
