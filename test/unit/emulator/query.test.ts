// The IoT Hub query language: conditions over twins, whole queries, projections, aggregates, paging
// and the 400 answers for text the hub would refuse.
import { describe, expect, it } from '@jest/globals';
import { compileCondition, compileQuery, runQuery } from '../../../src/emulator/query/index.ts';
import type { QuerySource, TwinDocument } from '../../../src/emulator/query/index.ts';
import { HubError } from '../../../src/emulator/errors.ts';

function deviceTwin(deviceId: string, extra: Partial<TwinDocument>): TwinDocument {
  return {
    deviceId,
    status: 'enabled',
    capabilities: { iotEdge: true },
    tags: {},
    properties: { desired: { $version: 1 }, reported: { $version: 1 } },
    ...extra,
  } as TwinDocument;
}

const twins: TwinDocument[] = [
  deviceTwin('plant-1', { tags: { env: 'prod', site: { floor: 3 }, labels: ['a', 'b'] }, properties: { desired: { $version: 4 }, reported: { lastDesiredVersion: 4, temp: 21.5 } } }),
  deviceTwin('plant-2', { tags: { env: 'test', site: { floor: 1 } }, properties: { desired: { $version: 2 }, reported: { lastDesiredVersion: 1, temp: 30 } } }),
  deviceTwin('sensor-1', { status: 'disabled', capabilities: { iotEdge: false }, tags: { env: null } }),
];

const modules: TwinDocument[] = [
  { deviceId: 'plant-1', moduleId: '$edgeAgent', tags: {}, properties: { desired: {}, reported: {} }, configurations: { 'base-1': { status: 'Applied' } } },
  { deviceId: 'plant-1', moduleId: 'filter', tags: {}, properties: { desired: {}, reported: { state: 'running' } } },
  { deviceId: 'plant-2', moduleId: '$edgeAgent', tags: {}, properties: { desired: {}, reported: {} }, configurations: { 'base-1': { status: 'Targeted' } } },
];

const source: QuerySource = { deviceTwins: () => twins, moduleTwins: () => modules };

function matching(condition: string): string[] {
  const test = compileCondition(condition);
  return twins.filter(test).map((t) => t.deviceId as string);
}

describe('compileCondition', () => {
  it.each([
    ["tags.env = 'prod'", ['plant-1']],
    ['tags.env = "test"', ['plant-2']],
    ["tags.env != 'prod'", ['plant-2', 'sensor-1']],
    ["tags.env <> 'prod'", ['plant-2', 'sensor-1']],
    ['tags.site.floor > 1', ['plant-1']],
    ['tags.site.floor >= 1', ['plant-1', 'plant-2']],
    ['tags.site.floor < 3', ['plant-2']],
    ['tags.site.floor <= 3 AND tags.site.floor >= 3', ['plant-1']],
    ["deviceId IN ['plant-2', 'sensor-1', 'absent']", ['plant-2', 'sensor-1']],
    ["deviceId NIN ['plant-2']", ['plant-1', 'sensor-1']],
    ['capabilities.iotEdge = true', ['plant-1', 'plant-2']],
    ["status = 'disabled'", ['sensor-1']],
    ["tags.env = 'prod' OR tags.env = 'test'", ['plant-1', 'plant-2']],
    ["NOT (tags.env = 'prod')", ['plant-2', 'sensor-1']],
    ["NOT tags.env = 'prod' AND capabilities.iotEdge = true", ['plant-2']],
    ['IS_DEFINED(tags.site)', ['plant-1', 'plant-2']],
    ['is_defined(tags.env)', ['plant-1', 'plant-2', 'sensor-1']],
    ['IS_NULL(tags.env)', ['sensor-1']],
    ['IS_NUMBER(properties.reported.temp) AND IS_OBJECT(tags.site)', ['plant-1', 'plant-2']],
    ["STARTSWITH(deviceId, 'plant')", ['plant-1', 'plant-2']],
    ["ENDSWITH(deviceId, '-1')", ['plant-1', 'sensor-1']],
    ["CONTAINS(deviceId, 'nt-')", ['plant-1', 'plant-2']],
    ["ARRAY_CONTAINS(tags.labels, 'b')", ['plant-1']],
    ['properties.desired.$version = properties.reported.lastDesiredVersion', ['plant-1']],
    ['properties.reported.temp * 2 > 50', ['plant-2']],
    ['-properties.reported.temp < -25', ['plant-2']],
    ['tags.site.floor % 2 = 1 AND tags.site.floor - 1 = 0', ['plant-2']],
    ["tags.env = 'prod' and tags.site.floor = 3", ['plant-1']],
    ['tags.missing = 1 OR deviceId = "plant-2"', ['plant-2']],
    ['(tags.missing = 1) = false', []],
    ["tags.site = 3 OR tags.site.floor = '3'", []],
  ])('%s', (condition, expected) => {
    expect(matching(condition)).toEqual(expected);
  });

  it('reads keys that are not identifiers with [[ ]] and keywords after a dot', () => {
    expect(compileCondition("configurations.[[base-1]].status = 'Applied'")(modules[0]!)).toBe(true);
    expect(compileCondition("configurations.[[base-1]].status = 'Applied'")(modules[2]!)).toBe(false);
    expect(compileCondition('tags.from = 1')({ tags: { from: 1 } })).toBe(true);
  });

  it('matches no twin when a property is missing, whatever the operator', () => {
    for (const condition of ["tags.nope != 'x'", 'tags.nope < 1', 'NOT tags.nope = 1', "tags.nope IN ['x']", "tags.nope NIN ['x']"]) {
      expect(matching(condition)).toEqual([]);
    }
  });

  it.each([
    ["tags.env = 'prod' AND", 'ends early'],
    ["tags.env == 'prod'", "unexpected '='"],
    ["tags.env = 'prod' garbage", "unexpected 'garbage'"],
    ["tags.env = 'prod", "unexpected character"],
    ['FROBNICATE(tags.env)', 'unknown function FROBNICATE'],
    ["STARTSWITH(deviceId)", 'STARTSWITH takes 2 argument(s), not 1'],
    ['', 'empty'],
  ])('refuses %j with a 400 (%s)', (condition, message) => {
    let thrown: unknown;
    try {
      compileCondition(condition);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(HubError);
    expect((thrown as HubError).status).toBe(400);
    expect((thrown as HubError).message).toContain(message);
  });
});

describe('runQuery', () => {
  it('returns whole twins for SELECT *, filtered by WHERE', () => {
    expect(runQuery('SELECT * FROM devices', source).items).toEqual(twins);
    expect(runQuery("select * from devices where tags.env = 'prod'", source).items).toEqual([twins[0]]);
  });

  it('queries module twins with devices.modules', () => {
    const page = runQuery("SELECT * FROM devices.modules WHERE moduleId = '$edgeAgent' AND configurations.[[base-1]].status = 'Applied'", source);
    expect(page.items).toEqual([modules[0]]);
    expect(runQuery("SELECT deviceId, moduleId FROM devices.modules WHERE deviceId IN ['plant-1']", source).items).toEqual([
      { deviceId: 'plant-1', moduleId: '$edgeAgent' },
      { deviceId: 'plant-1', moduleId: 'filter' },
    ]);
  });

  it('projects values under their last name or their alias, leaving out undefined ones', () => {
    expect(runQuery('SELECT deviceId, tags.site.floor, tags.env AS environment FROM devices', source).items).toEqual([
      { deviceId: 'plant-1', floor: 3, environment: 'prod' },
      { deviceId: 'plant-2', floor: 1, environment: 'test' },
      { deviceId: 'sensor-1', environment: null },
    ]);
  });

  it('counts, sums and groups', () => {
    expect(runQuery('SELECT COUNT() AS numberOfDevices FROM devices WHERE capabilities.iotEdge = true', source).items).toEqual([{ numberOfDevices: 2 }]);
    expect(runQuery("SELECT COUNT() AS n FROM devices WHERE tags.env = 'none'", source).items).toEqual([{ n: 0 }]);
    expect(runQuery('SELECT SUM(properties.reported.temp) AS s, AVG(properties.reported.temp) AS a, MAX(tags.site.floor) AS m FROM devices', source).items)
      .toEqual([{ s: 51.5, a: 25.75, m: 3 }]);
    expect(runQuery('SELECT capabilities.iotEdge AS edge, COUNT() AS n FROM devices GROUP BY capabilities.iotEdge', source).items)
      .toEqual([{ edge: true, n: 2 }, { edge: false, n: 1 }]);
  });

  it('limits with TOP', () => {
    expect(runQuery('SELECT TOP 2 deviceId FROM devices', source).items).toEqual([{ deviceId: 'plant-1' }, { deviceId: 'plant-2' }]);
  });

  it('pages with a continuation token until the last page, which has none', () => {
    const first = runQuery('SELECT deviceId FROM devices', source, { maxItemCount: 2 });
    expect(first.items).toHaveLength(2);
    expect(first.continuation).toEqual(expect.any(String));
    const second = runQuery('SELECT deviceId FROM devices', source, { maxItemCount: 2, continuation: first.continuation! });
    expect(second.items).toEqual([{ deviceId: 'sensor-1' }]);
    expect(second.continuation).toBeUndefined();
    expect(() => runQuery('SELECT * FROM devices', source, { continuation: 'not a token' })).toThrow(HubError);
    expect(() => runQuery('SELECT * FROM devices', source, { maxItemCount: 0 })).toThrow(HubError);
  });

  it.each([
    ['SELECT * FROM things', 'FROM names devices'],
    ['SELECT * FROM devices.jobs', 'devices.jobs'],
    ['SELECT deviceId, COUNT() AS n FROM devices', 'GROUP BY'],
    ['SELECT * FROM devices GROUP BY tags.env', 'cannot be grouped'],
    ['SELECT * devices', "unexpected 'devices'"],
  ])('refuses %j', (query, message) => {
    expect(() => runQuery(query, source)).toThrow(message);
  });

  it('compiles a query once and runs it against the current documents', () => {
    const compiled = compileQuery("SELECT deviceId FROM devices WHERE tags.env = 'prod'");
    const live: TwinDocument[] = [];
    const liveSource: QuerySource = { deviceTwins: () => live, moduleTwins: () => [] };
    expect(compiled.results(liveSource)).toEqual([]);
    live.push(deviceTwin('late', { tags: { env: 'prod' } }));
    expect(compiled.results(liveSource)).toEqual([{ deviceId: 'late' }]);
  });
});
