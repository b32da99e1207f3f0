import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import type { BinaryOperator, Expr, FunctionName, RouteAst, RouteSink, RouteSource } from '../../../src/manifest/index.ts';
import { parseRoute, printRoute, routeFunctions } from '../../../src/manifest/index.ts';
import { isBareName } from '../../../src/manifest/routes-lexer.ts';

const moduleId = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9\-._+%#!:=@]{0,15}$/);
const endpointName = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,12}$/).filter((s) => s !== '*');

const source: fc.Arbitrary<RouteSource> = fc.oneof(
  fc.constant<RouteSource>({ kind: 'all' }),
  fc.constant<RouteSource>({ kind: 'allMessages' }),
  fc.constant<RouteSource>({ kind: 'allModules' }),
  fc.constant<RouteSource>({ kind: 'twinChangeNotifications' }),
  fc.record({ module: moduleId, wildcard: fc.boolean() }).map((r): RouteSource => ({ kind: 'module', ...r })),
  moduleId.map((module): RouteSource => ({ kind: 'moduleOutputs', module })),
  fc.record({ module: moduleId, output: endpointName }).map((r): RouteSource => ({ kind: 'moduleOutput', ...r })),
);

const sink: fc.Arbitrary<RouteSink> = fc.oneof(
  fc.constant<RouteSink>({ kind: 'upstream' }),
  fc.record({ module: moduleId, input: endpointName }).map((r): RouteSink => ({ kind: 'moduleInput', ...r })),
);

const propertyName = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_.-]{0,10}$/).filter(isBareName);
const pathSegment = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,8}$/);
const dottedPath = fc.array(pathSegment, { minLength: 1, maxLength: 4 }).map((s) => s.join('.'));

const numberLiteral: fc.Arbitrary<Expr> = fc
  .oneof(
    fc.nat().map(String),
    fc.tuple(fc.nat(), fc.nat({ max: 999 })).map(([a, b]) => `${a}.${b}`),
    fc.nat().map((n) => `0x${n.toString(16).toUpperCase()}`),
    fc.tuple(fc.nat({ max: 99 }), fc.integer({ min: -20, max: 20 })).map(([m, e]) => `${m}e${e}`),
  )
  .map((raw) => ({ type: 'number', raw, value: raw.startsWith('0x') ? parseInt(raw.slice(2), 16) : Number(raw) }));

const leaf: fc.Arbitrary<Expr> = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 12 }).map((value): Expr => ({ type: 'string', value })),
  numberLiteral,
  fc.boolean().map((value): Expr => ({ type: 'boolean', value })),
  fc.constant<Expr>({ type: 'null' }),
  fc.constant<Expr>({ type: 'undefined' }),
  propertyName.map((name): Expr => ({ type: 'property', name })),
  fc
    .record({ name: fc.constantFrom('connectionDeviceId', 'connectionModuleId', 'contentType', 'contentEncoding', 'messageId', 'correlationId', 'userId', 'iothub-enqueuedtime'), escaped: fc.boolean() })
    .map((r): Expr => ({ type: 'systemProperty', ...r })),
  fc.record({ path: dottedPath, escaped: fc.boolean() }).map((r): Expr => ({ type: 'body', ...r })),
  fc.record({ path: dottedPath.map((p) => `tags.${p}`), escaped: fc.boolean() }).map((r): Expr => ({ type: 'twin', ...r })),
);

const operators: BinaryOperator[] = ['OR', 'AND', '=', '!=', '<>', '<', '>', '<=', '>=', '??', '+', '-', '||', '*', '/', '%'];
const functionNames = Object.keys(routeFunctions) as FunctionName[];

const { expr } = fc.letrec<{ expr: Expr }>((tie) => ({
  expr: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc.record({ op: fc.constantFrom(...operators), left: tie('expr'), right: tie('expr') }).map((r): Expr => ({ type: 'binary', ...r })),
    tie('expr').map((operand): Expr => ({ type: 'not', operand })),
    tie('expr').map((operand): Expr => ({ type: 'negate', operand })),
    fc
      .constantFrom(...functionNames)
      .chain((name) => {
        const [min, max] = routeFunctions[name];
        return fc.array(tie('expr'), { minLength: min, maxLength: Math.min(max, min + 2) }).map((args): Expr => ({ type: 'call', name, args }));
      }),
  ),
}));

const route: fc.Arbitrary<RouteAst> = fc
  .record({ select: fc.boolean(), source, condition: fc.option(expr, { nil: undefined }), sink })
  .map(({ condition, ...rest }) => (condition === undefined ? rest : { ...rest, condition }));

const tokenSoup = fc
  .array(
    fc.constantFrom('FROM', 'from', ' ', '  ', '\n', '/messages/*', '/messages/modules/m/outputs/*', 'WHERE', 'INTO', '$upstream', '(', ')', 'a', '=', '<>', "'x'", '"y', '1',
      '0x', '.5', 'AND', 'OR', 'NOT', 'BrokeredEndpoint', '"/modules/m/inputs/i"', ',', 'CONCAT', 'SUBSTRING', '$body.x', '$', '{', '}', '-', '*', '/', '/*', '*/', '\\', 'SELECT'),
    { maxLength: 30 },
  )
  .map((parts) => parts.join(''));

function expectWellFormed(text: string): void {
  const r = parseRoute(text);
  if (r.ok) return;
  const { offset, line, column, message } = r.error;
  expect(offset).toBeGreaterThanOrEqual(0);
  expect(offset).toBeLessThanOrEqual(text.length);
  const before = text.slice(0, offset);
  expect(line).toBe(before.split('\n').length);
  expect(column).toBe(offset - before.lastIndexOf('\n'));
  expect(message).toContain(`(line ${line}, column ${column})`);
}

describe('route grammar properties', () => {
  it('parses every printed route back to the same tree', () => {
    fc.assert(
      fc.property(route, (ast) => {
        const printed = printRoute(ast);
        const parsed = parseRoute(printed);
        if (!parsed.ok) throw new Error(`${printed}\n${parsed.error.message}`);
        expect(parsed.route).toEqual(ast);
        expect(printRoute(parsed.route)).toBe(printed);
      }),
      { numRuns: 500 },
    );
  });

  it('returns a route or a positioned error for any string, never throwing', () => {
    fc.assert(fc.property(fc.string({ unit: 'grapheme', maxLength: 80 }), expectWellFormed), { numRuns: 300 });
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 80 }), expectWellFormed), { numRuns: 200 });
  });

  it('returns a route or a positioned error for near-miss routes built from route tokens', () => {
    fc.assert(fc.property(tokenSoup, expectWellFormed), { numRuns: 1000 });
  });

  it('returns a route or a positioned error when one character is cut out of a valid route', () => {
    fc.assert(
      fc.property(route, fc.nat(), (ast, cut) => {
        const printed = printRoute(ast);
        const at = cut % printed.length;
        expectWellFormed(printed.slice(0, at) + printed.slice(at + 1));
      }),
      { numRuns: 300 },
    );
  });
});
