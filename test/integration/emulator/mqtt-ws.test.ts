// MQTT over WebSockets: the device SDK's MqttWs transport dials wss://<host>:443/$iothub/websocket with the
// `mqtt` subprotocol. A device and a module connect that way and use every device-side surface (telemetry,
// twin get/report/desired, direct methods) through the same broker that serves 8883.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { connect as tlsConnect } from 'node:tls';
import iothub from 'azure-iothub';
import type { Client as ServiceClient, Registry } from 'azure-iothub';
import device from 'azure-iot-device';
import type { Client as DeviceClientType, ModuleClient as ModuleClientType } from 'azure-iot-device';
import mqtt from 'azure-iot-device-mqtt';
import { WebSocket } from 'ws';
import type { HubEmulator } from '../../../src/emulator/index.ts';
import { desiredVersion, Message, startEmulatorWithRegistry, updateReported } from './sdk.ts';

let hub: HubEmulator;
let registry: Registry;
let service: ServiceClient;
let leaf: DeviceClientType;
let module: ModuleClientType;

beforeAll(async () => {
  ({ hub, registry } = await startEmulatorWithRegistry());
  service = iothub.Client.fromConnectionString(hub.serviceConnectionString);
  await registry.create({ deviceId: 'ws-leaf' } as never);
  await registry.create({ deviceId: 'ws-edge', capabilities: { iotEdge: true } } as never);
  await registry.addModule({ deviceId: 'ws-edge', moduleId: 'filter' } as never);
  leaf = device.Client.fromConnectionString(hub.deviceConnectionString('ws-leaf'), mqtt.MqttWs);
  await leaf.setOptions({ ca: hub.caCertPem });
  await leaf.open();
  module = device.ModuleClient.fromConnectionString(hub.moduleConnectionString('ws-edge', 'filter'), mqtt.MqttWs);
  await module.setOptions({ ca: hub.caCertPem });
  await module.open();
});

afterAll(async () => {
  await leaf?.close();
  await module?.close();
  await service?.close();
  await hub?.stop();
});

describe('MQTT over WebSockets (MqttWs) on the HTTPS port', () => {
  it('connects a device and a module with MqttWs (which always dials 443)', () => {
    const connected = hub.admin.connections().map((c) => `${c.deviceId}/${c.moduleId ?? ''}`);
    expect(connected).toEqual(expect.arrayContaining(['ws-leaf/', 'ws-edge/filter']));
    expect(hub.httpsPort).toBe(443);
  });

  it('captures device telemetry with its properties', async () => {
    const message = new Message(JSON.stringify({ t: 1 }));
    message.messageId = 'ws-1';
    message.properties.add('via', 'websocket');
    await leaf.sendEvent(message);
    const captured = await hub.admin.waitForMessage((m) => m.systemProperties['$.mid'] === 'ws-1');
    expect(captured).toMatchObject({ deviceId: 'ws-leaf', moduleId: undefined, properties: { via: 'websocket' } });
    expect(JSON.parse(captured.body.toString())).toEqual({ t: 1 });
  });

  it('serves the twin: get, reported patch, desired notification', async () => {
    const twin = await module.getTwin();
    await updateReported(twin, { state: 'ok' });
    expect(hub.admin.twin('ws-edge', 'filter').properties).toMatchObject({ reported: { state: 'ok' } });
    // Listening for desired patches is what makes the SDK subscribe to them.
    const arrived = desiredVersion(twin, 2);
    await hub.admin.waitForSubscription({ deviceId: 'ws-edge', moduleId: 'filter' }, '$iothub/twin/PATCH/properties/desired/?$version=0');
    await registry.updateModuleTwin('ws-edge', 'filter', { properties: { desired: { threshold: 7 } } } as never, '*');
    expect(await arrived).toMatchObject({ threshold: 7, $version: 2 });
  });

  it('answers a direct method invoked through azure-iothub', async () => {
    leaf.onDeviceMethod('ping', (request, response) => {
      void response.send(200, { echo: request.payload });
    });
    const result = await service.invokeDeviceMethod('ws-leaf', { methodName: 'ping', payload: 'hi', responseTimeoutInSeconds: 30, connectTimeoutInSeconds: 30 });
    expect(result.result).toEqual({ status: 200, payload: { echo: 'hi' } });
  });

  it('refuses another path with 404 and an unknown subprotocol with 400', async () => {
    const statusOf = (path: string, protocol: string) => new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(`wss://${hub.host}:${hub.httpsPort}${path}`, [protocol], { ca: hub.caCertPem });
      ws.on('unexpected-response', (_req, res) => {
        resolve(res.statusCode ?? 0);
        ws.terminate();
      });
      ws.on('open', () => {
        ws.close();
        reject(new Error(`${path} (${protocol}) was accepted`));
      });
      ws.on('error', () => {});
    });
    expect(await statusOf('/elsewhere', 'mqtt')).toBe(404);
    expect(await statusOf('/$iothub/websocket', 'stomp')).toBe(400);
  });

  it('keeps plain MQTT over TLS working beside it', async () => {
    const socket = tlsConnect({ host: hub.host, port: hub.mqttPort, ca: hub.caCertPem, servername: hub.dnsName });
    await new Promise<void>((resolve, reject) => socket.once('secureConnect', () => resolve()).once('error', reject));
    expect(socket.authorized).toBe(true);
    socket.destroy();
  });
});
