import { describe, expect, it } from '@jest/globals';
import type { DeploymentManifest, Expr, RouteAst } from '../../../src/manifest/index.ts';
import { checkRoutes, modulesReferencedByRoute, parseRoute, printRoute, summariseRoutes } from '../../../src/manifest/index.ts';

function ok(text: string): RouteAst {
  const r = parseRoute(text);
  if (!r.ok) throw new Error(`expected ${text} to parse, got: ${r.error.message}`);
  return r.route;
}

function fail(text: string): { message: string; offset: number; line: number; column: number } {
  const r = parseRoute(text);
  if (r.ok) throw new Error(`expected ${text} to fail, got ${JSON.stringify(r.route)}`);
  return r.error;
}

function condition(where: string): Expr {
  const c = ok(`FROM /messages/* WHERE ${where} INTO $upstream`).condition;
  if (c === undefined) throw new Error('no condition');
  return c;
}

const prop = (name: string): Expr => ({ type: 'property', name });
const num = (raw: string): Expr => ({ type: 'number', value: Number(raw), raw });
const str = (value: string): Expr => ({ type: 'string', value });

describe('route sources', () => {
  it.each([
    ['/*', { kind: 'all' }],
    ['/messages/*', { kind: 'allMessages' }],
    ['/messages/modules/*', { kind: 'allModules' }],
    ['/messages/modules/sensor', { kind: 'module', module: 'sensor', wildcard: false }],
    ['/messages/modules/sensor/*', { kind: 'module', module: 'sensor', wildcard: true }],
    ['/messages/modules/sensor/outputs/*', { kind: 'moduleOutputs', module: 'sensor' }],
    ['/messages/modules/sensor/outputs/temperatureOutput', { kind: 'moduleOutput', module: 'sensor', output: 'temperatureOutput' }],
    ['/messages/modules/Temp.Sensor_2/outputs/out-1', { kind: 'moduleOutput', module: 'Temp.Sensor_2', output: 'out-1' }],
    ['/twinChangeNotifications', { kind: 'twinChangeNotifications' }],
  ])('FROM %s', (source, expected) => {
    expect(ok(`FROM ${source} INTO $upstream`).source).toEqual(expected);
  });

  it.each([
    ['/messages', 5],
    ['/messages/modules', 5],
    ['/messages/modules/m/inputs/x', 24],
    ['/messages/modules/m/outputs', 24],
    ['/messages/modules/m/outputs/', 24],
    ['/events/*', 5],
    ['messages/*', 5],
  ])('refuses FROM %s with the fault at offset %i', (source, offset) => {
    const e = fail(`FROM ${source} INTO $upstream`);
    expect(e.message).toMatch(/source/);
    expect(e.offset).toBe(offset);
  });

  it('refuses a module id with characters IoT Hub does not allow', () => {
    expect(fail('FROM /messages/modules/bad~name/* INTO $upstream').message).toMatch(/'bad~name' is not a module id/);
  });
});

describe('route sinks', () => {
  it('reads $upstream in any case', () => {
    expect(ok('FROM /messages/* INTO $UPSTREAM').sink).toEqual({ kind: 'upstream' });
  });
  it.each([
    'BrokeredEndpoint("/modules/filter/inputs/input1")',
    "BrokeredEndpoint('/modules/filter/inputs/input1')",
    'brokeredendpoint ( "/modules/filter/inputs/input1" )',
  ])('reads %s', (sink) => {
    expect(ok(`FROM /messages/* INTO ${sink}`).sink).toEqual({ kind: 'moduleInput', module: 'filter', input: 'input1' });
  });
  it.each([
    ['FROM /messages/* INTO $downstream', /unknown sink '\$downstream'/, 22],
    ['FROM /messages/* INTO BrokeredEndpoint("/modules/filter/outputs/o")', /BrokeredEndpoint must name/, 39],
    ['FROM /messages/* INTO BrokeredEndpoint(/modules/filter/inputs/i)', /expected a quoted endpoint/, 39],
    ['FROM /messages/* INTO BrokeredEndpoint("/modules/f/inputs/i"', /expected '\)' to close BrokeredEndpoint/, 60],
    ['FROM /messages/* INTO', /expected a sink/, 21],
    ['FROM /messages/* INTO $upstream extra', /unexpected 'extra' after the sink/, 32],
    ['FROM /messages/* INTO Endpoint("x")', /expected a sink/, 22],
  ])('refuses %s', (text, message, offset) => {
    const e = fail(text);
    expect(e.message).toMatch(message);
    expect(e.offset).toBe(offset);
  });
});

describe('route structure', () => {
  it('takes keywords in any case and the optional SELECT * prefix', () => {
    const r = ok('select * from /messages/* where a = 1 into $upstream');
    expect(r.select).toBe(true);
    expect(r.condition).toEqual({ type: 'binary', op: '=', left: prop('a'), right: num('1') });
    expect(ok('FrOm /messages/* WhErE a = 1 InTo $upstream')).toEqual({ ...r, select: false });
  });
  it('accepts newlines, tabs and comments', () => {
    const r = ok('FROM /messages/*\n  WHERE /* only alerts */ level = "alert"\n\tINTO $upstream');
    expect(r.condition).toEqual({ type: 'binary', op: '=', left: prop('level'), right: str('alert') });
  });
  it.each([
    ['', /empty route/, 0],
    ['   ', /empty route/, 3],
    ['INTO $upstream', /must start with FROM/, 0],
    ['FROM', /expected a source/, 4],
    ['FROM /messages/*', /expected WHERE or INTO, found the end of the route/, 16],
    ['FROM /messages/* WHERE', /ends where an expression was expected/, 22],
    ['FROM /messages/* WHERE a = 1', /expected INTO or an operator, found the end/, 28],
    ['FROM /messages/* WHERE a b INTO $upstream', /expected INTO or an operator, found 'b'/, 25],
    ['SELECT FROM /messages/* INTO $upstream', /expected '\*' after SELECT/, 7],
  ])('refuses %j', (text, message, offset) => {
    const e = fail(text);
    expect(e.message).toMatch(message);
    expect(e.offset).toBe(offset);
  });
});

describe('route conditions', () => {
  it('gives AND precedence over OR, and NOT over AND but not over comparisons', () => {
    expect(condition('NOT a = 1 AND b = 2 OR c = 3')).toEqual({
      type: 'binary',
      op: 'OR',
      left: {
        type: 'binary',
        op: 'AND',
        left: { type: 'not', operand: { type: 'binary', op: '=', left: prop('a'), right: num('1') } },
        right: { type: 'binary', op: '=', left: prop('b'), right: num('2') },
      },
      right: { type: 'binary', op: '=', left: prop('c'), right: num('3') },
    });
  });
  it('binds arithmetic tighter than comparison, * tighter than +, and is left-associative', () => {
    expect(condition('a - b - c * 2 > 10 % 3')).toEqual({
      type: 'binary',
      op: '>',
      left: {
        type: 'binary',
        op: '-',
        left: { type: 'binary', op: '-', left: prop('a'), right: prop('b') },
        right: { type: 'binary', op: '*', left: prop('c'), right: num('2') },
      },
      right: { type: 'binary', op: '%', left: num('10'), right: num('3') },
    });
  });
  it('honours parentheses', () => {
    expect(condition('(a = 1 OR b = 2) AND c = 3')).toMatchObject({ op: 'AND', left: { op: 'OR' } });
  });
  it.each(['=', '!=', '<>', '<', '>', '<=', '>='])('reads the comparison %s', (op) => {
    expect(condition(`a ${op} 1`)).toEqual({ type: 'binary', op, left: prop('a'), right: num('1') });
  });
  it('reads || (string concatenation) and ?? (coalesce)', () => {
    expect(condition("a || 'x' = 'yx'")).toMatchObject({ op: '=', left: { op: '||' } });
    expect(condition('$body.t ?? 0 > 5')).toMatchObject({ op: '>', left: { op: '??', left: { type: 'body', path: 't' } } });
  });
  it('reads literals: strings in both quotes with escapes, numbers, booleans, null, undefined', () => {
    expect(condition(`a = 'it\\'s'`)).toMatchObject({ right: str("it's") });
    expect(condition(`a = "say \\"hi\\" \\u0041"`)).toMatchObject({ right: str('say "hi" A') });
    expect(condition('a = 0x1F')).toMatchObject({ right: { type: 'number', value: 31, raw: '0x1F' } });
    expect(condition('a = 2.5e-3')).toMatchObject({ right: { type: 'number', value: 0.0025 } });
    expect(condition('a = .5')).toMatchObject({ right: { type: 'number', value: 0.5 } });
    expect(condition('a = -7')).toMatchObject({ right: { type: 'negate', operand: num('7') } });
    expect(condition('a = true')).toMatchObject({ right: { type: 'boolean', value: true } });
    expect(condition('a = false')).toMatchObject({ right: { type: 'boolean', value: false } });
    expect(condition('a = null')).toMatchObject({ right: { type: 'null' } });
    expect(condition('a = undefined')).toMatchObject({ right: { type: 'undefined' } });
  });
  it('reads TRUE (upper case) as an application property, as edgeHub does', () => {
    expect(condition('a = TRUE')).toMatchObject({ right: prop('TRUE') });
  });
  it('reads names with dots and dashes as one application property, as edgeHub does', () => {
    expect(condition("message-type = 'alert'")).toMatchObject({ left: prop('message-type') });
    expect(condition('a - b > 0')).toMatchObject({ left: { op: '-' } });
  });
  it.each([
    ['$connectionDeviceId', { type: 'systemProperty', name: 'connectionDeviceId', escaped: false }],
    ['$connectionModuleId', { type: 'systemProperty', name: 'connectionModuleId', escaped: false }],
    ['$contentType', { type: 'systemProperty', name: 'contentType', escaped: false }],
    ['$contentEncoding', { type: 'systemProperty', name: 'contentEncoding', escaped: false }],
    ['$messageId', { type: 'systemProperty', name: 'messageId', escaped: false }],
    ['$correlationId', { type: 'systemProperty', name: 'correlationId', escaped: false }],
    ['$userId', { type: 'systemProperty', name: 'userId', escaped: false }],
    ['$iothub-enqueuedtime', { type: 'systemProperty', name: 'iothub-enqueuedtime', escaped: false }],
    ['{$contentType}', { type: 'systemProperty', name: 'contentType', escaped: true }],
    ['$body.machine.temperature', { type: 'body', path: 'machine.temperature', escaped: false }],
    ['$body.readings[0].value', { type: 'body', path: 'readings[0].value', escaped: false }],
    ['{$body.x}', { type: 'body', path: 'x', escaped: true }],
    ['$twin.tags.location.region', { type: 'twin', path: 'tags.location.region', escaped: false }],
    ['$twin.properties.desired.mode', { type: 'twin', path: 'properties.desired.mode', escaped: false }],
  ])('reads %s', (ref, expected) => {
    expect(condition(`${ref} = 'x'`)).toMatchObject({ left: expected });
  });
  it('reads function calls in any case, with their arguments', () => {
    expect(condition("starts_with(lower($connectionModuleId), 'sensor')")).toEqual({
      type: 'call',
      name: 'STARTS_WITH',
      args: [{ type: 'call', name: 'LOWER', args: [{ type: 'systemProperty', name: 'connectionModuleId', escaped: false }] }, str('sensor')],
    });
  });
  it.each([
    'IS_DEFINED($body.x)', 'IS_NULL(a)', 'IS_STRING(a)', 'IS_NUMBER(a)', 'IS_BOOL(a)', 'ABS(a) > 1', 'EXP(a) > 1', 'POWER(a, 2) > 1',
    'SQUARE(a) > 1', 'CEILING(a) > 1', 'FLOOR(a) > 1', 'SIGN(a) > 1', 'SQRT(a) > 1', "CONCAT(a, 'b') = 'x'", "CONCAT(a, 'b', 'c', d) = 'x'",
    'LENGTH(a) > 1', "LOWER(a) = 'x'", "UPPER(a) = 'X'", "SUBSTRING(a, 1) = 'x'", "SUBSTRING(a, 1, 2) = 'x'", "INDEX_OF(a, 'x') > 0",
    "STARTS_WITH(a, 'x')", "ENDS_WITH(a, 'x')", "CONTAINS(a, 'x')", 'AS_NUMBER($body.t) > 5',
  ])('accepts %s', (where) => {
    expect(parseRoute(`FROM /messages/* WHERE ${where} INTO $upstream`).ok).toBe(true);
  });
  it.each([
    ['IS_DEFINED()', /IS_DEFINED takes 1 argument, got 0/],
    ['IS_DEFINED(a, b)', /IS_DEFINED takes 1 argument, got 2/],
    ['POWER(a) > 1', /POWER takes 2 arguments, got 1/],
    ['SUBSTRING(a) = 1', /SUBSTRING takes 2 or 3 arguments, got 1/],
    ['SUBSTRING(a, 1, 2, 3) = 1', /SUBSTRING takes 2 or 3 arguments, got 4/],
    ["CONCAT('a') = 'a'", /CONCAT takes at least 2 arguments, got 1/],
    ['FOO(a)', /unknown function 'FOO'/],
    ['IS_OBJECT($body.x)', /IS_OBJECT is an IoT Hub cloud routing function that edgeHub does not implement/],
    ['IS_ARRAY($body.x)', /IS_ARRAY/],
    ['IS_PRIMITIVE($body.x)', /IS_PRIMITIVE/],
  ])('refuses %s at the function name', (where, message) => {
    const e = fail(`FROM /messages/* WHERE ${where} INTO $upstream`);
    expect(e.message).toMatch(message);
    expect(e.offset).toBe(23);
  });
  it('allows TWIN_CHANGE_INCLUDES only on twin change notifications', () => {
    expect(ok('FROM /twinChangeNotifications WHERE twin_change_includes(properties.desired.mode) INTO $upstream').condition).toEqual({
      type: 'twinChangeIncludes',
      path: 'properties.desired.mode',
    });
    expect(fail('FROM /messages/* WHERE TWIN_CHANGE_INCLUDES(properties.desired.x) INTO $upstream').message).toMatch(/only valid in a route FROM \/twinChangeNotifications/);
  });
  it.each([
    ["a = 'open", /unterminated string/, 27],
    ['a = "x\\n"', /invalid escape/, 29],
    ['a = 1 /* open', /unterminated comment/, 29],
    ['(a = 1', /missing '\)' to close the '\(' at column 24/, 30],
    ['a = 1)', /expected INTO or an operator, found '\)'/, 28],
    [')', /unmatched '\)'/, 23],
    ['a = ', /expected an expression, found 'INTO'/, 28],
    ['a == 1', /expected an expression, found '='/, 26],
    ['a = 1 AND', /expected an expression, found 'INTO'/, 33],
    ['a ! b', /unexpected character '!'/, 25],
    ['a = 12abc', /malformed number/, 27],
    ['$ = 1', /'\$' must be followed by a property name/, 23],
    ['{a} = 1', /expected a \$property inside/, 24],
    ['a = "x" INTO', /expected a sink/, 36],
  ])('refuses WHERE %s with its position', (where, message, offset) => {
    const e = fail(`FROM /messages/* WHERE ${where} INTO $upstream`);
    expect(e.message).toMatch(message);
    expect(e.offset).toBe(offset);
  });
  it('refuses absurdly deep nesting instead of overflowing the stack', () => {
    const deep = `${'('.repeat(5000)}a = 1${')'.repeat(5000)}`;
    expect(fail(`FROM /messages/* WHERE ${deep} INTO $upstream`).message).toMatch(/nested more than 200 levels/);
    expect(fail(`FROM /messages/* WHERE ${'NOT '.repeat(5000)}a INTO $upstream`).message).toMatch(/nested more than/);
  });
});

describe('syntax error positions', () => {
  it('gives 1-based line and column and a caret excerpt of the offending line', () => {
    const e = fail('FROM /messages/*\nWHERE temperature >\nINTO $upstream');
    expect(e).toMatchObject({ line: 3, column: 1, offset: 37 });
    expect(e.message).toBe("expected an expression, found 'INTO' (line 3, column 1)\nINTO $upstream\n^");
  });
  it('places the caret under the fault on a single line', () => {
    const text = 'FROM /messages/* WHERE a = 1 OR OR b = 2 INTO $upstream';
    const e = fail(text);
    expect(e.column).toBe(33);
    const [, line, caret] = e.message.split('\n');
    expect(line).toBe(text);
    expect(caret).toBe(`${' '.repeat(32)}^`);
    expect(text.slice(e.offset)).toMatch(/^OR b/);
  });
});

describe('modulesReferencedByRoute', () => {
  it('lists the source module and the sink module once each', () => {
    expect(modulesReferencedByRoute(ok('FROM /messages/modules/a/outputs/o INTO BrokeredEndpoint("/modules/b/inputs/i")'))).toEqual(['a', 'b']);
    expect(modulesReferencedByRoute(ok('FROM /messages/modules/a/* INTO BrokeredEndpoint("/modules/a/inputs/loop")'))).toEqual(['a']);
    expect(modulesReferencedByRoute(ok('FROM /messages/modules/a INTO $upstream'))).toEqual(['a']);
    expect(modulesReferencedByRoute(ok('FROM /messages/modules/a/outputs/* INTO $upstream'))).toEqual(['a']);
    expect(modulesReferencedByRoute(ok('FROM /messages/* INTO $upstream'))).toEqual([]);
    expect(modulesReferencedByRoute(ok('FROM /* INTO BrokeredEndpoint("/modules/z/inputs/i")'))).toEqual(['z']);
  });
});

function manifestWithRoutes(routes: DeploymentManifest['hub']['routes'], modules: string[], ttl?: number): DeploymentManifest {
  const spec = (id: string) => ({
    id, system: false, type: 'docker' as const, status: 'running' as const, restartPolicy: 'always' as const, startupOrder: 1,
    imagePullPolicy: 'on-create' as const, image: `myacr.azurecr.io/${id}:1`, createOptions: {}, env: {},
  });
  return {
    agent: {
      schemaVersion: '1.1',
      runtime: { type: 'docker', settings: { registryCredentials: {} } },
      systemModules: { edgeAgent: { image: 'mcr.microsoft.com/azureiotedge-agent:1.5', createOptions: {}, env: {} }, edgeHub: { ...spec('edgeHub'), system: true } },
      modules: Object.fromEntries(modules.map((m) => [m, spec(m)])),
    },
    hub: { schemaVersion: '1.1', routes, storeAndForwardConfiguration: ttl === undefined ? {} : { timeToLiveSecs: ttl } },
  };
}

describe('checkRoutes', () => {
  const manifest = manifestWithRoutes(
    {
      good: { name: 'good', route: 'FROM /messages/modules/sensor/* INTO BrokeredEndpoint("/modules/filter/inputs/in")', priority: 9 },
      ghost: { name: 'ghost', route: 'FROM /messages/modules/ghost/* INTO BrokeredEndpoint("/modules/phantom/inputs/in")', priority: 9 },
      'bad/name~1': { name: 'bad/name~1', route: 'FROM /messages/* WHERE INTO $upstream', priority: 9 },
    },
    ['sensor', 'filter'],
  );
  it('reports syntax errors as errors with the route path, escaped as a JSON pointer', () => {
    const { errors } = checkRoutes(manifest, '/modulesContent');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: 'IEO_ROUTE_SYNTAX', path: '/modulesContent/$edgeHub/properties.desired/routes/bad~1name~01' });
    expect(errors[0]?.message).toMatch(/^route 'bad\/name~1': the condition ends where an expression was expected|^route 'bad\/name~1': expected an expression/);
  });
  it('warns, per module, about routes naming modules the deployment lacks', () => {
    const { warnings } = checkRoutes(manifest);
    expect(warnings).toEqual([
      { code: 'IEO_W_UNKNOWN_ROUTE_MODULE', path: '/$edgeHub/properties.desired/routes/ghost', message: "route 'ghost' names module 'ghost', which is not in this deployment" },
      { code: 'IEO_W_UNKNOWN_ROUTE_MODULE', path: '/$edgeHub/properties.desired/routes/ghost', message: "route 'ghost' names module 'phantom', which is not in this deployment" },
    ]);
  });
  it('reports conditions edgeHub would refuse to compile as IEO_ROUTE_TYPE, with a hint for properties compared with numbers', () => {
    const m = manifestWithRoutes({
      typed: { name: 'typed', route: 'FROM /messages/* WHERE temperature > 25 INTO $upstream', priority: 9 },
      converted: { name: 'converted', route: 'FROM /messages/* WHERE AS_NUMBER(temperature) > 25 INTO $upstream', priority: 9 },
      body: { name: 'body', route: 'FROM /messages/* WHERE $body.machine.temperature > 25 INTO $upstream', priority: 9 },
      badPath: { name: 'badPath', route: 'FROM /messages/* WHERE $body.a[x] = 1 INTO $upstream', priority: 9 },
    }, []);
    expect(checkRoutes(m).errors).toEqual([
      { code: 'IEO_ROUTE_TYPE', path: '/$edgeHub/properties.desired/routes/typed', message: expect.stringMatching(/^route 'typed': invalid operands to binary operator '>' in temperature > 25: have 'string' and 'number'.*AS_NUMBER/) },
      { code: 'IEO_ROUTE_TYPE', path: '/$edgeHub/properties.desired/routes/badPath', message: expect.stringContaining('not a supported $body path') },
    ]);
  });
  it('knows edgeHub as a module when it is deployed', () => {
    const m = manifestWithRoutes({ r: { name: 'r', route: 'FROM /messages/modules/edgeHub/* INTO $upstream', priority: 9 } }, []);
    expect(checkRoutes(m)).toEqual({ errors: [], warnings: [] });
  });
});

describe('summariseRoutes', () => {
  it('lists source, sink, priority and effective TTL, highest priority first', () => {
    const m = manifestWithRoutes(
      {
        z: { name: 'z', route: 'FROM /messages/modules/a/outputs/o WHERE x > 1 INTO BrokeredEndpoint("/modules/b/inputs/i")', priority: 9 },
        urgent: { name: 'urgent', route: 'FROM /messages/* INTO $upstream', priority: 0, timeToLiveSecs: 60 },
        broken: { name: 'broken', route: 'FROM nowhere', priority: 9 },
      },
      ['a', 'b'],
      7200,
    );
    expect(summariseRoutes(m)).toEqual([
      { name: 'urgent', source: '/messages/*', sink: '$upstream', filtered: false, priority: 0, ttl: 60 },
      { name: 'broken', source: '(invalid)', sink: '(invalid)', filtered: false, priority: 9, ttl: 7200 },
      { name: 'z', source: '/messages/modules/a/outputs/o', sink: 'b/i', filtered: true, priority: 9, ttl: 7200 },
    ]);
  });
});

describe('printRoute', () => {
  it.each([
    ['from /messages/modules/a/outputs/* where (a = 1) into $upstream', 'FROM /messages/modules/a/outputs/* WHERE a = 1 INTO $upstream'],
    ["FROM /messages/* WHERE NOT (a = 1 OR b = 'x') INTO BrokeredEndpoint('/modules/m/inputs/i')", 'FROM /messages/* WHERE NOT (a = 1 OR b = \'x\') INTO BrokeredEndpoint("/modules/m/inputs/i")'],
    ['FROM /messages/* WHERE a - (b - c) > 0 INTO $upstream', 'FROM /messages/* WHERE a - (b - c) > 0 INTO $upstream'],
    ['FROM /messages/* WHERE (NOT a) = b INTO $upstream', 'FROM /messages/* WHERE (NOT a) = b INTO $upstream'],
    ['FROM /messages/* WHERE -(a + 1) < - -2 INTO $upstream', 'FROM /messages/* WHERE -(a + 1) < - -2 INTO $upstream'],
    ["SELECT * FROM /* WHERE concat({$contentType}, \"it's\") = 'x' INTO $upstream", "SELECT * FROM /* WHERE CONCAT({$contentType}, 'it\\'s') = 'x' INTO $upstream"],
  ])('prints %s canonically', (text, printed) => {
    const ast = ok(text);
    expect(printRoute(ast)).toBe(printed);
    expect(ok(printed)).toEqual(ast);
  });
});
