import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { metrics, trace } from '@opentelemetry/api';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { TracerProvider } from '@opentelemetry/sdk-trace';
import { describe, expect, it, vi } from 'vitest';
import { isEntryPoint, tracedSession } from '../src/main.js';

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
    for (const name of [
      'keyport createKey',
      'keyport encrypt',
      'keyport decrypt',
      'keyport orders.reseal',
      'keyport envelope.seal',
      'keyport envelope.open',
    ]) {
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

  it('a run that fails still shuts OpenTelemetry down: no global provider is left registered', async () => {
    const spies = (['log', 'dir', 'info'] as const).map((m) =>
      vi.spyOn(console, m).mockImplementation(() => undefined),
    );
    const root = await mkdtemp(join(tmpdir(), 'keyport-otel-fail-'));
    try {
      // No such directory: the keystore cannot be created, after the providers were registered.
      await expect(tracedSession(join(root, 'missing', 'dir'))).rejects.toMatchObject({
        name: 'KeyportError',
      });
    } finally {
      for (const s of spies) s.mockRestore();
      await rm(root, { recursive: true, force: true });
    }
    // A second registration succeeds only when the first was undone.
    const tracer = new TracerProvider();
    const meter = new MeterProvider();
    try {
      expect(trace.setGlobalTracerProvider(tracer)).toBe(true);
      expect(metrics.setGlobalMeterProvider(meter)).toBe(true);
    } finally {
      trace.disable();
      metrics.disable();
      await tracer.shutdown();
      await meter.shutdown();
    }
  });

  it('knows it is the program when its path has a # or % in it, or goes through a symlink', async () => {
    const root = await mkdtemp(join(tmpdir(), 'keyport-otel-main-'));
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
