// Which routes a message matches, and what the router answers per endpoint.
import { describe, expect, it } from '@jest/globals';
import type { HubDesired } from '../../../src/manifest/index.ts';
import { compileRoutes, compileRoutesFromJson, endpointId, parseEndpointId } from '../../../src/routing/index.ts';
import type { MessageSource, RoutedMessage } from '../../../src/routing/index.ts';

function hub(routes: Record<string, string | { route: string; priority?: number; timeToLiveSecs?: number }>, timeToLiveSecs?: number): HubDesired {
  return {
    schemaVersion: '1.1',
    storeAndForwardConfiguration: timeToLiveSecs === undefined ? {} : { timeToLiveSecs },
    routes: Object.fromEntries(
      Object.entries(routes).map(([name, r]) => [name, typeof r === 'string' ? { name, route: r, priority: 9 } : { name, route: r.route, priority: r.priority ?? 9, ...(r.timeToLiveSecs !== undefined ? { timeToLiveSecs: r.timeToLiveSecs } : {}) }]),
    ),
  };
}

function msg(source: MessageSource, properties: Record<string, string> = {}): RoutedMessage {
  return { body: Buffer.from('{"t":30}'), properties, systemProperties: { contentType: 'application/json', contentEncoding: 'utf-8' }, source };
}

const fromSensor = (outputName?: string): MessageSource => ({ kind: 'module', deviceId: 'd', moduleId: 'sensor', ...(outputName !== undefined ? { outputName } : {}) });
const fromDevice: MessageSource = { kind: 'device', deviceId: 'leaf' };
const twinChange: MessageSource = { kind: 'twinChangeNotification', deviceId: 'd', moduleId: 'sensor' };

function matchedRoutes(routes: Record<string, string>, source: MessageSource): string[] {
  const { router, errors } = compileRoutes(hub(routes));
  expect(errors).toEqual([]);
  return router.route(msg(source)).map((m) => m.routeName).sort();
}

describe('sources', () => {
  const routes = {
    all: 'FROM /* INTO BrokeredEndpoint("/modules/a/inputs/all")',
    messages: 'FROM /messages/* INTO BrokeredEndpoint("/modules/a/inputs/messages")',
    modules: 'FROM /messages/modules/* INTO BrokeredEndpoint("/modules/a/inputs/modules")',
    sensor: 'FROM /messages/modules/sensor/* INTO BrokeredEndpoint("/modules/a/inputs/sensor")',
    sensorBare: 'FROM /messages/modules/sensor INTO BrokeredEndpoint("/modules/a/inputs/sensorBare")',
    outputs: 'FROM /messages/modules/sensor/outputs/* INTO BrokeredEndpoint("/modules/a/inputs/outputs")',
    out1: 'FROM /messages/modules/sensor/outputs/out1 INTO BrokeredEndpoint("/modules/a/inputs/out1")',
    twin: 'FROM /twinChangeNotifications INTO BrokeredEndpoint("/modules/a/inputs/twin")',
  };
  it('matches a module output against every enclosing source', () => {
    expect(matchedRoutes(routes, fromSensor('out1'))).toEqual(['all', 'messages', 'modules', 'out1', 'outputs', 'sensor', 'sensorBare']);
  });
  it('matches a module message without an output only by module', () => {
    expect(matchedRoutes(routes, fromSensor())).toEqual(['all', 'messages', 'modules', 'sensor', 'sensorBare']);
  });
  it('does not match another output, or a module whose name extends the routed one', () => {
    expect(matchedRoutes(routes, fromSensor('out10'))).toEqual(['all', 'messages', 'modules', 'outputs', 'sensor', 'sensorBare']);
    expect(matchedRoutes(routes, { kind: 'module', deviceId: 'd', moduleId: 'sensor2', outputName: 'out1' })).toEqual(['all', 'messages', 'modules']);
  });
  it('compares module and output names without case, as edgeHub does', () => {
    expect(matchedRoutes(routes, { kind: 'module', deviceId: 'd', moduleId: 'SENSOR', outputName: 'OUT1' })).toContain('out1');
  });
  it('routes device telemetry by /messages/* and /*, and twin changes only by /* and /twinChangeNotifications', () => {
    expect(matchedRoutes(routes, fromDevice)).toEqual(['all', 'messages']);
    expect(matchedRoutes(routes, twinChange)).toEqual(['all', 'twin']);
  });
});

describe('one answer per endpoint', () => {
  it('sends a message matching several routes to the same endpoint once, under the highest-priority route', () => {
    const { router } = compileRoutes(hub({
      low: { route: 'FROM /* INTO $upstream', priority: 7, timeToLiveSecs: 70 },
      high: { route: 'FROM /messages/modules/sensor/* INTO $upstream', priority: 2, timeToLiveSecs: 20 },
      other: { route: 'FROM /* INTO BrokeredEndpoint("/modules/b/inputs/in")', priority: 5 },
    }, 3600));
    expect(router.route(msg(fromSensor('o')))).toEqual([
      { endpoint: { kind: 'upstream' }, priority: 2, timeToLiveSecs: 20, routeName: 'high' },
      { endpoint: { kind: 'moduleInput', moduleId: 'b', input: 'in' }, priority: 5, timeToLiveSecs: 3600, routeName: 'other' },
    ]);
  });
  it('keeps the earlier-declared route when priorities tie', () => {
    const { router } = compileRoutes(hub({ first: 'FROM /* INTO $upstream', second: 'FROM /messages/* INTO $upstream' }));
    expect(router.route(msg(fromSensor('o'))).map((m) => m.routeName)).toEqual(['first']);
  });
  it('gives a route time to live 0 or absent the store-and-forward one, and none when neither is set', () => {
    const withGlobal = compileRoutes(hub({ zero: { route: 'FROM /* INTO $upstream', timeToLiveSecs: 0 } }, 7200)).router;
    expect(withGlobal.route(msg(fromDevice))[0]?.timeToLiveSecs).toBe(7200);
    const none = compileRoutes(hub({ r: 'FROM /* INTO $upstream' })).router;
    expect(none.route(msg(fromDevice))[0]?.timeToLiveSecs).toBeUndefined();
  });
  it('matches only when the condition is true, not undefined', () => {
    const { router } = compileRoutes(hub({ r: 'FROM /* WHERE $body.t > 25 AND missing = \'x\' INTO $upstream', s: 'FROM /* WHERE $body.t > 25 INTO BrokeredEndpoint("/modules/f/inputs/hot")' }));
    expect(router.route(msg(fromSensor('o'))).map((m) => m.routeName)).toEqual(['s']);
  });
});

describe('compile errors', () => {
  it('reports syntax and type errors per route and keeps the routes that compile', () => {
    const { router, errors } = compileRoutes(hub({ good: 'FROM /* INTO $upstream', syntax: 'FROM /* WHERE INTO $upstream', typed: "FROM /* WHERE 3 = '3' INTO $upstream" }));
    expect(errors).toEqual([
      { routeName: 'syntax', code: 'IEO_ROUTE_SYNTAX', message: expect.stringContaining("route 'syntax'") },
      { routeName: 'typed', code: 'IEO_ROUTE_TYPE', message: expect.stringContaining("invalid operands to binary operator '='") },
    ]);
    expect(router.routeNames).toEqual(['good']);
  });
});

describe('compileRoutesFromJson', () => {
  it('reads the routes file: strings (1.0) and objects with priority and timeToLiveSecs (1.1)', () => {
    const { router, errors } = compileRoutesFromJson({
      schemaVersion: '1.1',
      routes: { up: 'FROM /messages/* INTO $upstream', toFilter: { route: 'FROM /messages/modules/sensor/* INTO BrokeredEndpoint("/modules/filter/inputs/input1")', priority: 0, timeToLiveSecs: 60 } },
      storeAndForwardConfiguration: { timeToLiveSecs: 7200 },
    });
    expect(errors).toEqual([]);
    expect(router.route(msg(fromSensor('o')))).toEqual([
      { endpoint: { kind: 'upstream' }, priority: 9, timeToLiveSecs: 7200, routeName: 'up' },
      { endpoint: { kind: 'moduleInput', moduleId: 'filter', input: 'input1' }, priority: 0, timeToLiveSecs: 60, routeName: 'toFilter' },
    ]);
    expect([...router.endpoints.keys()]).toEqual(['$upstream', '/modules/filter/inputs/input1']);
  });
  it('gives an empty router and schema errors for a malformed document', () => {
    const { router, errors } = compileRoutesFromJson({ schemaVersion: '1.1', routes: { r: { route: 'FROM /* INTO $upstream', priority: 12 } } });
    expect(router.routeNames).toEqual([]);
    expect(errors).toEqual([expect.objectContaining({ code: 'IEO_MANIFEST_SCHEMA', routeName: '' })]);
    expect(compileRoutesFromJson('nonsense').errors).not.toEqual([]);
    expect(compileRoutesFromJson({ schemaVersion: '3.0' }).errors).not.toEqual([]);
  });
});

describe('endpoint ids', () => {
  it('names $upstream and module inputs, and reads them back', () => {
    expect(endpointId({ kind: 'upstream' })).toBe('$upstream');
    expect(endpointId({ kind: 'moduleInput', moduleId: 'filter', input: 'input1' })).toBe('/modules/filter/inputs/input1');
    expect(parseEndpointId('/modules/filter/inputs/input1')).toEqual({ kind: 'moduleInput', moduleId: 'filter', input: 'input1' });
    expect(parseEndpointId('$upstream')).toEqual({ kind: 'upstream' });
    expect(parseEndpointId('elsewhere')).toBeUndefined();
  });
});
