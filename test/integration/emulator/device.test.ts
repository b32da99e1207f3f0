// The device side against the real azure-iot-device + azure-iot-device-mqtt packages: a ModuleClient
// connected as $edgeAgent gets its twin, reports, receives desired patches, answers direct methods
// invoked through azure-iothub and sends telemetry.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import iothub from 'azure-iothub';
import type { Client as ServiceClient, Registry } from 'azure-iothub';
import type { ModuleClient as ModuleClientType, Twin } from 'azure-iot-device';
import type { HubEmulator } from '../../../src/emulator/index.ts';
import { desiredVersion, Message, openModuleClient, startEmulatorWithRegistry, updateReported } from './sdk.ts';

let hub: HubEmulator;
let registry: Registry;
let service: ServiceClient;
let agent: ModuleClientType;
let twin: Twin;
const desiredTopic = '$iothub/twin/PATCH/properties/desired/?$version=0';

beforeAll(async () => {
  ({ hub, registry } = await startEmulatorWithRegistry());
  service = iothub.Client.fromConnectionString(hub.serviceConnectionString);
  await registry.create({ deviceId: 'edge-dev', capabilities: { iotEdge: true } } as never);
  agent = await openModuleClient(hub, 'edge-dev', '$edgeAgent');
  twin = await agent.getTwin();
});

afterAll(async () => {
  await agent?.close();
  await service?.close();
  await hub.stop();
});

describe('hub emulator MQTT with azure-iot-device', () => {
  it('connects $edgeAgent with its module connection string and reads the twin', () => {
    expect(hub.admin.connections().map((c) => `${c.deviceId}/${c.moduleId}`)).toContain('edge-dev/$edgeAgent');
    expect(twin.properties.desired.$version).toBe(1);
  });

  it('stores a reported patch, visible to the service with a new $version', async () => {
    await updateReported(twin, { runtime: { platform: { os: 'linux' } }, lastDesiredVersion: 1 });
    await updateReported(twin, { lastDesiredVersion: null });
    const serviceTwin = (await registry.getModuleTwin('edge-dev', '$edgeAgent')).responseBody as unknown as { properties: { reported: Record<string, unknown> } };
    expect(serviceTwin.properties.reported).toMatchObject({ runtime: { platform: { os: 'linux' } }, $version: 3 });
    expect(serviceTwin.properties.reported).not.toHaveProperty('lastDesiredVersion');
  });

  it('answers an invalid reported patch with an error the SDK surfaces', async () => {
    await expect(updateReported(twin, { 'bad.key': 1 })).rejects.toThrow(/contains "\.", "\$" or a space/);
    // The twin did not change.
    expect(hub.admin.twin('edge-dev', '$edgeAgent').properties).toMatchObject({ reported: { $version: 3 } });
  });

  it('delivers a desired patch after Registry.applyConfigurationContentOnDevice', async () => {
    const arrived = desiredVersion(twin, 2);
    await hub.admin.waitForSubscription({ deviceId: 'edge-dev', moduleId: '$edgeAgent' }, desiredTopic);
    await registry.applyConfigurationContentOnDevice('edge-dev', {
      modulesContent: {
        $edgeAgent: { 'properties.desired': { schemaVersion: '1.1', modules: { a: { version: '1.0' }, b: { version: '1.0' } } } },
        $edgeHub: { 'properties.desired': { schemaVersion: '1.1', routes: {} } },
      },
    } as never);
    expect(await arrived).toMatchObject({ schemaVersion: '1.1', modules: { a: { version: '1.0' } }, $version: 2 });

    // A second deployment that removes module b arrives as a diff with null for b (the default mode).
    const removed = desiredVersion(twin, 3);
    await registry.applyConfigurationContentOnDevice('edge-dev', {
      modulesContent: { $edgeAgent: { 'properties.desired': { schemaVersion: '1.1', modules: { a: { version: '1.0' } } } } },
    } as never);
    expect(await removed).toMatchObject({ modules: { b: null }, $version: 3 });
    expect(hub.admin.twin('edge-dev', '$edgeHub').properties).toMatchObject({ desired: { routes: {}, $version: 2 } });
  });

  it('routes a direct method from Client.invokeDeviceMethod to the module and returns its response', async () => {
    agent.onMethod('ping', (request, response) => {
      // The SDK's callback type marks both optional; it always passes them for a method call.
      void response?.send(200, { echo: request?.payload });
    });
    const result = await service.invokeDeviceMethod('edge-dev', '$edgeAgent', {
      methodName: 'ping',
      payload: { n: 7 },
      responseTimeoutInSeconds: 30,
      // The method subscription may still be in flight: let the hub wait for it.
      connectTimeoutInSeconds: 30,
    });
    expect(result.result).toEqual({ status: 200, payload: { echo: { n: 7 } } });
  });

  it('answers a method call to a module that is not connected with 404 DeviceNotOnline', async () => {
    const error = await service.invokeDeviceMethod('edge-dev', '$edgeHub', { methodName: 'ping', payload: null, responseTimeoutInSeconds: 5 }).then(
      () => undefined,
      (e: unknown) => e as { responseBody: string },
    );
    expect(error?.responseBody).toContain('ErrorCode:DeviceNotOnline');
  });

  it('captures telemetry from ModuleClient.sendEvent and sendOutputEvent with its properties', async () => {
    const message = new Message(JSON.stringify({ t: 21.5 }));
    message.messageId = 'm-1';
    message.contentType = 'application/json';
    message.contentEncoding = 'utf-8';
    message.properties.add('unit', 'celsius');
    await agent.sendEvent(message);
    await agent.sendOutputEvent('out1', new Message('to-upstream'));
    const captured = await hub.admin.waitForMessage((m) => m.systemProperties['$.mid'] === 'm-1');
    expect(captured).toMatchObject({ deviceId: 'edge-dev', moduleId: '$edgeAgent', properties: { unit: 'celsius' } });
    expect(captured.systemProperties).toMatchObject({ '$.ct': 'application/json', '$.ce': 'utf-8' });
    expect(JSON.parse(captured.body.toString())).toEqual({ t: 21.5 });
    const output = await hub.admin.waitForMessage((m) => m.outputName === 'out1');
    expect(output.body.toString()).toBe('to-upstream');
  });
});
