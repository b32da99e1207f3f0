/* eslint-disable @typescript-eslint/no-explicit-any -- the SDKs type response bodies loosely; these tests read untyped JSON */
// Registry surfaces through the real azure-iothub: X.509 identities (stored and returned; connecting with them is
// refused with a reason), nested edge scopes (deviceScope, parentScopes and IoT Hub's rules for them), and bulk
// registry operations (addDevices, updateDevices, removeDevices) with IoT Hub's BulkRegistryOperationResult.
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import device from 'azure-iot-device';
import type { Registry } from 'azure-iothub';
import { signSas } from '../../../src/runtime/sas.ts';
import type { HubEmulator } from '../../../src/emulator/index.ts';
import { Mqtt, startEmulatorWithRegistry } from './sdk.ts';

let hub: HubEmulator;
let registry: Registry;

const sha1 = () => createHash('sha1').update(randomBytes(16)).digest('hex').toUpperCase();
const sha256 = () => createHash('sha256').update(randomBytes(16)).digest('hex').toUpperCase();

beforeAll(async () => {
  ({ hub, registry } = await startEmulatorWithRegistry());
});

afterAll(async () => {
  await hub.stop();
});

/** The rejection of `promise`, with the hub's JSON body parsed. */
async function refusal(promise: Promise<unknown>): Promise<{ name: string; body: any }> {
  const error = await promise.then(() => undefined, (e: unknown) => e as { name: string; responseBody?: string });
  if (error === undefined) throw new Error('expected the hub to refuse the request');
  return { name: error.name, body: typeof error.responseBody === 'string' ? JSON.parse(error.responseBody) : error.responseBody };
}

/** POST /devices with a service token, for what azure-iothub refuses to send (more than 100 devices). */
function postDevices(body: unknown): Promise<{ status: number; body: any }> {
  const key = hub.serviceConnectionString.match(/SharedAccessKey=([^;]+)/)?.[1] ?? '';
  const auth = signSas({ resourceUri: hub.host, key, keyName: 'iothubowner', expiry: Math.floor(Date.now() / 1000) + 300 });
  return new Promise((resolve, reject) => {
    const req = request({ host: hub.host, port: hub.httpsPort, method: 'POST', path: '/devices?api-version=2021-04-12', ca: hub.caCertPem, headers: { authorization: auth, 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString() || 'null') }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

describe('X.509 identities', () => {
  it('stores a selfSigned device with its thumbprints and returns it as IoT Hub does', async () => {
    const primary = sha1();
    const secondary = sha256();
    const created = (await registry.create({ deviceId: 'x509-self', authentication: { x509Thumbprint: { primaryThumbprint: primary, secondaryThumbprint: secondary } } } as never)).responseBody as any;
    const expected = { type: 'selfSigned', x509Thumbprint: { primaryThumbprint: primary, secondaryThumbprint: secondary }, symmetricKey: { primaryKey: null, secondaryKey: null } };
    expect(created.authentication).toEqual(expected);
    expect(((await registry.get('x509-self')).responseBody as any).authentication).toEqual(expected);
    const twin = (await registry.getTwin('x509-self')).responseBody as any;
    expect(twin).toMatchObject({ authenticationType: 'selfSigned', x509Thumbprint: { primaryThumbprint: primary, secondaryThumbprint: secondary } });
  });

  it('stores a certificateAuthority device and a selfSigned module', async () => {
    const ca = (await registry.create({ deviceId: 'x509-ca', authentication: { type: 'certificateAuthority' } } as never)).responseBody as any;
    expect(ca.authentication).toEqual({ type: 'certificateAuthority', x509Thumbprint: { primaryThumbprint: null, secondaryThumbprint: null }, symmetricKey: { primaryKey: null, secondaryKey: null } });
    await registry.create({ deviceId: 'x509-host', capabilities: { iotEdge: true } } as never);
    const thumbprint = sha256();
    const module = (await registry.addModule({ deviceId: 'x509-host', moduleId: 'cert-module', authentication: { type: 'selfSigned', x509Thumbprint: { primaryThumbprint: thumbprint } } } as never)).responseBody as any;
    expect(module.authentication).toMatchObject({ type: 'selfSigned', x509Thumbprint: { primaryThumbprint: thumbprint, secondaryThumbprint: null } });
    expect(((await registry.getModuleTwin('x509-host', 'cert-module')).responseBody as any).authenticationType).toBe('selfSigned');
  });

  it('refuses malformed X.509 authentication with 400', async () => {
    const noThumbprint = await refusal(registry.create({ deviceId: 'x509-bad', authentication: { type: 'selfSigned' } } as never));
    expect(noThumbprint.body.Message).toMatch(/^ErrorCode:ArgumentInvalid;.*primaryThumbprint/);
    const notHex = await refusal(registry.create({ deviceId: 'x509-bad', authentication: { x509Thumbprint: { primaryThumbprint: 'not-a-thumbprint' } } } as never));
    expect(notHex.body.Message).toMatch(/40 \(SHA-1\) or 64 \(SHA-256\) hex digits/);
    const keysAndCa = await refusal(registry.create({ deviceId: 'x509-bad', authentication: { type: 'certificateAuthority', symmetricKey: { primaryKey: randomBytes(32).toString('base64') } } } as never));
    expect(keysAndCa.body.Message).toMatch(/takes no symmetricKey/);
    await expect(registry.get('x509-bad')).rejects.toMatchObject({ name: 'DeviceNotFoundError' });
  });

  it('refuses a SAS connection for an X.509 device and says why', async () => {
    const guessed = `HostName=${hub.host};DeviceId=x509-self;SharedAccessKey=${randomBytes(32).toString('base64')}`;
    const client = device.Client.fromConnectionString(guessed, Mqtt);
    await client.setOptions({ ca: hub.caCertPem });
    await expect(client.open()).rejects.toBeDefined();
    await client.close().catch(() => {});
    expect(hub.admin.connectionLog({ deviceId: 'x509-self' }).at(-1)).toMatchObject({ outcome: 'refused', reason: expect.stringContaining('X.509 (selfSigned)') });
    expect(() => hub.deviceConnectionString('x509-self')).toThrow(/X\.509/);
  });

  it('turns an X.509 device into a SAS device on update', async () => {
    const current = (await registry.get('x509-ca')).responseBody as any;
    const updated = (await registry.update({ deviceId: 'x509-ca', etag: current.etag, authentication: { type: 'sas', symmetricKey: { primaryKey: '', secondaryKey: '' } } } as never)).responseBody as any;
    expect(updated.authentication.type).toBe('sas');
    expect(Buffer.from(updated.authentication.symmetricKey.primaryKey, 'base64')).toHaveLength(32);
    expect(hub.deviceConnectionString('x509-ca')).toContain(updated.authentication.symmetricKey.primaryKey);
  });
});

describe('nested edge scopes', () => {
  let parentScope: string;

  it("keeps a leaf device's deviceScope and returns parentScopes", async () => {
    const parent = (await registry.create({ deviceId: 'edge-parent', capabilities: { iotEdge: true } } as never)).responseBody as any;
    parentScope = parent.deviceScope;
    expect(parentScope).toMatch(/^ms-azure-iot-edge:\/\/edge-parent-\d+$/);
    expect(parent.parentScopes).toEqual([]);
    const leaf = (await registry.create({ deviceId: 'leaf-child', deviceScope: parentScope } as never)).responseBody as any;
    expect(leaf).toMatchObject({ deviceScope: parentScope, parentScopes: [parentScope] });
    expect((await registry.get('leaf-child')).responseBody).toMatchObject({ deviceScope: parentScope, parentScopes: [parentScope] });
    expect((await registry.getTwin('leaf-child')).responseBody).toMatchObject({ deviceScope: parentScope, parentScopes: [parentScope] });
    // Updating with the body read back keeps the relationship.
    const again = (await registry.update({ ...leaf, status: 'disabled' })).responseBody as any;
    expect(again).toMatchObject({ status: 'disabled', deviceScope: parentScope, parentScopes: [parentScope] });
  });

  it('stores a child edge device under its parent; its own scope stays its own', async () => {
    const child = (await registry.create({ deviceId: 'edge-child', capabilities: { iotEdge: true }, parentScopes: [parentScope] } as never)).responseBody as any;
    expect(child.deviceScope).toMatch(/^ms-azure-iot-edge:\/\/edge-child-\d+$/);
    expect(child.parentScopes).toEqual([parentScope]);
    expect((await registry.getTwin('edge-child')).responseBody).toMatchObject({ deviceScope: child.deviceScope, parentScopes: [parentScope] });
  });

  it("refuses scopes IoT Hub refuses", async () => {
    const child = (await registry.get('edge-child')).responseBody as any;
    const parent = (await registry.get('edge-parent')).responseBody as any;
    const cases: Array<[string, Promise<unknown>, RegExp]> = [
      ['unknown scope', registry.create({ deviceId: 'leaf-lost', deviceScope: 'ms-azure-iot-edge://nobody-1' } as never), /not the scope of an IoT Edge device/],
      ['leaf parentScopes differ', registry.create({ deviceId: 'leaf-odd', deviceScope: parentScope, parentScopes: [child.deviceScope] } as never), /parentScopes must be empty or \[deviceScope\]/],
      ['two parents', registry.create({ deviceId: 'edge-twins', capabilities: { iotEdge: true }, parentScopes: [parentScope, child.deviceScope] } as never), /at most one parent/],
      ['edge sets its scope', registry.create({ deviceId: 'edge-claims', capabilities: { iotEdge: true }, deviceScope: parentScope } as never), /generated by the hub/],
      ['own parent', registry.update({ ...parent, parentScopes: [parent.deviceScope] }), /its own parent/],
      ['cycle', registry.update({ ...parent, parentScopes: [child.deviceScope] }), /no cycles/],
    ];
    for (const [what, attempt, message] of cases) {
      const refused = await refusal(attempt);
      expect({ what, message: refused.body.Message }).toEqual({ what, message: expect.stringMatching(message) });
    }
    await expect(registry.get('leaf-lost')).rejects.toMatchObject({ name: 'DeviceNotFoundError' });
  });
});

describe('bulk registry operations', () => {
  it('addDevices creates every device and answers a successful BulkRegistryOperationResult', async () => {
    const result = await registry.addDevices([{ deviceId: 'bulk-1' }, { deviceId: 'bulk-2', capabilities: { iotEdge: true } }] as never);
    expect(result.responseBody).toEqual({ isSuccessful: true, errors: [], warnings: [] });
    expect(((await registry.get('bulk-1')).responseBody as any).authentication.symmetricKey.primaryKey).toBeTruthy();
    expect((await registry.getModulesOnDevice('bulk-2')).responseBody.map((m) => m.moduleId).sort()).toEqual(['$edgeAgent', '$edgeHub']);
  });

  it('addDevices reports each device that failed and creates the others', async () => {
    const refused = await refusal(registry.addDevices([{ deviceId: 'bulk-1' }, { deviceId: 'bulk-3' }] as never));
    expect(refused.body).toEqual({
      isSuccessful: false,
      errors: [{ deviceId: 'bulk-1', errorCode: 'DeviceAlreadyExists', errorStatus: expect.stringContaining('bulk-1'), operation: 'create' }],
      warnings: [],
    });
    expect(((await registry.get('bulk-3')).responseBody as any).deviceId).toBe('bulk-3');
  });

  it('updateDevices checks etags unless forced', async () => {
    const before = (await registry.get('bulk-1')).responseBody as any;
    const done = await registry.updateDevices([{ ...before, status: 'disabled' }] as never, false);
    expect(done.responseBody).toMatchObject({ isSuccessful: true });
    const after = (await registry.get('bulk-1')).responseBody as any;
    expect(after.status).toBe('disabled');
    expect(after.etag).not.toBe(before.etag);
    const stale = await refusal(registry.updateDevices([{ ...before, status: 'enabled' }] as never, false));
    expect(stale.body.errors).toEqual([expect.objectContaining({ deviceId: 'bulk-1', errorCode: 'PreconditionFailed', operation: 'UpdateIfMatchETag' })]);
    expect((await registry.updateDevices([{ ...before, status: 'enabled' }] as never, true)).responseBody).toMatchObject({ isSuccessful: true });
    expect(((await registry.get('bulk-1')).responseBody as any).status).toBe('enabled');
  });

  it('removeDevices deletes, checks etags unless forced, and reports unknown devices', async () => {
    const current = (await registry.get('bulk-2')).responseBody as any;
    const stale = await refusal(registry.removeDevices([{ deviceId: 'bulk-2', etag: 'IjAi' }] as never, false));
    expect(stale.body.errors).toEqual([expect.objectContaining({ deviceId: 'bulk-2', errorCode: 'PreconditionFailed', operation: 'DeleteIfMatchETag' })]);
    expect((await registry.removeDevices([{ deviceId: 'bulk-2', etag: current.etag }] as never, false)).responseBody).toMatchObject({ isSuccessful: true });
    const mixed = await refusal(registry.removeDevices([{ deviceId: 'bulk-3' }, { deviceId: 'bulk-none' }] as never, true));
    expect(mixed.body.errors).toEqual([expect.objectContaining({ deviceId: 'bulk-none', errorCode: 'DeviceNotFound', operation: 'Delete' })]);
    for (const id of ['bulk-2', 'bulk-3']) await expect(registry.get(id)).rejects.toMatchObject({ name: 'DeviceNotFoundError' });
  });

  it('refuses a whole request that names a device twice, holds more than 100 devices or an unknown importMode', async () => {
    const twice = await refusal(registry.addDevices([{ deviceId: 'bulk-dup' }, { deviceId: 'bulk-dup' }] as never));
    expect(twice.body.Message).toMatch(/^ErrorCode:ArgumentInvalid;.*more than once/);
    // azure-iothub itself refuses to send more than 100.
    const many = await postDevices(Array.from({ length: 101 }, (_, i) => ({ id: `bulk-many-${i}`, importMode: 'create' })));
    expect(many.status).toBe(400);
    expect(many.body.Message).toMatch(/^ErrorCode:ArgumentInvalid;.*at most 100 devices/);
    const unknownMode = await postDevices([{ id: 'bulk-odd', importMode: 'upsert' }]);
    expect(unknownMode.body.Message).toMatch(/importMode "upsert" is not one of/);
    await expect(registry.get('bulk-dup')).rejects.toMatchObject({ name: 'DeviceNotFoundError' });
    for (const id of ['bulk-many-0', 'bulk-odd']) await expect(registry.get(id)).rejects.toMatchObject({ name: 'DeviceNotFoundError' });
  });
});
