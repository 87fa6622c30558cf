import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { run } from './run-child.js';

// What the providers' own Python samples need beyond the harness's venv (azure-keyvault-keys,
// azure-identity, google-cloud-kms, installed by `pnpm emulators up azure-keyvault gcp-kms`):
// - crcmod: six Cloud KMS samples check response CRC32Cs with it (python-docs-samples pins 1.7);
// - jwcrypto: get_public_key_jwk.py (pinned 1.5.8 there too);
// - aiohttp and its dependencies: the *_async.py Key Vault samples (azure-core's async transport);
// - google-crc32c: python/gcp_scenario.py (gcp-python.test.ts) checks CRC32Cs with it; the venv
//   has it only when the drongo target was installed too.
// Installed once, pinned and without dependency resolution (--no-deps: every package is listed,
// so nothing already in the venv is shadowed by another version), into their own folder of the
// harness's cache (outside the clone), which the sample processes put on PYTHONPATH. Pip runs
// under the harness's lock (flock /tmp/keyport-pip.lock), so parallel test files and the
// harness never install at once; the folder appears by rename only when complete.
export const SAMPLE_REQUIREMENTS = [
  'crcmod==1.7',
  'jwcrypto==1.5.8',
  'aiohttp==3.14.5',
  'aiohappyeyeballs==2.7.1',
  'aiosignal==1.4.0',
  'attrs==26.1.0',
  'frozenlist==1.8.0',
  'multidict==7.2.1',
  'propcache==0.5.4',
  'yarl==1.25.1',
  'google-crc32c==1.9.0',
] as const;

export const PYTHON =
  process.env.KEYPORT_PYTHON ?? join(homedir(), '.cache', 'keyport', 'venv', 'bin', 'python');
const CACHE = process.env.KEYPORT_CACHE ?? join(homedir(), '.cache', 'keyport');
const spec = SAMPLE_REQUIREMENTS.join(' ');
export const SAMPLE_SITE = join(
  CACHE,
  'python-samples',
  createHash('sha256').update(spec).digest('hex').slice(0, 16),
);

const IMPORTS = 'import crcmod.predefined, jwcrypto.jwk, aiohttp, google_crc32c';

/**
 * The venv's Python with the sample requirements importable, installing them when missing.
 * Throws, naming what is missing and how to reproduce, when the interpreter is absent or the
 * install or the import check fails: a missing prerequisite fails the test, never skips it.
 */
export async function samplePython(target: 'azure-keyvault' | 'gcp-kms', sdk: string): Promise<string> {
  if (!existsSync(PYTHON)) {
    throw new Error(
      `Python with ${sdk} is missing at ${PYTHON}: run "pnpm emulators up ${target}" (installs it into ~/.cache/keyport/venv)`,
    );
  }
  if (!existsSync(SAMPLE_SITE)) {
    // Checked again under the lock: another test file may have installed it meanwhile.
    const tmp = `${SAMPLE_SITE}.tmp-${process.pid}`;
    const script = [
      'set -e',
      `test -d "$1" && exit 0`,
      `rm -rf "$2"`,
      `"$3" -m pip install --quiet --disable-pip-version-check --no-deps --target "$2" ${SAMPLE_REQUIREMENTS.join(' ')}`,
      `mv "$2" "$1"`,
    ].join('\n');
    const reproduce = `flock /tmp/keyport-pip.lock ${PYTHON} -m pip install --no-deps --target ${SAMPLE_SITE} ${spec}`;
    const r = await run(
      'flock',
      ['/tmp/keyport-pip.lock', 'sh', '-c', script, 'install', SAMPLE_SITE, tmp, PYTHON],
      process.env,
    ).catch((e: Error) => ({ code: -1, stdout: '', stderr: e.message }));
    if (r.code !== 0) {
      throw new Error(
        `installing the samples' Python requirements failed (${r.stderr.trim()}); reproduce: ${reproduce}`,
      );
    }
  }
  const check = await run(PYTHON, ['-c', IMPORTS], { ...sampleEnv(), PATH: process.env.PATH ?? '' });
  if (check.code !== 0) {
    throw new Error(
      `the samples' Python requirements do not import from ${SAMPLE_SITE} (${check.stderr.trim()}); delete that folder to reinstall`,
    );
  }
  return PYTHON;
}

/** Environment every sample process gets: the requirements on the path, no bytecode in the clone. */
export function sampleEnv(): NodeJS.ProcessEnv {
  return { PYTHONPATH: SAMPLE_SITE, PYTHONDONTWRITEBYTECODE: '1', HOME: homedir() };
}
