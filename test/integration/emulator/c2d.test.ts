// Cloud-to-device messages end to end with the real SDKs: azure-iothub's Client sends over AMQP (TLS on
// 5671, and AmqpWs on 443), the emulator queues per device and delivers over MQTT on
// devices/{id}/messages/devicebound/#, the device's PUBACK completes the message, and the feedback
// receiver gets IoT Hub's feedback batch.
import { request } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import iothub from 'azure-iothub';
import type { Client as ServiceClient, Registry } from 'azure-iothub';
import common from 'azure-iot-common';
import type { Message as MessageType } from 'azure-iot-common';
import device from 'azure-iot-device';
import type { Client as DeviceClientType } from 'azure-iot-device';
import mqtt from 'azure-iot-device-mqtt';
import type { HubEmulator } from '../../../src/emulator/index.ts';
import type { FeedbackRecord } from '../../../src/emulator/c2d.ts';
import { startEmulatorWithRegistry } from './sdk.ts';

let hub: HubEmulator;
let registry: Registry;
let service: ServiceClient;
const feedback: FeedbackRecord[] = [];
const devices: DeviceClientType[] = [];

async function openDevice(deviceId: string, received: MessageType[]): Promise<DeviceClientType> {
  const client = device.Client.fromConnectionString(hub.deviceConnectionString(deviceId), mqtt.Mqtt);
  await client.setOptions({ ca: hub.caCertPem });
  client.on('message', (message: MessageType) => {
    received.push(message);
    void client.complete(message);
  });
  await client.open();
  devices.push(client);
  return client;
}

function until<T>(read: () => T | undefined, what: string, timeoutMs = 30_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const poll = () => {
      const value = read();
      if (value !== undefined) return resolve(value);
      if (Date.now() - started > timeoutMs) return reject(new Error(`gave up waiting for ${what}`));
      setTimeout(poll, 50);
    };
    poll();
  });
}

function adminGet(path: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const headers = { authorization: `Bearer ${hub.adminToken}` };
    request({ host: hub.host, port: hub.httpsPort, path: `/_admin/${path}`, ca: hub.caCertPem, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString())));
    }).on('error', reject).end();
  });
}

function serviceMessage(body: string, messageId: string, ack: string): MessageType {
  const message = new common.Message(body);
  message.messageId = messageId;
  message.ack = ack;
  return message;
}

beforeAll(async () => {
  ({ hub, registry } = await startEmulatorWithRegistry());
  for (const deviceId of ['c2d-online', 'c2d-later', 'c2d-expiry', 'c2d-full', 'c2d-ws']) await registry.create({ deviceId } as never);
  service = iothub.Client.fromConnectionString(hub.serviceConnectionString);
  await service.open();
  // The promise resolves with { result, message }, whatever azure-iothub's typings say.
  const { result: receiver } = (await service.getFeedbackReceiver()) as unknown as { result: ServiceClient.ServiceReceiver };
  receiver.on('message', (batch: MessageType) => {
    feedback.push(...(JSON.parse(batch.getData().toString()) as FeedbackRecord[]));
    receiver.complete(batch, () => {});
  });
});

afterAll(async () => {
  for (const client of devices) await client.close();
  await service?.close();
  await hub?.stop();
});

describe('cloud-to-device messages', () => {
  it('delivers Client.send to a connected device over MQTT with its properties, and feeds back Success', async () => {
    const received: MessageType[] = [];
    await openDevice('c2d-online', received);
    await hub.admin.waitForSubscription({ deviceId: 'c2d-online', moduleId: undefined }, 'devices/c2d-online/messages/devicebound/x');
    const message = serviceMessage('{"cmd":"on"}', 'c2d-1', 'full');
    message.correlationId = 'corr-1';
    message.contentType = 'application/json';
    message.properties.add('priority', 'high');
    await service.send('c2d-online', message);
    const got = await until(() => received[0], 'the device to receive the message');
    expect(got.getData().toString()).toBe('{"cmd":"on"}');
    expect(got).toMatchObject({ messageId: 'c2d-1', correlationId: 'corr-1', contentType: 'application/json', to: '/devices/c2d-online/messages/devicebound' });
    expect(got.properties.getValue('priority')).toBe('high');
    const record = await until(() => feedback.find((f) => f.originalMessageId === 'c2d-1'), 'Success feedback');
    expect(record).toMatchObject({ deviceId: 'c2d-online', statusCode: 'Success', description: 'Success' });
    expect(record.deviceGenerationId).toBe((await registry.get('c2d-online')).responseBody.generationId);
    expect(hub.c2d.messages('c2d-online').map((m) => m.state)).toEqual(['completed']);
  });

  it('queues messages for an offline device and delivers them in order when it connects', async () => {
    await service.send('c2d-later', serviceMessage('first', 'later-1', 'none'));
    await service.send('c2d-later', serviceMessage('second', 'later-2', 'none'));
    expect(hub.c2d.messages('c2d-later').map((m) => m.state)).toEqual(['enqueued', 'enqueued']);
    const received: MessageType[] = [];
    await openDevice('c2d-later', received);
    await until(() => (received.length === 2 ? true : undefined), 'both queued messages');
    expect(received.map((m) => m.getData().toString())).toEqual(['first', 'second']);
    // ack 'none' asks for no feedback.
    expect(feedback.filter((f) => f.originalMessageId.startsWith('later-'))).toEqual([]);
  });

  it('expires an undelivered message and feeds back Expired', async () => {
    const message = serviceMessage('too late', 'exp-1', 'negative');
    message.expiryTimeUtc = Date.now() + 500;
    await service.send('c2d-expiry', message);
    const record = await until(() => feedback.find((f) => f.originalMessageId === 'exp-1'), 'Expired feedback');
    expect(record).toMatchObject({ deviceId: 'c2d-expiry', statusCode: 'Expired' });
    expect(hub.c2d.messages('c2d-expiry').map((m) => m.state)).toEqual(['expired']);
  });

  it('refuses a send to an unknown device with DeviceNotFoundError', async () => {
    await expect(service.send('no-such-device', 'x')).rejects.toMatchObject({ name: 'DeviceNotFoundError' });
  });

  it('refuses the 51st queued message with DeviceMaximumQueueDepthExceededError', async () => {
    for (let i = 0; i < 50; i += 1) await service.send('c2d-full', `m${i}`);
    await expect(service.send('c2d-full', 'one too many')).rejects.toMatchObject({ name: 'DeviceMaximumQueueDepthExceededError' });
  });

  it('takes sends from AmqpWs (AMQP over WebSockets on 443) too', async () => {
    const overWs = iothub.Client.fromConnectionString(hub.serviceConnectionString, iothub.AmqpWs);
    try {
      await overWs.send('c2d-ws', serviceMessage('via ws', 'ws-1', 'none'));
    } finally {
      await overWs.close();
    }
    expect(hub.c2d.messages('c2d-ws').map((m) => m.body.toString())).toEqual(['via ws']);
    // The same record, as a test in another process reads it over /_admin/.
    const listed = (await adminGet('c2d-messages?deviceId=c2d-ws')) as Array<{ messageId: string; state: string; body: string }>;
    expect(listed.map((m) => [m.messageId, m.state, Buffer.from(m.body, 'base64').toString()])).toEqual([['ws-1', 'enqueued', 'via ws']]);
  });

  it('refuses a service connection whose token does not verify', async () => {
    const wrongKey = hub.serviceConnectionString.replace(/SharedAccessKey=[^;]+/, `SharedAccessKey=${Buffer.alloc(32, 1).toString('base64')}`);
    const intruder = iothub.Client.fromConnectionString(wrongKey);
    await expect(intruder.send('c2d-online', 'nope')).rejects.toMatchObject({ amqpError: { name: 'UnauthorizedError' } });
    await intruder.close().catch(() => {});
  });
});
