// Evaluates a query expression against one JSON document (a device or module twin as the REST API
// returns it). Values follow the document-database rules IoT Hub's query language is built on: a
// missing property is `undefined`, which no comparison matches (so `tags.x != 'a'` does not match a
// twin without tags.x); comparing different types gives `undefined`, except for = and != on
// defined values, which compare JSON values as they are; AND, OR and NOT are three-valued.
import { isJsonObject } from '../twin.ts';
import type { Json, JsonObject } from '../twin.ts';
import type { BinaryOperator, Expr } from './ast.ts';

export type Value = Json | undefined;

/** Reads a property path; undefined when any segment is missing or not an object. */
export function readPath(doc: JsonObject, segments: readonly string[]): Value {
  let current: Value = doc;
  for (const segment of segments) {
    if (!isJsonObject(current)) return undefined;
    if (!Object.prototype.hasOwnProperty.call(current, segment)) return undefined;
    current = current[segment];
  }
  return current;
}

function jsonEqual(a: Json, b: Json): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((item, i) => jsonEqual(item, b[i] as Json));
  const ao = a as JsonObject;
  const bo = b as JsonObject;
  const keys = Object.keys(ao);
  return keys.length === Object.keys(bo).length && keys.every((k) => k in bo && jsonEqual(ao[k] as Json, bo[k] as Json));
}

function compare(op: BinaryOperator, left: Value, right: Value): Value {
  if (left === undefined || right === undefined) return undefined;
  if (op === '=') return jsonEqual(left, right);
  if (op === '!=' || op === '<>') return !jsonEqual(left, right);
  const bothNumbers = typeof left === 'number' && typeof right === 'number';
  const bothStrings = typeof left === 'string' && typeof right === 'string';
  if (!bothNumbers && !bothStrings) return undefined;
  const l = left as number | string;
  const r = right as number | string;
  if (op === '<') return l < r;
  if (op === '>') return l > r;
  if (op === '<=') return l <= r;
  return l >= r;
}

function arithmetic(op: BinaryOperator, left: Value, right: Value): Value {
  if (typeof left !== 'number' || typeof right !== 'number') return undefined;
  const result = op === '+' ? left + right : op === '-' ? left - right : op === '*' ? left * right : op === '/' ? left / right : left % right;
  return Number.isFinite(result) ? result : undefined;
}

function logical(op: 'AND' | 'OR', left: Value, right: () => Value): Value {
  if (op === 'AND') {
    if (left === false) return false;
    const r = right();
    if (r === false) return false;
    return left === true && r === true ? true : undefined;
  }
  if (left === true) return true;
  const r = right();
  if (r === true) return true;
  return left === false && r === false ? false : undefined;
}

function stringFunction(args: Value[], test: (s: string, part: string) => boolean): Value {
  const [s, part] = args;
  return typeof s === 'string' && typeof part === 'string' ? test(s, part) : undefined;
}

const typeTests: Record<string, (v: Value) => boolean> = {
  IS_DEFINED: (v) => v !== undefined,
  IS_NULL: (v) => v === null,
  IS_BOOL: (v) => typeof v === 'boolean',
  IS_NUMBER: (v) => typeof v === 'number',
  IS_STRING: (v) => typeof v === 'string',
  IS_ARRAY: (v) => Array.isArray(v),
  IS_OBJECT: (v) => isJsonObject(v as Json),
  IS_PRIMITIVE: (v) => v === null || ['string', 'number', 'boolean'].includes(typeof v),
};

const stringFunctions: Record<string, (args: Value[]) => Value> = {
  STARTSWITH: (args) => stringFunction(args, (s, p) => s.startsWith(p)),
  STARTS_WITH: (args) => stringFunction(args, (s, p) => s.startsWith(p)),
  ENDSWITH: (args) => stringFunction(args, (s, p) => s.endsWith(p)),
  ENDS_WITH: (args) => stringFunction(args, (s, p) => s.endsWith(p)),
  CONTAINS: (args) => stringFunction(args, (s, p) => s.includes(p)),
  LOWER: ([s]) => (typeof s === 'string' ? s.toLowerCase() : undefined),
  UPPER: ([s]) => (typeof s === 'string' ? s.toUpperCase() : undefined),
  LENGTH: ([s]) => (typeof s === 'string' ? s.length : undefined),
  ARRAY_CONTAINS: ([list, item]) => (Array.isArray(list) && item !== undefined ? list.some((x) => jsonEqual(x, item)) : undefined),
};

/** How many arguments each supported function takes; checked when a query is compiled. */
export const functionArity: Record<string, number> = {
  ...Object.fromEntries(Object.keys(typeTests).map((name) => [name, 1])),
  STARTSWITH: 2, STARTS_WITH: 2, ENDSWITH: 2, ENDS_WITH: 2, CONTAINS: 2, ARRAY_CONTAINS: 2,
  LOWER: 1, UPPER: 1, LENGTH: 1,
};

/** Refuses calls to unknown functions or with the wrong number of arguments (a 400, as the hub answers). */
export function checkCalls(expr: Expr, fail: (message: string) => Error): void {
  const visit = (e: Expr): void => {
    switch (e.kind) {
      case 'call': {
        const arity = functionArity[e.name];
        if (arity === undefined) throw fail(`unknown function ${e.name}`);
        if (e.args.length !== arity) throw fail(`${e.name} takes ${arity} argument(s), not ${e.args.length}`);
        e.args.forEach(visit);
        return;
      }
      case 'array': e.items.forEach(visit); return;
      case 'not': case 'negate': visit(e.operand); return;
      case 'binary': visit(e.left); visit(e.right); return;
      case 'in': visit(e.value); visit(e.list); return;
      default: return;
    }
  };
  visit(expr);
}

/** The value of an expression for one document. */
export function evaluate(expr: Expr, doc: JsonObject): Value {
  switch (expr.kind) {
    case 'literal': return expr.value;
    case 'path': return readPath(doc, expr.segments);
    case 'array': {
      const items = expr.items.map((item) => evaluate(item, doc));
      return items.every((v) => v !== undefined) ? (items as Json[]) : undefined;
    }
    case 'not': {
      const v = evaluate(expr.operand, doc);
      return typeof v === 'boolean' ? !v : undefined;
    }
    case 'negate': {
      const v = evaluate(expr.operand, doc);
      return typeof v === 'number' ? -v : undefined;
    }
    case 'in': return evaluateIn(expr.negated, evaluate(expr.value, doc), evaluate(expr.list, doc));
    case 'call': return evaluateCall(expr.name, expr.args.map((a) => evaluate(a, doc)));
    case 'binary': return evaluateBinary(expr, doc);
  }
}

function evaluateIn(negated: boolean, value: Value, list: Value): Value {
  if (value === undefined || !Array.isArray(list)) return undefined;
  const found = list.some((item) => jsonEqual(item, value));
  return negated ? !found : found;
}

function evaluateCall(name: string, args: Value[]): Value {
  const test = typeTests[name];
  if (test) return test(args[0]);
  return stringFunctions[name]?.(args);
}

function evaluateBinary(expr: Extract<Expr, { kind: 'binary' }>, doc: JsonObject): Value {
  const { op } = expr;
  if (op === 'AND' || op === 'OR') return logical(op, evaluate(expr.left, doc), () => evaluate(expr.right, doc));
  const left = evaluate(expr.left, doc);
  const right = evaluate(expr.right, doc);
  if (op === '+' || op === '-' || op === '*' || op === '/' || op === '%') return arithmetic(op, left, right);
  return compare(op, left, right);
}
