// Property tests: the compiled closures agree with a slow reference interpreter of the README's
// rules over random conditions and random messages, and the three-valued logic behaves.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { routeFunctions } from '../../../src/manifest/index.ts';
import type { BinaryOperator, Expr, FunctionName } from '../../../src/manifest/index.ts';
import { compileCondition } from '../../../src/routing/index.ts';
import type { RoutedMessage, Value } from '../../../src/routing/index.ts';
import { newEvalContext } from '../../../src/routing/compile.ts';
import { interpret, ReferenceTypeError, typeOf } from './reference.ts';

// Few names, so that random conditions often read something the random message has.
const propertyNames = ['a', 'b', 'n', 'N', 'flag'];
const bodyPaths = ['t', 'label', 'on', 'nothing', 'list[0]', 'list[5]', 'obj', 'obj.x', 'missing'];
const strings = ['', 'a', 'B', 'ab', '12', ' 3 ', 'x,y', '1e2', 'true'];

const numberLiteral: fc.Arbitrary<Expr> = fc
  .oneof(fc.integer({ min: 0, max: 12 }), fc.constantFrom(0.5, 2.25, 1e3, 0))
  .map((value) => ({ type: 'number', value, raw: String(value) }));

const leaf: fc.Arbitrary<Expr> = fc.oneof(
  fc.constantFrom(...strings).map((value): Expr => ({ type: 'string', value })),
  numberLiteral,
  fc.boolean().map((value): Expr => ({ type: 'boolean', value })),
  fc.constant<Expr>({ type: 'null' }),
  fc.constant<Expr>({ type: 'undefined' }),
  fc.constantFrom(...propertyNames).map((name): Expr => ({ type: 'property', name })),
  fc.record({ name: fc.constantFrom('connectionModuleId', 'contentType', 'messageId', 'sys'), escaped: fc.boolean() }).map((r): Expr => ({ type: 'systemProperty', ...r })),
  fc.record({ path: fc.constantFrom(...bodyPaths), escaped: fc.boolean() }).map((r): Expr => ({ type: 'body', ...r })),
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
    fc.constantFrom(...functionNames).chain((name) => {
      const [min, max] = routeFunctions[name];
      return fc.array(tie('expr'), { minLength: min, maxLength: Math.min(max, min + 1) }).map((args): Expr => ({ type: 'call', name, args }));
    }),
  ),
}));

const jsonValue = fc.oneof(fc.integer({ min: -3, max: 30 }), fc.constantFrom(...strings), fc.boolean(), fc.constant(null), fc.constant({ x: 1 }), fc.constant([1, 2]));

const routedMessage: fc.Arbitrary<RoutedMessage> = fc.record({
  properties: fc.dictionary(fc.constantFrom(...propertyNames, '$sys', '$body.label'), fc.constantFrom(...strings)),
  sys: fc.dictionary(fc.constantFrom('connectionModuleId', 'messageId', 'sys', 'SYS'), fc.constantFrom(...strings)),
  json: fc.boolean(),
  utf16: fc.boolean(),
  body: fc.record({ t: jsonValue, label: jsonValue, on: jsonValue, nothing: jsonValue, list: fc.array(jsonValue, { maxLength: 2 }), obj: fc.oneof(fc.constant({ x: 'y' }), jsonValue) }, { requiredKeys: [] }),
}).map(({ properties, sys, json, utf16, body }) => ({
  body: Buffer.from(JSON.stringify(body), utf16 ? 'utf16le' : 'utf8'),
  properties,
  systemProperties: json ? { ...sys, contentType: 'application/json', contentEncoding: utf16 ? 'UTF-16' : 'utf-8' } : sys,
  source: { kind: 'module', deviceId: 'd', moduleId: 'm', outputName: 'o' },
}));

type Outcome = { error: true } | { value: Value };

function compiled(e: Expr, msg: RoutedMessage): Outcome {
  const c = compileCondition(e);
  return c.ok ? { value: c.evaluate(newEvalContext(msg)) } : { error: true };
}

function reference(e: Expr, msg: RoutedMessage): Outcome {
  try {
    typeOf(e);
  } catch (err) {
    if (err instanceof ReferenceTypeError) return { error: true };
    throw err;
  }
  return { value: interpret(e, msg) };
}

/** Equality as conditions see it: -0 and 0 are the same number. */
function normalise(o: Outcome): Outcome {
  return 'value' in o && o.value === 0 ? { value: 0 } : o;
}

const runs = { numRuns: 1000 };

describe('compiled conditions', () => {
  it('agree with the reference interpreter, including on which conditions do not compile', () => {
    fc.assert(fc.property(expr, routedMessage, (e, msg) => {
      expect(normalise(compiled(e, msg))).toEqual(normalise(reference(e, msg)));
    }), runs);
  });

  it('compile a fair share of random conditions (so the agreement above is not all errors)', () => {
    const sample = fc.sample(expr, { numRuns: 2000, seed: 42 });
    const ok = sample.filter((e) => compileCondition(e).ok).length;
    expect(ok / sample.length).toBeGreaterThan(0.2);
  });

  it('NOT flips a defined boolean and keeps undefined undefined', () => {
    fc.assert(fc.property(expr, routedMessage, (e, msg) => {
      const inner = compileCondition(e);
      fc.pre(inner.ok && inner.type === 'bool');
      const negated = compileCondition({ type: 'not', operand: e });
      if (!inner.ok || !negated.ok) throw new Error('NOT of a bool must compile');
      const v = inner.evaluate(newEvalContext(msg));
      const n = negated.evaluate(newEvalContext(msg));
      expect(n).toBe(v === undefined ? undefined : !v);
    }), runs);
  });

  it('a comparison or arithmetic with an undefined operand is undefined', () => {
    // An operand that is undefined on every message, for each type a comparison can take.
    const undefinedOf: Record<string, Expr> = {
      number: { type: 'call', name: 'AS_NUMBER', args: [{ type: 'property', name: 'never' }] },
      string: { type: 'property', name: 'never' },
      bool: { type: 'binary', op: 'AND', left: { type: 'boolean', value: true }, right: { type: 'undefined' } },
    };
    const typed = expr.map((e) => ({ e, c: compileCondition(e) })).filter(({ c }) => c.ok && c.type in undefinedOf);
    const ops: BinaryOperator[] = ['=', '!=', '<>', '<', '>', '<=', '>=', '+', '-', '*', '/'];
    fc.assert(fc.property(typed, fc.constantFrom(...ops), fc.boolean(), routedMessage, ({ e, c }, op, undefinedOnLeft, msg) => {
      const u = undefinedOf[c.ok ? c.type : ''] as Expr;
      const both = compileCondition({ type: 'binary', op, left: undefinedOnLeft ? u : e, right: undefinedOnLeft ? e : u });
      fc.pre(both.ok);
      if (both.ok) expect(both.evaluate(newEvalContext(msg))).toBeUndefined();
    }), runs);
  });

  it('a condition reads only what the message has: the same message always gives the same value', () => {
    fc.assert(fc.property(expr, routedMessage, (e, msg) => {
      const c = compileCondition(e);
      fc.pre(c.ok);
      if (!c.ok) return;
      const ctx = newEvalContext(msg);
      expect(normalise({ value: c.evaluate(ctx) })).toEqual(normalise({ value: c.evaluate(ctx) }));
    }), runs);
  });
});
