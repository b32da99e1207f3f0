// Every operator and function of route conditions, with edgeHub's typing and IoT Hub's undefined.
import { describe, expect, it } from '@jest/globals';
import { evaluate, jsonBody, message } from './support.ts';

type Case = [condition: string, expected: boolean | number | string | null | undefined];

function table(cases: Case[]): void {
  it.each(cases)('%s → %p', (condition, expected) => {
    expect(evaluate(condition)).toEqual(expected);
  });
}

function refused(conditions: string[], reason: RegExp = /invalid (operands|arguments)/): void {
  it.each(conditions)('%s does not compile', (condition) => {
    const result = evaluate(condition);
    expect(result).toEqual({ error: expect.stringMatching(reason) });
  });
}

describe('literals and the final value', () => {
  table([
    ['true', true],
    ['false', false],
    ['undefined', undefined],
    ['null', null],
    ["'text'", 'text'],
    ['3', 3],
    ['0x1F = 31', true],
    ['1e3 = 1000', true],
    ['.5 = 0.5', true],
  ]);
});

describe('NOT', () => {
  table([
    ['NOT true', false],
    ['NOT false', true],
    ['NOT (true AND undefined)', undefined],
    ['NOT null', true],
    ['NOT $body.machine.running', false],
    ['NOT $body.machine.stopped', true],
    ['NOT $body.machine.label', undefined],
    ['NOT $body.machine.absent', undefined],
  ]);
  refused(['NOT key1', 'NOT 3', 'NOT undefined']);
});

describe('AND / OR: three-valued, with null as "no opinion"', () => {
  table([
    ['true AND true', true],
    ['true AND false', false],
    ['false AND undefined', false],
    ['undefined AND false', false],
    ['true AND undefined', undefined],
    ['undefined AND undefined', undefined],
    ['true OR undefined', true],
    ['undefined OR true', true],
    ['false OR undefined', undefined],
    ['undefined OR undefined', undefined],
    ['false OR false', false],
    ['key1 = \'value1\' AND sys9 = \'x\'', undefined],
    ['key1 = \'value1\' OR sys9 = \'x\'', true],
    ['null AND true', null],
    ['null AND null', null],
    ['null OR true', true],
    ['null OR false', false],
    ['null OR null', null],
    ['$body.machine.running AND true', true],
    ['$body.machine.running AND $body.machine.stopped', false],
    ['$body.machine.running OR $body.machine.label', undefined],
    ['false AND $body.machine.label', undefined],
  ]);
  refused(['key1 AND true', 'true OR 3', 'null AND undefined', 'undefined OR null', '$body.machine.running AND null']);
});

describe('comparisons', () => {
  table([
    ['3 = 3', true],
    ['3 != 4', true],
    ['3 <> 3', false],
    ['4 < 7', true],
    ['7 <= 7', true],
    ['8 > 7', true],
    ['7 >= 8', false],
    ["'a' < 'b'", true],
    ["'B' < 'a'", true],
    ["'a' = 'a'", true],
    ['false < true', true],
    ['true = true', true],
    ['null = null', true],
    ['null <= null', true],
    ['null < null', false],
    ['null != null', false],
    ['undefined = undefined', undefined],
    ['undefined < undefined', undefined],
    ["key1 = 'value1'", true],
    ["key1 <> 'value1'", false],
    ["missing = 'x'", undefined],
    ["missing != 'x'", undefined],
    ['AS_NUMBER(key2) = 3', true],
    ['AS_NUMBER(missing) = 3', undefined],
    ['$body.machine.temperature > 25', true],
    ['$body.machine.temperature = 30.5', true],
    ["$body.machine.temperature = '30.5'", false],
    ["$body.machine.temperature != '30.5'", true],
    ["$body.machine.temperature > '30'", undefined],
    ['$body.machine.absent = null', true],
    ['$body.machine.nothing = null', true],
    ['$body.machine.absent > 25', undefined],
    ['$body.machine.absent = 25', false],
    ['$body.machine.readings[1] = 20', true],
    ['$body.machine.readings[1] < $body.machine.readings[2]', true],
    ['$body.machine = null', undefined],
    ["$body.machine.history[0].month = 'Feb'", true],
    ['$body.machine.readings[9] = null', true],
  ]);
  refused(["3 = '3'", "key1 > 3", 'true = 1', 'null = 0', 'undefined = 3', '$body.count = undefined']);
  it('hints at AS_NUMBER when a property meets a number', () => {
    expect(evaluate('temperature > 25')).toEqual({ error: expect.stringContaining('AS_NUMBER') });
  });
});

describe('??', () => {
  table([
    ['(AS_NUMBER(key2) ?? 12) = 3', true],
    ['(AS_NUMBER(key1) ?? 12) = 12', true],
    ['(3 % 0 ?? 12) = 12', true],
    ["(missing ?? 'fallback') = 'fallback'", true],
    ['undefined ?? undefined', undefined],
    ['($body.machine.absent ?? 5) = null', true],
    ['($body.machine.label2 ?? 5) = null', true],
  ]);
  refused(['(key1 ?? 12) = 3', 'undefined ?? 3', '(3 ?? key1) = 3']);
});

describe('arithmetic', () => {
  table([
    ['3 + 4', 7],
    ['3 - 4', -1],
    ['3 * 4', 12],
    ['3 / 4', 0.75],
    ['7 % 4', 3],
    ['-7 % 4', -3],
    ['-(3 + 4)', -7],
    ['1 / 0 = 2 / 0', true],
    ['3 % 0', undefined],
    ['IS_DEFINED(3 % 0)', false],
    ['3 + AS_NUMBER(missing)', undefined],
    ['$body.machine.temperature * 2', 61],
    ['$body.machine.readings[0] + $body.machine.readings[1]', 30],
    ["$body.machine.label + 1", undefined],
  ]);
  refused(['3 + key1', "'a' + 'b'", 'true * 2', 'null - 1', '3 + undefined', '- key1']);
  it('refuses % and unary minus on a $body value, as edgeHub cannot compile them', () => {
    expect(evaluate('$body.count % 2')).toEqual({ error: expect.stringContaining('%') });
    expect(evaluate('-$body.count')).toEqual({ error: expect.stringContaining("'-'") });
  });
});

describe('|| (concatenation)', () => {
  table([
    ["'a' || 'b'", 'ab'],
    ["'a' || key1 || 'd'", 'avalue1d'],
    ["'a' || missing", undefined],
    ["$body.machine.label || '!'", 'from-property!'],
    ["{$body.machine.label} || '!'", 'press-7!'],
    ["$body.count || 'x'", undefined],
  ]);
  refused(["'a' || 3", "'a' || null", "'a' || undefined", "'a' || true"]);
});

describe('properties', () => {
  table([
    ["KEY1 = 'value1'", true],
    ["key3 = 'VALUE3'", true],
    ["$sys1 = 'sysvalue1'", true],
    ["$SYS1 = 'sysvalue1'", true],
    ["$sys4 = 'app4'", true],
    ["{$sys4} = 'sysvalue4'", true],
    ["$connectionModuleId = 'sensor'", true],
    ["$contentType = 'application/json'", true],
    ['IS_DEFINED($nothing)', false],
    ['IS_DEFINED($body.machine[0])', true],
    ['IS_DEFINED($sys1[0])', false],
    ["$twin.tags.x = 'y'", undefined],
  ]);
});

describe('$body', () => {
  const withSystem = (systemProperties: Record<string, string>, body: Buffer = Buffer.from(JSON.stringify(jsonBody))) =>
    message({ properties: {}, systemProperties, body });
  it('reads JSON when contentType is application/json and the encoding utf-8, utf-16 or utf-32 (any case)', () => {
    expect(evaluate('$body.count = 3', withSystem({ contentType: 'Application/JSON', contentEncoding: 'UTF-8' }))).toBe(true);
    expect(evaluate('$body.count = 3', withSystem({ contentType: 'application/json', contentEncoding: 'utf-16' }, Buffer.from('{"count":3}', 'utf16le')))).toBe(true);
    const utf32 = Buffer.alloc(4 * '{"count":3}'.length);
    [...'{"count":3}'].forEach((c, i) => utf32.writeUInt32LE(c.codePointAt(0) as number, i * 4));
    expect(evaluate('$body.count = 3', withSystem({ contentType: 'application/json', contentEncoding: 'utf-32' }, utf32))).toBe(true);
  });
  it('is undefined without both system properties, with another content type, or with a body that is not a JSON object', () => {
    expect(evaluate('$body.count = 3', withSystem({ contentType: 'application/json' }))).toBeUndefined();
    expect(evaluate('$body.count = 3', withSystem({ contentEncoding: 'utf-8' }))).toBeUndefined();
    expect(evaluate('$body.count = 3', withSystem({ contentType: 'text/plain', contentEncoding: 'utf-8' }))).toBeUndefined();
    expect(evaluate('$body.count = 3', withSystem({ contentType: 'application/json', contentEncoding: 'latin1' }))).toBeUndefined();
    expect(evaluate('$body.count = 3', withSystem({ contentType: 'application/json', contentEncoding: 'utf-8' }, Buffer.from('{"count":')))).toBeUndefined();
    expect(evaluate('$body.count = 3', withSystem({ contentType: 'application/json', contentEncoding: 'utf-8' }, Buffer.from('[1]')))).toBeUndefined();
    expect(evaluate('IS_DEFINED($body.count)', withSystem({}))).toBe(false);
  });
  it('lets an application property named "$body.<path>" win unless the reference is escaped', () => {
    expect(evaluate("$body.machine.label = 'from-property'")).toBe(true);
    expect(evaluate("{$body.machine.label} = 'press-7'")).toBe(true);
  });
  it('treats twin change notifications as JSON without a contentType', () => {
    const twin = message({ properties: {}, systemProperties: {}, body: Buffer.from('{"properties":{"reported":{"x":1,"gone":null}}}'), source: { kind: 'twinChangeNotification', deviceId: 'd', moduleId: 'm' } });
    expect(evaluate('$body.properties.reported.x = 1', twin)).toBe(true);
  });
  it('refuses paths edgeHub cannot query', () => {
    expect(evaluate('$body.a[x] = 1')).toEqual({ error: expect.stringContaining('not a supported $body path') });
    expect(evaluate('$body.a..b = 1')).toEqual({ error: expect.stringContaining('not a supported $body path') });
  });
});

describe('math functions', () => {
  table([
    ['ABS(-12) = 12', true],
    ['ABS(AS_NUMBER(key2))', 3],
    ['IS_DEFINED(ABS(AS_NUMBER(key1)))', false],
    ['EXP(0)', 1],
    ['ABS(EXP(1) - 2.718281) < 1e-6', true],
    ['POWER(2, 3)', 8],
    ['POWER(10, 4000) = 1 / 0', true],
    ['SQUARE(3)', 9],
    ['CEILING(2.1)', 3],
    ['CEILING(-2.1)', -2],
    ['FLOOR(2.9)', 2],
    ['FLOOR(-2.1)', -3],
    ['SIGN(-2.5)', -1],
    ['SIGN(0)', 0],
    ['SIGN(1 / 0)', 1],
    ['SQRT(16)', 4],
    ['SQRT(-4)', undefined],
    ['ABS($body.machine.temperature)', 30.5],
    ['ABS($body.machine.label)', undefined],
  ]);
  refused(['ABS(key1)', 'EXP(null)', 'POWER(true, 2)', 'SQUARE(undefined)', 'CEILING(key1)', 'FLOOR(null)', 'SIGN(true)', 'SQRT(undefined)']);
});

describe('type functions', () => {
  table([
    ['AS_NUMBER(key2)', 3],
    ["AS_NUMBER('  -1.5e2 ')", -150],
    ["AS_NUMBER('1,000')", 1000],
    ["AS_NUMBER('(5)')", -5],
    ["AS_NUMBER('10e1000') = 1 / 0", true],
    ["AS_NUMBER('abc')", undefined],
    ["AS_NUMBER('')", undefined],
    ['AS_NUMBER(4)', 4],
    ['AS_NUMBER($body.count)', 3],
    ['AS_NUMBER($body.machine.running)', undefined],
    ['IS_BOOL(true)', true],
    ['IS_BOOL(true AND undefined)', undefined],
    ['IS_BOOL(3)', false],
    ['IS_BOOL(key1)', false],
    ['IS_BOOL(missing)', false],
    ['IS_BOOL(undefined)', false],
    ['IS_BOOL($body.machine.running)', true],
    ['IS_BOOL($body.count)', false],
    ['IS_DEFINED(key1)', true],
    ['IS_DEFINED(missing)', false],
    ['IS_DEFINED(undefined)', false],
    ['IS_DEFINED(null)', true],
    ['IS_DEFINED(1 / 0)', true],
    ['IS_DEFINED($body.machine.absent)', true],
    ['IS_DEFINED($body.machine)', false],
    ['IS_NULL(null)', true],
    ['IS_NULL(key1)', false],
    ['IS_NULL(missing)', false],
    ['IS_NULL(3)', false],
    ['IS_NULL($body.machine.nothing)', true],
    ['IS_NULL($body.machine.absent)', true],
    ['IS_NULL($body.count)', false],
    ['IS_NULL($body.machine)', undefined],
    ['IS_NUMBER(12.5)', true],
    ['IS_NUMBER(1 / 0)', false],
    ['IS_NUMBER(AS_NUMBER(key1))', false],
    ["IS_NUMBER('3')", false],
    ['IS_NUMBER($body.count)', true],
    ['IS_NUMBER($body.machine.label)', false],
    ["IS_STRING('x')", true],
    ['IS_STRING(key1)', true],
    ['IS_STRING(missing)', false],
    ['IS_STRING(3)', false],
    ['IS_STRING($body.machine.label)', true],
    ['IS_STRING($body.count)', false],
  ]);
  refused(['AS_NUMBER(true)', 'AS_NUMBER(null)', 'AS_NUMBER(undefined)']);
});

describe('string functions', () => {
  table([
    ["CONCAT('a', 'b', 'c')", 'abc'],
    ["CONCAT('a', key1)", 'avalue1'],
    ["CONCAT('a', missing)", undefined],
    ["CONCAT({$body.machine.label}, '/', $connectionModuleId)", 'press-7/sensor'],
    ["LENGTH('hello')", 5],
    ["LENGTH('')", 0],
    ['LENGTH(key3)', 6],
    ['LENGTH(missing)', undefined],
    ["LOWER('HeLLo')", 'hello'],
    ['UPPER(key1)', 'VALUE1'],
    ['LOWER(missing)', undefined],
    ["SUBSTRING('abc', 1)", 'bc'],
    ["SUBSTRING('abc', 3)", ''],
    ["SUBSTRING('abc', 4)", undefined],
    ["SUBSTRING('abc', -1)", undefined],
    ["SUBSTRING('abc', 1.7)", 'bc'],
    ["SUBSTRING('abc', 1, 1)", 'b'],
    ["SUBSTRING('abc', 1, 0)", ''],
    ["SUBSTRING('abc', 3, 0)", undefined],
    ["SUBSTRING('abc', 1, 3)", undefined],
    ["SUBSTRING('abc', 1, -1)", undefined],
    ["SUBSTRING('hello', 4, 1)", 'o'],
    ["SUBSTRING('abc', 3 % 0)", undefined],
    ['SUBSTRING(missing, 0)', undefined],
    ["INDEX_OF('abcdef', 'cd')", 2],
    ["INDEX_OF('abc', 'x')", -1],
    ["INDEX_OF(missing, 'x')", undefined],
    ["STARTS_WITH('abc', 'ab')", true],
    ["STARTS_WITH('abc', 'AB')", false],
    ["STARTS_WITH(missing, 'a')", undefined],
    ["ENDS_WITH('abc', 'bc')", true],
    ["ENDS_WITH(key1, 'e2')", false],
    ["CONTAINS('abc', 'b')", true],
    ["CONTAINS('abc', 'x')", false],
    ["CONTAINS(key1, missing)", undefined],
    ["CONTAINS($body.machine.label, 'from')", true],
  ]);
  refused([
    "CONCAT('a', 3)", "CONCAT('a', null)", "CONCAT('a', undefined)", 'LENGTH(12)', 'LOWER(null)', 'UPPER(true)',
    "SUBSTRING('abc', 'a')", 'SUBSTRING(1, 1)', "INDEX_OF('a', 1)", "STARTS_WITH(null, 'a')", "ENDS_WITH('a', true)", "CONTAINS(undefined, 'a')",
  ]);
});

describe('twin_change_includes', () => {
  const twin = message({ properties: {}, systemProperties: {}, body: Buffer.from('{"properties":{"reported":{"x":1,"gone":null}},"tags":{"site":"a"}}'), source: { kind: 'twinChangeNotification', deviceId: 'd', moduleId: 'm' } });
  const run = (condition: string) => {
    const { compileRoutes } = routerModule;
    const { router, errors } = compileRoutes({ schemaVersion: '1.1', storeAndForwardConfiguration: {}, routes: { r: { name: 'r', route: `FROM /twinChangeNotifications WHERE ${condition} INTO $upstream`, priority: 0 } } });
    return { matched: router.route(twin).length === 1, errors };
  };
  it('is true for a path present in the change, even as null, and false otherwise', () => {
    expect(run('TWIN_CHANGE_INCLUDES(properties.reported.x)')).toEqual({ matched: true, errors: [] });
    expect(run('TWIN_CHANGE_INCLUDES(properties.reported.gone)')).toEqual({ matched: true, errors: [] });
    expect(run('TWIN_CHANGE_INCLUDES(tags.site)')).toEqual({ matched: true, errors: [] });
    expect(run('TWIN_CHANGE_INCLUDES(properties.reported.y)')).toEqual({ matched: false, errors: [] });
    expect(run('NOT TWIN_CHANGE_INCLUDES(properties.reported.y)')).toEqual({ matched: true, errors: [] });
  });
  it('refuses paths outside properties.reported, properties.desired and tags', () => {
    expect(run('TWIN_CHANGE_INCLUDES(version)').errors).toEqual([expect.objectContaining({ code: 'IEO_ROUTE_TYPE', message: expect.stringContaining("'tags.'") })]);
  });
});

const routerModule = await import('../../../src/routing/index.ts');
