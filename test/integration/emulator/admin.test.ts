// Admin hooks with the real SDKs: dropped and delayed desired notifications, the HTTP admin API,
// and state persisted to a file and restored by a new emulator.
import { mkdtempSync, statSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import iothub from 'azure-iothub';
import type { Registry } from 'azure-iothub';
import type { ModuleClient as ModuleClientType, Twin } from 'azure-iot-device';
import { startHubEmulator } from '../../../src/emulator/index.ts';
import type { DesiredNotificationRecord, HubEmulator } from '../../../src/emulator/index.ts';
import { desiredVersion, Message, nextEvent, openModuleClient, trustForServiceSdk, updateReported } from './sdk.ts';

let hub: HubEmulator;
let registry: Registry;
let client: ModuleClientType;
let twin: Twin;
const stateFile = join(mkdtempSync(join(tmpdir(), 'hub-emulator-state-')), 'state.json');
const identity = { deviceId: 'edge-admin', moduleId: '$edgeAgent' };

function deploy(version: string): Promise<unknown> {
  return registry.applyConfigurationContentOnDevice('edge-admin', {
    modulesContent: { $edgeAgent: { 'properties.desired': { schemaVersion: '1.1', modules: { m: { version } } } } },
  } as never);
}

function admin(method: string, path: string, token: string, body?: unknown): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: hub.host, port: hub.httpsPort, method, path: `/_admin/${path}`, ca: hub.caCertPem, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString() || 'null') }));
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

beforeAll(async () => {
  hub = await startHubEmulator({ stateFile });
  trustForServiceSdk(hub);
  registry = iothub.Registry.fromConnectionString(hub.serviceConnectionString);
  await registry.create({ deviceId: 'edge-admin', capabilities: { iotEdge: true } } as never);
  client = await openModuleClient(hub, 'edge-admin', '$edgeAgent');
  twin = await client.getTwin();
  // The SDK subscribes to desired patches when the first listener is added.
  twin.on('properties.desired', () => {});
  await hub.admin.waitForSubscription(identity, '$iothub/twin/PATCH/properties/desired/?$version=0');
});

afterAll(async () => {
  await client?.close();
  await hub.stop();
});

describe('hub emulator admin hooks', () => {
  it('drops the next desired notification but still changes the twin', async () => {
    hub.admin.dropDesiredNotifications({ count: 1 }, identity);
    const seen: number[] = [];
    twin.on('properties.desired', (p: { $version: number }) => seen.push(p.$version));
    const third = desiredVersion(twin, 3);
    await deploy('1'); // $version 2: dropped
    await deploy('2'); // $version 3: delivered
    await third;
    expect(seen).not.toContain(2);
    expect(hub.admin.desiredNotifications().map((n) => [n.version, n.outcome])).toEqual([
      [2, 'dropped'],
      [3, 'delivered'],
    ]);
    expect(hub.admin.twin('edge-admin', '$edgeAgent').properties).toMatchObject({ desired: { modules: { m: { version: '2' } }, $version: 3 } });
  });

  it('delays a desired notification, which still arrives', async () => {
    hub.admin.delayDesiredNotifications(300, { count: 1 }, identity);
    const recorded = nextEvent<DesiredNotificationRecord>(hub, 'desiredNotification');
    const fourth = desiredVersion(twin, 4);
    await deploy('3');
    expect((await recorded).outcome).toBe('delayed');
    expect(await fourth).toMatchObject({ modules: { m: { version: '3' } }, $version: 4 });
  });

  it('serves the same hooks over HTTPS under /_admin/ with its token only', async () => {
    expect((await admin('GET', 'connections', 'wrong-token')).status).toBe(401);
    const connections = await admin('GET', 'connections', hub.adminToken);
    expect(connections.body).toEqual([expect.objectContaining(identity)]);
    await client.sendEvent(new Message('over-http'));
    const messages = (await admin('GET', 'messages?deviceId=edge-admin', hub.adminToken)).body as Array<{ body: string }>;
    expect(messages.map((m) => Buffer.from(m.body, 'base64').toString())).toContain('over-http');
    const twinOverHttp = (await admin('GET', 'twins/edge-admin/modules/%24edgeAgent', hub.adminToken)).body as { properties: { desired: { $version: number } } };
    expect(twinOverHttp.properties.desired.$version).toBe(4);
    const gone = nextEvent(hub, 'disconnected');
    expect((await admin('POST', 'connections/drop', hub.adminToken, { deviceId: 'edge-admin' })).body).toEqual({ dropped: 1 });
    await gone;
    expect((await admin('POST', 'desired-notifications', hub.adminToken, { fault: 'explode' })).status).toBe(400);
  });

  it('persists identities, keys, twins and the CA to the state file, and a new emulator restores them', async () => {
    await updateReported(twin, { persisted: true });
    const moduleCs = hub.moduleConnectionString('edge-admin', '$edgeAgent');
    const serviceCs = hub.serviceConnectionString;
    const ca = hub.caCertPem;
    await client.close();
    await hub.stop();
    expect(statSync(stateFile).mode & 0o777).toBe(0o600);

    hub = await startHubEmulator({ stateFile });
    expect(hub.caCertPem).toBe(ca);
    expect(hub.moduleConnectionString('edge-admin', '$edgeAgent').replace(/HostName=[^;]+/, '')).toBe(moduleCs.replace(/HostName=[^;]+/, ''));
    expect(hub.serviceConnectionString.replace(/HostName=[^;]+/, '')).toBe(serviceCs.replace(/HostName=[^;]+/, ''));
    client = await openModuleClient(hub, 'edge-admin', '$edgeAgent');
    const restored = await client.getTwin();
    expect(restored.properties.reported).toMatchObject({ persisted: true });
    expect(restored.properties.desired).toMatchObject({ modules: { m: { version: '3' } }, $version: 4 });
  });
});
