/* eslint-disable @typescript-eslint/no-explicit-any -- the SDKs type twin bodies loosely; these tests read untyped JSON */
// Service twin writes that clear a whole section (`properties.desired: null`, `tags: null`) or delete single
// members with null leaves, through the real azure-iothub, observed by a real azure-iot-device client over MQTT.
import { request } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import device from 'azure-iot-device';
import type { Client as DeviceClient, Twin as DeviceTwin } from 'azure-iot-device';
import type { Registry } from 'azure-iothub';
import { signSas } from '../../../src/runtime/sas.ts';
import type { HubEmulator } from '../../../src/emulator/index.ts';
import { desiredVersion, Mqtt, startEmulatorWithRegistry } from './sdk.ts';

let hub: HubEmulator;
let registry: Registry;
let client: DeviceClient;
let deviceTwin: DeviceTwin;
const deviceId = 'twin-sections';
const desiredTopic = '$iothub/twin/PATCH/properties/desired/?$version=0';
const props = { foo: 1, bar: { baz: 2, tweedle: { dee: 3 } } };

/** The device twin's desired members, without the SDK's `$version` and functions. */
function deviceDesired(): Record<string, unknown> {
  return JSON.parse(JSON.stringify(deviceTwin.properties.desired, (key, value) => (key.startsWith('$') ? undefined : value)));
}

function putTwin(body: unknown): Promise<{ status: number; body: any }> {
  const key = hub.serviceConnectionString.match(/SharedAccessKey=([^;]+)/)?.[1] ?? '';
  const auth = signSas({ resourceUri: hub.host, key, keyName: 'iothubowner', expiry: Math.floor(Date.now() / 1000) + 300 });
  return new Promise((resolve, reject) => {
    const req = request({ host: hub.host, port: hub.httpsPort, method: 'PUT', path: `/twins/${deviceId}?api-version=2021-04-12`, ca: hub.caCertPem, headers: { authorization: auth, 'content-type': 'application/json', 'if-match': '"*"' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString() || 'null') }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

beforeAll(async () => {
  ({ hub, registry } = await startEmulatorWithRegistry());
  await registry.create({ deviceId } as never);
  client = device.Client.fromConnectionString(hub.deviceConnectionString(deviceId), Mqtt);
  await client.setOptions({ ca: hub.caCertPem });
  await client.open();
  deviceTwin = await client.getTwin();
  // The device SDK subscribes to desired patches when the first listener is added.
  deviceTwin.on('properties.desired', () => {});
  await hub.admin.waitForSubscription({ deviceId, moduleId: undefined }, desiredTopic);
});

afterAll(async () => {
  await client?.close();
  await hub.stop();
});

describe('service twin writes that clear sections', () => {
  it('PATCH properties.desired: null clears desired and notifies the device with the next $version', async () => {
    let arrived = desiredVersion(deviceTwin, 2);
    await registry.updateTwin(deviceId, { properties: { desired: props } }, '*');
    await arrived;
    expect(deviceDesired()).toEqual(props);

    arrived = desiredVersion(deviceTwin, 3);
    const cleared = (await registry.updateTwin(deviceId, { properties: { desired: null } } as never, '*')).responseBody as any;
    expect(cleared.properties.desired).toMatchObject({ $version: 3 });
    expect(Object.keys(cleared.properties.desired).filter((k) => !k.startsWith('$'))).toEqual([]);
    const patch = await arrived;
    expect(patch).toMatchObject({ foo: null, bar: null, $version: 3 });
    expect(deviceDesired()).toEqual({});
    expect(((await registry.getTwin(deviceId)).responseBody as any).properties.desired.$version).toBe(3);
  });

  it('deletes single desired members with null leaves, and tells the device which', async () => {
    const arrived = desiredVersion(deviceTwin, 5);
    await registry.updateTwin(deviceId, { properties: { desired: props } }, '*');
    const after = (await registry.updateTwin(deviceId, { properties: { desired: { bar: { tweedle: null } } } } as never, '*')).responseBody as any;
    expect(after.properties.desired).toMatchObject({ foo: 1, bar: { baz: 2 }, $version: 5 });
    expect(after.properties.desired.bar).not.toHaveProperty('tweedle');
    expect(after.properties.desired.$metadata.bar).not.toHaveProperty('tweedle');
    expect(await arrived).toMatchObject({ bar: { tweedle: null }, $version: 5 });
    expect(deviceDesired()).toEqual({ foo: 1, bar: { baz: 2 } });
  });

  it('PATCH tags: null clears the tags; null leaves delete single tags', async () => {
    await registry.updateTwin(deviceId, { tags: props }, '*');
    const partly = (await registry.updateTwin(deviceId, { tags: { bar: { tweedle: null } } } as never, '*')).responseBody as any;
    expect(partly.tags).toEqual({ foo: 1, bar: { baz: 2 } });
    const before = partly.version as number;
    const cleared = (await registry.updateTwin(deviceId, { tags: null } as never, '*')).responseBody as any;
    expect(cleared.tags).toEqual({});
    expect(cleared.version).toBe(before + 1);
    expect(cleared.etag).not.toBe(partly.etag);
    // Tags are the service's own: clearing them sends the device nothing and leaves desired alone.
    expect(cleared.properties.desired).toMatchObject({ foo: 1, $version: 5 });
  });

  it('PUT with properties.desired: null and tags: null clears both and notifies the device', async () => {
    await registry.updateTwin(deviceId, { tags: { site: 'a' } }, '*');
    const arrived = desiredVersion(deviceTwin, 6);
    const replaced = await putTwin({ tags: null, properties: { desired: null } });
    expect(replaced.status).toBe(200);
    expect(replaced.body.tags).toEqual({});
    expect(replaced.body.properties.desired).toMatchObject({ $version: 6 });
    expect(Object.keys(replaced.body.properties.desired).filter((k) => !k.startsWith('$'))).toEqual([]);
    expect(await arrived).toMatchObject({ foo: null, bar: null, $version: 6 });
    expect(deviceDesired()).toEqual({});
  });
});
