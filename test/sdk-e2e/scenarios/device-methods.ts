// Direct method scenarios of the SDK's device-method suite: the service invokes a method on a device
// client and gets its status and payload back, for several payload shapes, with a service client made
// from a SAS token, and after the device renews its own SAS. The SDK runs them over MQTT, MQTT over
// WebSockets (and AMQP, not emulated).
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import {
  closeQuietly,
  createKeyDevice,
  deleteDeviceQuietly,
  DeviceClient,
  deviceSas,
  inAnHour,
  methodsSubscribed,
  renewSas,
  ServiceClient,
  ServiceConnectionString,
  ServiceSas,
  startTrustedHub,
  transports,
} from '../support.ts';
import type { DeviceClientType, HarnessHub, SasDevice, ServiceClientType, TransportName } from '../support.ts';

const methodName = 'reboot';
const deviceStatus = 201;

export function deviceMethodScenarios(transportName: TransportName): void {
  const Transport = transports[transportName];
  describe(`device methods over ${transportName}`, () => {
    let h: HarnessHub;
    let testDevice: SasDevice;
    let client: DeviceClientType;
    const serviceClients: ServiceClientType[] = [];

    beforeAll(async () => {
      h = await startTrustedHub();
      testDevice = await createKeyDevice(h.registry, h.host, 'methods');
    });

    afterAll(async () => {
      for (const s of serviceClients) await closeQuietly(s);
      await deleteDeviceQuietly(h?.registry, testDevice?.deviceId);
      await h?.hub.stop();
    });

    beforeEach(async () => {
      client = DeviceClient.fromSharedAccessSignature(deviceSas(h.host, testDevice.deviceId, testDevice.primaryKey), Transport);
      await client.open();
    });

    afterEach(async () => {
      await closeQuietly(client);
    });

    /** The device answers `methodName` with deviceStatus, echoing the payload; returns what it was called with. */
    function answerEchoing(): Promise<{ methodName: string; payload: unknown }> {
      return new Promise((resolve) => {
        client.onDeviceMethod(methodName, (request, response) => {
          resolve({ methodName: request.methodName, payload: request.payload });
          response.send(deviceStatus, request.payload, () => undefined);
        });
      });
    }

    async function invoke(service: ServiceClientType, payload: unknown): Promise<void> {
      serviceClients.push(service);
      const seen = answerEchoing();
      await methodsSubscribed(h.hub, testDevice.deviceId);
      const { result } = await service.invokeDeviceMethod(testDevice.deviceId, {
        methodName,
        payload,
        connectTimeoutInSeconds: 30,
        responseTimeoutInSeconds: 45,
      });
      expect(await seen).toEqual({ methodName, payload });
      expect(result).toEqual({ status: deviceStatus, payload });
    }

    for (const payload of [null, '', 'text', { mode: 'soft' }, {}]) {
      it(`a method call with payload ${JSON.stringify(payload)} reaches the device and its answer the service`, async () => {
        await invoke(ServiceClient.fromConnectionString(h.connectionString), payload);
      });
    }

    it('a service client made from a shared access signature invokes a method', async () => {
      const cs = ServiceConnectionString.parse(h.connectionString);
      const sas = ServiceSas.create(cs.HostName ?? '', cs.SharedAccessKeyName ?? '', cs.SharedAccessKey ?? '', inAnHour());
      await invoke(ServiceClient.fromSharedAccessSignature(sas.toString()), 'text');
    });

    it('a method call reaches the device after it renewed its SAS', async () => {
      await renewSas(client, deviceSas(h.host, testDevice.deviceId, testDevice.primaryKey));
      await invoke(ServiceClient.fromConnectionString(h.connectionString), { mode: 'hard' });
    });
  });
}
