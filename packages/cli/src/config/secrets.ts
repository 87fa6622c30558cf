/**
 * Secrets come from a file named in the config or from an environment variable, never from
 * the command line or the config itself. Errors say which source was tried, never its value.
 */
import { isAbsolute, resolve } from 'node:path';
import { KeyportError } from '@keyport/core';
import { readBounded, readFailure } from '../files/read-bounded.js';

/** A passphrase, token or PIN file is short; more than this is not one. */
const MAX_SECRET_BYTES = 64 * 1024;

export interface SecretSource {
  /** What the secret is, for messages: "the local keystore passphrase". */
  readonly what: string;
  readonly file?: string | undefined;
  /** Environment variables tried in order. */
  readonly envNames: readonly string[];
}

export async function readSecret(
  source: SecretSource,
  env: Readonly<Record<string, string | undefined>>,
  baseDir: string,
): Promise<string> {
  if (source.file !== undefined) {
    const path = isAbsolute(source.file) ? source.file : resolve(baseDir, source.file);
    let text: string;
    try {
      text = (await readBounded(path, MAX_SECRET_BYTES)).toString('utf8');
    } catch (e) {
      throw new KeyportError(
        'InvalidArgument',
        `${source.what}: the file ${path} cannot be read (${readFailure(e)})`,
      );
    }
    const value = text.replace(/\r?\n$/, '');
    if (value === '') throw new KeyportError('InvalidArgument', `${source.what}: the file ${path} is empty`);
    return value;
  }
  for (const name of source.envNames) {
    const value = env[name];
    if (value !== undefined && value !== '') return value;
  }
  throw new KeyportError(
    'InvalidArgument',
    `${source.what} is not set: export ${source.envNames.join(' or ')}, or name a file in the config`,
  );
}
