#!/usr/bin/env node
// Builds a folder of providers' Go samples with keyport's driver (a module under fixtures/, named
// by the one argument, default gcp-kms-go-samples) into the harness cache, outside the clone, once
// per hash of the module's files: `go test -c` (the driver with the samples, one binary) and, when
// the folder has a quickstart/ (Google's package main), `go build ./quickstart`. Folders:
// - gcp-kms-go-samples: Google's Cloud KMS samples (published-samples.gcp-go.test.ts); the
//   harness builds it when it installs the gcp-kms target (`pnpm emulators up gcp-kms`);
// - azure-keyvault-keys-go-examples: Microsoft's azkeys examples
//   (published-samples.azure-go.test.ts); built when it installs azure-keyvault.
// So a test run starts binaries, not a compiler; the tests run this again, which on a warm cache
// only prints the paths. Prints one JSON line `{ driver, quickstart?, buildMs }`; exits 1 naming
// what is missing (Go, a module the proxy would not serve) and how to reproduce: a missing
// prerequisite fails the test, never skips it.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

const FOLDERS = ['gcp-kms-go-samples', 'azure-keyvault-keys-go-examples'];
const folder = process.argv[2] ?? 'gcp-kms-go-samples';
if (!FOLDERS.includes(folder)) fail(`unknown sample folder '${folder}': one of ${FOLDERS.join(', ')}`);
const SAMPLES = join(import.meta.dirname, 'fixtures', folder);
const CACHE = process.env.KEYPORT_CACHE ?? join(homedir(), '.cache', 'keyport');
const ROOT = join(CACHE, folder);
/** The Go the module asks for (its `go` directive). */
const goDirective = /^go (\S+)$/m.exec(readFileSync(join(SAMPLES, 'go.mod'), 'utf8'))?.[1] ?? '(see go.mod)';
const HAS_QUICKSTART = existsSync(join(SAMPLES, 'quickstart'));

/** Files whose content decides the binaries (the module, the samples, the driver, quickstart). */
function buildInputs() {
  const files = readdirSync(SAMPLES).filter((f) => /\.(go|mod|sum)$/.test(f));
  if (HAS_QUICKSTART) files.push('quickstart/quickstart.go');
  return files.sort();
}

function fail(message) {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

const hash = createHash('sha256');
for (const f of buildInputs())
  hash
    .update(f)
    .update('\0')
    .update(readFileSync(join(SAMPLES, f)));
const dir = join(ROOT, hash.digest('hex').slice(0, 16));
const driver = join(dir, 'samples.test');
const quickstart = join(dir, 'quickstart');

/** What the build made, as printed. */
const made = (buildMs) =>
  JSON.stringify(HAS_QUICKSTART ? { driver, quickstart, buildMs } : { driver, buildMs });

if (existsSync(driver) && (!HAS_QUICKSTART || existsSync(quickstart))) {
  process.stdout.write(`${made(0)}\n`);
  process.exit(0);
}

const started = Date.now();
const version = spawnSync('go', ['version'], { encoding: 'utf8' });
if (version.error !== undefined || version.status !== 0) {
  fail(
    `Go is missing: "go version" did not run (${version.error?.message ?? version.stderr}); install Go >= ${goDirective}`,
  );
}
mkdirSync(ROOT, { recursive: true });
const scratch = mkdtempSync(join(ROOT, 'tmp-'));
try {
  // -mod=readonly: go.sum is the pin; a missing or changed sum fails rather than resolving anew.
  const flags = ['-mod=readonly', '-trimpath', '-buildvcs=false'];
  const builds = [['test', '-c', ...flags, '-o', join(scratch, 'samples.test'), '.']];
  if (HAS_QUICKSTART) builds.push(['build', ...flags, '-o', join(scratch, 'quickstart'), './quickstart']);
  for (const args of builds) {
    const r = spawnSync('go', args, { cwd: SAMPLES, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    if (r.status !== 0) {
      fail(
        `go ${args.join(' ')} failed in ${SAMPLES} (${version.stdout.trim()}; modules come from the Go ` +
          `module proxy, GOPROXY=${process.env.GOPROXY ?? 'default'}):\n${r.stderr}${r.stdout}`,
      );
    }
  }
  mkdirSync(dir, { recursive: true });
  // quickstart first: the driver's presence is what marks the folder complete.
  if (HAS_QUICKSTART) renameSync(join(scratch, 'quickstart'), quickstart);
  renameSync(join(scratch, 'samples.test'), driver);
  // Builds of older contents go (a running one keeps its files until it exits).
  for (const d of readdirSync(ROOT)) {
    if (/^[0-9a-f]{16}$/.test(d) && join(ROOT, d) !== dir)
      rmSync(join(ROOT, d), { recursive: true, force: true });
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
process.stdout.write(`${made(Date.now() - started)}\n`);
