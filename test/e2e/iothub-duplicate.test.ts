// Two EdgeDeployments bound to one device in one namespace: only the one the reconciler accepts (the older)
// connects as $edgeAgent, so the two never kick each other's connection off; when it goes, the other takes over.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import { startHubEmulator, type HubEmulator } from '../../src/emulator/index.ts';
import { createTestNamespace, deleteTestNamespace, eventually, kubectl, testCluster } from '../support/cluster.ts';
import { ensureCrd, operatorKubeConfig, startTestOperator, type RunningOperator } from '../support/operator.ts';
import { bindDevice, condition, edgeDeployment, group } from './iothub-support.ts';

const cluster = testCluster();
let hub: HubEmulator;
let ns: string;
let operator: RunningOperator;

beforeAll(async () => {
  hub = await startHubEmulator({ host: '127.0.0.69' });
  await ensureCrd(cluster);
  ns = await createTestNamespace(cluster, 'iothub-dup');
  hub.createEdgeDevice(ns);
  operator = await startTestOperator(await operatorKubeConfig(cluster, ns), [ns], {}, { twinSync: { timings: { backoffInitialMs: 200, backoffMaxMs: 2_000 } } });
  await bindDevice(cluster, hub, ns);
});
afterAll(async () => {
  await operator?.stop();
  await hub?.stop();
  await deleteTestNamespace(cluster, ns);
});

const agentConnections = () => hub.admin.connections().filter((c) => c.deviceId === ns && c.moduleId === '$edgeAgent');

describe('two EdgeDeployments for one device', () => {
  it('connect once, as the EdgeDeployment the reconciler accepts', async () => {
    await eventually('the device connected', async () => (agentConnections().length === 1 ? true : undefined));
    const first = agentConnections()[0]!.connectionId;
    const younger = {
      apiVersion: `${group}/v1alpha1`, kind: 'EdgeDeployment', metadata: { name: 'device-2', namespace: ns },
      spec: { iotHub: { connectionStringSecretRef: { name: 'iothub', key: 'connectionString' } } },
    };
    await kubectl(cluster, ['apply', '--server-side', '--field-manager=test-user', '-f', '-'], JSON.stringify(younger));
    await eventually('device-2 flagged as a duplicate', async () => {
      const ed = JSON.parse(await kubectl(cluster, ['-n', ns, 'get', 'edgedeployment', 'device-2', '-o', 'json'])) as Parameters<typeof condition>[0];
      return condition(ed, 'Valid')?.reason === 'DuplicateDevice' ? ed : undefined;
    });
    // A window long enough for a second client to connect and kick the first off several times over.
    await sleep(3_000);
    expect(operator.twinSync?.syncOf(ns, 'device-2')).toBeUndefined();
    expect(agentConnections().map((c) => c.connectionId)).toEqual([first]);

    await kubectl(cluster, ['-n', ns, 'delete', 'edgedeployment', 'device', '--wait=true']);
    await eventually('device-2 takes over the connection', async () => (operator.twinSync?.syncOf(ns, 'device-2') && agentConnections().length === 1 && agentConnections()[0]!.connectionId !== first ? true : undefined));
    expect((await edgeDeployment(cluster, ns).catch(() => undefined))?.metadata?.name).toBeUndefined();
  });
});
