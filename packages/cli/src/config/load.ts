/**
 * Finding, parsing and validating the config file. Every problem names the file and the path
 * of the bad field (`providers.hcvault.address: must be an http(s):// URL ...`).
 */
import { stat } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { KeyportError } from '@keyport/core';
import type { z } from 'zod';
import { readBounded, readFailure } from '../files/read-bounded.js';
import {
  configSchema,
  FORBIDDEN_SECRET_FIELDS,
  type KeyportConfig,
  NOT_A_PROVIDER,
  parseInstanceKey,
} from './schema.js';
import { DECIMAL_NUMBER, parseYaml, SpelledNumberError } from './yaml.js';

/** A config file is a few KiB; more than this is not one (or is /dev/zero). */
const MAX_CONFIG_BYTES = 1024 * 1024;

export const CONFIG_NAMES = ['keyport.config.json', 'keyport.config.yaml', 'keyport.config.yml'] as const;

export interface LoadedConfig {
  readonly path: string;
  readonly dir: string;
  readonly config: KeyportConfig;
}

function configError(path: string, detail: string): KeyportError {
  return new KeyportError('InvalidArgument', `config ${path}: ${detail}`);
}

function spelledNumberError(path: string, e: SpelledNumberError): KeyportError {
  return configError(
    path,
    `${formatPath(e.path)}: write a whole number in decimal digits, such as 8 (not ${e.source})`,
  );
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out === '' ? '(top level)' : out;
}

export function formatIssues(
  issues: readonly z.core.$ZodIssue[],
  better: (issue: z.core.$ZodIssue) => string | undefined = () => undefined,
): string {
  return issues
    .map((i) => {
      const own = better(i);
      if (own !== undefined) return own;
      const keys = i.code === 'unrecognized_keys' ? ` (${i.keys.join(', ')})` : '';
      return `${formatPath(i.path)}: ${i.message}${keys}`;
    })
    .join('; ');
}

/**
 * How deep a config may nest. A real one nests four levels; a deeper one (or a YAML alias inside
 * its own anchor, `a: &a [*a]`, which makes a cycle) would overflow the stack of the walk below
 * and surface as an "Internal" failure instead of the config error it is.
 */
const MAX_CONFIG_DEPTH = 32;

/**
 * Literal secrets anywhere in the file are refused, naming where they belong instead; so are a
 * structure nested deeper than MAX_CONFIG_DEPTH and one that contains itself.
 */
function findLiteralSecret(
  value: unknown,
  path: PropertyKey[],
  ancestors: ReadonlySet<object> = new Set(),
): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  if (ancestors.has(value))
    return `${formatPath(path)}: contains itself (a YAML alias inside its own anchor)`;
  if (path.length >= MAX_CONFIG_DEPTH)
    return `${formatPath(path)}: nested deeper than ${MAX_CONFIG_DEPTH} levels`;
  const inside = new Set(ancestors).add(value);
  for (const [key, v] of Object.entries(value)) {
    // Array elements are named by index in paths (`defaults.recipients[0]`).
    const k: PropertyKey = Array.isArray(value) ? Number(key) : key;
    const where = Object.hasOwn(FORBIDDEN_SECRET_FIELDS, key) ? FORBIDDEN_SECRET_FIELDS[key] : undefined;
    // pkcs11.token is the token's label, not a secret.
    const parent = String(path.at(-1) ?? '');
    const isTokenLabel = key === 'token' && (parent === 'pkcs11' || parent.startsWith('pkcs11+'));
    if (where !== undefined && !isTokenLabel) {
      return `${formatPath([...path, k])}: secrets never go in the config file; use ${where}`;
    }
    const inner = findLiteralSecret(v, [...path, k], inside);
    if (inner !== undefined) return inner;
  }
  return undefined;
}

/**
 * A `providers` key that names no provider instance. Checked on the raw object too, because the
 * schema never sees an own `__proto__` key that JSON.parse and YAML can produce.
 */
function unknownProviderKey(raw: unknown): string | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const providers = (raw as Record<string, unknown>).providers;
  if (typeof providers !== 'object' || providers === null || Array.isArray(providers)) return undefined;
  const bad = Object.keys(providers).find((k) => parseInstanceKey(k) === undefined);
  return bad === undefined ? undefined : `providers.${bad}: ${NOT_A_PROVIDER}`;
}

/**
 * The first key given twice in one object of a JSON text already known to be valid, as a field
 * path. JSON.parse keeps the last silently (a second `"local"` entry would replace the first
 * unseen), while the YAML parser refuses duplicates: both now refuse them.
 */
export function duplicateJsonKey(text: string): string | undefined {
  // One frame per open object or array: its keys so far (objects), its element count (arrays),
  // and its own key or index in its parent, for the path of a duplicate.
  const frames: Array<{ keys: Set<string> | undefined; index: number; name: PropertyKey }> = [];
  let expectKey = false;
  let lastKey = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      const top = frames.at(-1);
      if (expectKey && top?.keys !== undefined) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (top.keys.has(key)) return formatPath([...frames.slice(1).map((f) => f.name), key]);
        top.keys.add(key);
        lastKey = key;
        expectKey = false;
      }
      i = j;
    } else if (c === '{' || c === '[') {
      const parent = frames.at(-1);
      const name = parent === undefined ? '' : parent.keys !== undefined ? lastKey : parent.index;
      frames.push({ keys: c === '{' ? new Set() : undefined, index: 0, name });
      expectKey = c === '{';
    } else if (c === '}' || c === ']') {
      frames.pop();
    } else if (c === ',') {
      const top = frames.at(-1);
      if (top !== undefined) {
        top.index++;
        expectKey = top.keys !== undefined;
      }
    }
  }
  return undefined;
}

/** A marker the JSON reviver leaves where a number is not written in decimal digits. */
class SpelledNumber {
  constructor(readonly source: string) {}
}

/**
 * The first number of a JSON config written with a fraction or an exponent (`5.0`, `1e3`):
 * every number the config holds is a whole count, and the command line refuses those spellings
 * too. The reviver sees each number's source text (Node 21+). Run on a text already parsed and
 * known to nest at most MAX_CONFIG_DEPTH levels (the reviver and the walk recurse).
 */
function spelledJsonNumber(text: string): SpelledNumberError | undefined {
  const raw: unknown = JSON.parse(text, ((_key: string, value: unknown, context?: { source?: string }) =>
    typeof value === 'number' && context?.source !== undefined && !DECIMAL_NUMBER.test(context.source)
      ? new SpelledNumber(context.source)
      : value) as (key: string, value: unknown) => unknown);
  const find = (v: unknown, path: PropertyKey[]): SpelledNumberError | undefined => {
    if (v instanceof SpelledNumber) return new SpelledNumberError(path, v.source);
    if (typeof v !== 'object' || v === null) return undefined;
    for (const [k, inner] of Object.entries(v)) {
      const found = find(inner, [...path, Array.isArray(v) ? Number(k) : k]);
      if (found !== undefined) return found;
    }
    return undefined;
  };
  return find(raw, []);
}

/** Where the value at a path is written, when the loader knows it (YAML): ` (line 3)`. */
type LineOf = (path: readonly PropertyKey[]) => number | undefined;

/**
 * A string field that YAML or JSON read as a number or a boolean (`projectId: 0123`, `token:
 * true`): say to quote it. Not coerced: the number has already lost what the text said (leading
 * zeros, `1e3`, `0x10`). The value is not shown: a text field may hold an account id or the like.
 */
function quoteHint(
  issue: z.core.$ZodIssue,
  raw: unknown,
  isJson: boolean,
  lineOf: LineOf,
): string | undefined {
  if (issue.code !== 'invalid_type' || issue.expected !== 'string') return undefined;
  let value = raw;
  for (const key of issue.path) {
    if (typeof value !== 'object' || value === null || !Object.hasOwn(value, key)) return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  if (typeof value !== 'number' && typeof value !== 'boolean') return undefined;
  const line = lineOf(issue.path);
  const where = line === undefined ? '' : ` (line ${line})`;
  const last = issue.path.at(-1);
  const example = typeof last === 'string' ? `${last}: "…"` : '"…"';
  const as = typeof value === 'number' ? 'a number (which drops leading zeros)' : 'true/false';
  const quoted = isJson ? '' : `, as in ${example}`;
  return `${formatPath(issue.path)}${where}: must be a string, but ${isJson ? 'JSON' : 'YAML'} read the value as ${as}: write it in double quotes${quoted}`;
}

/** The issue wants a string at `path`, or refuses the key at `path` as unknown. */
function issueAt(issue: z.core.$ZodIssue, path: readonly PropertyKey[]): boolean {
  const same = (a: readonly PropertyKey[], b: readonly PropertyKey[]) =>
    a.length === b.length && a.every((k, i) => String(k) === String(b[i]));
  if (issue.code === 'invalid_type' && issue.expected === 'string' && same(issue.path, path)) return true;
  return (
    issue.code === 'unrecognized_keys' &&
    same(issue.path, path.slice(0, -1)) &&
    issue.keys.includes(String(path.at(-1)))
  );
}

/** `line L, column C` (both from 1) of the character at `offset` in `text`. */
function lineColumn(text: string, offset: number): string {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return `line ${line}, column ${offset - before.lastIndexOf('\n')}`;
}

/**
 * Where JSON.parse stopped: the length of the longest prefix of `text` that is still the start
 * of a JSON text (a prefix ending before the fault parses, or fails only where it ends).
 */
function jsonFaultOffset(text: string): number {
  const fine = (end: number): boolean => {
    try {
      JSON.parse(text.slice(0, end));
      return true;
    } catch (e) {
      const message = (e as Error).message;
      const at = / at position (\d+)/.exec(message);
      return message === 'Unexpected end of JSON input' || (at !== null && Number(at[1]) >= end);
    }
  };
  let [lo, hi] = [0, text.length];
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (fine(mid)) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/**
 * JSON.parse's complaint without the text it quotes: V8 shows up to 20 characters around an
 * unexpected token, or the whole text when it is short (`Unexpected token 'h', ..."sphrase":
 * hunter2"...`), and that may be a secret written without quotes. The place is given as a line
 * and column instead of V8's offset.
 */
function jsonSyntaxError(e: unknown, text: string): string {
  const message = e instanceof Error ? e.message : '';
  if (message === 'Unexpected end of JSON input') return message;
  const positioned = /^(.*?)(?: in JSON)? at position (\d+)/.exec(message);
  // Older V8 names the token unquoted: `Unexpected token h in JSON at position 15`.
  const reason = positioned?.[1];
  const what =
    reason !== undefined && !/['"]|^Unexpected token/.test(reason) ? reason : 'an unexpected character';
  const at = positioned !== null ? Number(positioned[2]) : jsonFaultOffset(text);
  return `${what} at ${lineColumn(text, at)}`;
}

export function parseConfigText(given: string, path: string): KeyportConfig {
  // A byte-order mark (Windows editors write one) is not content; JSON.parse refused it with a
  // message about an invisible character.
  const text = given.startsWith('\uFEFF') ? given.slice(1) : given;
  let raw: unknown;
  let yamlSpelled: SpelledNumberError | undefined;
  let lineOf: LineOf = () => undefined;
  const isJson = path.endsWith('.json');
  try {
    if (isJson) raw = JSON.parse(text);
    else ({ value: raw, spelled: yamlSpelled, lineOf } = parseYaml(text));
  } catch (e) {
    const what = isJson
      ? jsonSyntaxError(e, text)
      : e instanceof Error
        ? e.message.split('\n')[0]
        : 'unreadable';
    throw configError(path, `not valid ${isJson ? 'JSON' : 'YAML'}: ${what}`);
  }
  // The bounded walk first: it refuses a structure too deep for the checks after it, and a
  // literal secret before any message could quote it (a spelled number echoes its text).
  const secret = findLiteralSecret(raw, []);
  if (secret !== undefined) throw configError(path, secret);
  const duplicate = isJson ? duplicateJsonKey(text) : undefined;
  if (duplicate !== undefined) throw configError(path, `${duplicate}: given twice (keep one)`);
  const spelled = isJson ? spelledJsonNumber(text) : yamlSpelled;
  const unknown = unknownProviderKey(raw);
  if (unknown !== undefined) throw configError(path, unknown);
  const parsed = configSchema.safeParse(raw);
  // A spelled number is reported first, unless it is where a string belongs or under a key that
  // does not exist: "write decimal digits" would be the wrong advice there.
  if (spelled !== undefined && !(parsed.error?.issues.some((i) => issueAt(i, spelled.path)) ?? false)) {
    throw spelledNumberError(path, spelled);
  }
  if (!parsed.success) {
    throw configError(
      path,
      formatIssues(parsed.error.issues, (i) => quoteHint(i, raw, isJson, lineOf)),
    );
  }
  return parsed.data;
}

async function readIfExists(path: string): Promise<string | undefined> {
  let text: string;
  try {
    text = (await readBounded(path, MAX_CONFIG_BYTES)).toString('utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw configError(path, `cannot be read (${readFailure(e)})`);
  }
  await refuseWritableByOthers(path);
  return text;
}

/**
 * A config every user may write is refused, as ssh refuses such a config: whoever can write it
 * chooses the servers keyport sends credentials to (a Vault `address` receives the token) and
 * the recipients data is sealed for. Checked on the file a symlink leads to; a pipe
 * (`--config <(…)`) is not a file anyone else can write.
 */
async function refuseWritableByOthers(path: string): Promise<void> {
  const st = await stat(path).catch(() => undefined);
  if (st?.isFile() === true && (st.mode & 0o002) !== 0) {
    throw configError(
      path,
      `every user can write it (mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')}), so anyone could change which servers and keys keyport uses; run chmod o-w on it`,
    );
  }
}

/**
 * `--config`, else KEYPORT_CONFIG, else the first of CONFIG_NAMES in the working directory.
 * Returns undefined when no file is named and none is found.
 */
export async function loadConfig(
  explicit: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
  cwd: string,
): Promise<LoadedConfig | undefined> {
  const named = explicit ?? env.KEYPORT_CONFIG;
  // '' (an unset shell variable) would name the working directory: a mistake, said as one.
  if (named === '') {
    throw new KeyportError(
      'InvalidArgument',
      `${explicit !== undefined ? '--config' : 'KEYPORT_CONFIG'} is an empty file name: name the config file, or leave it out to use ${CONFIG_NAMES.join(', ')} here`,
    );
  }
  const candidates = named !== undefined ? [named] : CONFIG_NAMES.map((n) => n as string);
  for (const candidate of candidates) {
    const path = isAbsolute(candidate) ? candidate : resolve(cwd, candidate);
    const text = await readIfExists(path);
    if (text === undefined) {
      if (named !== undefined) throw configError(path, 'the file does not exist');
      continue;
    }
    return { path, dir: dirname(path), config: parseConfigText(text, path) };
  }
  return undefined;
}
