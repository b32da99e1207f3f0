/* eslint-disable @typescript-eslint/no-explicit-any -- the SDKs type response bodies loosely; these tests read untyped JSON */
// The service side against the real azure-iothub package: registry, module identities, module twins,
// REST auth, and the device-scoped calls the edge security daemon makes.
import { execFile } from 'node:child_process';
import { request } from 'node:https';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Registry } from 'azure-iothub';
import { signSas } from '../../../src/runtime/sas.ts';
import type { HubEmulator } from '../../../src/emulator/index.ts';
import { startEmulatorWithRegistry } from './sdk.ts';

let hub: HubEmulator;
let registry: Registry;

beforeAll(async () => {
  ({ hub, registry } = await startEmulatorWithRegistry());
});

afterAll(async () => {
  await hub.stop();
});

function rest(method: string, path: string, auth: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: hub.host, port: hub.httpsPort, method, path, ca: hub.caCertPem, headers: { authorization: auth, 'content-type': 'application/json', ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined });
      });
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

describe('hub emulator REST with azure-iothub', () => {
  it('binds 443 on its own loopback address, which is what azure-iothub dials', () => {
    expect(hub.httpsPort).toBe(443);
    expect(hub.host).toMatch(/^127\.0\.0\.\d+$/);
  });

  it('creates an edge device with $edgeAgent and $edgeHub identities and generated keys', async () => {
    const created = await registry.create({ deviceId: 'edge-reg', capabilities: { iotEdge: true } } as never);
    const body = created.responseBody as any;
    expect(body.capabilities.iotEdge).toBe(true);
    expect(Buffer.from(body.authentication.symmetricKey.primaryKey, 'base64')).toHaveLength(32);
    const modules = (await registry.getModulesOnDevice('edge-reg')).responseBody.map((m) => m.moduleId).sort();
    expect(modules).toEqual(['$edgeAgent', '$edgeHub']);
    await expect(registry.create({ deviceId: 'edge-reg' } as never)).rejects.toMatchObject({ name: 'DeviceAlreadyExistsError' });
    await expect(registry.get('no-such-device')).rejects.toMatchObject({ name: 'DeviceNotFoundError' });
  });

  it('does module CRUD with etags', async () => {
    const added = (await registry.addModule({ deviceId: 'edge-reg', moduleId: 'sensor' } as never)).responseBody as any;
    expect(added.etag).toBeTruthy();
    const got = (await registry.getModule('edge-reg', 'sensor')).responseBody as any;
    expect(got.etag).toBe(added.etag);
    const updated = (await registry.updateModule({ ...got, managedBy: 'IotEdge' })).responseBody as any;
    expect(updated.etag).not.toBe(added.etag);
    // The first etag is stale now.
    await expect(registry.updateModule({ ...got, etag: added.etag })).rejects.toMatchObject({ name: 'InvalidEtagError' });
    // removeModule(module) only works with a callback (the promise overload loses `done` in azure-iothub 1.16).
    const remove = (etag: string) =>
      new Promise<void>((resolve, reject) => registry.removeModule({ deviceId: 'edge-reg', moduleId: 'sensor', etag } as never, (err) => (err ? reject(err) : resolve())));
    await expect(remove(added.etag)).rejects.toMatchObject({ name: 'InvalidEtagError' });
    await remove(updated.etag);
    await expect(registry.getModule('edge-reg', 'sensor')).rejects.toMatchObject({ responseBody: expect.stringContaining('ErrorCode:ModuleNotFound') });
  });

  it('refuses a service PATCH of the $edgeAgent desired properties with 401 SystemModuleModifyUnauthorizedAccess', async () => {
    const error = await registry.updateModuleTwin('edge-reg', '$edgeAgent', { properties: { desired: { x: 1 } } }, '*').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ name: 'UnauthorizedError' });
    const body = JSON.parse((error as { responseBody: string }).responseBody);
    expect(body.Message).toBe('ErrorCode:SystemModuleModifyUnauthorizedAccess;Unauthorized to modify reserved module.');
    expect(body.ExceptionMessage).toMatch(/^Tracking ID:/);
  });

  it('patches a module twin with If-Match, and answers a stale etag with 412', async () => {
    await registry.addModule({ deviceId: 'edge-reg', moduleId: 'twinned' } as never);
    const before = (await registry.getModuleTwin('edge-reg', 'twinned')).responseBody as any;
    const after = (await registry.updateModuleTwin('edge-reg', 'twinned', { properties: { desired: { a: 1 } } }, before.etag)).responseBody as any;
    expect(after.properties.desired).toMatchObject({ a: 1, $version: 2 });
    expect(after.etag).not.toBe(before.etag);
    await expect(registry.updateModuleTwin('edge-reg', 'twinned', { properties: { desired: { a: 2 } } }, before.etag)).rejects.toMatchObject({ name: 'InvalidEtagError' });
  });

  it('answers 401 IotHubUnauthorizedAccess to a wrong key or an expired token', async () => {
    const wrongKey = signSas({ resourceUri: hub.host, key: Buffer.alloc(32, 1).toString('base64'), keyName: 'iothubowner', expiry: Math.floor(Date.now() / 1000) + 60 });
    const wrong = await rest('GET', '/devices?api-version=2021-04-12', wrongKey);
    expect(wrong.status).toBe(401);
    expect(wrong.body.Message).toMatch(/^ErrorCode:IotHubUnauthorizedAccess;/);
    const key = hub.serviceConnectionString.match(/SharedAccessKey=([^;]+)/)?.[1] ?? '';
    const expired = signSas({ resourceUri: hub.host, key, keyName: 'iothubowner', expiry: Math.floor(Date.now() / 1000) - 1 });
    expect((await rest('GET', '/devices?api-version=2021-04-12', expired)).status).toBe(401);
    const valid = signSas({ resourceUri: hub.host, key, keyName: 'iothubowner', expiry: Math.floor(Date.now() / 1000) + 60 });
    expect((await rest('GET', '/devices?api-version=2021-04-12', valid)).status).toBe(200);
  });

  it('lets a device SAS manage its own module identities, and nothing else', async () => {
    await registry.create({ deviceId: 'edge-self', capabilities: { iotEdge: true } } as never);
    await registry.create({ deviceId: 'edge-other', capabilities: { iotEdge: true } } as never);
    const deviceKey = hub.deviceConnectionString('edge-self').match(/SharedAccessKey=([^;]+)/)?.[1] ?? '';
    const token = signSas({ resourceUri: `${hub.host}/devices/edge-self`, key: deviceKey, expiry: Math.floor(Date.now() / 1000) + 60 });
    const created = await rest('PUT', '/devices/edge-self/modules/worker?api-version=2021-04-12', token, { moduleId: 'worker', managedBy: 'IotEdge' });
    expect(created.status).toBe(201);
    expect(created.body.authentication.symmetricKey.primaryKey).toBeTruthy();
    // Re-initialising $edgeAgent the way the edge security daemon does: If-Match "*", keys left to the hub.
    const agent = await rest('PUT', '/devices/edge-self/modules/%24edgeAgent?api-version=2021-04-12', token, { moduleId: '$edgeAgent', managedBy: 'IotEdge', authentication: { type: 'sas', symmetricKey: { primaryKey: null, secondaryKey: null } } }, { 'if-match': '"*"' });
    expect(agent.status).toBe(200);
    expect((await rest('GET', '/devices/edge-self/modules?api-version=2021-04-12', token)).body.map((m: any) => m.moduleId).sort()).toEqual(['$edgeAgent', '$edgeHub', 'worker']);
    expect((await rest('DELETE', '/devices/edge-self/modules/worker?api-version=2021-04-12', token, undefined, { 'if-match': '"*"' })).status).toBe(204);
    expect((await rest('GET', '/devices/edge-other/modules?api-version=2021-04-12', token)).status).toBe(401);
    expect((await rest('GET', '/devices?api-version=2021-04-12', token)).status).toBe(401);
    expect((await rest('PUT', '/devices/edge-self?api-version=2021-04-12', token, { deviceId: 'edge-self' }, { 'if-match': '"*"' })).status).toBe(401);
  });

  it('is trusted by a new process through NODE_EXTRA_CA_CERTS', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hub-emulator-ca-'));
    const caFile = join(dir, 'ca.pem');
    writeFileSync(caFile, hub.caCertPem);
    const script = "require('azure-iothub').Registry.fromConnectionString(process.env.HUB_CS).get('edge-reg').then((r) => console.log(r.responseBody.deviceId), (e) => { console.error(e.message); process.exit(1); })";
    const { stdout } = await promisify(execFile)(process.execPath, ['-e', script], {
      cwd: process.cwd(),
      env: { ...process.env, NODE_EXTRA_CA_CERTS: caFile, HUB_CS: hub.serviceConnectionString },
    });
    expect(stdout.trim()).toBe('edge-reg');
  });
});
