/**
 * `aws-kms://` URIs as this driver reads and writes them (the grammar itself is core's): a key
 * ref names a key ARN, alias ARN, `alias/<name>` or key id, never a version (AWS keys have none
 * to address); a key's canonical URI is its key ARN plus the `?endpoint=` it was reached through.
 */
import { type AwsKmsKeyUri, formatKeyUri, type KeyRef, needs, parseKeyUri } from '@keyport/core';
import { PROVIDER_NAME } from './errors.js';

/** What a Keyport accepts as a key URI; the driver called directly holds the same line. */
const MAX_URI = 4096;
/** AWS's limit on a KeyId (key id, key ARN, alias name or alias ARN). */
const MAX_KEY_ID = 2048;

export function parseAwsUri(ref: KeyRef | string): AwsKmsKeyUri {
  const uri = typeof ref === 'string' ? ref : ref.uri;
  needs(typeof uri === 'string' && uri.length <= MAX_URI, `key URIs are at most ${MAX_URI} characters`, {
    provider: PROVIDER_NAME,
  });
  const parsed = parseKeyUri(uri);
  const details = { provider: PROVIDER_NAME, keyUri: uri };
  needs(parsed.scheme === 'aws-kms', `the aws-kms provider cannot serve "${parsed.scheme}" keys`, details);
  needs(
    typeof ref === 'string' || ref.version === undefined,
    'AWS KMS keys have no addressable versions',
    details,
  );
  needs(
    parsed.keyId.length <= MAX_KEY_ID,
    `AWS key ids and aliases are at most ${MAX_KEY_ID} characters`,
    details,
  );
  return parsed;
}

export function keyUriFor(arn: string, via: AwsKmsKeyUri | undefined): string {
  return formatKeyUri({
    scheme: 'aws-kms',
    keyId: arn,
    ...(via?.endpoint !== undefined ? { endpoint: via.endpoint } : {}),
  });
}

export function isAlias(keyId: string): boolean {
  return keyId.startsWith('alias/') || /^arn:[^:]+:kms:[^:]+:[0-9]{12}:alias\//.test(keyId);
}

const KEY_ARN = /^arn:([^:]+):kms:([^:]+):([0-9]{12}):key\/(.+)$/;
const ALIAS_ARN = /^arn:([^:]+):kms:([^:]+):([0-9]{12}):alias\/.+$/;

/** A key ARN's parts; undefined for anything else (a key id, an alias, a malformed ARN). */
export function keyArnParts(
  value: string,
): { partition: string; region: string; account: string; keyId: string } | undefined {
  const m = KEY_ARN.exec(value);
  return m === null
    ? undefined
    : { partition: m[1] as string, region: m[2] as string, account: m[3] as string, keyId: m[4] as string };
}

/** A key ARN cut to its key id (management calls cannot cross accounts, and moto takes only the id). */
export function bareKeyId(keyIdOrArn: string): string {
  return KEY_ARN.exec(keyIdOrArn)?.[4] ?? keyIdOrArn;
}

/**
 * Whether the key id or key ARN an answer names can be the key a request named by `asked` (a key
 * ARN, key id, alias ARN or alias name) in `region` (the URI's, when it names one): the same key
 * ARN, or its key id (moto lists grants by key id); for a key id, an ARN ending in it; for an
 * alias ARN, a key ARN of its partition, region and account; for an alias name, any key ARN
 * (only AWS knows where it points). A multi-Region replica answers with its own ARN, the one asked.
 */
export function answerNamesKey(asked: string, answer: string, region: string | undefined): boolean {
  const key = KEY_ARN.exec(answer);
  if (key !== null && region !== undefined && key[2] !== region) return false;
  const askedKey = KEY_ARN.exec(asked);
  if (askedKey !== null) return answer === asked || answer === askedKey[4];
  const askedAlias = ALIAS_ARN.exec(asked);
  if (askedAlias !== null)
    return key !== null && key[1] === askedAlias[1] && key[2] === askedAlias[2] && key[3] === askedAlias[3];
  if (isAlias(asked)) return key !== null;
  return answer === asked || key?.[4] === asked;
}
