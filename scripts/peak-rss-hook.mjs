// Loaded with `node --import <this file>` by tests and benches that measure a child's peak
// memory: at exit the child writes its VmHWM (KiB, from /proc/self/status) to the file named by
// KEYPORT_PEAK_FILE. VmHWM is this process image's own peak; getrusage's maxRSS would also count
// the parent's resident size at fork (Linux carries it across exec), hiding a smaller peak.
import { readFileSync, writeFileSync } from 'node:fs';

const file = process.env.KEYPORT_PEAK_FILE;
if (file) {
  process.on('exit', () => {
    const kib = /VmHWM:\s*(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '';
    writeFileSync(file, kib);
  });
}
