// What a test calls to reach a target. The vitest global setup has already brought the targets
// up and loaded `.emulators/env` into `process.env`; a missing variable means the target is not
// running, and the test fails with the command that starts it — it never skips.
import { alwaysVariables, type TargetName, targetVariables } from './targets.js';

export type TargetEnv<T extends TargetName> = Readonly<
  Record<(typeof targetVariables)[T][number] | (typeof alwaysVariables)[number], string>
>;

export class TargetNotRunningError extends Error {
  override readonly name = 'TargetNotRunningError';
  constructor(readonly target: TargetName) {
    super(`target ${target} is not running: run "pnpm emulators up ${target}"`);
  }
}

/** The target's variables, or throws `TargetNotRunningError` naming how to start it. */
export function requireTarget<T extends TargetName>(
  name: T,
  env: NodeJS.ProcessEnv = process.env,
): TargetEnv<T> {
  const result: Record<string, string> = {};
  for (const key of [...targetVariables[name], ...alwaysVariables]) {
    const value = env[key];
    if (value === undefined || value === '') throw new TargetNotRunningError(name);
    result[key] = value;
  }
  return result as TargetEnv<T>;
}

export { isolateSofthsmToken } from './softhsm.js';
export {
  projectTargets,
  type TargetName,
  targetNames,
  targetsForProjects,
  targetVariables,
} from './targets.js';
export { startUntrustedTlsServer, type UntrustedTlsServer } from './tls.js';
