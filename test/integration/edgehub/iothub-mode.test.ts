// The built-in hub between real ModuleClients (MQTT) and IoT Hub (the project's emulator): routes with a
// WHERE, $upstream telemetry from the sending module, twins and direct methods proxied both ways.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Message as MessageType, ModuleClient as ModuleClientType } from 'azure-iot-device';
import iothub from 'azure-iothub';
import { startHubEmulator } from '../../../src/emulator/index.ts';
import type { HubEmulator } from '../../../src/emulator/index.ts';
import { eventually, jsonMessage, metricValue, openModule, registerDerivedIdentities, routesDocument, startHubTrustingEmulator, stopHub, writeHubFiles } from '../../support/edgehub.ts';
import type { HubFiles, HubProcess } from '../../support/edgehub.ts';
import { trustForServiceSdk } from '../emulator/sdk.ts';

const readings = 1000;
const temperature = (i: number) => 15 + (i % 20);
const deviceId = 'edge-hub-dev';

describe('built-in edge hub with IoT Hub (emulator) upstream', () => {
  let emulator: HubEmulator;
  let files: HubFiles;
  let hub: HubProcess;
  const clients: ModuleClientType[] = [];

  beforeAll(async () => {
    emulator = await startHubEmulator();
    trustForServiceSdk(emulator);
    emulator.createEdgeDevice(deviceId);
    files = writeHubFiles({
      deviceId,
      routes: routesDocument({
        sensorToFilter: 'FROM /messages/modules/sensor/outputs/temperatureOutput WHERE $body.temperature > 25 INTO BrokeredEndpoint("/modules/filter/inputs/input1")',
        filterToUpstream: 'FROM /messages/modules/filter/outputs/* INTO $upstream',
      }),
      upstreamConnectionString: emulator.deviceConnectionString(deviceId),
    });
    // As the operator does in IoT Hub mode: module identities exist with the keys derived from the root key.
    registerDerivedIdentities(emulator, files, ['sensor', 'filter']);
    hub = await startHubTrustingEmulator(files, emulator);
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    if (hub) await stopHub(hub);
    await emulator?.stop();
  });

  const open = async (moduleId: string) => {
    const client = await openModule(files, hub, moduleId, emulator.host);
    clients.push(client);
    return client;
  };

  it('sends the filter\'s forwards of the hot readings to IoT Hub as the filter\'s telemetry, exactly once each, in order', async () => {
    const filter = await open('filter');
    filter.on('inputMessage', (_input: string, msg: MessageType) => {
      const reading = JSON.parse(msg.getData().toString()) as { i: number };
      void filter.sendOutputEvent('alerts', jsonMessage({ alert: reading.i }));
    });
    const sensor = await open('sensor');
    for (let i = 0; i < readings; i++) await sensor.sendOutputEvent('temperatureOutput', jsonMessage({ i, temperature: temperature(i) }));

    const expected = Array.from({ length: readings }, (_, i) => i).filter((i) => temperature(i) > 25);
    const upstream = () => emulator.admin.messages({ deviceId });
    await eventually(() => upstream().length >= expected.length, `${expected.length} messages in the emulator`);
    const arrived = upstream();
    expect(arrived.map((m) => (JSON.parse(m.body.toString()) as { alert: number }).alert)).toEqual(expected);
    expect(new Set(arrived.map((m) => m.moduleId))).toEqual(new Set(['filter']));
    expect(arrived[0]?.systemProperties['$.ct']).toBe('application/json');
    expect(await metricValue(hub.metricsUrl, 'edgehub_messages_sent_total', { to: '$upstream' })).toBe(expected.length);
    expect(await metricValue(hub.metricsUrl, 'edgehub_upstream_connected')).toBe(1);
  });

  it('proxies the twin: reported patches reach IoT Hub, desired changes reach the module', async () => {
    const filter = clients[0] as ModuleClientType;
    const twin = await filter.getTwin();
    await new Promise<void>((resolve, reject) => twin.properties.reported.update({ lastAlert: 'now', count: 3 }, (err?: Error) => (err ? reject(err) : resolve())));
    await eventually(() => (emulator.admin.twin(deviceId, 'filter') as { properties: { reported: Record<string, unknown> } }).properties.reported.count === 3, 'the reported patch in IoT Hub');

    const desired = new Promise<Record<string, unknown>>((resolve) => {
      twin.on('properties.desired', (patch: Record<string, unknown>) => {
        if (patch.threshold === 30) resolve(patch);
      });
    });
    emulator.updateTwin(deviceId, 'filter', { properties: { desired: { threshold: 30 } } }, '*', 'merge');
    expect((await desired).threshold).toBe(30);
  });

  it('forwards a direct method from the service SDK to the module and returns its answer', async () => {
    const filter = clients[0] as ModuleClientType;
    filter.onMethod('reset', (request, response) => {
      void response?.send(200, { reset: true, echo: request?.payload });
    });
    const service = iothub.Client.fromConnectionString(emulator.serviceConnectionString);
    const { result } = await service.invokeDeviceMethod(deviceId, 'filter', { methodName: 'reset', payload: { level: 2 }, responseTimeoutInSeconds: 15 });
    expect(result).toEqual({ status: 200, payload: { reset: true, echo: { level: 2 } } });
    await service.close();
  });
});
