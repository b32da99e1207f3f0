// Module identity scenarios of the SDK's module CRUD suite: add, get, list, update (with the ETag or
// forced), and remove by id or by the module object. Service REST only.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import type { Module } from 'azure-iothub';
import { createKeyDevice, deleteDeviceQuietly, startTrustedHub, uniqueId } from './support.ts';
import type { HarnessHub, SasDevice } from './support.ts';

describe('module identities', () => {
  let h: HarnessHub;
  let hostDevice: SasDevice;
  let moduleId: string;

  beforeAll(async () => {
    h = await startTrustedHub();
    hostDevice = await createKeyDevice(h.registry, h.host, 'crud-host');
  });

  afterAll(async () => {
    await deleteDeviceQuietly(h?.registry, hostDevice?.deviceId);
    await h?.hub.stop();
  });

  beforeEach(async () => {
    moduleId = uniqueId('crud');
    await h.registry.addModule({ deviceId: hostDevice.deviceId, moduleId } as never);
  });

  it('an added module is found by its id', async () => {
    const found = (await h.registry.getModule(hostDevice.deviceId, moduleId)).responseBody;
    expect(found).toMatchObject({ deviceId: hostDevice.deviceId, moduleId });
  });

  it('an added module is in the list of the device modules', async () => {
    const listed = (await h.registry.getModulesOnDevice(hostDevice.deviceId)).responseBody;
    expect(listed.map((m: Module) => `${m.deviceId}/${m.moduleId}`)).toContain(`${hostDevice.deviceId}/${moduleId}`);
  });

  for (const force of [false, true]) {
    it(`a module's keys are swapped by an update ${force ? 'forced without ETag' : 'with its ETag'}`, async () => {
      const found = (await h.registry.getModule(hostDevice.deviceId, moduleId)).responseBody;
      const keys = found.authentication!.symmetricKey!;
      const [oldPrimary, oldSecondary] = [keys.primaryKey, keys.secondaryKey];
      keys.primaryKey = oldSecondary;
      keys.secondaryKey = oldPrimary;
      if (force) delete (found as { etag?: string }).etag;
      await h.registry.updateModule(found, force);
      const after = (await h.registry.getModule(hostDevice.deviceId, moduleId)).responseBody;
      expect(after.authentication?.symmetricKey).toMatchObject({ primaryKey: oldSecondary, secondaryKey: oldPrimary });
    });
  }

  it('a module removed by device and module id is gone', async () => {
    await h.registry.removeModule(hostDevice.deviceId, moduleId);
    await expect(h.registry.getModule(hostDevice.deviceId, moduleId)).rejects.toBeDefined();
  });

  it('a module removed by the module object (with its ETag) is gone', async () => {
    const found = (await h.registry.getModule(hostDevice.deviceId, moduleId)).responseBody;
    // The promise form of removeModule(module) throws for want of a callback (azure-iothub 1.16.6), so the callback form.
    await new Promise<void>((resolve, reject) => h.registry.removeModule(found, (err) => (err ? reject(err) : resolve())));
    await expect(h.registry.getModule(hostDevice.deviceId, moduleId)).rejects.toBeDefined();
  });
});
