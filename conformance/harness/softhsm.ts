// SoftHSM2 keeps each token in files that it does not lock against other processes: two test
// processes creating objects in the same token at once see CKR_GENERAL_ERROR now and then. So
// every test process that writes to a token gets its own token directory, with a token of the
// same label and PINs as the harness's, made before the process initialises the module.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTarget } from './env.js';

let isolatedConf: string | undefined;

/**
 * Points this process's SOFTHSM2_CONF at a fresh token directory holding a token like the
 * harness's (same label, PINs). Idempotent; call it before the first C_Initialize.
 */
export function isolateSofthsmToken(env: NodeJS.ProcessEnv = process.env): string {
  if (isolatedConf !== undefined) return isolatedConf;
  const target = requireTarget('softhsm', env);
  const soPin = target.KEYPORT_SOFTHSM_SO_PIN;
  const dir = mkdtempSync(join(tmpdir(), 'keyport-softhsm-'));
  const tokens = join(dir, 'tokens');
  mkdirSync(tokens);
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  execFileSync(
    'softhsm2-util',
    [
      '--init-token',
      '--free',
      '--label',
      target.KEYPORT_SOFTHSM_TOKEN,
      '--so-pin',
      soPin,
      '--pin',
      target.KEYPORT_SOFTHSM_PIN,
    ],
    { env: { ...env, SOFTHSM2_CONF: conf }, stdio: 'ignore', timeout: 30_000 },
  );
  env.SOFTHSM2_CONF = conf;
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  isolatedConf = conf;
  return conf;
}
