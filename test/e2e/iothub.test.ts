// IoT Hub mode end to end: the real azure-iothub (service) and azure-iot-device (operator as $edgeAgent)
// against the hub emulator on its own loopback address, and the operator in-process against the local
// control plane as its least-privilege ServiceAccount.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { V1Pod } from '@kubernetes/client-node';
import type { Registry } from 'azure-iothub';
import { startHubEmulator, type HubEmulator } from '../../src/emulator/index.ts';
import { createTestNamespace, deleteTestNamespace, eventually, testCluster } from '../support/cluster.ts';
import { ensureCrd, operatorKubeConfig, startTestOperator, type RunningOperator } from '../support/operator.ts';
import { trustForServiceSdk } from '../integration/emulator/sdk.ts';
import { allRunning, asReported, bindDevice, condition, deploy, desiredVersionOf, edgeDeployment, manifest, serviceRegistry, until, untilReported } from './iothub-support.ts';

const cluster = testCluster();
let hub: HubEmulator;
let registry: Registry;
let ns: string;
let operator: RunningOperator;

beforeAll(async () => {
  hub = await startHubEmulator({ host: '127.0.0.61' });
  trustForServiceSdk(hub);
  registry = serviceRegistry(hub);
  await ensureCrd(cluster);
  ns = await createTestNamespace(cluster, 'iothub');
  hub.createEdgeDevice(ns);
  operator = await startTestOperator(await operatorKubeConfig(cluster, ns), [ns], {}, { twinSync: { timings: { backoffInitialMs: 200, backoffMaxMs: 2_000 } } });
  await bindDevice(cluster, hub, ns);
});

afterAll(async () => {
  await operator?.stop();
  await hub?.stop();
  await deleteTestNamespace(cluster, ns);
});

async function modulePods(module: string): Promise<V1Pod[]> {
  const pods = await cluster.core.listNamespacedPod({ namespace: ns, labelSelector: `iotedge-operator.io/module=${module}` });
  return pods.items.filter((p) => !p.metadata?.deletionTimestamp);
}

describe('IoT Hub mode', () => {
  it('follows a deployment pushed with applyConfigurationContentOnDevice and reports every module running', async () => {
    await until(cluster, ns, 'IoTHubConnected=True', (e) => condition(e, 'IoTHubConnected')?.status === 'True', 30_000);
    await deploy(registry, ns, manifest({ sensor: {}, filter: { startupOrder: 2 } }));
    const version = desiredVersionOf(hub, ns);
    const ed = await until(cluster, ns, 'Ready with the deployed modules', (e) => condition(e, 'Ready')?.status === 'True' && e.status?.lastDesiredVersion === version);
    expect(Object.keys(ed.spec?.agent?.modules ?? {}).sort()).toEqual(['filter', 'sensor']);
    expect(ed.metadata?.annotations?.['iotedge-operator.io/desired-version']).toBe(String(version));
    // The registry password went to a Secret; the spec only names it.
    expect(JSON.stringify(ed.spec)).not.toContain('registry-password-123');
    expect(ed.spec?.agent?.runtime?.settings?.registryCredentials?.acr?.passwordSecretRef).toEqual({ name: 'device-registry-credentials', key: 'acr' });
    const secret = await cluster.core.readNamespacedSecret({ name: 'device-registry-credentials', namespace: ns });
    expect(Buffer.from(secret.data!.acr!, 'base64').toString()).toBe('registry-password-123');
    expect(ed.spec?.hub?.routes?.sensorToUpstream).toMatchObject({ route: 'FROM /messages/modules/sensor/outputs/* INTO $upstream' });
    expect((await modulePods('sensor')).some((p) => p.status?.phase === 'Running')).toBe(true);
    expect(ed.status?.iotHub).toMatchObject({ connected: true, hostName: hub.host });

    const r = await untilReported(hub, ns, 'every module running', (rep) => allRunning(rep, ['sensor', 'filter'], version));
    expect(r.schemaVersion).toBe('1.0');
    expect(asReported(r).systemModules?.edgeAgent?.runtimeStatus).toBe('running');
    expect(r.runtime).toMatchObject({ type: 'docker', platform: { os: expect.any(String), architecture: expect.any(String) } });
    expect(asReported(r).modules?.sensor).toMatchObject({ status: 'running', settings: { image: 'example.azurecr.io/sensor:1.0' } });
    const finalEd = await edgeDeployment(cluster, ns);
    expect(finalEd.status?.iotHub?.lastReportTime).toEqual(expect.any(String));
  });
});

export { eventually };
