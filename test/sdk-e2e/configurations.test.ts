// Configuration scenarios of the SDK's configurations suite, for module and device configurations:
// add and get by id, find in the list, update with the ETag, force-update, delete. Service REST only.
import { afterEach, beforeAll, afterAll, beforeEach, describe, expect, it } from '@jest/globals';
import type { Configuration } from 'azure-iothub';
import { startTrustedHub, uniqueId } from './support.ts';
import type { HarnessHub } from './support.ts';

let h: HarnessHub;
beforeAll(async () => {
  h = await startTrustedHub();
});
afterAll(async () => {
  await h?.hub.stop();
});

for (const entity of ['module', 'device'] as const) {
  describe(`${entity} configuration`, () => {
    let config: Configuration;

    beforeEach(() => {
      config = {
        id: uniqueId(`cfg-${entity}`),
        content: { [`${entity}Content`]: { 'properties.desired': { mode: 'eco' } } },
        targetCondition: '',
        priority: 20,
      } as unknown as Configuration;
    });

    afterEach(async () => {
      try {
        await h.registry.removeConfiguration(config.id);
      } catch {
        // Cleanup only: the scenario may not have created it, or removed it itself.
      }
    });

    it('an added configuration is read back by id with its content', async () => {
      await h.registry.addConfiguration(config);
      const found = (await h.registry.getConfiguration(config.id)).responseBody;
      expect(found.id).toBe(config.id);
      expect(found.content).toEqual(config.content);
    });

    it('an added configuration is in the list of configurations', async () => {
      await h.registry.addConfiguration(config);
      const listed = (await h.registry.getConfigurations()).responseBody.filter((c: Configuration) => c.id === config.id);
      expect(listed).toHaveLength(1);
      expect(listed[0]?.content).toEqual(config.content);
    });

    it('a configuration updated with its ETag has the new priority', async () => {
      await h.registry.addConfiguration(config);
      const found = (await h.registry.getConfiguration(config.id)).responseBody;
      found.priority = 73;
      await h.registry.updateConfiguration(found);
      expect((await h.registry.getConfiguration(config.id)).responseBody.priority).toBe(73);
    });

    it('a configuration force-updated without an ETag has the new priority', async () => {
      await h.registry.addConfiguration(config);
      await h.registry.updateConfiguration({ ...config, priority: 74 }, true);
      expect((await h.registry.getConfiguration(config.id)).responseBody.priority).toBe(74);
    });

    it('a deleted configuration is not found', async () => {
      await h.registry.addConfiguration(config);
      await h.registry.getConfiguration(config.id);
      await h.registry.removeConfiguration(config.id);
      await expect(h.registry.getConfiguration(config.id)).rejects.toBeDefined();
    });
  });
}
