/**
 * Reading a policy file: YAML or JSON text, checked strictly against the published JSON Schema
 * (the same file editors use for completion), then turned into prototype-free plain data. Every
 * error is a `PolicyError` naming the path of the offending field (`rules[2].maxDays`).
 */
import { constants, readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { describeType, KeyportError, quote } from '@keyport/core';
import { Ajv, type ErrorObject } from 'ajv';
import { type Document, isScalar, isSeq, Lexer, LineCounter, parseDocument, visit } from 'yaml';
import type { Policy, Rule } from './policy-types.js';

/** A policy file larger than this is refused before parsing (a policy is a page of rules). */
export const MAX_POLICY_BYTES = 1024 * 1024;

/**
 * A policy text of more YAML tokens than this (as the parser's own lexer splits it: each value,
 * indicator, space run, line break and comment) is refused before parsing. The parser costs up to
 * about 1 KB and several microseconds of CPU per token: 1 MiB of `[a,a,a,...]` (1.5 million
 * tokens) took 3 s of CPU and 700 MB, and a policy file can come from a pull request. The example
 * policy's 9 rules are 383 tokens; 50,000 leaves room for 500 rules (the format's maximum) of 100
 * tokens each.
 */
export const MAX_POLICY_TOKENS = 50_000;

/**
 * Whether `text` holds more than MAX_POLICY_TOKENS tokens, counted with the lexer the parser then
 * runs (so every token it would build on is counted, whatever the shape: flow items, block items,
 * comments, blank lines, quoted scalars). It stops at the limit: refusing costs the limit, not the
 * text, and holds only one token at a time.
 */
function tooManyTokens(text: string): boolean {
  let tokens = 0;
  for (const _ of new Lexer().lex(text)) {
    tokens++;
    if (tokens > MAX_POLICY_TOKENS) return true;
  }
  return false;
}

export class PolicyError extends KeyportError {
  override readonly name: string = 'PolicyError';
  /** Where in the document: `rules[2].maxDays`, or '' for the document itself. */
  readonly path: string;
  constructor(path: string, message: string) {
    super('InvalidArgument', path === '' ? `policy: ${message}` : `policy ${path}: ${message}`);
    this.path = path;
  }
}

/**
 * The policy JSON Schema, as shipped in the package (`@keyport/policy/policy.schema.json`), found
 * through the package's own exports map: a path relative to this module broke wherever the module
 * is bundled (the keyport bin's chunk looked for it beside the bundle, and `policy check` failed).
 */
export const policySchema: Readonly<Record<string, unknown>> = JSON.parse(
  readFileSync(createRequire(import.meta.url).resolve('@keyport/policy/policy.schema.json'), 'utf8'),
) as Record<string, unknown>;

let validator: ReturnType<Ajv['compile']> | undefined;
function validate(doc: unknown): readonly ErrorObject[] {
  validator ??= new Ajv({
    allErrors: false,
    discriminator: true,
    strict: true,
    strictRequired: false,
  }).compile(policySchema);
  return validator(doc) ? [] : (validator.errors ?? []);
}

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** `/rules/2/match/labels/a~1b` → `rules[2].match.labels["a/b"]`. */
export function jsonPointerToPath(pointer: string, extra?: string): string {
  const parts =
    pointer === ''
      ? []
      : pointer
          .slice(1)
          .split('/')
          .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (extra !== undefined) parts.push(extra);
  return pathOf(parts);
}

/** `['rules', '2', 'match']` → `rules[2].match`. */
function pathOf(parts: readonly string[]): string {
  let out = '';
  for (const p of parts) {
    if (/^(0|[1-9]\d*)$/.test(p)) out += `[${p}]`;
    else if (IDENT.test(p)) out += out === '' ? p : `.${p}`;
    else out += `[${quote(p)}]`;
  }
  return out;
}

function describe(e: ErrorObject): PolicyError {
  const params = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties':
      return new PolicyError(
        jsonPointerToPath(e.instancePath, String(params.additionalProperty)),
        'is not a field this policy format knows',
      );
    case 'required':
      return new PolicyError(
        jsonPointerToPath(e.instancePath, String(params.missingProperty)),
        'is required',
      );
    case 'discriminator':
      return new PolicyError(
        jsonPointerToPath(e.instancePath, 'type'),
        params.error === 'mapping' ? 'is not a known rule type' : 'is required and must be a rule type',
      );
    case 'enum':
      return new PolicyError(
        jsonPointerToPath(e.instancePath),
        `must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`,
      );
    case 'const':
      return new PolicyError(
        jsonPointerToPath(e.instancePath),
        `must be ${JSON.stringify(params.allowedValue)}`,
      );
    default:
      return new PolicyError(jsonPointerToPath(e.instancePath), e.message ?? 'is not valid');
  }
}

/** Deeper than any field of the format (`rules[0].match.labels.x` is 5): refused while copying. */
const MAX_DEPTH = 32;

/**
 * More values than a policy of the format can hold (500 rules with every list at its maximum is
 * about 100,000) and than 1 MiB of text without aliases can spell (about 525,000). YAML aliases
 * share one parsed object, which the copy below would copy once per alias: 100 aliases of a
 * 900 KB list copied 45 million values (800 MB) before the schema refused the list.
 */
const MAX_VALUES = 1_000_000;

/**
 * Plain data: an array, or an object whose prototype is Object.prototype (of any realm) or null.
 * A Map (YAML `!!omap`, `!!set`), a Date or a class instance is not: copied by its own enumerable
 * fields, `match: !!omap [{ providers: [dev] }]` became `match: {}`, a rule on every key.
 */
function isPlainObject(v: object): boolean {
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === null || proto === Object.prototype || Object.getPrototypeOf(proto) === null;
}

/**
 * Deep copy into prototype-free objects, so no key of the file can reach a prototype. It runs
 * before the schema check, so it bounds depth and size itself: a cyclic or absurdly deep object
 * from a caller is a PolicyError, not a stack overflow, and aliases cannot multiply the copy.
 */
function plain(data: unknown): unknown {
  let values = 0;
  const at: string[] = [];
  const copy = (v: unknown, depth: number): unknown => {
    values++;
    if (values > MAX_VALUES)
      throw new PolicyError('', `it holds more than ${MAX_VALUES} values (YAML aliases count each time)`);
    if (typeof v !== 'object' || v === null) return v;
    if (depth > MAX_DEPTH)
      throw new PolicyError('', `it is nested deeper than ${MAX_DEPTH} levels (or cyclic)`);
    const inside = (key: string, x: unknown): unknown => {
      at.push(key);
      const c = copy(x, depth + 1);
      at.pop();
      return c;
    };
    if (Array.isArray(v)) return v.map((x, i) => inside(String(i), x));
    if (!isPlainObject(v)) {
      throw new PolicyError(pathOf(at), `must be a plain map or list, not ${describeType(v)}`);
    }
    const out = Object.create(null) as Record<string, unknown>;
    for (const [k, x] of Object.entries(v)) out[k] = inside(k, x);
    return out;
  };
  return copy(data, 0);
}

/** Parses JSON or YAML text (JSON is YAML; duplicate keys are refused in both). */
export function parsePolicyText(text: string): Policy {
  if (typeof text !== 'string') throw new PolicyError('', 'the policy text must be a string');
  if (Buffer.byteLength(text, 'utf8') > MAX_POLICY_BYTES) {
    throw new PolicyError('', `the policy is larger than ${MAX_POLICY_BYTES} bytes`);
  }
  if (tooManyTokens(text)) {
    throw new PolicyError(
      '',
      `it has more than ${MAX_POLICY_TOKENS} YAML tokens (values, punctuation, spaces, line breaks and comments count): a policy is a page of rules`,
    );
  }
  const lineCounter = new LineCounter();
  // Duplicate keys are found below, not by the parser: its `uniqueKeys` compares each key with
  // every earlier one (a 600 KB map of 30,000 labels took 4.5 s before the schema refused it).
  const doc = parseDocument(text, { uniqueKeys: false, prettyErrors: false, strict: true, lineCounter });
  const first = doc.errors[0] ?? keyProblem(doc, lineCounter);
  if (first !== undefined) {
    const pos = first.linePos?.[0];
    const at = pos !== undefined ? ` (line ${pos.line}, column ${pos.col})` : '';
    throw new PolicyError(
      '',
      first.code === NON_SCALAR_KEY
        ? `a map key${at} is an alias, a list or a map: keys are plain text`
        : first.code === MERGE_KEY
          ? `a map key${at} is a YAML merge key (<<): write the fields out, a merge can repeat a field unseen`
          : `not valid YAML or JSON${at}: ${first.code}`,
    );
  }
  let data: unknown;
  try {
    // maxAliasCount bounds alias expansion (a "billion laughs" document).
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    throw new PolicyError('', `cannot be read: ${(e as Error).message}`);
  }
  const policy = validatePolicy(data);
  const rules = doc.get('rules');
  if (isSeq(rules)) {
    const lines = rules.items.map((item) => {
      const offset = (item as { range?: [number, number, number] }).range?.[0];
      return offset === undefined ? 1 : lineCounter.linePos(offset).line;
    });
    RULE_LINES.set(policy, lines);
  }
  return policy;
}

const NON_SCALAR_KEY = 'NON_SCALAR_KEY';
const MERGE_KEY = 'MERGE_KEY';
/** The tag of a YAML merge key (`!!merge <<`), and what a `%YAML 1.1` document makes of a plain `<<`. */
const MERGE_TAG = 'tag:yaml.org,2002:merge';

/**
 * The first duplicate key of the document, or key that is no plain scalar or is a merge key, in the order of the
 * text (as the parser's own `uniqueKeys` error, `DUPLICATE_KEY`, would report a duplicate),
 * found with one Set per map: linear in the maps' sizes. Every map is visited: a nested map's
 * problem can come before an outer one's. An alias or collection key is refused, not compared:
 * `toJS` turns it into the text it names (`{ *k : prod, env: dev }` with `&k env` is two `env`
 * keys, the later one silently winning), and resolving each alias would walk the document again.
 */
function keyProblem(
  doc: Document,
  lines: LineCounter,
): { code: string; linePos?: [{ line: number; col: number }] } | undefined {
  let first: { code: string; offset: number | undefined } | undefined;
  const found = (code: string, offset: number | undefined): void => {
    if (
      first === undefined ||
      (offset !== undefined && (first.offset === undefined || offset < first.offset))
    )
      first = { code, offset };
  };
  visit(doc, {
    Map(_, map) {
      const seen = new Set<string>();
      for (const pair of map.items) {
        const key = pair.key;
        if (key !== null && !isScalar(key)) {
          found(NON_SCALAR_KEY, (key as { range?: [number, number, number] }).range?.[0]);
          return undefined;
        }
        // A merge key (`!!merge <<: {...}`, or a plain `<<` under `%YAML 1.1`) copies another
        // map's fields into this one, where a field written out silently wins over a merged one
        // of the same name: `{ <<: { providers: [prod] }, providers: [dev] }` is two `providers`.
        // The parser resolves it as a symbol (or keeps its tag), so it is refused by that.
        if (key !== null && (typeof key.value === 'symbol' || key.tag === MERGE_TAG)) {
          found(MERGE_KEY, key.range?.[0]);
          return undefined;
        }
        // Compared as the object key the value becomes (null is '', the rest String()), as
        // `toJS` makes it: `1` and "1", `true` and "true", `~` and "" name one field, the later
        // one silently replacing the earlier.
        const name = key === null || key.value === null ? '' : String(key.value);
        if (seen.has(name)) {
          found('DUPLICATE_KEY', key?.range?.[0]);
          // The later keys of this map come later in the text.
          return undefined;
        }
        seen.add(name);
      }
      return undefined;
    },
  });
  if (first === undefined) return undefined;
  const offset = first.offset;
  return {
    code: first.code,
    ...(offset === undefined ? {} : { linePos: [lines.linePos(offset)] as [{ line: number; col: number }] }),
  };
}

/** Where each rule starts in the text it was parsed from (1-based lines), for SARIF locations. */
const RULE_LINES = new WeakMap<Policy, readonly number[]>();

/** The 1-based line the rule at `index` starts on, when the policy was parsed from text. */
export function ruleLine(policy: Policy, index: number): number | undefined {
  return RULE_LINES.get(policy)?.[index];
}

/** Validates an already-parsed policy object. */
export function validatePolicy(data: unknown): Policy {
  try {
    return checkedPolicy(data);
  } catch (e) {
    if (e instanceof PolicyError) throw e;
    // Data from a caller may carry a getter or a proxy that throws: that is a bad policy, said
    // as one, not the caller's own exception escaping from the check.
    throw new PolicyError('', 'it could not be read (a getter or proxy threw): pass plain data');
  }
}

function checkedPolicy(data: unknown): Policy {
  // Copied first, then the copy checked and used: checking the caller's object and copying it
  // after read every field twice, and a getter or proxy could answer the check 365 and the copy
  // NaN. The copy holds own enumerable fields only, as the check then sees.
  const copy = plain(data);
  const errors = validate(copy);
  const first = errors[0];
  if (first !== undefined) throw describe(first);
  const policy = copy as Policy & { rules: (Rule & { id?: string })[] };
  const seen = new Set<string>();
  const rules = policy.rules.map((r, i) => {
    const id = r.id ?? r.type;
    if (seen.has(id)) {
      throw new PolicyError(
        `rules[${i}]${r.id !== undefined ? '.id' : ''}`,
        `rule id ${quote(id)} is used twice (give each rule its own id)`,
      );
    }
    seen.add(id);
    return Object.assign(Object.create(null) as object, r, { id }) as Rule;
  });
  return Object.assign(Object.create(null) as object, policy, { rules }) as Policy;
}

/** Reads a policy file: a regular file (not a FIFO, device or directory), at most 1 MiB. */
export async function readPolicyFile(path: string): Promise<Policy> {
  // O_NONBLOCK: opening a FIFO must not hang waiting for a writer (it is then refused below).
  const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK).catch(
    (e: NodeJS.ErrnoException) => {
      throw new PolicyError('', `cannot read ${quote(path)}: ${e.code ?? e.message}`);
    },
  );
  try {
    const s = await handle.stat();
    if (!s.isFile()) throw new PolicyError('', `${quote(path)} is not a regular file`);
    if (s.size > MAX_POLICY_BYTES)
      throw new PolicyError('', `the policy is larger than ${MAX_POLICY_BYTES} bytes`);
    // Read to the end, not to the size the stat gave, then compared with it and with a stat
    // taken after: a file written while it is read (an editor saving in place, a CI step still
    // writing it) was read to its old size plus one byte, and a prefix that parses is a policy
    // with its later rules silently gone. A file that changed is refused, never half-read.
    let buf = Buffer.alloc(Math.min(s.size, MAX_POLICY_BYTES) + 1);
    let length = 0;
    for (;;) {
      if (length === buf.length) {
        if (length > MAX_POLICY_BYTES) break;
        const bigger = Buffer.alloc(Math.min(length * 2, MAX_POLICY_BYTES + 1));
        buf.copy(bigger);
        buf = bigger;
      }
      const { bytesRead } = await handle.read(buf, length, buf.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > MAX_POLICY_BYTES)
      throw new PolicyError('', `the policy is larger than ${MAX_POLICY_BYTES} bytes`);
    const after = await handle.stat();
    if (length !== s.size || after.size !== s.size || after.mtimeMs !== s.mtimeMs) {
      throw new PolicyError(
        '',
        `${quote(path)} changed while it was read (${s.size} bytes when opened, ${length} read): read it again once it is written`,
      );
    }
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(0, length));
    } catch {
      throw new PolicyError('', `${quote(path)} is not UTF-8 text`);
    }
    return parsePolicyText(text);
  } finally {
    await handle.close();
  }
}
