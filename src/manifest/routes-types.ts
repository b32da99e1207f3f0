// Static types of route conditions, as edgeHub's route compiler assigns them. edgeHub refuses to
// compile a condition that applies an operator or a function to operands of the wrong type (a
// string property compared with a number, for instance), so the deployment is checked here, where
// the operator validates it, and the built-in hub's compiler (src/routing) starts from the same check.
// src/routing/README.md states the rules.

import type { BinaryOperator, Expr, FunctionName } from './routes-ast.ts';
import { printExpr } from './routes-print.ts';

/** `dynamic` is a value read from a $body: its kind is known only per message. */
export type ConditionType = 'bool' | 'number' | 'string' | 'null' | 'undefined' | 'dynamic';

/** One name of edgeHub's JSON-path subset: no separators, brackets or spaces, optionally one [index]. */
export const bodyPathSegment = /^([^()<>@,;:\\"/[\]?={}.\s]+)(?:\[(\d+)\])?$/;

export const twinChangePrefixes = ['properties.reported.', 'properties.desired.', 'tags.'];

class TypeFault extends Error {}

export function typeName(t: ConditionType): string {
  return t === 'dynamic' ? '$body value' : t;
}

/** The condition's static type, or the reason edgeHub would refuse to compile it. */
export function conditionType(condition: Expr): { ok: true; type: ConditionType } | { ok: false; message: string } {
  try {
    return { ok: true, type: typeOf(condition) };
  } catch (err) {
    if (err instanceof TypeFault) return { ok: false, message: err.message };
    throw err;
  }
}

export function bodyPathFault(path: string): string | undefined {
  if (path === '') return '$body query cannot be empty';
  if (path.split('.').every((part) => bodyPathSegment.test(part))) return undefined;
  return `'${path}' is not a supported $body path (names separated by '.', each optionally followed by one [index])`;
}

function typeOf(e: Expr): ConditionType {
  switch (e.type) {
    case 'string':
    case 'number':
      return e.type;
    case 'boolean':
      return 'bool';
    case 'null':
    case 'undefined':
      return e.type;
    case 'property':
    case 'twin':
      return 'string';
    case 'systemProperty':
      // A name with [ ] is never a property: edgeHub types it undefined.
      return /[[\]]/.test(e.name) ? 'undefined' : 'string';
    case 'body': {
      const fault = bodyPathFault(e.path);
      if (fault !== undefined) throw new TypeFault(`$body.${e.path}: ${fault}`);
      return 'dynamic';
    }
    case 'twinChangeIncludes': {
      const fault = bodyPathFault(e.path);
      if (fault !== undefined) throw new TypeFault(`TWIN_CHANGE_INCLUDES(${e.path}): ${fault}`);
      if (!twinChangePrefixes.some((p) => e.path.toLowerCase().startsWith(p))) {
        throw new TypeFault(`TWIN_CHANGE_INCLUDES(${e.path}): the path must start with ${twinChangePrefixes.map((p) => `'${p}'`).join(', ')}`);
      }
      return 'bool';
    }
    case 'not': {
      const t = typeOf(e.operand);
      if (t !== 'bool' && t !== 'null' && t !== 'dynamic') throw operandFault('NOT', [t], "'bool'", e);
      return 'bool';
    }
    case 'negate': {
      const t = typeOf(e.operand);
      if (t !== 'number') throw operandFault('-', [t], "'number'", e);
      return 'number';
    }
    case 'binary':
      return binaryType(e.op, typeOf(e.left), typeOf(e.right), e);
    case 'call':
      return callType(e.name, e.args.map(typeOf), e);
  }
}

function operandFault(op: string, have: ConditionType[], expected: string, whole: Expr): TypeFault {
  const arity = have.length === 1 ? 'unary ' : 'binary ';
  const haveText = have.map((t) => `'${typeName(t)}'`).join(' and ');
  const hint = have.includes('string') && have.includes('number') ? '; properties are strings: convert with AS_NUMBER(<property>) to compare with a number' : '';
  return new TypeFault(`invalid operands to ${arity}operator '${op}' in ${printExpr(whole)}: have ${haveText}, expected ${expected}${hint}`);
}

const plainTypes: ReadonlySet<ConditionType> = new Set(['null', 'number', 'string', 'bool']);
const logicalTypes: ReadonlySet<ConditionType> = new Set(['null', 'bool', 'undefined', 'dynamic']);

/** edgeHub's rule for comparisons and ??: the same static type, or a $body value against a plain value. */
export function comparable(l: ConditionType, r: ConditionType): boolean {
  return l === r || (l === 'dynamic' && plainTypes.has(r)) || (r === 'dynamic' && plainTypes.has(l));
}

function binaryType(op: BinaryOperator, l: ConditionType, r: ConditionType, whole: Expr): ConditionType {
  switch (op) {
    case 'AND':
    case 'OR': {
      // edgeHub checks the right operand against the left's type by mistake: a $body value on the left accepts anything.
      if (!logicalTypes.has(l) || (!logicalTypes.has(r) && l !== 'dynamic')) throw operandFault(op, [l, r], "'bool' and 'bool'", whole);
      if (l === 'dynamic' || r === 'dynamic') {
        if (op === 'AND' && (l === 'null' || r === 'null')) throw operandFault(op, [l, r], "'bool' and a $body value", whole);
        return 'bool';
      }
      if ((l === 'null' && r === 'undefined') || (l === 'undefined' && r === 'null')) throw operandFault(op, [l, r], "'bool' and 'bool'", whole);
      if (op === 'AND' && (l === 'null' || r === 'null')) return 'null';
      return l === 'null' && r === 'null' ? 'null' : 'bool';
    }
    case '=':
    case '!=':
    case '<>':
    case '<':
    case '>':
    case '<=':
    case '>=':
      if (!comparable(l, r)) {
        const expected = l === 'dynamic' || r === 'dynamic' ? 'a $body value and a number, string, bool or null' : `'${typeName(l)}' and '${typeName(l)}'`;
        throw operandFault(op, [l, r], expected, whole);
      }
      return 'bool';
    case '??':
      if (!comparable(l, r)) throw operandFault(op, [l, r], `'${typeName(l)}' and '${typeName(l)}'`, whole);
      return l === r ? l : 'dynamic';
    case '||':
      if (![l, r].every(isText)) throw operandFault(op, [l, r], "'string' and 'string'", whole);
      return 'string';
    case '+':
    case '-':
    case '*':
    case '/':
    case '%':
      if (![l, r].every(isNumeric)) throw operandFault(op, [l, r], "'number' and 'number'", whole);
      if (op === '%' && (l === 'dynamic' || r === 'dynamic')) throw new TypeFault(`edgeHub cannot compile '%' on a $body value in ${printExpr(whole)}; use AS_NUMBER($body…) % …`);
      return l === 'dynamic' || r === 'dynamic' ? 'dynamic' : 'number';
  }
}

const isText = (t: ConditionType | undefined): boolean => t === 'string' || t === 'dynamic';
const isNumeric = (t: ConditionType | undefined): boolean => t === 'number' || t === 'dynamic';

function argumentFault(name: FunctionName, types: ConditionType[], whole: Expr, expected: string): TypeFault {
  return new TypeFault(`invalid arguments to ${name}(${types.map(typeName).join(', ')}) in ${printExpr(whole)}: expected ${expected}`);
}

function callType(name: FunctionName, types: ConditionType[], whole: Expr): ConditionType {
  const t0 = types[0];
  switch (name) {
    case 'ABS':
    case 'EXP':
    case 'SQUARE':
    case 'CEILING':
    case 'FLOOR':
    case 'SIGN':
    case 'SQRT':
      if (!isNumeric(t0)) throw argumentFault(name, types, whole, 'a number');
      return 'number';
    case 'POWER':
      if (!types.every(isNumeric)) throw argumentFault(name, types, whole, 'two numbers');
      return 'number';
    case 'AS_NUMBER':
      if (!isNumeric(t0) && !isText(t0)) throw argumentFault(name, types, whole, 'a string or a number');
      return 'number';
    case 'IS_BOOL':
    case 'IS_DEFINED':
    case 'IS_NULL':
    case 'IS_NUMBER':
    case 'IS_STRING':
      return 'bool';
    case 'CONCAT':
      if (!types.every(isText)) throw argumentFault(name, types, whole, 'strings');
      return 'string';
    case 'LENGTH':
      if (!isText(t0)) throw argumentFault(name, types, whole, 'a string');
      return 'number';
    case 'LOWER':
    case 'UPPER':
      if (!isText(t0)) throw argumentFault(name, types, whole, 'a string');
      return 'string';
    case 'SUBSTRING':
      if (!isText(t0) || !types.slice(1).every(isNumeric)) throw argumentFault(name, types, whole, 'a string and one or two numbers');
      return 'string';
    case 'INDEX_OF':
      if (!types.every(isText)) throw argumentFault(name, types, whole, 'two strings');
      return 'number';
    case 'STARTS_WITH':
    case 'ENDS_WITH':
    case 'CONTAINS':
      if (!types.every(isText)) throw argumentFault(name, types, whole, 'two strings');
      return 'bool';
  }
}
