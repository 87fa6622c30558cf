import type protobuf from 'protobufjs';
import { ownEntry } from '../shared/own.js';
import { camel } from './field-names.js';
import { invalid } from './rpc-error.js';

// The `filter` and `order_by` languages of the Cloud KMS list methods, as the "Sorting and
// filtering list results" page documents them (a subset of AIP-160 and AIP-132):
//   comparisons  field = value, !=, <, >, <=, >= (also =>), and `:` (case-insensitive substring);
//   negation     NOT x, -x;   grouping (…);   AND (or a space) and OR, where OR binds tighter;
//   fields       any field of the returned resource, dotted for subfields and map keys
//                (primary.algorithm, labels.team), in lowerCamel or snake_case;
//   values       bare words or "quoted strings"; times as RFC 3339 strings.
//   order_by     "field [asc|desc], field …".
// Both are evaluated against the resource's proto3 JSON form, so enum names, RFC 3339 times and
// int64 strings compare exactly as a REST user sees them. Unknown fields and syntax errors are
// INVALID_ARGUMENT. Length and nesting are bounded so a hostile filter costs little.
export const MAX_FILTER_LENGTH = 2048;
const MAX_DEPTH = 32;

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Op = '=' | '!=' | '<' | '>' | '<=' | '>=' | ':';
type Expr =
  | { kind: 'and' | 'or'; parts: Expr[] }
  | { kind: 'not'; inner: Expr }
  | { kind: 'cmp'; path: string[]; op: Op; value: string };

export type Predicate = (resource: Json) => boolean;

type Token = { t: 'word' | 'str' | 'op' | '(' | ')'; v: string };

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '(' || c === ')') {
      out.push({ t: c, v: c });
      i++;
    } else if (c === '"') {
      let v = '';
      i++;
      while (i < src.length && src[i] !== '"') {
        if (src[i] === '\\' && i + 1 < src.length) i++;
        v += src[i];
        i++;
      }
      if (i >= src.length) throw invalid('Invalid filter: unterminated string.');
      i++;
      out.push({ t: 'str', v });
    } else {
      const op = /^(!=|<=|>=|=>|=|<|>|:)/.exec(src.slice(i, i + 2))?.[1];
      if (op) {
        out.push({ t: 'op', v: op === '=>' ? '>=' : op });
        i += op.length;
      } else {
        const m = /^[^\s()"!=<>:]+/.exec(src.slice(i));
        if (!m) throw invalid(`Invalid filter: unexpected character ${JSON.stringify(c)}.`);
        out.push({ t: 'word', v: m[0] });
        i += m[0].length;
      }
    }
  }
  return out;
}

class Parser {
  private i = 0;
  constructor(
    private readonly tokens: Token[],
    private readonly fields: (path: string[]) => string[],
  ) {}

  parse(): Expr {
    const e = this.conjunction(0);
    if (this.i < this.tokens.length) throw invalid('Invalid filter: unexpected input after the expression.');
    return e;
  }

  private peek(): Token | undefined {
    return this.tokens[this.i];
  }

  // AND (explicit or a space) joins disjunctions: OR binds tighter, as the page says.
  private conjunction(depth: number): Expr {
    if (depth > MAX_DEPTH) throw invalid('Invalid filter: nested too deeply.');
    const parts = [this.disjunction(depth)];
    for (;;) {
      const t = this.peek();
      if (!t || t.t === ')') break;
      if (t.t === 'word' && t.v === 'AND') this.i++;
      parts.push(this.disjunction(depth));
    }
    return parts.length === 1 ? parts[0]! : { kind: 'and', parts };
  }

  private disjunction(depth: number): Expr {
    const parts = [this.term(depth)];
    while (this.peek()?.t === 'word' && this.peek()?.v === 'OR') {
      this.i++;
      parts.push(this.term(depth));
    }
    return parts.length === 1 ? parts[0]! : { kind: 'or', parts };
  }

  private term(depth: number): Expr {
    const t = this.tokens[this.i++];
    if (!t) throw invalid('Invalid filter: expression expected.');
    if (t.t === '(') {
      const inner = this.conjunction(depth + 1);
      if (this.tokens[this.i++]?.t !== ')') throw invalid('Invalid filter: missing ).');
      return inner;
    }
    if (t.t === 'word' && t.v === 'NOT') return { kind: 'not', inner: this.term(depth + 1) };
    if (t.t === 'word' && t.v.startsWith('-') && t.v.length > 1) {
      this.tokens[--this.i] = { t: 'word', v: t.v.slice(1) };
      return { kind: 'not', inner: this.term(depth + 1) };
    }
    if (t.t !== 'word') throw invalid('Invalid filter: a field name was expected.');
    const op = this.tokens[this.i++];
    if (op?.t !== 'op') throw invalid(`Invalid filter: an operator was expected after ${t.v}.`);
    const value = this.tokens[this.i++];
    if (value?.t !== 'word' && value?.t !== 'str')
      throw invalid(`Invalid filter: a value was expected after ${t.v}${op.v}.`);
    return { kind: 'cmp', path: this.fields(t.v.split('.')), op: op.v as Op, value: value.v };
  }
}

/**
 * Resolves a dotted field path against message `type`: each segment names a field (lowerCamel or
 * snake_case); a map field takes one more segment, its key. Unknown fields are INVALID_ARGUMENT.
 */
export function resolvePath(type: protobuf.Type, segments: string[]): string[] {
  const out: string[] = [];
  let current: protobuf.Type | undefined = type;
  for (let k = 0; k < segments.length; k++) {
    const seg = segments[k]!;
    if (current === undefined) throw invalid(`Invalid field path ${segments.join('.')}.`);
    const field: protobuf.Field | undefined = ownEntry(current.fields, camel(seg));
    if (!field || seg === '')
      throw invalid(
        `Invalid field path: ${JSON.stringify(segments.join('.'))} is not a field of ${current.name}.`,
      );
    out.push(field.name);
    if (field.map) {
      if (k + 1 < segments.length) out.push(segments[++k]!);
      if (k + 1 < segments.length) throw invalid(`Invalid field path ${segments.join('.')}.`);
      break;
    }
    const resolved: protobuf.Type | protobuf.Enum | null = field.resolve().resolvedType;
    current = resolved && 'fields' in resolved ? (resolved as protobuf.Type) : undefined;
    // Well-known types (Timestamp, Duration) are leaves in their JSON form.
    if (current?.fullName.startsWith('.google.protobuf.')) current = undefined;
  }
  return out;
}

function lookup(resource: Json, path: string[]): Json | undefined {
  let v: Json | undefined = resource;
  for (const seg of path) {
    if (v === null || typeof v !== 'object' || Array.isArray(v) || !Object.hasOwn(v, seg)) return undefined;
    v = v[seg];
  }
  return v;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** Orders two scalar values: numerically when both are numbers, as instants when both are times. */
function compare(a: Json | undefined, b: string): number {
  const left = typeof a === 'string' || typeof a === 'number' || typeof a === 'boolean' ? String(a) : '';
  const ln = Number(left);
  const rn = Number(b);
  if (left !== '' && b !== '' && Number.isFinite(ln) && Number.isFinite(rn)) return ln - rn;
  if (RFC3339.test(left) && RFC3339.test(b)) return Date.parse(left) - Date.parse(b);
  return left < b ? -1 : left > b ? 1 : 0;
}

function evaluate(e: Expr, r: Json): boolean {
  switch (e.kind) {
    case 'and':
      return e.parts.every((p) => evaluate(p, r));
    case 'or':
      return e.parts.some((p) => evaluate(p, r));
    case 'not':
      return !evaluate(e.inner, r);
    case 'cmp': {
      const v = lookup(r, e.path);
      if (e.op === ':') {
        if (e.value === '*') return v !== undefined;
        const hay = Array.isArray(v)
          ? v.map(String)
          : v === undefined || v === null
            ? []
            : [typeof v === 'object' ? JSON.stringify(v) : String(v)];
        return hay.some((h) => h.toLowerCase().includes(e.value.toLowerCase()));
      }
      if (v === undefined || (v !== null && typeof v === 'object')) return e.op === '!=';
      const c = compare(v, e.value);
      switch (e.op) {
        case '=':
          return c === 0;
        case '!=':
          return c !== 0;
        case '<':
          return c < 0;
        case '>':
          return c > 0;
        case '<=':
          return c <= 0;
        default:
          return c >= 0;
      }
    }
  }
}

export function parseFilter(type: protobuf.Type, filter: string): Predicate {
  if (filter.length > MAX_FILTER_LENGTH)
    throw invalid(`filter must be at most ${MAX_FILTER_LENGTH} characters.`);
  const tokens = tokenize(filter);
  if (tokens.length === 0) return () => true;
  const expr = new Parser(tokens, (segments) => resolvePath(type, segments)).parse();
  return (r) => evaluate(expr, r);
}

export type Comparator = (a: Json, b: Json) => number;

export function parseOrderBy(type: protobuf.Type, orderBy: string): Comparator {
  if (orderBy.length > MAX_FILTER_LENGTH)
    throw invalid(`order_by must be at most ${MAX_FILTER_LENGTH} characters.`);
  const keys = orderBy.split(',').map((part) => {
    const words = part.trim().split(/\s+/);
    if (words.length === 0 || words[0] === '' || words.length > 2)
      throw invalid(`Invalid order_by: ${JSON.stringify(part.trim())}.`);
    const dir = (words[1] ?? 'asc').toLowerCase();
    if (dir !== 'asc' && dir !== 'desc')
      throw invalid(`Invalid order_by direction ${JSON.stringify(words[1])}.`);
    return { path: resolvePath(type, words[0]!.split('.')), sign: dir === 'desc' ? -1 : 1 };
  });
  return (a, b) => {
    for (const k of keys) {
      const av = lookup(a, k.path);
      const bv = lookup(b, k.path);
      // Resources without the field sort first in ascending order.
      if (av === undefined || bv === undefined) {
        if (av !== bv) return (av === undefined ? -1 : 1) * k.sign;
        continue;
      }
      const c = compare(av, typeof bv === 'object' ? JSON.stringify(bv) : String(bv));
      if (c !== 0) return Math.sign(c) * k.sign;
    }
    return 0;
  };
}
