// Device identity scenarios of the SDK's registry suite: create (id only, with keys, with X.509
// thumbprints), refuse an invalid id, list, update, delete, an edge device's scope given to a leaf, nested
// edge devices (parentScopes) and bulk add/update/remove. Service REST only. The scenarios run in order
// and share devices, as the SDK's do.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Device as SdkDevice } from 'azure-iothub';

/** The SDK's Device type predates nested edge; the REST body carries these too. */
type Device = SdkDevice & { deviceScope?: string; parentScopes?: string[] };
import { deleteDeviceQuietly, errors, randomKey, startTrustedHub, uniqueId } from './support.ts';
import type { HarnessHub } from './support.ts';

const idOnly = { deviceId: uniqueId('reg-plain') };
const withKeys = {
  deviceId: uniqueId('reg-keys'),
  authentication: { symmetricKey: { primaryKey: randomKey(), secondaryKey: randomKey() } },
  status: 'disabled',
};
const withThumbprints = {
  deviceId: uniqueId('reg-x509'),
  authentication: { x509Thumbprint: { primaryThumbprint: 'AB'.repeat(20), secondaryThumbprint: 'CD'.repeat(20) } },
  status: 'disabled',
};

function edgeDevice(extra: Record<string, unknown> = {}) {
  return { deviceId: uniqueId('reg-edge'), status: 'enabled', capabilities: { iotEdge: true }, ...extra };
}

describe('registry', () => {
  let h: HarnessHub;
  const created: string[] = [];

  async function create(description: object): Promise<Device> {
    const result = (await h.registry.create(description as never)).responseBody;
    created.push(result.deviceId);
    return result;
  }

  async function expectDeviceNotFound(deviceId: string): Promise<void> {
    await expect(h.registry.get(deviceId)).rejects.toMatchObject({ name: errors.DeviceNotFoundError.name });
  }

  beforeAll(async () => {
    h = await startTrustedHub();
  });

  afterAll(async () => {
    for (const id of created) await deleteDeviceQuietly(h?.registry, id);
    await h?.hub.stop();
  });

  it('a device created with only an id is read back', async () => {
    expect((await create(idOnly)).deviceId).toBe(idOnly.deviceId);
    expect((await h.registry.get(idOnly.deviceId)).responseBody.deviceId).toBe(idOnly.deviceId);
  });

  it('a device created with its own keys is read back with them and its status', async () => {
    expect((await create(withKeys)).deviceId).toBe(withKeys.deviceId);
    const got = (await h.registry.get(withKeys.deviceId)).responseBody;
    expect(got.authentication?.symmetricKey).toMatchObject(withKeys.authentication.symmetricKey);
    expect(got.status).toBe('disabled');
  });

  it('a device created with X.509 thumbprints is read back with them', async () => {
    expect((await create(withThumbprints)).deviceId).toBe(withThumbprints.deviceId);
    const got = (await h.registry.get(withThumbprints.deviceId)).responseBody;
    expect(got.authentication?.x509Thumbprint).toMatchObject(withThumbprints.authentication.x509Thumbprint);
    expect(got.status).toBe('disabled');
  });

  it('a device id with a slash is refused', async () => {
    await expect(h.registry.create({ deviceId: 'not/valid' } as never)).rejects.toBeDefined();
  });

  it('the device list holds the three devices', async () => {
    const ids = (await h.registry.list()).responseBody.map((d: Device) => d.deviceId);
    expect(ids).toEqual(expect.arrayContaining([idOnly.deviceId, withKeys.deviceId, withThumbprints.deviceId]));
  });

  it('a deleted device is not found', async () => {
    await h.registry.delete(idOnly.deviceId);
    await expectDeviceNotFound(idOnly.deviceId);
  });

  it('the device list no longer holds the deleted device', async () => {
    const ids = (await h.registry.list()).responseBody.map((d: Device) => d.deviceId);
    expect(ids).not.toContain(idOnly.deviceId);
    expect(ids).toContain(withKeys.deviceId);
  });

  it('an updated secondary key is returned by the update and by a later read', async () => {
    const secondaryKey = randomKey();
    const update = { ...withKeys, authentication: { symmetricKey: { ...withKeys.authentication.symmetricKey, secondaryKey } } };
    const updated = (await h.registry.update(update as never)).responseBody;
    expect(updated.authentication?.symmetricKey?.secondaryKey).toBe(secondaryKey);
    expect((await h.registry.get(withKeys.deviceId)).responseBody.authentication?.symmetricKey?.secondaryKey).toBe(secondaryKey);
  });

  it('deleting a device that does not exist fails with DeviceNotFoundError', async () => {
    await expect(h.registry.delete(uniqueId('reg-absent'))).rejects.toMatchObject({ name: errors.DeviceNotFoundError.name });
  });

  for (const which of ['with keys', 'with thumbprints'] as const) {
    it(`the device created ${which} is deleted`, async () => {
      const id = which === 'with keys' ? withKeys.deviceId : withThumbprints.deviceId;
      await h.registry.delete(id);
      await expectDeviceNotFound(id);
    });
  }

  it("a leaf device takes an edge device's scope, and may not change it afterwards", async () => {
    const edge = await create(edgeDevice());
    expect(edge.capabilities?.iotEdge).toBe(true);
    expect(edge.deviceScope).toBeTruthy();
    const leaf = await create({ deviceId: uniqueId('reg-leaf'), status: 'enabled', deviceScope: edge.deviceScope });
    expect(leaf.deviceScope).toBe(edge.deviceScope);
    await expect(h.registry.update({ ...leaf, deviceScope: `ms-azure-iot-edge://${uniqueId('elsewhere')}` } as never)).rejects.toBeDefined();
  });

  it('nested edge devices keep their parentScopes, and a leaf its deviceScope and parentScopes', async () => {
    const root = await create(edgeDevice());
    expect(root.deviceScope).toBeTruthy();
    const child = await create(edgeDevice({ parentScopes: [root.deviceScope] }));
    expect(child.capabilities?.iotEdge).toBe(true);
    expect(child.deviceScope).toBeTruthy();
    expect(child.parentScopes?.[0]).toBe(root.deviceScope);
    const leaf = await create({ deviceId: uniqueId('reg-leaf'), status: 'enabled', deviceScope: child.deviceScope, parentScopes: [child.deviceScope] });
    expect(leaf.parentScopes?.[0]).toBe(child.deviceScope);
    expect(leaf.deviceScope).toBe(child.deviceScope);
  });

  it('bulk add, update and remove of three devices', async () => {
    const ids = [uniqueId('reg-bulk'), uniqueId('reg-bulk'), uniqueId('reg-bulk')];
    const statuses = async () => Promise.all(ids.map(async (id) => (await h.registry.get(id)).responseBody.status));
    const added = ids.map((deviceId) => ({ deviceId, status: 'disabled', authentication: { symmetricKey: { primaryKey: randomKey(), secondaryKey: randomKey() } } }));
    created.push(...ids);

    expect((await h.registry.addDevices(added as never)).responseBody).toMatchObject({ isSuccessful: true, errors: [] });
    expect(await statuses()).toEqual(['disabled', 'disabled', 'disabled']);

    const enabled = ids.map((deviceId) => ({ deviceId, status: 'enabled' }));
    expect((await h.registry.updateDevices(enabled as never, true)).responseBody).toMatchObject({ isSuccessful: true, errors: [] });
    expect(await statuses()).toEqual(['enabled', 'enabled', 'enabled']);

    expect((await h.registry.removeDevices(ids.map((deviceId) => ({ deviceId })) as never, true)).responseBody).toMatchObject({ isSuccessful: true, errors: [] });
    for (const id of ids) await expectDeviceNotFound(id);
  });
});
