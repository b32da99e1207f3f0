// IoT Hub automatic deployments end to end: three tagged IoT Edge devices, one EdgeDeployment each;
// a standard deployment targets two of them by tag and a layered deployment adds a module and a route
// on top. The operator, following each device's $edgeAgent twin, brings exactly those two to Ready with
// the merged modules, the third gets nothing, and the deployments' applied counts (and a custom metric
// over the operator's reported properties) reach 2. Retagging the third device brings it in as well.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Registry } from 'azure-iothub';
import { startHubEmulator, type HubEmulator, type JsonObject } from '../../src/emulator/index.ts';
import { createTestNamespace, deleteTestNamespace, eventually, testCluster } from '../support/cluster.ts';
import { ensureCrd, operatorKubeConfig, startTestOperator, type RunningOperator } from '../support/operator.ts';
import { trustForServiceSdk } from '../integration/emulator/sdk.ts';
import { allRunning, bindDevice, condition, desiredVersionOf, edgeDeployment, manifest, serviceRegistry, until, untilReported } from './iothub-support.ts';

const cluster = testCluster();
let hub: HubEmulator;
let registry: Registry;
let namespaces: string[] = [];
let operator: RunningOperator;

beforeAll(async () => {
  hub = await startHubEmulator({ host: '127.0.0.73' });
  trustForServiceSdk(hub);
  registry = serviceRegistry(hub);
  await ensureCrd(cluster);
  namespaces = await Promise.all([1, 2, 3].map(() => createTestNamespace(cluster, 'iothub-adm')));
  for (const ns of namespaces) hub.createEdgeDevice(ns);
  operator = await startTestOperator(await operatorKubeConfig(cluster, namespaces[0]!), namespaces, {}, { twinSync: { timings: { backoffInitialMs: 200, backoffMaxMs: 2_000 } } });
  await Promise.all(namespaces.map((ns) => bindDevice(cluster, hub, ns)));
});

afterAll(async () => {
  await operator?.stop();
  await hub?.stop();
  await Promise.all(namespaces.map((ns) => deleteTestNamespace(cluster, ns)));
});

async function tag(deviceId: string, tags: JsonObject): Promise<void> {
  const twin = (await registry.getTwin(deviceId)).responseBody;
  await registry.updateTwin(deviceId, { tags } as never, twin.etag);
}

function appliedAndSucceeded(id: string): string {
  return 'SELECT deviceId FROM devices.modules WHERE moduleId = \'$edgeAgent\''
    + ` AND configurations.[[${id}]].status = 'Applied'`
    + ' AND properties.desired.$version = properties.reported.lastDesiredVersion AND properties.reported.lastDesiredStatus.code = 200';
}

describe('IoT Hub automatic and layered deployments through the operator', () => {
  it('brings exactly the targeted devices to Ready with the base and layered content merged', async () => {
    const [prodA, prodB, dev] = namespaces as [string, string, string];
    await tag(prodA, { environment: 'prod', site: 'north' });
    await tag(prodB, { environment: 'prod', site: 'south' });
    await tag(dev, { environment: 'dev', site: 'north' });
    await Promise.all(namespaces.map((ns) => until(cluster, ns, 'IoTHubConnected=True', (e) => condition(e, 'IoTHubConnected')?.status === 'True', 60_000)));

    await registry.addConfiguration({
      id: 'fleet-base',
      targetCondition: "tags.environment = 'prod'",
      priority: 10,
      content: manifest({ sensor: {} }),
      metrics: { queries: { reportedSuccessfulCount: appliedAndSucceeded('fleet-base') } },
    } as never);
    await registry.addConfiguration({
      id: 'fleet-filter-layer',
      targetCondition: "tags.environment = 'prod' AND IS_DEFINED(tags.site)",
      priority: 20,
      content: {
        modulesContent: {
          $edgeAgent: {
            'properties.desired.modules.filter': {
              version: '1.0', type: 'docker', status: 'running', restartPolicy: 'always', startupOrder: 2,
              settings: { image: 'example.azurecr.io/filter:1.0', createOptions: '{}' },
            },
          },
          $edgeHub: { 'properties.desired.routes.filterToUpstream': { route: 'FROM /messages/modules/filter/outputs/* INTO $upstream', priority: 0 } },
        },
      },
    } as never);

    for (const ns of [prodA, prodB]) {
      const version = desiredVersionOf(hub, ns);
      await untilReported(hub, ns, 'sensor and filter running', (r) => allRunning(r, ['sensor', 'filter'], version));
      const ed = await until(cluster, ns, 'Ready with the merged modules', (e) => condition(e, 'Ready')?.status === 'True' && e.status?.lastDesiredVersion === version);
      expect(Object.keys(ed.spec?.agent?.modules ?? {}).sort()).toEqual(['filter', 'sensor']);
      expect(ed.spec?.agent?.modules?.filter?.settings?.image).toBe('example.azurecr.io/filter:1.0');
      const hubDesired = (hub.admin.twin(ns, '$edgeHub').properties as JsonObject).desired as JsonObject;
      expect(Object.keys(hubDesired.routes as JsonObject).sort()).toEqual(['filterToUpstream', 'sensorToUpstream']);
    }

    const metrics = await eventually('fleet-base applied and reported on both devices', async () => {
      const base = (await registry.getConfiguration('fleet-base')).responseBody;
      return base.metrics?.results?.reportedSuccessfulCount === 2 ? base : undefined;
    }, 60_000);
    expect(metrics.systemMetrics?.results).toEqual({ targetedCount: 2, appliedCount: 2 });
    expect((await registry.getConfiguration('fleet-filter-layer')).responseBody.systemMetrics?.results).toEqual({ targetedCount: 2, appliedCount: 2 });

    // The dev device was never targeted: its twin holds no modules and its EdgeDeployment none.
    expect(((hub.admin.twin(dev, '$edgeAgent').properties as JsonObject).desired as JsonObject).modules).toBeUndefined();
    expect(Object.keys((await edgeDeployment(cluster, dev)).spec?.agent?.modules ?? {})).toEqual([]);
  });

  it('follows a device into the deployments when its tags change', async () => {
    const dev = namespaces[2]!;
    await tag(dev, { environment: 'prod' });
    await untilReported(hub, dev, 'sensor and filter running after retagging', (r) => allRunning(r, ['sensor', 'filter'], desiredVersionOf(hub, dev)));
    const ed = await until(cluster, dev, 'Ready with the merged modules', (e) => condition(e, 'Ready')?.status === 'True' && e.status?.lastDesiredVersion === desiredVersionOf(hub, dev));
    expect(Object.keys(ed.spec?.agent?.modules ?? {}).sort()).toEqual(['filter', 'sensor']);
    const base = await eventually('fleet-base reported on three devices', async () => {
      const b = (await registry.getConfiguration('fleet-base')).responseBody;
      return b.metrics?.results?.reportedSuccessfulCount === 3 ? b : undefined;
    }, 60_000);
    expect(base.systemMetrics?.results).toEqual({ targetedCount: 3, appliedCount: 3 });
  });
});
