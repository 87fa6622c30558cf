/**
 * `decrypt` to stdout releases each verified frame as it goes; a signed message's footer
 * signature is checked only at the end. When it fails, the reader already holds every frame but
 * the last: the error must say so (how many bytes, discard them), in text and in --json, and a
 * `-o` output must still leave nothing behind.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { jsonError, localWorkspace, runCli } from './support/cli.js';

async function tamperedSignedMessage() {
  const ws = await localWorkspace();
  const cwd = ws.dir;
  expect((await runCli(['keys', 'create', 'k'], { cwd })).code).toBe(0);
  await writeFile(join(cwd, 'in.bin'), Buffer.alloc(40_000, 5));
  const enc = await runCli(
    ['encrypt', 'in.bin', '-o', 'in.enc', '-r', ws.uri('k'), '--suite', '0x0578', '--frame-length', '4096'],
    { cwd },
  );
  expect(enc.code, enc.stderr).toBe(0);
  const message = await readFile(join(cwd, 'in.enc'));
  // A byte of the footer's DER signature: every frame still verifies, the signature does not.
  message[message.length - 5] = (message[message.length - 5] ?? 0) ^ 1;
  await writeFile(join(cwd, 'bad.enc'), message);
  return { ws, cwd };
}

/** An unsigned message of 9 regular frames of 4096 bytes and a final one of 3136: the offsets. */
async function unsignedMessage() {
  const ws = await localWorkspace();
  const cwd = ws.dir;
  expect((await runCli(['keys', 'create', 'k'], { cwd })).code).toBe(0);
  await writeFile(join(cwd, 'in.bin'), Buffer.alloc(40_000, 7));
  const enc = await runCli(
    ['encrypt', 'in.bin', '-o', 'in.enc', '-r', ws.uri('k'), '--frame-length', '4096'],
    {
      cwd,
    },
  );
  expect(enc.code, enc.stderr).toBe(0);
  const message = await readFile(join(cwd, 'in.enc'));
  // A regular frame: sequence number, IV, 4096 bytes, tag. The final frame: end marker, sequence
  // number, IV, length, 3136 bytes, tag. No footer (unsigned suite).
  const regular = 4 + 12 + 4096 + 16;
  const final = 4 + 4 + 12 + 4 + 3136 + 16;
  const header = message.length - 9 * regular - final;
  return { ws, cwd, message, regular, final, header };
}

describe('decrypt to stdout: a failure after some plaintext was written', () => {
  it('says how many bytes already reached stdout and that they are void', async () => {
    const { ws, cwd } = await tamperedSignedMessage();
    const r = await runCli(['decrypt', 'bad.enc', '-k', ws.uri('k')], { cwd });
    expect(r.code).toBe(6);
    // Every regular frame was released; the final one is held until the signature verifies.
    expect(r.stdoutBytes.length).toBe(36_864);
    expect(r.stderr).toContain('the message signature does not verify');
    expect(r.stderr).toContain(
      '36864 bytes of plaintext had already been written to stdout before this failure: discard that output',
    );

    const j = await runCli(['--json', 'decrypt', 'bad.enc', '--no-progress', '-k', ws.uri('k')], { cwd });
    expect(j.code).toBe(6);
    const error = jsonError(j.stderr);
    expect(error.code).toBe('InvalidCiphertext');
    expect(error.exitCode).toBe(6);
    expect(error.message).toContain('36864 bytes of plaintext had already been written to stdout');
  });

  it('an unsigned message with a changed frame: only the frames before it reach stdout, then the count', async () => {
    const { ws, cwd, message, regular, header } = await unsignedMessage();
    // A byte of the fifth frame's ciphertext: frames 1-4 verify, the fifth does not.
    const at = header + 4 * regular + 4 + 12 + 100;
    message[at] = (message[at] ?? 0) ^ 1;
    await writeFile(join(cwd, 'bad.enc'), message);
    const r = await runCli(['decrypt', 'bad.enc', '-k', ws.uri('k')], { cwd });
    expect(r.code).toBe(6);
    expect(r.stdoutBytes.length).toBe(4 * 4096);
    expect(r.stdoutBytes.equals(Buffer.alloc(4 * 4096, 7))).toBe(true);
    expect(r.stderr).toContain(
      '16384 bytes of plaintext had already been written to stdout before this failure: discard that output',
    );
  });

  it('an unsigned message cut before its final frame: exits non-zero and says the released bytes are void', async () => {
    const { ws, cwd, message, final } = await unsignedMessage();
    await writeFile(join(cwd, 'cut.enc'), message.subarray(0, message.length - final));
    const r = await runCli(['decrypt', 'cut.enc', '-k', ws.uri('k')], { cwd });
    expect(r.code).toBe(6);
    expect(r.stdoutBytes.length).toBe(9 * 4096);
    expect(r.stderr).toContain(
      '36864 bytes of plaintext had already been written to stdout before this failure: discard that output',
    );
    // With -o nothing is left behind.
    const o = await runCli(['decrypt', 'cut.enc', '-k', ws.uri('k'), '-o', 'out.bin'], { cwd });
    expect(o.code).toBe(6);
    expect((await readdir(cwd)).filter((n) => n.includes('out.bin'))).toEqual([]);
  });

  it('with -o, writes nothing and says nothing about stdout', async () => {
    const { ws, cwd } = await tamperedSignedMessage();
    const r = await runCli(['decrypt', 'bad.enc', '-k', ws.uri('k'), '-o', 'out.bin'], { cwd });
    expect(r.code).toBe(6);
    expect(r.stderr).toContain('the message signature does not verify');
    expect(r.stderr).not.toContain('written to stdout');
    expect((await readdir(cwd)).filter((n) => n.includes('out.bin'))).toEqual([]);
  });

  it('a failure before any byte was written is reported as it was', async () => {
    const { ws, cwd } = await tamperedSignedMessage();
    const message = await readFile(join(cwd, 'in.enc'));
    // A byte of the header: it fails before any frame, so nothing is released.
    message[60] = (message[60] ?? 0) ^ 1;
    await writeFile(join(cwd, 'bad-header.enc'), message);
    const r = await runCli(['decrypt', 'bad-header.enc', '-k', ws.uri('k')], { cwd });
    expect(r.code).not.toBe(0);
    expect(r.stdoutBytes.length).toBe(0);
    expect(r.stderr).not.toContain('written to stdout');
  });
});
