#!/usr/bin/env node
// `pnpm emulators up [names…] | down [names…] | status [--json]`
//
// up     installs what is missing (pinned, into ~/.cache/keyport), starts each target on
//        loopback with a free port, waits until it answers a real request, initialises it,
//        and writes .emulators/env. Targets already running are reused.
// down   stops what `up` started (by pid and process group), nothing else.
// status lists each target: running or not, pid, endpoint variables, version, timings.
//
// `--lease <pid>` (used by the vitest global setup): `up` records that process as a user of
// each target and `down` releases it; a target started under a lease is stopped when its last
// live lease is released, so two test runs at once never stop each other's targets. A target
// started without a lease (by hand) stays up until `down` without a lease; `down` leaves a
// target a live test run is using to that run (`--force` stops it anyway).
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ensurePython } from './lib/install.mjs';
import { envFile, logFile, repoRoot, stateDir } from './lib/paths.mjs';
import {
  HarnessError,
  isAlive,
  killGroupNow,
  processStartTime,
  recorded,
  stopGroup,
  unrecorded,
} from './lib/process.mjs';
import { readState, withStateLock, writeState } from './lib/state.mjs';
import { targetByName, targetNames, testServerSources } from './lib/targets.mjs';
import { pythonRequirements } from './lib/versions.mjs';

const say = (line) => process.stderr.write(`[emulators] ${line}\n`);
const secs = (ms) => `${(ms / 1000).toFixed(1)}s`;

/** True when a record's target is still there: its process alive, or (SoftHSM) its files. */
export function recordAlive(record) {
  if (record.pid === null) return (record.files ?? []).every((f) => existsSync(f));
  return isAlive(record.pid, record.startTime);
}

function leaseAlive(lease) {
  const [pid, start] = lease.split(':');
  return isAlive(Number(pid), start || undefined);
}

function testServerExists(name) {
  const source = testServerSources[name];
  if (!source) return true;
  const path = join(repoRoot, source.file);
  return existsSync(path) && readFileSync(path, 'utf8').includes(source.start);
}

function parseArgs(argv) {
  const names = [];
  const flags = { json: false, lease: undefined, skipUnbuilt: false, force: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--json') flags.json = true;
    else if (arg === '--lease') flags.lease = argv[++i];
    else if (arg === '--skip-unbuilt') flags.skipUnbuilt = true;
    else if (arg === '--force') flags.force = true;
    else if (arg.startsWith('-')) throw new Error(`unknown option ${arg}`);
    else names.push(arg);
  }
  for (const name of names) {
    if (!targetByName[name]) throw new Error(`unknown target "${name}"; known: ${targetNames.join(', ')}`);
  }
  return { names, flags };
}

/** Targets this invocation started (recorded in the state file): stopped again on interrupt. */
const startedByThisCall = new Set();

async function up(requested, { lease, skipUnbuilt }) {
  let names = requested.length > 0 ? requested : targetNames;
  if (requested.length === 0 || skipUnbuilt) {
    // Without names (or for a test run), bring up every target that exists: keyport's own
    // servers are part of the repo and may not be written yet. Named explicitly, they fail.
    const unbuilt = names.filter((n) => !testServerExists(n));
    for (const n of unbuilt) say(`${n}: skipped, keyport's test server is not built yet`);
    names = names.filter((n) => !unbuilt.includes(n));
  }
  const unbuilt = names.filter((n) => !testServerExists(n));
  if (unbuilt.length > 0) {
    const source = testServerSources[unbuilt[0]];
    throw new HarnessError(
      unbuilt[0],
      'start',
      `keyport's test server is not built yet: ${source.file} does not export ${source.start}`,
      {
        reproduce: `ls ${source.file}`,
      },
    );
  }
  const leaseId = lease ? `${lease}:${processStartTime(Number(lease)) ?? ''}` : undefined;
  await withStateLock(async () => {
    const state = readState();
    await reapOrphans(state, names);
    const startedNow = [];
    try {
      const toStart = names.filter((n) => !(state.targets[n] && recordAlive(state.targets[n])));
      const pyTimes = await ensurePython(toStart.filter((n) => pythonRequirements[n] && testServerExists(n)));
      for (const name of names) {
        const existing = state.targets[name];
        if (existing && recordAlive(existing)) {
          if (leaseId && !existing.leases.includes(leaseId)) existing.leases.push(leaseId);
          say(`${name}: already running${existing.pid ? ` (pid ${existing.pid})` : ''}`);
          writeState(state);
          continue;
        }
        if (existing)
          say(`${name}: was started but is gone; starting it again (old log: ${rel(existing.log)})`);
        const target = targetByName[name];
        const installStart = Date.now();
        const installMs = (pyTimes[name] ?? 0) + (await target.install());
        if (Date.now() - installStart > 1000 || installMs > 0)
          say(`${name}: installed in ${secs(installMs)}`);
        const startAt = Date.now();
        const started = await target.start();
        const startMs = Date.now() - startAt;
        state.targets[name] = {
          pid: started.pid,
          startTime: started.startTime,
          env: started.env,
          files: started.files,
          owner: leaseId ? 'lease' : 'cli',
          leases: leaseId ? [leaseId] : [],
          log: logFile(name),
          version: started.version ?? target.version,
          installMs,
          startMs,
          startedAt: new Date().toISOString(),
        };
        writeState(state);
        if (started.pid) recorded(started.pid);
        startedNow.push(name);
        startedByThisCall.add(name);
        say(
          `${name}: up in ${secs(startMs)}${started.pid ? ` (pid ${started.pid}, log ${rel(logFile(name))})` : ''}`,
        );
      }
    } catch (err) {
      // All or nothing: what this call started is stopped again, so a failed run leaves no orphans.
      for (const name of startedNow) await stopRecord(name, state.targets[name]);
      for (const name of startedNow) delete state.targets[name];
      writeState(state);
      throw err;
    }
    writeState(state);
  });
  say(`env written to ${rel(envFile)}`);
}

async function stopRecord(name, record) {
  if (!record) return;
  if (record.pid) await stopGroup(record.pid, record.startTime);
  else if (name === 'softhsm') rmSync(join(stateDir, 'softhsm'), { recursive: true, force: true });
}

async function down(requested, { lease, force }) {
  await withStateLock(async () => {
    const state = readState();
    const names = requested.length > 0 ? requested : Object.keys(state.targets);
    for (const name of names) {
      const record = state.targets[name];
      if (!record) continue;
      if (lease) {
        record.leases = record.leases.filter((l) => !l.startsWith(`${lease}:`) && leaseAlive(l));
        if (record.owner !== 'lease' || record.leases.length > 0) {
          writeState(state);
          continue;
        }
      } else if (!force && record.leases.some(leaseAlive)) {
        // A test run is using it: hand it over, so that run's teardown stops it.
        record.owner = 'lease';
        writeState(state);
        say(`${name}: in use by a running test run; it stops when that run ends (--force stops it now)`);
        continue;
      }
      const alive = recordAlive(record);
      await stopRecord(name, record);
      delete state.targets[name];
      writeState(state);
      say(`${name}: ${alive ? 'stopped' : 'was not running'}`);
    }
    await reapOrphans(state, []);
  });
}

/**
 * Stops targets started for test runs that are all gone (killed before their teardown), so a
 * crashed run leaves nothing behind once anyone calls `up` or `down` again.
 */
async function reapOrphans(state, keep) {
  for (const [name, record] of Object.entries(state.targets)) {
    if (keep.includes(name) || record.owner !== 'lease' || record.leases.some(leaseAlive)) continue;
    await stopRecord(name, record);
    delete state.targets[name];
    writeState(state);
    say(`${name}: stopped (no test run uses it any more)`);
  }
}

function status({ json }) {
  const state = readState();
  const rows = targetNames.map((name) => {
    const record = state.targets[name];
    const exists = testServerExists(name);
    if (!record) return { name, state: exists ? 'stopped' : 'not built yet' };
    const alive = recordAlive(record);
    return {
      name,
      state: alive ? 'running' : 'dead',
      pid: record.pid,
      owner: record.owner,
      leases: record.leases.filter(leaseAlive).length,
      version: record.version,
      installMs: record.installMs,
      startMs: record.startMs,
      // Secrets (PINs, the root token) stay in the env file; status never prints them.
      env: Object.fromEntries(Object.entries(record.env).filter(([k]) => !/_PIN$|OPENBAO_TOKEN$/.test(k))),
      log: record.log,
    };
  });
  if (json) {
    process.stdout.write(`${JSON.stringify({ envFile, targets: rows }, null, 2)}\n`);
    return;
  }
  for (const row of rows) {
    const where = row.env ? (Object.values(row.env).find((v) => /^https?:|^127\./.test(v)) ?? '') : '';
    const extra =
      row.pid !== undefined
        ? ` pid=${row.pid ?? '-'} ${row.version} install=${secs(row.installMs)} start=${secs(row.startMs)} ${where}`
        : '';
    process.stdout.write(`${row.name.padEnd(15)} ${row.state.padEnd(14)}${extra}\n`);
  }
}

function rel(path) {
  return relative(process.cwd(), path) || path;
}

function onSignal(signal) {
  for (const proc of unrecorded.values()) killGroupNow(proc.pid, proc.startTime);
  if (startedByThisCall.size > 0) {
    const state = readState();
    for (const name of startedByThisCall) {
      const record = state.targets[name];
      if (record?.pid) killGroupNow(record.pid, record.startTime);
      delete state.targets[name];
    }
    writeState(state);
  }
  rmSync(join(stateDir, 'lock'), { recursive: true, force: true });
  say(`interrupted by ${signal}; stopped what this call had started`);
  process.exit(130);
}

async function main() {
  const [command, ...rest] = process.argv.slice(2);
  const { names, flags } = parseArgs(rest);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  if (command === 'up') await up(names, flags);
  else if (command === 'down') await down(names, flags);
  else if (command === 'status') status(flags);
  else {
    process.stderr.write('usage: pnpm emulators up [names…] | down [--force] [names…] | status [--json]\n');
    process.stderr.write(`targets: ${targetNames.join(', ')}\n`);
    process.exitCode = 2;
  }
}

main().catch((err) => {
  process.stderr.write(`[emulators] ${err instanceof HarnessError ? err.describe() : err.message}\n`);
  process.exitCode = 1;
});
