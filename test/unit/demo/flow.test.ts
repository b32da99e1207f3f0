// The demo's message flow, checked with the project's own route evaluator: the sample sensor's readings
// reach the filter only when hot, the filter's output goes upstream; and the demo's counts per route are
// read correctly from the hub's metrics.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { repoRoot } from '../../../scripts/cluster/control-plane.ts';
import { deliveredOnRoute, parsePrometheus, receivedFromModule, routeSink } from '../../../scripts/demo/flow.ts';
import { compileRoutesFromJson, type RoutedMessage } from '../../../src/routing/index.ts';
import { reading } from '../../../samples/modules/simulated-temperature-sensor/main.ts';

const manifest = JSON.parse(readFileSync(join(repoRoot, 'manifests/examples/demo-deployment.json'), 'utf8')) as {
  modulesContent: { $edgeHub: { 'properties.desired': { routes: Record<string, { route: string }> } } };
};
const hubDesired = manifest.modulesContent.$edgeHub['properties.desired'];

/** A message as the sample sensor sends it (see samples/modules/simulated-temperature-sensor/main.ts). */
function sensorMessage(temperature: number): RoutedMessage {
  const body = { ...reading(0, () => 0.5), machine: { temperature, pressure: 1 } };
  return {
    body: Buffer.from(JSON.stringify(body)),
    properties: { sequenceNumber: '1', batchId: 'b', temperature: String(temperature) },
    systemProperties: { contentType: 'application/json', contentEncoding: 'utf-8' },
    source: { kind: 'module', deviceId: 'demo-device', moduleId: 'SimulatedTemperatureSensor', outputName: 'temperatureOutput' },
  };
}

describe('the demo deployment\'s routes', () => {
  const { router, errors } = compileRoutesFromJson(hubDesired);

  it('compile with the route evaluator the built-in hub uses', () => {
    expect(errors).toEqual([]);
  });

  it('send hot sensor readings to the filter\'s input1 and cool ones nowhere', () => {
    expect(router.route(sensorMessage(27.5)).map((m) => m.endpoint)).toEqual([{ kind: 'moduleInput', moduleId: 'filter', input: 'input1' }]);
    expect(router.route(sensorMessage(24.9))).toEqual([]);
  });

  it('send the filter\'s output1 upstream', () => {
    const alert: RoutedMessage = { ...sensorMessage(30), source: { kind: 'module', deviceId: 'demo-device', moduleId: 'filter', outputName: 'output1' } };
    expect(router.route(alert).map((m) => m.endpoint)).toEqual([{ kind: 'upstream' }]);
  });
});

describe('the sensor\'s temperature application property (samples/modules/README.md)', () => {
  const compile = (where: string) => compileRoutesFromJson({ schemaVersion: '1.1', routes: { r: `FROM /messages/modules/SimulatedTemperatureSensor/* WHERE ${where} INTO $upstream` } });

  it('routes with AS_NUMBER(temperature), since properties are strings', () => {
    const { router, errors } = compile('AS_NUMBER(temperature) > 25');
    expect(errors).toEqual([]);
    expect(router.route(sensorMessage(26))).toHaveLength(1);
    expect(router.route(sensorMessage(25))).toHaveLength(0);
  });

  it('is refused bare, as edgeHub refuses comparing a string with a number', () => {
    expect(compile('temperature > 25').errors.map((e) => e.code)).toEqual(['IEO_ROUTE_TYPE']);
  });
});

describe('counts from the hub\'s metrics', () => {
  const metrics = parsePrometheus([
    '# HELP edgehub_messages_sent_total Messages delivered',
    '# TYPE edgehub_messages_sent_total counter',
    'edgehub_messages_sent_total{from="SimulatedTemperatureSensor",to="filter",to_route_input="input1"} 12',
    'edgehub_messages_sent_total{from="filter",to="$upstream",to_route_input=""} 11',
    'edgehub_messages_received_total{id="SimulatedTemperatureSensor",route_output="temperatureOutput"} 25',
    'edgehub_messages_received_total{id="filter",route_output="output1"} 11',
  ].join('\n'));

  it('reads delivered messages per route from the route\'s source and sink', () => {
    const routes = hubDesired.routes;
    expect(deliveredOnRoute(metrics, routes.sensorToFilter!.route)).toBe(12);
    expect(deliveredOnRoute(metrics, routes.filterToUpstream!.route)).toBe(11);
    expect(deliveredOnRoute(metrics, 'FROM /messages/* INTO $upstream')).toBe(11);
    expect(deliveredOnRoute(metrics, 'FROM /messages/* INTO somewhere')).toBeUndefined();
  });

  it('reads what each module published', () => {
    expect(receivedFromModule(metrics, 'SimulatedTemperatureSensor')).toBe(25);
    expect(receivedFromModule(metrics, 'nobody')).toBe(0);
  });

  it('parses sinks', () => {
    expect(routeSink('FROM /messages/* INTO $upstream')).toEqual({ kind: 'upstream' });
    expect(routeSink('FROM /x INTO BrokeredEndpoint("/modules/m/inputs/i")')).toEqual({ kind: 'module', module: 'm', input: 'i' });
  });
});
