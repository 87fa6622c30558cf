/**
 * Object keys are chosen by whoever can write the bucket: a key holding an ESC sequence, a CR,
 * a newline or a bidi control, printed as it is, rewrote the operator's terminal (retitled it,
 * cleared it) or forged lines of the report (`failed …` lines were printed with the raw key, and
 * so were conflicts). Every key a text line shows is quoted with its control characters escaped;
 * the JSON result keeps the keys exact. On moto and fake-gcs-server, and an S3 stand-in for the
 * status command where a real emulator cannot list a name it then cannot find.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sealEnvelope } from '@keyport/envelope';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateObjectsCommand, migrateObjectsStatusCommand, shardLines } from '../src/command.js';
import { parseObjectLocation } from '../src/location.js';
import { runShard } from '../src/worker.js';
import { type TestKeys, testKeys } from './helpers/keys.js';
import { type EmulatorName, endpointsFor, freshBucket } from './helpers/stores.js';

let k: TestKeys;
beforeAll(async () => {
  k = await testKeys();
});
afterAll(async () => {
  await k?.close();
});

/**
 * What a terminal would act on: C0 and C1 controls (ESC, CSI, CR, LF, BEL), DEL, line and
 * paragraph separators, bidi controls.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const TERMINAL_CONTROLS = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/u;

/** A key that, printed raw, retitles the window, clears the screen and forges a line. */
const HOSTILE = 'h/\u001b]0;owned\u0007\u001b[2J\r\n  failed h/other: fine\u202egpj.exe\u009b31m';
/**
 * The same without its LF (a CR alone overwrites the line from its start): moto's routing does
 * not match a key holding an LF (real S3 takes it).
 */
const HOSTILE_NO_LF = HOSTILE.replace('\n', '');
const hostileOn = (emulator: EmulatorName) => (emulator === 'fake-gcs-server' ? HOSTILE : HOSTILE_NO_LF);

const sealed = (context?: Record<string, string>) =>
  sealEnvelope(Buffer.from('secret'), {
    recipients: [k.from],
    keys: k.keys,
    ...(context !== undefined ? { context } : {}),
  }).then((b) => Buffer.from(b));

/** The command's endpoint options for an emulator. */
const endpointOptions = (emulator: EmulatorName) => {
  const e = endpointsFor(emulator);
  return {
    ...(e.s3Endpoint !== undefined ? { s3Endpoint: e.s3Endpoint } : {}),
    ...(e.gcsEndpoint !== undefined ? { gcsEndpoint: e.gcsEndpoint } : {}),
  };
};

const expectNoControls = (lines: readonly string[]) => {
  for (const line of lines) expect(TERMINAL_CONTROLS.test(line), JSON.stringify(line)).toBe(false);
};

// Not Azurite: it answers a listing that holds a blob named with ESC or BEL with a 500.
describe.each(['moto', 'fake-gcs-server'] as const)('the migrate command’s text lines, on %s', (emulator) => {
  it('show a failed object’s key quoted and escaped; the JSON result keeps it exact', async () => {
    const key = hostileOn(emulator);
    const uri = `${await freshBucket(emulator)}/h/`;
    const e = endpointsFor(emulator);
    const { store } = parseObjectLocation(uri, e);
    // A tampered header: refused by the rewrap, failed at once.
    const head = await sealed({ app: 'test' });
    head[40] = (head[40] as number) ^ 1;
    await store.put(key, head);
    const out = await migrateObjectsCommand(
      uri,
      { from: k.from, to: k.to, ...endpointOptions(emulator) },
      { keys: k.keys },
    );
    expect(out.exitCode).toBe(1);
    expect(out.result).toMatchObject({ counts: { failed: 1 }, failures: [{ key: key }] });
    expectNoControls(out.lines);
    const failed = out.lines.filter((l) => l.startsWith('  failed '));
    // One line, not two: the key's newline cannot forge "failed h/other".
    expect(failed).toEqual([
      expect.stringMatching(/^ {2}failed "h\/\\u001b\]0;owned\\u0007\\u001b\[2J\\u000d(\\u000a)? {2}failed /),
    ]);
    expect(failed[0]).toContain('\\u202egpj.exe\\u009b31m": InvalidCiphertext ');
  }, 60_000);

  it('show conflicting keys and a failed one whose message names it, escaped', async () => {
    const key = hostileOn(emulator);
    const uri = `${await freshBucket(emulator)}/h/`;
    const e = endpointsFor(emulator);
    const { store } = parseObjectLocation(uri, e);
    await store.put(key, await sealed());
    // Another writer changes the object before every conditional write: conflicts, then a
    // failure whose message names the key too.
    const report = await runShard({
      location: uri,
      endpoints: e,
      from: k.from,
      to: k.to,
      keys: k.keys,
      beforeWrite: async (written) => {
        await store.put(written, await sealed());
      },
    });
    expect(report.counts).toMatchObject({ failed: 1, conflicts: 6 });
    expect(report.conflicts[0]?.key).toBe(key);
    expect(report.failures).toEqual([{ key: key, code: 'AlreadyExists', message: expect.any(String) }]);
    const lines = shardLines({ index: 0, count: 1 }, report);
    expectNoControls(lines);
    const conflicts = lines.filter((l) => l.startsWith('  changed by another writer'));
    expect(conflicts).toHaveLength(6);
    expect(conflicts[0]).toMatch(/\(kept\): "h\/\\u001b\]0;owned\\u0007/);
    const failed = lines.filter((l) => l.startsWith('  failed '));
    expect(failed).toHaveLength(1);
    expect(failed[0]).toContain('AlreadyExists object "h/');
    expect(failed[0]).toContain('\\u202egpj.exe\\u009b31m');
  }, 60_000);
});

describe('the status command’s text lines', () => {
  it('count an object listed but not found when read apart from the headers, its key escaped', async () => {
    // An S3 stand-in listing two keys: one a sealed object, one (a hostile name) whose read finds
    // nothing, as a deletion between the listing and the read does. No journals: an empty dir.
    const body = await sealed();
    const gone = `p/gone${HOSTILE.slice(1)}`;
    const server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.searchParams.get('list-type') === '2') {
        res.setHeader('content-type', 'application/xml');
        const entry = (key: string) =>
          `<Contents><Key>${encodeURIComponent(key)}</Key><ETag>&quot;e&quot;</ETag><Size>3</Size></Contents>`;
        res.end(
          `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>bucket</Name><Prefix>p/</Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys><EncodingType>url</EncodingType><IsTruncated>false</IsTruncated>${entry(gone)}${entry('p/kept')}</ListBucketResult>`,
        );
        return;
      }
      if (url.pathname === '/bucket/p/kept' && url.searchParams.has('tagging')) {
        res.setHeader('content-type', 'application/xml');
        res.end('<?xml version="1.0" encoding="UTF-8"?><Tagging><TagSet></TagSet></Tagging>');
        return;
      }
      if (url.pathname === '/bucket/p/kept') {
        res.writeHead(200, {
          'content-type': 'application/octet-stream',
          'content-length': String(body.length),
          etag: '"e"',
          'last-modified': 'Mon, 01 Jan 2024 00:00:00 GMT',
        });
        res.end(body);
        return;
      }
      res.writeHead(404, { 'content-type': 'application/xml' });
      res.end(
        '<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message>gone</Message></Error>',
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const dir = await mkdtemp(join(tmpdir(), 'keyport-status-lines-'));
    try {
      const status = await migrateObjectsStatusCommand('s3://bucket/p/', {
        journalDir: dir,
        s3Endpoint: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
        headers: { from: k.from, to: k.to },
      });
      expect(status.result).toMatchObject({
        headers: { target: 0, source: 1, both: 0, other: 0, vanished: 1, vanishedSeen: [{ key: gone }] },
      });
      expectNoControls(status.lines);
      expect(status.lines).toContain(
        '  headers: 0 target, 1 source, 0 both, 0 other; 1 listed but not found when read, not counted',
      );
      expect(status.lines.filter((l) => l.includes('not readable by that name'))).toEqual([
        expect.stringContaining(': "p/gone/\\u001b]0;owned'),
      ]);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await rm(dir, { recursive: true, force: true });
    }
  });
});
