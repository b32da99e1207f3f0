// Cloud-to-device scenarios of the SDK's device/service and empty-message suites: the service client
// (azure-iothub's Client, over AMQP as it always is) sends a message of the suite's maximum size to a
// device authenticated by a SAS token or by its key, and an empty one; the device receives it with its
// id and properties and completes it. The SDK runs the device side over MQTT, MQTT over WebSockets (and
// AMQP and HTTP, not emulated).
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import type { Message as MessageType } from 'azure-iot-common';
import { closeQuietly, createKeyDevice, deleteDeviceQuietly, DeviceClient, deviceSas, Message, NoRetry, ServiceClient, startTrustedHub, transports, uniqueId } from '../support.ts';
import type { DeviceClientType, HarnessHub, SasDevice, ServiceClientType, TransportName } from '../support.ts';

/** The SDK suite's maximum message: 64 KiB less 512 bytes, less what the id, expiry and property take. */
const maximumSize = 64 * 1024 - 512;

const authentications = {
  'a SAS token': (h: HarnessHub, d: SasDevice, t: TransportName) => DeviceClient.fromSharedAccessSignature(deviceSas(h.host, d.deviceId, d.primaryKey), transports[t]),
  'its key': (_h: HarnessHub, d: SasDevice, t: TransportName) => DeviceClient.fromConnectionString(d.connectionString, transports[t]),
};

export function c2dScenarios(transportName: TransportName): void {
  describe(`cloud-to-device over ${transportName}`, () => {
    let h: HarnessHub;
    let testDevice: SasDevice;
    let client: DeviceClientType | undefined;
    let service: ServiceClientType | undefined;

    beforeAll(async () => {
      h = await startTrustedHub();
      testDevice = await createKeyDevice(h.registry, h.host, 'c2d');
    });

    afterEach(async () => {
      await closeQuietly(client);
      await closeQuietly(service);
    });

    afterAll(async () => {
      await deleteDeviceQuietly(h?.registry, testDevice?.deviceId);
      await h?.hub.stop();
    });

    /** Opens the device, sends `message` from the service, and resolves with the device's copy once completed. */
    async function sendAndReceive(device: DeviceClientType, message: MessageType): Promise<MessageType> {
      client = device;
      await device.open();
      const received = new Promise<MessageType>((resolve, reject) => {
        device.on('message', (msg: MessageType) => {
          // Complete everything, as the SDK's suite does, so the queue stays clean.
          device.complete(msg, (err, result) => {
            if (err) return reject(err);
            expect(result?.constructor.name).toBe('MessageCompleted');
            if (msg.messageId === message.messageId) resolve(msg);
          });
        });
      });
      service = ServiceClient.fromConnectionString(h.connectionString);
      // Without AMQP on the hub the default policy retries for minutes, past the end of the file.
      service.setRetryPolicy(new NoRetry());
      await service.open();
      const sent = await service.send(testDevice.deviceId, message);
      expect(sent.result.constructor.name).toBe('MessageEnqueued');
      return received;
    }

    for (const [how, make] of Object.entries(authentications)) {
      it(`a message of maximum size reaches a device authenticated by ${how}`, async () => {
        const id = uniqueId('c2d');
        const body = Buffer.alloc(maximumSize - (2 * id.length + 8 + 1), id);
        const message = new Message(body);
        message.messageId = id;
        message.expiryTimeUtc = Date.now() + 60_000;
        message.properties.add('tag', id);
        const got = await sendAndReceive(make(h, testDevice, transportName), message);
        expect(Buffer.from(got.data as Buffer).equals(body)).toBe(true);
        expect(got.properties.getValue('tag')).toBe(id);
      });
    }

    it('a message with an empty body reaches the device', async () => {
      const message = new Message('');
      message.messageId = uniqueId('c2d-empty');
      message.expiryTimeUtc = Date.now() + 60_000;
      const got = await sendAndReceive(authentications['its key'](h, testDevice, transportName), message);
      expect(Buffer.from(got.data as Buffer)).toHaveLength(0);
    });
  });
}
