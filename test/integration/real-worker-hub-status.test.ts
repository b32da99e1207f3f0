// status.edgeHub on the real worker: the built-in hub (localhost/iotedge-operator:dev running `edgehub`) and
// the sample modules (the simulated temperature sensor and the filter) as real containers in kubectl mode.
// The operator under test, out of cluster and with exactly the shipped RBAC, reads the hub's /status through
// the API server's pod proxy; the test reads what `kubectl get edgedeployment` shows.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { EdgeDeployment } from '../../src/api/edge-deployment.ts';
import { createTestNamespace, deleteTestNamespace, eventually, kubectl, testCluster } from './../support/cluster.ts';
import { ensureCrd, operatorKubeConfig, startTestOperator, type RunningOperator } from '../support/operator.ts';
import { sampleEdgeDeployment, sampleModule } from '../support/samples.ts';

const cluster = testCluster();
const sensorId = 'SimulatedTemperatureSensor';
let namespace: string;
let operator: RunningOperator;

function deployment(filterStatus: 'running' | 'stopped'): EdgeDeployment {
  return sampleEdgeDeployment(namespace, {
    [sensorId]: sampleModule('localhost/iotedge-samples/simulated-temperature-sensor:dev', {
      startupOrder: 1, imagePullPolicy: 'never', env: { SendInterval: { value: '0.2' }, MessageCount: { value: '0' } },
    }),
    filter: sampleModule('localhost/iotedge-samples/filter-module:dev', { startupOrder: 2, imagePullPolicy: 'never', status: filterStatus }),
  }, {
    routes: {
      sensorToFilter: { route: `FROM /messages/modules/${sensorId}/outputs/temperatureOutput INTO BrokeredEndpoint("/modules/filter/inputs/input1")` },
      // No IoT Hub: what the filter forwards waits 2 s in $upstream, then expires.
      filterToUpstream: { route: 'FROM /messages/modules/filter/outputs/* INTO $upstream', timeToLiveSecs: 2 },
    },
  });
}

async function apply(resource: EdgeDeployment): Promise<void> {
  await kubectl(cluster, ['apply', '--server-side', '--force-conflicts', '--field-manager=test-user', '-f', '-'], JSON.stringify(resource));
}

async function until(what: string, predicate: (ed: EdgeDeployment) => boolean, timeoutMs = 180_000): Promise<EdgeDeployment> {
  return eventually(what, async () => {
    const ed = JSON.parse(await kubectl(cluster, ['-n', namespace, 'get', 'edgedeployment', 'device', '-o', 'json'])) as EdgeDeployment;
    return predicate(ed) ? ed : undefined;
  }, timeoutMs);
}

beforeAll(async () => {
  await ensureCrd(cluster);
  namespace = await createTestNamespace(cluster, 'hub-status', 'real');
  const kubeConfig = await operatorKubeConfig(cluster, namespace);
  operator = await startTestOperator(kubeConfig, [namespace], { edgeHub: 'builtin' }, { hubStatus: { pollMs: 2_000, countsIntervalMs: 4_000 } });
});
afterAll(async () => {
  await operator?.stop();
  if (namespace) await deleteTestNamespace(cluster, namespace);
});

describe('status.edgeHub from the built-in hub on edge-worker-0', () => {
  it('shows the modules connected to the hub and $upstream expiring without an IoT Hub', async () => {
    await apply(deployment('running'));
    const ed = await until('both modules Connected in status.edgeHub and expired $upstream messages counted', (e) =>
      e.status?.edgeHub?.clients?.[`${namespace}/${sensorId}`]?.status === 'Connected' &&
      e.status.edgeHub.clients[`${namespace}/filter`]?.status === 'Connected' &&
      (e.status.edgeHub.upstream?.expired ?? 0) > 0);
    const hub = ed.status!.edgeHub!;
    expect(hub.upstream).toMatchObject({ state: 'Expiring', connected: false, expiring: true });
    expect(hub.connectedClients).toBe(2);
    expect(hub.message).toBeUndefined();
    expect(Date.parse(hub.clients![`${namespace}/filter`]!.lastConnectedTimeUtc!)).not.toBeNaN();
    // The read works, and a hub that started normally (Unknown, HubStarting, until its first read) raised no Warning.
    expect(ed.status!.conditions?.find((c) => c.type === 'EdgeHubStatusKnown')).toMatchObject({ status: 'True', reason: 'StatusRead' });
    const events = (JSON.parse(await kubectl(cluster, ['-n', namespace, 'get', 'events', '-o', 'json'])) as { items: { type: string; reason: string }[] }).items;
    expect(events.filter((e) => e.type === 'Warning' && e.reason.startsWith('EdgeHub'))).toEqual([]);
    // The hub's pod has no API token: the table came through the pod proxy, not from the hub.
    const [hubPod] = JSON.parse(await kubectl(cluster, ['-n', namespace, 'get', 'pods', '-l', 'iotedge-operator.io/module=edgehub', '-o', 'json'])).items as { spec: { automountServiceAccountToken?: boolean; containers: { image: string }[] } }[];
    expect(hubPod!.spec.containers[0]!.image).toBe('localhost/iotedge-operator:dev');
    expect(hubPod!.spec.automountServiceAccountToken).toBe(false);

    const yaml = await kubectl(cluster, ['-n', namespace, 'get', 'edgedeployment', 'device', '-o', 'yaml']);
    expect(yaml).toContain(`${namespace}/filter:`);
    const table = await kubectl(cluster, ['-n', namespace, 'get', 'edgedeployment', 'device', '-o', 'wide']);
    const [header, row] = table.trim().split('\n');
    const cell = (name: string) => row!.split(/\s+/)[header!.split(/\s+/).indexOf(name)];
    expect(cell('UPSTREAM')).toBe('Expiring');
    expect(cell('HUB-CLIENTS')).toBe('2');
  });

  it('marks a stopped module Disconnected with the time it left, and writes nothing while nothing changes', async () => {
    const before = (await until('filter Connected', (e) => e.status?.edgeHub?.clients?.[`${namespace}/filter`]?.status === 'Connected')).status!.edgeHub!;
    await apply(deployment('stopped'));
    const ed = await until('filter Disconnected', (e) => e.status?.edgeHub?.clients?.[`${namespace}/filter`]?.status === 'Disconnected');
    const filter = ed.status!.edgeHub!.clients![`${namespace}/filter`]!;
    expect(filter.lastConnectedTimeUtc).toBe(before.clients![`${namespace}/filter`]!.lastConnectedTimeUtc);
    expect(Date.parse(filter.lastDisconnectedTimeUtc!)).toBeGreaterThanOrEqual(Date.parse(filter.lastConnectedTimeUtc!));
    expect(ed.status!.edgeHub!.clients![`${namespace}/${sensorId}`]!.status).toBe('Connected');

    // The filter is stopped, so nothing reaches $upstream any more: once the last of it has expired, the
    // status is steady. Over the next polls (2 s apart; counts at most every 4 s) the operator reads but does not write.
    const settled = await until('$upstream empty', (e) => e.status?.edgeHub?.upstream?.queued === 0 && e.status.edgeHub.connectedClients === 1);
    await new Promise((r) => setTimeout(r, 5_000));
    const from = operator.requests.length;
    await new Promise((r) => setTimeout(r, 10_000));
    const window = operator.requests.slice(from);
    expect(window.filter((r) => r.method === 'GET' && r.path.includes('/proxy/status')).length).toBeGreaterThanOrEqual(3);
    expect(window.filter((r) => r.method !== 'GET').map((r) => `${r.method} ${r.path}`)).toEqual([]);
    const after = (await until('read again', () => true)).status!.edgeHub!;
    expect(after.upstream?.expired).toBe(settled.status!.edgeHub!.upstream?.expired);
  });
});
