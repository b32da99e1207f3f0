// Compiles a route condition (the manifest's syntax tree) into one closure per node, once per
// route. Like edgeHub, compilation is typed: every node has a static type, and an operator or
// function given operands of the wrong static type is a compile error (IEO_ROUTE_TYPE), not a
// run-time undefined. Sub-trees that read nothing from the message are evaluated at compile time.

import { conditionType, printExpr, twinChangePrefixes } from '../manifest/index.ts';
import type { BinaryOperator, Expr, FunctionName } from '../manifest/index.ts';
import { decodeJsonBody, jsonIncludes, parseBodyPath, queryJson } from './body.ts';
import type { JsonRoot, PathSegment } from './body.ts';
import type { RoutedMessage } from './types.ts';
import { and, arithmetic, compare, dynamicAnd, dynamicOr, num, or, parseNumber } from './values.ts';
import type { CompareOp, Value } from './values.ts';

/** Static types. `dynamic` is a value read from a $body: its kind is known only per message. */
export type StaticType = 'bool' | 'number' | 'string' | 'null' | 'undefined' | 'dynamic';

/** Per-message state shared by every route's closures: the body is decoded at most once. */
export interface EvalContext {
  readonly msg: RoutedMessage;
  /** undefined until first needed; null when the body is not a JSON object edgeHub could query. */
  body: JsonRoot | null | undefined;
}

export function newEvalContext(msg: RoutedMessage): EvalContext {
  return { msg, body: undefined };
}

export type Evaluate = (ctx: EvalContext) => Value;

interface Compiled {
  type: StaticType;
  fn: Evaluate;
  /** Whether fn ignores the message (a literal, or an operation on literals). */
  constant: boolean;
}

/** Thrown inside the compiler; compileCondition turns it into an error result. */
export class RouteTypeFault extends Error {}

export type CompiledCondition = { ok: true; type: StaticType; evaluate: Evaluate } | { ok: false; message: string };

/** Compiles a condition. `evaluate` returns the condition's value; a route matches only when it is `true`. */
export function compileCondition(condition: Expr): CompiledCondition {
  // The manifest layer's type check is the one the operator applies; the checks below only guard it.
  const typed = conditionType(condition);
  if (!typed.ok) return { ok: false, message: typed.message };
  try {
    const c = compile(condition);
    return { ok: true, type: c.type, evaluate: c.fn };
  } catch (err) {
    if (err instanceof RouteTypeFault) return { ok: false, message: err.message };
    throw err;
  }
}

export function typeName(t: StaticType): string {
  return t === 'dynamic' ? '$body value' : t;
}

function compile(e: Expr): Compiled {
  switch (e.type) {
    case 'string':
    case 'number':
    case 'boolean':
      return constant(e.type === 'boolean' ? 'bool' : e.type, e.value);
    case 'null':
      return constant('null', null);
    case 'undefined':
      return constant('undefined', undefined);
    case 'property':
      return reader('string', propertyReader(e.name));
    case 'systemProperty':
      return systemPropertyReference(e.name, e.escaped);
    case 'twin':
      return systemPropertyReference(`twin.${e.path}`, e.escaped);
    case 'body':
      return bodyReference(e.path, e.escaped);
    case 'twinChangeIncludes':
      return twinChangeIncludes(e.path);
    case 'not':
      return compileNot(e.operand);
    case 'negate':
      return compileNegate(e.operand);
    case 'binary':
      return compileBinary(e.op, e.left, e.right, e);
    case 'call':
      return compileCall(e.name, e.args, e);
  }
}

function constant(type: StaticType, value: Value): Compiled {
  return { type, fn: () => value, constant: true };
}

function reader(type: StaticType, fn: Evaluate): Compiled {
  return { type, fn, constant: false };
}

/** A node over `parts`: evaluated now if every part is constant. */
function combine(type: StaticType, parts: Compiled[], fn: Evaluate): Compiled {
  if (parts.every((p) => p.constant)) {
    const value = fn(constantContext);
    return constant(type, value);
  }
  return { type, fn, constant: false };
}

// Constant sub-trees never read the context; a message with nothing in it makes that obvious.
const constantContext: EvalContext = newEvalContext({ body: Buffer.alloc(0), properties: {}, systemProperties: {}, source: { kind: 'device', deviceId: '' } });

// ---- reading the message

/**
 * Finds a name without case: the exact spelling first (the readers below), else the first key in
 * the bag's order that matches. A scan, not a map: messages carry a handful of properties, and a
 * miss (the usual case for `$name` and `$body.x`, which look for an application property first)
 * then costs no allocation. Keys of another length never match: edgeHub compares ordinally, character
 * by character, ignoring case.
 */
function findIgnoringCase(bag: Record<string, string>, lower: string): string | undefined {
  for (const key in bag) {
    if (key.length === lower.length && Object.hasOwn(bag, key) && key.toLowerCase() === lower) return bag[key];
  }
  return undefined;
}

function propertyReader(name: string): (ctx: EvalContext) => string | undefined {
  const lower = name.toLowerCase();
  return (ctx) => {
    const bag = ctx.msg.properties;
    return Object.hasOwn(bag, name) ? bag[name] : findIgnoringCase(bag, lower);
  };
}

function systemPropertyReader(name: string): (ctx: EvalContext) => string | undefined {
  const lower = name.toLowerCase();
  return (ctx) => {
    const bag = ctx.msg.systemProperties;
    return Object.hasOwn(bag, name) ? bag[name] : findIgnoringCase(bag, lower);
  };
}

/**
 * `$name` reads the application property literally named `$name` if the message has one, else the
 * system property `name`; `{$name}` reads only the system property. A name with [ ] is never a
 * property (edgeHub gives undefined).
 */
function systemPropertyReference(name: string, escaped: boolean): Compiled {
  if (name.includes('[') || name.includes(']')) return constant('undefined', undefined);
  const system = systemPropertyReader(name);
  if (escaped) return reader('string', system);
  const application = propertyReader(`$${name}`);
  return reader('string', (ctx) => application(ctx) ?? system(ctx));
}

function loadBody(ctx: EvalContext): JsonRoot | null {
  if (ctx.body === undefined) {
    const { msg } = ctx;
    const sys = systemPropertyReaderCached;
    let contentType = sys.contentType(ctx);
    let contentEncoding = sys.contentEncoding(ctx);
    // The hub builds twin change notifications itself, as JSON; they need not say so.
    if (msg.source.kind === 'twinChangeNotification' && contentType === undefined) {
      contentType = 'application/json';
      contentEncoding ??= 'utf-8';
    }
    ctx.body = decodeJsonBody(msg.body, contentType, contentEncoding) ?? null;
  }
  return ctx.body;
}

const systemPropertyReaderCached = {
  contentType: systemPropertyReader('contentType'),
  contentEncoding: systemPropertyReader('contentEncoding'),
};

function checkedPath(path: string, what: string): PathSegment[] {
  const parsed = parseBodyPath(path);
  if (typeof parsed === 'string') throw new RouteTypeFault(`${what}: ${parsed}`);
  return parsed;
}

/**
 * `$body.path` reads the application property literally named `$body.path` if the message has one
 * (edgeHub lets it win), else queries the JSON body; `{$body.path}` and paths with [index] always
 * query the body.
 */
function bodyReference(path: string, escaped: boolean): Compiled {
  const segments = checkedPath(path, `$body.${path}`);
  const query = (ctx: EvalContext): Value => {
    const root = loadBody(ctx);
    return root === null ? undefined : queryJson(root, segments);
  };
  if (escaped || path.includes('[')) return reader('dynamic', query);
  const application = propertyReader(`$body.${path}`);
  return reader('dynamic', (ctx) => application(ctx) ?? query(ctx));
}

function twinChangeIncludes(path: string): Compiled {
  const segments = checkedPath(path, `TWIN_CHANGE_INCLUDES(${path})`);
  if (!twinChangePrefixes.some((p) => path.toLowerCase().startsWith(p))) {
    throw new RouteTypeFault(`TWIN_CHANGE_INCLUDES(${path}): the path must start with ${twinChangePrefixes.map((p) => `'${p}'`).join(', ')}`);
  }
  return reader('bool', (ctx) => {
    const root = loadBody(ctx);
    return root === null ? undefined : jsonIncludes(root, segments);
  });
}

// ---- operators

function operandFault(op: string, have: StaticType[], expected: string, whole?: Expr): RouteTypeFault {
  const arity = have.length === 1 ? 'unary ' : 'binary ';
  const haveText = have.map((t) => `'${typeName(t)}'`).join(' and ');
  const where = whole ? ` in ${printExpr(whole)}` : '';
  let hint = '';
  if (have.includes('string') && have.includes('number')) {
    hint = '; properties are strings: convert with AS_NUMBER(<property>) to compare with a number';
  }
  return new RouteTypeFault(`invalid operands to ${arity}operator '${op}'${where}: have ${haveText}, expected ${expected}${hint}`);
}

function compileNot(operand: Expr): Compiled {
  const c = compile(operand);
  const f = c.fn;
  switch (c.type) {
    case 'bool':
      return combine('bool', [c], (ctx) => {
        const v = f(ctx);
        return v === undefined ? undefined : !v;
      });
    case 'null':
      return combine('bool', [c], () => true);
    case 'dynamic':
      return combine('bool', [c], (ctx) => {
        const v = f(ctx);
        return typeof v === 'boolean' ? !v : undefined;
      });
    default:
      throw operandFault('NOT', [c.type], "'bool'", { type: 'not', operand });
  }
}

function compileNegate(operand: Expr): Compiled {
  const c = compile(operand);
  if (c.type !== 'number') throw operandFault('-', [c.type], "'number'", { type: 'negate', operand });
  const f = c.fn;
  return combine('number', [c], (ctx) => {
    const v = f(ctx);
    return typeof v === 'number' ? -v : undefined;
  });
}

const valueTypes: ReadonlySet<StaticType> = new Set(['null', 'number', 'string', 'bool']);

/** edgeHub's rule for comparisons and ??: the same static type, or a $body value against a plain value. */
function sameOrDynamic(l: StaticType, r: StaticType): boolean {
  if (l === r) return true;
  return (l === 'dynamic' && valueTypes.has(r)) || (r === 'dynamic' && valueTypes.has(l));
}

function compileBinary(op: BinaryOperator, leftExpr: Expr, rightExpr: Expr, whole: Expr): Compiled {
  const left = compile(leftExpr);
  const right = compile(rightExpr);
  const l = left.fn;
  const r = right.fn;
  switch (op) {
    case 'AND':
    case 'OR':
      return compileLogical(op, left, right, whole);
    case '=':
    case '!=':
    case '<>':
    case '<':
    case '>':
    case '<=':
    case '>=': {
      if (!sameOrDynamic(left.type, right.type)) {
        const expected = left.type === 'dynamic' || right.type === 'dynamic' ? 'a $body value and a number, string, bool or null' : `'${typeName(left.type)}' and '${typeName(left.type)}'`;
        throw operandFault(op, [left.type, right.type], expected, whole);
      }
      const cmp: CompareOp = op === '<>' ? '!=' : op;
      return combine('bool', [left, right], (ctx) => compare(cmp, l(ctx), r(ctx)));
    }
    case '??': {
      if (!sameOrDynamic(left.type, right.type)) throw operandFault(op, [left.type, right.type], `'${typeName(left.type)}' and '${typeName(left.type)}'`, whole);
      const type = left.type === right.type ? left.type : 'dynamic';
      if (left.type === 'undefined') return { ...right, type };
      return combine(type, [left, right], (ctx) => {
        const v = l(ctx);
        return v !== undefined ? v : r(ctx);
      });
    }
    case '+':
    case '-':
    case '*':
    case '/':
    case '%': {
      const numeric = (t: StaticType): boolean => t === 'number' || t === 'dynamic';
      if (!numeric(left.type) || !numeric(right.type)) throw operandFault(op, [left.type, right.type], "'number' and 'number'", whole);
      if (op === '%' && (left.type === 'dynamic' || right.type === 'dynamic')) {
        throw new RouteTypeFault(`edgeHub cannot compile '%' on a $body value in ${printExpr(whole)}; use AS_NUMBER($body…) % …`);
      }
      const type = left.type === 'dynamic' || right.type === 'dynamic' ? 'dynamic' : 'number';
      return combine(type, [left, right], (ctx) => arithmetic(op, l(ctx), r(ctx)));
    }
    case '||': {
      const stringy = (t: StaticType): boolean => t === 'string' || t === 'dynamic';
      if (!stringy(left.type) || !stringy(right.type)) throw operandFault(op, [left.type, right.type], "'string' and 'string'", whole);
      return combine('string', [left, right], (ctx) => {
        const a = l(ctx);
        if (typeof a !== 'string') return undefined;
        const b = r(ctx);
        return typeof b === 'string' ? a + b : undefined;
      });
    }
  }
}

const logicalTypes: ReadonlySet<StaticType> = new Set(['null', 'bool', 'undefined', 'dynamic']);

/**
 * AND/OR as edgeHub types them: bool, undefined and null operands follow three-valued logic,
 * where null acts as "no opinion" (null AND x is null; null OR x is x); with a $body value on
 * either side the result is defined only when both sides are booleans.
 */
function compileLogical(op: 'AND' | 'OR', left: Compiled, right: Compiled, whole: Expr): Compiled {
  const lt = left.type;
  const rt = right.type;
  // edgeHub checks the right operand against the left's type by mistake: a $body value on the left accepts anything.
  if (!logicalTypes.has(lt) || (!logicalTypes.has(rt) && lt !== 'dynamic')) throw operandFault(op, [lt, rt], "'bool' and 'bool'", whole);
  const l = left.fn;
  const r = right.fn;
  const parts = [left, right];
  if (lt === 'dynamic' || rt === 'dynamic') {
    if (op === 'AND' && (lt === 'null' || rt === 'null')) throw operandFault(op, [lt, rt], "'bool' and a $body value", whole);
    return combine('bool', parts, op === 'AND' ? (ctx) => dynamicAnd(l(ctx), r(ctx)) : (ctx) => dynamicOr(l(ctx), r(ctx)));
  }
  if ((lt === 'null' && rt === 'undefined') || (lt === 'undefined' && rt === 'null')) throw operandFault(op, [lt, rt], "'bool' and 'bool'", whole);
  if (lt === 'null' || rt === 'null') {
    if (op === 'AND') return combine('null', parts, () => null);
    if (lt === 'null' && rt === 'null') return combine('null', parts, () => null);
    return lt === 'null' ? combine('bool', parts, r) : combine('bool', parts, l);
  }
  if (op === 'AND') {
    return combine('bool', parts, (ctx) => {
      const a = l(ctx);
      return a === false ? false : and(a, r(ctx));
    });
  }
  return combine('bool', parts, (ctx) => {
    const a = l(ctx);
    return a === true ? true : or(a, r(ctx));
  });
}

// ---- functions

type Fn1 = (a: Value) => Value;

const isText = (t: StaticType): boolean => t === 'string' || t === 'dynamic';
const isNumeric = (t: StaticType): boolean => t === 'number' || t === 'dynamic';

function numeric1(f: (x: number) => number): Fn1 {
  return (a) => (typeof a === 'number' ? num(f(a)) : undefined);
}

function text1<T extends Value>(f: (s: string) => T): Fn1 {
  return (a) => (typeof a === 'string' ? f(a) : undefined);
}

function text2<T extends Value>(f: (s: string, t: string) => T): (a: Value, b: Value) => Value {
  return (a, b) => (typeof a === 'string' && typeof b === 'string' ? f(a, b) : undefined);
}

const mathFunctions: Partial<Record<FunctionName, (x: number) => number>> = {
  ABS: Math.abs,
  EXP: Math.exp,
  SQUARE: (x) => x * x,
  CEILING: Math.ceil,
  FLOOR: Math.floor,
  SIGN: (x) => (x > 0 ? 1 : x < 0 ? -1 : 0),
  SQRT: Math.sqrt,
};

const textFunctions: Partial<Record<FunctionName, { result: StaticType; f: (a: Value, b: Value) => Value }>> = {
  INDEX_OF: { result: 'number', f: text2((s, t) => s.indexOf(t)) },
  STARTS_WITH: { result: 'bool', f: text2((s, t) => s.startsWith(t)) },
  ENDS_WITH: { result: 'bool', f: text2((s, t) => s.endsWith(t)) },
  CONTAINS: { result: 'bool', f: text2((s, t) => s.includes(t)) },
};

function argumentFault(name: FunctionName, args: Compiled[], whole: Expr, expected: string): RouteTypeFault {
  const have = args.map((a) => typeName(a.type)).join(', ');
  return new RouteTypeFault(`invalid arguments to ${name}(${have}) in ${printExpr(whole)}: expected ${expected}`);
}

function compileCall(name: FunctionName, argExprs: Expr[], whole: Expr): Compiled {
  const args = argExprs.map(compile);
  const types = args.map((a) => a.type);
  const [a0, a1, a2] = args.map((a) => a.fn) as [Evaluate, Evaluate | undefined, Evaluate | undefined];
  const t0 = types[0] as StaticType;

  const math = mathFunctions[name];
  if (math) {
    if (!isNumeric(t0)) throw argumentFault(name, args, whole, 'a number');
    const f = numeric1(math);
    return combine('number', args, (ctx) => f(a0(ctx)));
  }
  const text = textFunctions[name];
  if (text) {
    if (!types.every(isText)) throw argumentFault(name, args, whole, 'two strings');
    const b = a1 as Evaluate;
    return combine(text.result, args, (ctx) => text.f(a0(ctx), b(ctx)));
  }
  switch (name) {
    case 'POWER': {
      if (!types.every(isNumeric)) throw argumentFault(name, args, whole, 'two numbers');
      const b = a1 as Evaluate;
      return combine('number', args, (ctx) => {
        const x = a0(ctx);
        const y = b(ctx);
        return typeof x === 'number' && typeof y === 'number' ? num(x ** y) : undefined;
      });
    }
    case 'AS_NUMBER':
      if (t0 === 'number') return { ...args[0]!, type: 'number' };
      if (!isText(t0)) throw argumentFault(name, args, whole, 'a string or a number');
      return combine('number', args, (ctx) => {
        const v = a0(ctx);
        return typeof v === 'string' ? parseNumber(v) : typeof v === 'number' ? v : undefined;
      });
    case 'IS_BOOL':
      if (t0 !== 'bool' && t0 !== 'dynamic') return constant('bool', false);
      return combine('bool', args, (ctx) => {
        const v = a0(ctx);
        return v === undefined ? undefined : typeof v === 'boolean';
      });
    case 'IS_DEFINED':
      if (t0 === 'undefined') return constant('bool', false);
      if (t0 === 'null') return constant('bool', true);
      return combine('bool', args, (ctx) => a0(ctx) !== undefined);
    case 'IS_NULL':
      if (t0 === 'null') return constant('bool', true);
      if (t0 !== 'dynamic') return constant('bool', false);
      return combine('bool', args, (ctx) => {
        const v = a0(ctx);
        return v === undefined ? undefined : v === null;
      });
    case 'IS_NUMBER':
      if (!isNumeric(t0)) return constant('bool', false);
      return combine('bool', args, (ctx) => {
        const v = a0(ctx);
        return typeof v === 'number' && Number.isFinite(v);
      });
    case 'IS_STRING':
      if (!isText(t0)) return constant('bool', false);
      return combine('bool', args, (ctx) => typeof a0(ctx) === 'string');
    case 'CONCAT': {
      if (!types.every(isText)) throw argumentFault(name, args, whole, 'strings');
      const fns = args.map((a) => a.fn);
      return combine('string', args, (ctx) => {
        let out = '';
        for (const f of fns) {
          const v = f(ctx);
          if (typeof v !== 'string') return undefined;
          out += v;
        }
        return out;
      });
    }
    case 'LENGTH': {
      if (!isText(t0)) throw argumentFault(name, args, whole, 'a string');
      const f = text1((s) => s.length);
      return combine('number', args, (ctx) => f(a0(ctx)));
    }
    case 'LOWER':
    case 'UPPER': {
      if (!isText(t0)) throw argumentFault(name, args, whole, 'a string');
      const f = text1(name === 'LOWER' ? (s) => s.toLowerCase() : (s) => s.toUpperCase());
      return combine('string', args, (ctx) => f(a0(ctx)));
    }
    case 'SUBSTRING': {
      if (!isText(t0) || !types.slice(1).every(isNumeric)) throw argumentFault(name, args, whole, 'a string and one or two numbers');
      const start = a1 as Evaluate;
      if (a2 === undefined) return combine('string', args, (ctx) => substringFrom(a0(ctx), start(ctx)));
      const length = a2;
      return combine('string', args, (ctx) => substringOf(a0(ctx), start(ctx), length(ctx)));
    }
    default:
      throw new RouteTypeFault(`function ${name} is not implemented`);
  }
}

/** SUBSTRING(s, start): start may equal the length (giving ''); fractions are truncated. */
export function substringFrom(s: Value, start: Value): Value {
  if (typeof s !== 'string' || typeof start !== 'number') return undefined;
  if (start < 0 || start > s.length) return undefined;
  return s.slice(Math.trunc(start));
}

/** SUBSTRING(s, start, length): start must be inside the string and the length fit in what follows. */
export function substringOf(s: Value, start: Value, length: Value): Value {
  if (typeof s !== 'string' || typeof start !== 'number' || typeof length !== 'number') return undefined;
  if (start < 0 || start >= s.length || length < 0 || length > s.length - start) return undefined;
  const from = Math.trunc(start);
  return s.slice(from, from + Math.trunc(length));
}
