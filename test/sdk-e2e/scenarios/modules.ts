// Module scenarios of the SDK's module twin, module methods and module messaging suites: a module
// identity added through the registry connects with its own connection string, receives desired
// properties, reports, answers a direct method and sends telemetry. The SDK runs them over MQTT, MQTT over
// WebSockets (and AMQP, not emulated); its messaging check reads Event Hubs, here the emulator's capture.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { ModuleClient as ModuleClientType, Twin as DeviceTwin } from 'azure-iot-device';
import type { Twin as ServiceTwin } from 'azure-iothub';
import {
  closeQuietly,
  createKeyDevice,
  deleteDeviceQuietly,
  desiredEvent,
  desiredSubscribed,
  Message,
  methodsSubscribed,
  ModuleClient,
  reportProperties,
  ServiceClient,
  startTrustedHub,
  telemetryWithBody,
  transports,
  uniqueId,
} from '../support.ts';
import type { HarnessHub, SasDevice, ServiceClientType, TransportName } from '../support.ts';

interface TestModule {
  device: SasDevice;
  moduleId: string;
  client: ModuleClientType;
}

/** Adds a module to a new device, reads its generated key back and connects it over `transportName`. */
async function connectNewModule(h: HarnessHub, transportName: TransportName): Promise<TestModule> {
  const device = await createKeyDevice(h.registry, h.host, 'module-host');
  const moduleId = uniqueId('mod');
  await h.registry.addModule({ deviceId: device.deviceId, moduleId } as never);
  const found = (await h.registry.getModule(device.deviceId, moduleId)).responseBody;
  const key = found.authentication?.symmetricKey?.primaryKey;
  const client = ModuleClient.fromConnectionString(`HostName=${h.host};DeviceId=${found.deviceId};ModuleId=${found.moduleId};SharedAccessKey=${key}`, transports[transportName]);
  await client.open();
  return { device, moduleId, client };
}

function moduleScenarios(area: string, transportName: TransportName, body: (context: () => { h: HarnessHub; m: TestModule }) => void): void {
  describe(`${area} over ${transportName}`, () => {
    let h: HarnessHub;
    let m: TestModule;
    beforeAll(async () => {
      h = await startTrustedHub();
      m = await connectNewModule(h, transportName);
    });
    afterAll(async () => {
      await closeQuietly(m?.client);
      await deleteDeviceQuietly(h?.registry, m?.device.deviceId);
      await h?.hub.stop();
    });
    body(() => ({ h, m }));
  });
}

export function moduleTwinScenarios(transportName: TransportName): void {
  moduleScenarios('module twin', transportName, (context) => {
    let deviceTwin: DeviceTwin;
    let serviceTwin: ServiceTwin;
    beforeAll(async () => {
      const { h, m } = context();
      serviceTwin = (await h.registry.getModuleTwin(m.device.deviceId, m.moduleId)).responseBody;
      deviceTwin = await m.client.getTwin();
    });

    it('the module receives a desired property the service set', async () => {
      const { h, m } = context();
      const arrived = desiredEvent(deviceTwin, (patch) => patch.colour === 'teal');
      await desiredSubscribed(h.hub, m.device.deviceId, m.moduleId);
      await serviceTwin.update({ properties: { desired: { colour: 'teal' } } } as never);
      expect(await arrived).toMatchObject({ colour: 'teal' });
    });

    it('the service reads a reported property the module sent', async () => {
      await reportProperties(deviceTwin, { firmware: '2.4.1' });
      await serviceTwin.get();
      expect(serviceTwin.properties.reported.firmware).toBe('2.4.1');
    });
  });
}

export function moduleMethodScenarios(transportName: TransportName): void {
  moduleScenarios('module methods', transportName, (context) => {
    let service: ServiceClientType;
    afterAll(async () => closeQuietly(service));

    it('the module answers a direct method the service invokes on it', async () => {
      const { h, m } = context();
      const request = { fanSpeed: 3 };
      const answer = { accepted: false, reason: 'out of range' };
      const seen = new Promise<{ methodName: string; payload: unknown }>((resolve) => {
        m.client.onMethod('setFan', (req, res) => {
          // The SDK types both as optional; it passes both for a method call.
          if (!req || !res) return;
          resolve({ methodName: req.methodName, payload: req.payload });
          res.send(400, answer, () => undefined);
        });
      });
      await methodsSubscribed(h.hub, m.device.deviceId, m.moduleId);
      service = ServiceClient.fromConnectionString(h.connectionString);
      const { result } = await service.invokeDeviceMethod(m.device.deviceId, m.moduleId, {
        methodName: 'setFan',
        payload: request,
        connectTimeoutInSeconds: 30,
        responseTimeoutInSeconds: 45,
      });
      expect(await seen).toEqual({ methodName: 'setFan', payload: request });
      expect(result).toEqual({ status: 400, payload: answer });
    });
  });
}

export function moduleMessagingScenarios(transportName: TransportName): void {
  moduleScenarios('module messaging', transportName, (context) => {
    it('a message the module sends reaches the hub with its device and module identity', async () => {
      const { h, m } = context();
      const body = Buffer.from(`module reading ${uniqueId('msg')}`);
      const captured = telemetryWithBody(h.hub, m.device.deviceId, m.moduleId, body);
      await m.client.sendEvent(new Message(body));
      expect(await captured).toMatchObject({ deviceId: m.device.deviceId, moduleId: m.moduleId });
    });
  });
}
