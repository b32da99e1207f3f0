// The emulator refuses what IoT Hub refuses, so a test that passes against it does not fail against a real
// hub: a device key for a module login, a token for the wrong audience, an expired token, a disabled
// identity. Driven by the real device SDK (MQTT) and the real service SDK (registry update).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { ModuleClient as ModuleClientType } from 'azure-iot-device';
import iothub from 'azure-iothub';
import { startHubEmulator } from '../../../src/emulator/index.ts';
import { DeviceApi } from '../../../src/iothub/device-api.ts';
import type { HubEmulator } from '../../../src/emulator/index.ts';
import { signSas } from '../../../src/runtime/sas.ts';
import { ModuleClient, Mqtt, nextEvent, trustForServiceSdk } from './sdk.ts';

let hub: HubEmulator;
const open: ModuleClientType[] = [];
const keyOf = (connectionString: string) => connectionString.match(/SharedAccessKey=([^;]+)/)?.[1] ?? '';
const inAMinute = () => Math.floor(Date.now() / 1000) + 60;

beforeAll(async () => {
  hub = await startHubEmulator();
  hub.createEdgeDevice('edge-auth');
  hub.createEdgeDevice('edge-off');
  trustForServiceSdk(hub);
});

afterAll(async () => {
  await Promise.all(open.map((c) => c.close().catch(() => undefined)));
  await hub.stop();
});

/** Opens a module client with `token`; resolves with the emulator's reason for refusing it. */
async function refusalOf(token: string): Promise<string> {
  const client = ModuleClient.fromSharedAccessSignature(token, Mqtt);
  open.push(client);
  await client.setOptions({ ca: hub.caCertPem });
  const refused = nextEvent<{ reason: string }>(hub, 'connectRefused');
  await expect(client.open()).rejects.toMatchObject({ name: 'UnauthorizedError' });
  return (await refused).reason;
}

describe('emulator authentication, as IoT Hub', () => {
  it("refuses a module login signed with the device's key", async () => {
    const deviceKey = keyOf(hub.deviceConnectionString('edge-auth'));
    const token = signSas({ resourceUri: `${hub.host}/devices/edge-auth/modules/$edgeAgent`, key: deviceKey, expiry: inAMinute() });
    expect(await refusalOf(token)).toMatch(/signature does not match/);
  });

  it("refuses a module login with the device's connection string and a ModuleId", async () => {
    const forged = `${hub.deviceConnectionString('edge-auth')};ModuleId=$edgeAgent`;
    const client = ModuleClient.fromConnectionString(forged, Mqtt);
    open.push(client);
    await client.setOptions({ ca: hub.caCertPem });
    await expect(client.open()).rejects.toMatchObject({ name: 'UnauthorizedError' });
  });

  it('refuses a module token whose audience is the device, even signed with the module key', async () => {
    const moduleKey = keyOf(hub.moduleConnectionString('edge-auth', '$edgeAgent'));
    const deviceScoped = signSas({ resourceUri: `${hub.host}/devices/edge-auth`, key: moduleKey, expiry: inAMinute() });
    // The SDK reads the identity from the token's sr, so the module is named in the MQTT CONNECT by hand:
    // a client for the module whose password is the device-scoped token.
    const moduleToken = signSas({ resourceUri: `${hub.host}/devices/edge-auth/modules/$edgeAgent`, key: moduleKey, expiry: inAMinute() });
    const client = ModuleClient.fromSharedAccessSignature(moduleToken, Mqtt);
    open.push(client);
    await client.setOptions({ ca: hub.caCertPem });
    await new Promise<void>((resolve) => client.updateSharedAccessSignature(deviceScoped, () => resolve()));
    const refused = nextEvent<{ reason: string }>(hub, 'connectRefused');
    await expect(client.open()).rejects.toMatchObject({ name: 'UnauthorizedError' });
    expect((await refused).reason).toMatch(/is not the audience/);
  });

  it('refuses a token for another hub host', async () => {
    const moduleKey = keyOf(hub.moduleConnectionString('edge-auth', '$edgeAgent'));
    const token = signSas({ resourceUri: `elsewhere.azure-devices.net/devices/edge-auth/modules/$edgeAgent`, key: moduleKey, expiry: inAMinute() });
    const client = ModuleClient.fromSharedAccessSignature(token, Mqtt);
    open.push(client);
    await client.setOptions({ ca: hub.caCertPem });
    await expect(client.open()).rejects.toThrow();
  });

  it('refuses an expired token', async () => {
    const moduleKey = keyOf(hub.moduleConnectionString('edge-auth', '$edgeAgent'));
    const token = signSas({ resourceUri: `${hub.host}/devices/edge-auth/modules/$edgeAgent`, key: moduleKey, expiry: Math.floor(Date.now() / 1000) - 5 });
    expect(await refusalOf(token)).toMatch(/expired/);
  });

  it('refuses every identity of a disabled device, over MQTT and REST', async () => {
    const registry = iothub.Registry.fromConnectionString(hub.serviceConnectionString);
    const { responseBody: device } = await registry.get('edge-off');
    await registry.update({ deviceId: 'edge-off', status: 'disabled', etag: device.etag } as never);
    const moduleKey = keyOf(hub.moduleConnectionString('edge-off', '$edgeAgent'));
    const token = signSas({ resourceUri: `${hub.host}/devices/edge-off/modules/$edgeAgent`, key: moduleKey, expiry: inAMinute() });
    expect(await refusalOf(token)).toMatch(/disabled/);
    // The device's own REST calls (what the operator's DeviceApi makes to manage module identities).
    const api = new DeviceApi({ hostName: hub.host, deviceId: 'edge-off', deviceKey: keyOf(hub.deviceConnectionString('edge-off')), caCertPem: hub.caCertPem, timeoutMs: 10_000 });
    await expect(api.getModule('$edgeAgent')).rejects.toMatchObject({ status: 401 });
  });

  it('still accepts the module with its own key', async () => {
    const client = ModuleClient.fromConnectionString(hub.moduleConnectionString('edge-auth', '$edgeAgent'), Mqtt);
    open.push(client);
    await client.setOptions({ ca: hub.caCertPem });
    await client.open();
    await client.close();
  });
});
