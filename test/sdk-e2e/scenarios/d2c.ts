// Device-to-cloud scenarios of the SDK's device/service and empty-message suites: a device authenticated
// by a SAS token or by its key sends a message of the suite's maximum size, and one of zero bytes, and the
// hub receives it. The SDK reads them back from Event Hubs; here the emulator's capture stands in for it.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { closeQuietly, createKeyDevice, deleteDeviceQuietly, DeviceClient, deviceSas, Message, startTrustedHub, telemetryWithBody, transports } from '../support.ts';
import type { DeviceClientType, HarnessHub, SasDevice, TransportName } from '../support.ts';

/** The SDK suite's maximum message: 64 KiB less 512 bytes for properties. */
const maximumSize = 64 * 1024 - 512;

const authentications = {
  'a SAS token': (h: HarnessHub, d: SasDevice, t: TransportName) => DeviceClient.fromSharedAccessSignature(deviceSas(h.host, d.deviceId, d.primaryKey), transports[t]),
  'its key': (_h: HarnessHub, d: SasDevice, t: TransportName) => DeviceClient.fromConnectionString(d.connectionString, transports[t]),
};

export function d2cScenarios(transportName: TransportName): void {
  describe(`device-to-cloud over ${transportName}`, () => {
    let h: HarnessHub;
    let testDevice: SasDevice;
    const clients: DeviceClientType[] = [];

    beforeAll(async () => {
      h = await startTrustedHub();
      testDevice = await createKeyDevice(h.registry, h.host, 'd2c');
    });

    afterAll(async () => {
      for (const c of clients) await closeQuietly(c);
      await deleteDeviceQuietly(h?.registry, testDevice?.deviceId);
      await h?.hub.stop();
    });

    async function sendAndCapture(client: DeviceClientType, body: Buffer): Promise<void> {
      clients.push(client);
      await client.open();
      const captured = telemetryWithBody(h.hub, testDevice.deviceId, undefined, body);
      const message = new Message(body);
      message.properties.add('scenario', 'd2c');
      await client.sendEvent(message);
      expect((await captured).properties).toMatchObject({ scenario: 'd2c' });
    }

    for (const [how, make] of Object.entries(authentications)) {
      it(`a message of maximum size from a device authenticated by ${how} reaches the hub`, async () => {
        await sendAndCapture(make(h, testDevice, transportName), Buffer.alloc(maximumSize, `${how} `));
      });
    }

    it('a message of zero bytes reaches the hub', async () => {
      await sendAndCapture(authentications['its key'](h, testDevice, transportName), Buffer.alloc(0));
    });
  });
}
