// Child process for the memory bench: opens one message file read in 64 KiB chunks and reports
// the growth of the process's peak RSS as the kernel counts it (VmHWM in /proc/self/status),
// from the resident size just before the open. Run by envelope.bench.mjs, one process per case.
import { createReadStream, readFileSync } from 'node:fs';
import { openStream, rawAesRecipient } from '../dist/index.js';

const [file, keyHex, maxFrameLength] = process.argv.slice(2);
const status = (field) => {
  const m = readFileSync('/proc/self/status', 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
  return m === null ? Number.NaN : Number(m[1]) * 1024;
};
const aes = rawAesRecipient({ namespace: 'bench', name: 'aes', key: Buffer.from(keyHex, 'hex') });
globalThis.gc?.();
const rssStart = status('VmRSS');
const t = process.hrtime.bigint();
let bytes = 0;
let error;
try {
  const source = createReadStream(file, { highWaterMark: 64 * 1024 });
  for await (const p of openStream(source, { trust: [aes], maxFrameLength: Number(maxFrameLength) })) {
    bytes += p.length;
  }
} catch (e) {
  error = e.code ?? String(e);
}
const ms = Number(process.hrtime.bigint() - t) / 1e6;
process.stdout.write(`${JSON.stringify({ rssStart, hwm: status('VmHWM'), bytes, ms, error })}\n`);
