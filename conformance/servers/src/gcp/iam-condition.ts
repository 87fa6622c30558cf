import { invalid } from './rpc-error.js';

// IAM Conditions are CEL. This evaluates the subset Cloud KMS bindings use in practice —
// `request.time` compared with `timestamp("RFC 3339")`, `resource.name ==` / `.startsWith()`,
// joined by && and || (no parentheses) — and refuses anything else at SetIamPolicy time, so a
// condition is never silently treated as true.
export interface ConditionInput {
  now: Date;
  resourceName: string;
}
type Atom = (input: ConditionInput) => boolean;

const TIME_RE = /^request\.time\s*(<=|>=|<|>|==|!=)\s*timestamp\(\s*"([^"]+)"\s*\)$/;
const NAME_EQ_RE = /^resource\.name\s*(==|!=)\s*"([^"]*)"$/;
const NAME_PREFIX_RE = /^resource\.name\.startsWith\(\s*"([^"]*)"\s*\)$/;

function compare(op: string, a: number, b: number): boolean {
  switch (op) {
    case '<':
      return a < b;
    case '<=':
      return a <= b;
    case '>':
      return a > b;
    case '>=':
      return a >= b;
    case '==':
      return a === b;
    default:
      return a !== b;
  }
}

function parseAtom(text: string): Atom {
  const t = text.trim();
  const time = TIME_RE.exec(t);
  if (time) {
    const at = Date.parse(time[2]!);
    if (Number.isNaN(at) || !/^\d{4}-\d{2}-\d{2}T/.test(time[2]!)) {
      throw invalid('Condition expression has an invalid timestamp.');
    }
    return ({ now }) => compare(time[1]!, now.getTime(), at);
  }
  const eq = NAME_EQ_RE.exec(t);
  if (eq) return ({ resourceName }) => (resourceName === eq[2]) === (eq[1] === '==');
  const prefix = NAME_PREFIX_RE.exec(t);
  if (prefix) return ({ resourceName }) => resourceName.startsWith(prefix[1]!);
  throw invalid('Condition expression is not supported by the keyport Cloud KMS test server.');
}

export function compileCondition(expression: string): Atom {
  if (expression.trim() === '') throw invalid('Condition expression must not be empty.');
  const any = expression.split('||').map((clause) => clause.split('&&').map(parseAtom));
  return (input) => any.some((all) => all.every((atom) => atom(input)));
}
