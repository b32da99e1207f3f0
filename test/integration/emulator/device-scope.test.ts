// The device-scope API a stock edgeHub calls for the identities (and keys) it authenticates modules
// against, over real HTTPS with edgeHub's own SAS, in the 1.2+ POST form and the 1.1 GET form.
import { request } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startHubEmulator, type HubEmulator } from '../../../src/emulator/index.ts';
import { signSas } from '../../../src/runtime/sas.ts';

let hub: HubEmulator;
const edge = 'edge-scope';
const other = 'edge-other';

interface ScopeResult {
  devices: { deviceId: string; authentication: { type: string; symmetricKey: { primaryKey: string; secondaryKey: string } }; capabilities: { iotEdge: boolean } }[];
  modules: { deviceId: string; moduleId: string; authentication: { type: string; symmetricKey: { primaryKey: string; secondaryKey: string } } }[];
  continuationLink: string | null;
}

function moduleKey(deviceId: string, moduleId: string): string {
  return hub.registry.module(deviceId, moduleId).keys.primaryKey;
}

/** A SAS as edgeHub makes it: the $edgeHub module's key, sr = {hub}/devices/{d}/modules/$edgeHub. */
function edgeHubToken(deviceId: string, key = moduleKey(deviceId, '$edgeHub')): string {
  return signSas({ resourceUri: `${hub.host}/devices/${deviceId}/modules/$edgeHub`, key, expiry: Math.floor(Date.now() / 1000) + 3600 });
}

function call(method: string, path: string, token: string, body?: unknown): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const req = request({
      host: hub.host, port: hub.httpsPort, method, path, ca: hub.caCertPem,
      headers: { authorization: token, ...(text ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) } : {}) },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString() || 'null') }));
    });
    req.on('error', reject);
    req.end(text);
  });
}

const nested = (deviceId: string, op: string) => `/devices/${deviceId}/modules/%24edgeHub/${op}?api-version=2020-06-30-preview`;

beforeAll(async () => {
  hub = await startHubEmulator({});
  hub.createEdgeDevice(edge);
  hub.createEdgeDevice(other);
  hub.registry.putModule(edge, 'sensor', { managedBy: 'IotEdge' }, undefined);
  hub.registry.putModule(edge, 'filter', { managedBy: 'IotEdge' }, undefined);
});

afterAll(async () => {
  await hub?.stop();
});

describe('device scope (edgeHub 1.2+ form)', () => {
  it('lists the edge device and its modules with their SAS keys, paging by continuationLink', async () => {
    const first = await call('POST', nested(edge, 'devicesAndModulesInTargetDeviceScope'), edgeHubToken(edge), { pageSize: 3, continuationLink: null, authChain: edge });
    expect(first.status).toBe(200);
    const a = first.body as ScopeResult;
    expect(a.devices.map((d) => d.deviceId)).toEqual([edge]);
    expect(a.devices[0]!.capabilities.iotEdge).toBe(true);
    expect(a.continuationLink).toEqual(expect.any(String));
    const second = await call('POST', nested(edge, 'devicesAndModulesInTargetDeviceScope'), edgeHubToken(edge), { pageSize: 3, continuationLink: a.continuationLink, authChain: edge });
    const b = second.body as ScopeResult;
    expect(b.continuationLink).toBeNull();
    const modules = [...a.modules, ...b.modules];
    expect(modules.map((m) => m.moduleId).sort()).toEqual(['$edgeAgent', '$edgeHub', 'filter', 'sensor']);
    const sensor = modules.find((m) => m.moduleId === 'sensor')!;
    expect(sensor.authentication).toMatchObject({ type: 'sas', symmetricKey: { primaryKey: moduleKey(edge, 'sensor') } });
    // Another edge device's identities are not in this scope.
    expect(modules.every((m) => m.deviceId === edge)).toBe(true);
  });

  it('answers getDeviceAndModuleOnBehalfOf with the one module asked for, or nothing out of scope', async () => {
    const one = await call('POST', nested(edge, 'getDeviceAndModuleOnBehalfOf'), edgeHubToken(edge), { targetDeviceId: edge, targetModuleId: 'filter', authChain: edge });
    expect(one.status).toBe(200);
    expect((one.body as ScopeResult).modules.map((m) => [m.moduleId, m.authentication.symmetricKey.primaryKey])).toEqual([['filter', moduleKey(edge, 'filter')]]);
    const outside = await call('POST', nested(edge, 'getDeviceAndModuleOnBehalfOf'), edgeHubToken(edge), { targetDeviceId: other, targetModuleId: '$edgeHub', authChain: edge });
    expect(outside.body).toEqual({ devices: [], modules: [], continuationLink: null });
  });

  it('refuses any token but the device\'s own $edgeHub SAS', async () => {
    const body = { pageSize: 10, continuationLink: null, authChain: edge };
    const path = nested(edge, 'devicesAndModulesInTargetDeviceScope');
    const deviceToken = signSas({ resourceUri: `${hub.host}/devices/${edge}`, key: hub.registry.device(edge).keys.primaryKey, expiry: Math.floor(Date.now() / 1000) + 3600 });
    const agentToken = signSas({ resourceUri: `${hub.host}/devices/${edge}/modules/$edgeAgent`, key: moduleKey(edge, '$edgeAgent'), expiry: Math.floor(Date.now() / 1000) + 3600 });
    for (const token of [deviceToken, agentToken, edgeHubToken(other), edgeHubToken(edge, moduleKey(edge, 'sensor'))]) {
      const answer = await call('POST', path, token, body);
      expect(answer.status).toBe(401);
      expect((answer.body as { Message: string }).Message).toMatch(/^ErrorCode:IotHubUnauthorizedAccess;/);
    }
    // A module token opens nothing else of the REST API.
    const modules = await call('GET', `/devices/${edge}/modules?api-version=2021-04-12`, edgeHubToken(edge));
    expect(modules.status).toBe(401);
  });
});

describe('device scope (edgeHub 1.1 form)', () => {
  it('serves the GET forms with the same identities', async () => {
    const all = await call('GET', `/devices/${edge}/modules/%24edgeHub/devicesAndModulesInDeviceScope?deviceCount=10&continuationToken=&api-version=2018-08-30-preview`, edgeHubToken(edge));
    expect(all.status).toBe(200);
    expect((all.body as ScopeResult).modules.map((m) => m.moduleId).sort()).toEqual(['$edgeAgent', '$edgeHub', 'filter', 'sensor']);
    const one = await call('GET', `/devices/${edge}/modules/%24edgeHub/deviceAndModuleInDeviceScope?targetDeviceId=${edge}&targetModuleId=sensor&api-version=2018-08-30-preview`, edgeHubToken(edge));
    expect((one.body as ScopeResult).modules.map((m) => m.authentication.symmetricKey.primaryKey)).toEqual([moduleKey(edge, 'sensor')]);
    expect(hub.admin.deviceScopeCalls().filter((c) => c.deviceId === edge).map((c) => c.operation)).toEqual(expect.arrayContaining([
      'devicesAndModulesInTargetDeviceScope', 'getDeviceAndModuleOnBehalfOf', 'devicesAndModulesInDeviceScope', 'deviceAndModuleInDeviceScope',
    ]));
  });
});
