// Prints a route tree back to canonical text: upper-case keywords and function names, single
// spaces, and only the parentheses precedence needs. parseRoute(printRoute(ast)) equals ast.

import type { Expr, RouteAst, RouteSink } from './routes-ast.ts';
import { binaryPrecedence, negatePrecedence, notPrecedence, primaryPrecedence, sourceText } from './routes.ts';

export function printRoute(ast: RouteAst): string {
  const head = `${ast.select ? 'SELECT * ' : ''}FROM ${sourceText(ast.source)}`;
  const where = ast.condition === undefined ? '' : ` WHERE ${printExpr(ast.condition)}`;
  return `${head}${where} INTO ${printSink(ast.sink)}`;
}

export function printSink(sink: RouteSink): string {
  return sink.kind === 'upstream' ? '$upstream' : `BrokeredEndpoint("/modules/${sink.module}/inputs/${sink.input}")`;
}

function precedence(e: Expr): number {
  switch (e.type) {
    case 'binary':
      return binaryPrecedence[e.op];
    case 'not':
      return notPrecedence;
    case 'negate':
      return negatePrecedence;
    default:
      return primaryPrecedence;
  }
}

function wrap(e: Expr, needsParens: boolean): string {
  return needsParens ? `(${printExpr(e)})` : printExpr(e);
}

function quote(value: string): string {
  return `'${value.replace(/[\\']/g, (c) => `\\${c}`)}'`;
}

export function printExpr(e: Expr): string {
  switch (e.type) {
    case 'string':
      return quote(e.value);
    case 'number':
      return e.raw;
    case 'boolean':
      return e.value ? 'true' : 'false';
    case 'null':
      return 'null';
    case 'undefined':
      return 'undefined';
    case 'property':
      return e.name;
    case 'systemProperty':
      return e.escaped ? `{$${e.name}}` : `$${e.name}`;
    case 'body':
      return e.escaped ? `{$body.${e.path}}` : `$body.${e.path}`;
    case 'twin':
      return e.escaped ? `{$twin.${e.path}}` : `$twin.${e.path}`;
    case 'not':
      return `NOT ${wrap(e.operand, precedence(e.operand) < notPrecedence)}`;
    case 'negate':
      // A space keeps `- -1` from reading as anything else and `-(a)` unambiguous.
      return `-${e.operand.type === 'negate' ? ' ' : ''}${wrap(e.operand, precedence(e.operand) < negatePrecedence)}`;
    case 'binary': {
      const p = binaryPrecedence[e.op];
      // Left-associative: an equal-precedence right operand needs parentheses.
      return `${wrap(e.left, precedence(e.left) < p)} ${e.op} ${wrap(e.right, precedence(e.right) <= p)}`;
    }
    case 'call':
      return `${e.name}(${e.args.map(printExpr).join(', ')})`;
    case 'twinChangeIncludes':
      return `TWIN_CHANGE_INCLUDES(${e.path})`;
  }
}
