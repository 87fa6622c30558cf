/**
 * A throwaway SoftHSM2 token for the benchmark (its own config and token directory, removed
 * afterwards), so the run neither depends on nor disturbs the harness's shared token.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const SOFTHSM_MODULE = process.env.KEYPORT_SOFTHSM_MODULE ?? '/usr/lib/softhsm/libsofthsm2.so';

export function benchToken(): { label: string; pin: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'keyport-p11-bench-'));
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(
    conf,
    `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`,
  );
  execFileSync('mkdir', ['-p', join(dir, 'tokens')]);
  const label = 'keyport-bench';
  const pin = '24681357';
  // SoftHSM reads SOFTHSM2_CONF at C_Initialize: set before any provider loads the module.
  process.env.SOFTHSM2_CONF = conf;
  try {
    execFileSync(
      'softhsm2-util',
      ['--init-token', '--free', '--label', label, '--so-pin', '13572468', '--pin', pin],
      {
        env: { ...process.env, SOFTHSM2_CONF: conf },
        stdio: 'ignore',
      },
    );
  } catch (e) {
    throw new Error(`target softhsm is not available: softhsm2-util --init-token failed (${String(e)})`);
  }
  return { label, pin, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
