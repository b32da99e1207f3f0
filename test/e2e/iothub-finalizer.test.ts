// Deleting an EdgeDeployment in IoT Hub mode removes the module identities the operator created in the hub
// (a finalizer holds the deletion until then), and an unreachable hub delays the deletion but never blocks it.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Registry } from 'azure-iothub';
import { startHubEmulator, type HubEmulator } from '../../src/emulator/index.ts';
import { identitiesFinalizer } from '../../src/iothub/finalizer.ts';
import { createTestNamespace, deleteTestNamespace, eventually, kubectl, testCluster } from '../support/cluster.ts';
import { ensureCrd, operatorKubeConfig, startTestOperator, type RunningOperator } from '../support/operator.ts';
import { trustForServiceSdk } from '../integration/emulator/sdk.ts';
import { bindDevice, deploy, edgeDeployment, manifest, serviceRegistry, until } from './iothub-support.ts';

const cluster = testCluster();
let hub: HubEmulator;
let registry: Registry;
const namespaces: string[] = [];
let operator: RunningOperator;

beforeAll(async () => {
  hub = await startHubEmulator({ host: '127.0.0.71' });
  trustForServiceSdk(hub);
  registry = serviceRegistry(hub);
  await ensureCrd(cluster);
  for (const prefix of ['finalizer', 'finalizer-down']) {
    const ns = await createTestNamespace(cluster, prefix);
    namespaces.push(ns);
    hub.createEdgeDevice(ns);
  }
  operator = await startTestOperator(await operatorKubeConfig(cluster, namespaces[0]!), namespaces, {}, {
    twinSync: { timings: { backoffInitialMs: 200, backoffMaxMs: 2_000, finalizerTimeoutMs: 3_000, operationMs: 3_000 } },
  });
  for (const ns of namespaces) await bindDevice(cluster, hub, ns);
});
afterAll(async () => {
  await operator?.stop();
  await hub?.stop().catch(() => undefined);
  for (const ns of namespaces) await deleteTestNamespace(cluster, ns);
});

async function moduleIds(deviceId: string): Promise<string[]> {
  const modules = (await registry.getModulesOnDevice(deviceId)).responseBody;
  return modules.map((m) => m.moduleId).filter((id) => !id.startsWith('$')).sort();
}

async function deployed(ns: string): Promise<void> {
  await deploy(registry, ns, manifest({ sensor: {}, filter: {} }));
  await eventually(`${ns}: identities created`, async () => ((await moduleIds(ns)).join() === 'filter,sensor' ? true : undefined), 120_000);
  const ed = await until(cluster, ns, 'the finalizer', (e) => e.metadata?.finalizers?.includes(identitiesFinalizer) === true);
  expect(ed.metadata?.finalizers).toContain(identitiesFinalizer);
}

async function gone(ns: string): Promise<void> {
  await kubectl(cluster, ['-n', ns, 'delete', 'edgedeployment', 'device', '--wait=true', '--timeout=90s']);
  await expect(edgeDeployment(cluster, ns)).rejects.toThrow(/NotFound|not found/);
}

async function event(ns: string, reason: string): Promise<string> {
  return eventually(`${ns}: Event ${reason}`, async () => {
    const list = await cluster.core.listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.name=device,reason=${reason}` });
    return list.items[0]?.message;
  });
}

describe('deleting an EdgeDeployment in IoT Hub mode', () => {
  it('removes the module identities the operator created', async () => {
    const ns = namespaces[0]!;
    await deployed(ns);
    await gone(ns);
    expect(await moduleIds(ns)).toEqual([]);
    expect(await event(ns, 'ModuleIdentitiesRemoved')).toContain('filter, sensor');
  });

  it('does not wait for ever on an unreachable hub: a deadline, a Warning Event, and the deletion goes on', async () => {
    const ns = namespaces[1]!;
    await deployed(ns);
    await hub.stop();
    await gone(ns);
    expect(await event(ns, 'ModuleIdentitiesNotRemoved')).toContain('could not be removed');
  });
});
