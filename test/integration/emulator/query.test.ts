// POST /devices/query against the real azure-iothub: registry.createQuery(...).nextAsTwin() pages
// through device and module twins; projections and COUNT come back as plain JSON; a query the hub
// cannot parse is a 400 the SDK maps to an ArgumentError.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Registry } from 'azure-iothub';
import type { HubEmulator } from '../../../src/emulator/index.ts';
import { startEmulatorWithRegistry } from './sdk.ts';

let hub: HubEmulator;
let registry: Registry;

beforeAll(async () => {
  ({ hub, registry } = await startEmulatorWithRegistry());
  for (let i = 1; i <= 5; i++) {
    const deviceId = `q-edge-${i}`;
    await registry.create({ deviceId, capabilities: { iotEdge: true } } as never);
    const twin = (await registry.getTwin(deviceId)).responseBody;
    await registry.updateTwin(deviceId, { tags: { site: i <= 3 ? 'north' : 'south', rank: i } } as never, twin.etag);
  }
  await registry.create({ deviceId: 'q-leaf' } as never);
});

afterAll(async () => {
  await hub.stop();
});

async function allTwinPages(text: string, pageSize: number): Promise<{ pages: number; ids: string[] }> {
  const query = registry.createQuery(text, pageSize);
  const ids: string[] = [];
  let pages = 0;
  while (query.hasMoreResults) {
    const page = await query.nextAsTwin();
    pages += 1;
    ids.push(...page.result.map((t) => (t.moduleId ? `${t.deviceId}/${t.moduleId}` : t.deviceId)));
  }
  return { pages, ids };
}

describe('twin queries with azure-iothub', () => {
  it('pages device twins matching a tag condition with nextAsTwin', async () => {
    const { pages, ids } = await allTwinPages("SELECT * FROM devices WHERE tags.site = 'north' AND capabilities.iotEdge = true", 2);
    expect(ids).toEqual(['q-edge-1', 'q-edge-2', 'q-edge-3']);
    expect(pages).toBe(2);
  });

  it('returns twins whose tags, properties and etag the SDK can use', async () => {
    const page = await registry.createQuery("SELECT * FROM devices WHERE deviceId = 'q-edge-4'").nextAsTwin();
    const [twin] = page.result;
    expect(twin?.tags).toEqual({ site: 'south', rank: 4 });
    await twin!.update({ tags: { checked: true } });
    expect((await registry.getTwin('q-edge-4')).responseBody.tags).toEqual({ site: 'south', rank: 4, checked: true });
  });

  it('queries module twins from devices.modules', async () => {
    const { ids } = await allTwinPages("SELECT * FROM devices.modules WHERE moduleId = '$edgeAgent' AND deviceId IN ['q-edge-1', 'q-edge-5']", 100);
    expect(ids).toEqual(['q-edge-1/$edgeAgent', 'q-edge-5/$edgeAgent']);
  });

  it('answers projections and COUNT with next()', async () => {
    const counted = await registry.createQuery('SELECT COUNT() AS edgeDevices FROM devices WHERE capabilities.iotEdge = true').next();
    expect(counted.result).toEqual([{ edgeDevices: 5 }]);
    const projected = await registry.createQuery('SELECT deviceId, tags.rank FROM devices WHERE tags.rank >= 4').next();
    expect(projected.result).toEqual([{ deviceId: 'q-edge-4', rank: 4 }, { deviceId: 'q-edge-5', rank: 5 }]);
  });

  it('refuses a query it cannot parse with 400', async () => {
    await expect(registry.createQuery('SELECT * FROM devices WHERE tags.site =').next()).rejects.toMatchObject({
      name: 'ArgumentError',
      responseBody: expect.stringContaining('ends early'),
    });
  });
});
