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
import device from 'azure-iot-device';
import mqtt from 'azure-iot-device-mqtt';
import iothub from 'azure-iothub';
import { deriveModuleKey } from '../../src/runtime/sas.ts';
import { stockEdgeHubViolations } from '../support/edgehub-contract.ts';
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
    // Routes stay in the $edgeHub twin, which edgeHub reads itself: twin sync never connects as $edgeHub.
    expect(ed.spec?.hub).toBeUndefined();
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

  it('follows desired updates: a module added, an image changed, a module stopped, a module removed', async () => {
    await deploy(registry, ns, manifest({ sensor: { image: 'example.azurecr.io/sensor:2.0' }, filter: { startupOrder: 2, status: 'stopped' }, extra: { startupOrder: 3 } }));
    let version = desiredVersionOf(hub, ns);
    await until(cluster, ns, 'three modules with the new image', (e) => e.status?.lastDesiredVersion === version && condition(e, 'Ready')?.status === 'True');
    const sensor = await cluster.apps.readNamespacedDeployment({ name: 'sensor', namespace: ns });
    expect(sensor.spec?.template.spec?.containers[0]?.image).toBe('example.azurecr.io/sensor:2.0');
    const filter = await cluster.apps.readNamespacedDeployment({ name: 'filter', namespace: ns });
    expect(filter.spec?.replicas).toBe(0);
    let r = await untilReported(hub, ns, 'extra running, filter stopped', (rep) => asReported(rep).lastDesiredVersion === version
      && asReported(rep).modules?.extra?.runtimeStatus === 'running' && asReported(rep).modules?.filter?.runtimeStatus === 'stopped'
      && asReported(rep).modules?.sensor?.settings?.image === 'example.azurecr.io/sensor:2.0');
    expect(asReported(r).modules?.filter?.status).toBe('stopped');
    expect(Object.keys(hub.registry.device(ns).modules).sort()).toEqual(['$edgeAgent', '$edgeHub', 'extra', 'filter', 'sensor']);

    await deploy(registry, ns, manifest({ sensor: { image: 'example.azurecr.io/sensor:2.0' }, filter: { startupOrder: 2 } }));
    version = desiredVersionOf(hub, ns);
    r = await untilReported(hub, ns, 'extra gone', (rep) => allRunning(rep, ['sensor', 'filter'], version));
    expect(asReported(r).modules?.extra).toBeUndefined();
    await eventually('extra Deployment pruned', async () => ((await cluster.apps.listNamespacedDeployment({ namespace: ns })).items.some((d) => d.metadata?.name === 'extra') ? undefined : true));
    await eventually('extra identity removed', async () => (hub.registry.findModule(ns, 'extra') ? undefined : true));
    await eventually('extra Secret removed', async () => ((await cluster.core.listNamespacedSecret({ namespace: ns })).items.some((x) => x.metadata?.name === 'extra-iothub') ? undefined : true));
  });

  it('reports an invalid desired state as 400 naming the field and keeps the old modules running', async () => {
    const before = await edgeDeployment(cluster, ns);
    const bad = manifest({ sensor: { image: 'example.azurecr.io/sensor:2.0' }, filter: { startupOrder: 2 } });
    const agent = (bad.modulesContent as Record<string, Record<string, { modules: Record<string, Record<string, unknown>> }>>).$edgeAgent!['properties.desired']!;
    agent.modules.filter!.restartPolicy = 'sometimes';
    await deploy(registry, ns, bad);
    const version = desiredVersionOf(hub, ns);
    const r = await untilReported(hub, ns, 'lastDesiredStatus 400', (rep) => asReported(rep).lastDesiredVersion === version && asReported(rep).lastDesiredStatus?.code === 400);
    expect(asReported(r).lastDesiredStatus?.description).toContain('$edgeAgent/modules/filter/restartPolicy');
    const ed = await until(cluster, ns, 'IoTHubDesiredStateAccepted=False', (e) => condition(e, 'IoTHubDesiredStateAccepted')?.status === 'False');
    expect(condition(ed, 'IoTHubDesiredStateAccepted')?.message).toContain('restartPolicy');
    expect(ed.spec).toEqual(before.spec);
    expect(ed.metadata?.generation).toBe(before.metadata?.generation);
    expect(condition(ed, 'Ready')?.status).toBe('True');
    expect((await modulePods('filter')).some((p) => p.status?.phase === 'Running')).toBe(true);

    // A valid deployment afterwards is taken again.
    await deploy(registry, ns, manifest({ sensor: { image: 'example.azurecr.io/sensor:2.0' }, filter: { startupOrder: 2 } }));
    const good = desiredVersionOf(hub, ns);
    await untilReported(hub, ns, 'back to 200', (rep) => allRunning(rep, ['sensor', 'filter'], good));
    await until(cluster, ns, 'IoTHubDesiredStateAccepted=True', (e) => condition(e, 'IoTHubDesiredStateAccepted')?.status === 'True');
  });

  it('keeps modules running through a hub outage and re-syncs a change made meanwhile', async () => {
    const podsBefore = (await modulePods('sensor')).map((p) => p.metadata?.uid);
    hub.admin.refuseConnections('connack', { forMs: 6_000 });
    expect(hub.admin.dropConnections({ deviceId: ns })).toBeGreaterThan(0);
    const down = await until(cluster, ns, 'IoTHubConnected=False', (e) => condition(e, 'IoTHubConnected')?.status === 'False');
    expect(down.status?.iotHub?.connected).toBe(false);
    // The change lands while the operator is away: no notification can reach it.
    await deploy(registry, ns, manifest({ sensor: { image: 'example.azurecr.io/sensor:3.0' }, filter: { startupOrder: 2 } }));
    const version = desiredVersionOf(hub, ns);
    const during = await edgeDeployment(cluster, ns);
    expect(condition(during, 'Ready')?.status).toBe('True');
    expect((await modulePods('sensor')).map((p) => p.metadata?.uid)).toEqual(podsBefore);

    await until(cluster, ns, 'reconnected and re-synced', (e) => condition(e, 'IoTHubConnected')?.status === 'True' && e.status?.lastDesiredVersion === version, 300_000);
    const sensor = await cluster.apps.readNamespacedDeployment({ name: 'sensor', namespace: ns });
    expect(sensor.spec?.template.spec?.containers[0]?.image).toBe('example.azurecr.io/sensor:3.0');
    await untilReported(hub, ns, 'the outage change', (rep) => allRunning(rep, ['sensor', 'filter'], version) && asReported(rep).modules?.sensor?.settings?.image === 'example.azurecr.io/sensor:3.0');
  });

  it('catches a dropped desired notification by the version gap', async () => {
    hub.admin.dropDesiredNotifications({ count: 1 }, { deviceId: ns, moduleId: '$edgeAgent' });
    await deploy(registry, ns, manifest({ sensor: { image: 'example.azurecr.io/sensor:4.0' }, filter: { startupOrder: 2 } }));
    const dropped = desiredVersionOf(hub, ns);
    expect(hub.admin.desiredNotifications().some((n) => n.deviceId === ns && n.version === dropped && n.outcome === 'dropped')).toBe(true);
    await deploy(registry, ns, manifest({ sensor: { image: 'example.azurecr.io/sensor:5.0' }, filter: { startupOrder: 2 } }));
    const version = desiredVersionOf(hub, ns);
    expect(version).toBe(dropped + 1);
    await untilReported(hub, ns, 'the version after the gap', (rep) => allRunning(rep, ['sensor', 'filter'], version) && asReported(rep).modules?.sensor?.settings?.image === 'example.azurecr.io/sensor:5.0');
  });

  it('gives each module an identity and a Secret whose connection string authenticates', async () => {
    const secret = await cluster.core.readNamespacedSecret({ name: 'sensor-iothub', namespace: ns });
    const connectionString = Buffer.from(secret.data!.EdgeHubConnectionString!, 'base64').toString();
    expect(connectionString).toMatch(new RegExp(`^HostName=${hub.host.replace(/\./g, '\\.')};DeviceId=${ns};ModuleId=sensor;SharedAccessKey=[^;]+;GatewayHostName=edgehub$`));
    expect(hub.registry.module(ns, 'sensor').managedBy).toBe('IotEdge');
    // The identity was created with the key derived from the device root key, as aziot-identityd does.
    const rootKey = Buffer.from((await cluster.core.readNamespacedSecret({ name: 'device-device-identity', namespace: ns })).data!.rootKey!, 'base64').toString();
    expect(hub.registry.module(ns, 'sensor').keys.primaryKey).toBe(deriveModuleKey(rootKey, ns, 'sensor'));
    expect(connectionString).toContain(`;SharedAccessKey=${deriveModuleKey(rootKey, ns, 'sensor')};`);
    // The module's pod reads it as ModuleClient.fromEnvironment() expects, without IoT Edge's workload API.
    const template = await eventually('the sensor pod template to carry its identity', async () => {
      const d = await cluster.apps.readNamespacedDeployment({ name: 'sensor', namespace: ns });
      const env = d.spec?.template.spec?.containers[0]?.env ?? [];
      return env.some((e) => e.name === 'EdgeHubConnectionString') ? d.spec!.template.spec! : undefined;
    });
    expect(template.containers[0]!.env).toContainEqual({ name: 'EdgeHubConnectionString', valueFrom: { secretKeyRef: { name: 'sensor-iothub', key: 'EdgeHubConnectionString' } } });
    expect(template.containers[0]!.env?.find((e) => e.name === 'EdgeModuleCACertificateFile')?.value).toMatch(/ca\.crt$/);
    // No edgeHub runs here, so the module dials the emulator instead of its GatewayHostName.
    const direct = connectionString.replace(/;GatewayHostName=edgehub$/, hub.mqttPort === 8883 ? '' : `;GatewayHostName=${hub.host}:${hub.mqttPort}`);
    const client = device.ModuleClient.fromConnectionString(direct, mqtt.Mqtt);
    await client.setOptions({ ca: hub.caCertPem });
    await client.open();
    try {
      // open() resolves on CONNACK; the emulator records the connection on aedes' clientReady, which can come a moment later.
      await eventually('the emulator to record the sensor\'s connection', async () => (hub.isConnected({ deviceId: ns, moduleId: 'sensor' }) ? true : undefined));
    } finally {
      await client.close();
    }
  });

  it('gives the stock edgeHub its $edgeHub identity and routes from its own twin, and never connects as $edgeHub itself', async () => {
    const deployments = (await cluster.apps.listNamespacedDeployment({ namespace: ns })).items;
    const secrets = new Map((await cluster.core.listNamespacedSecret({ namespace: ns })).items.map((x) => [x.metadata!.name!, x]));
    const identity = Buffer.from(secrets.get('edgehub-iothub')!.data!.IotHubConnectionString!, 'base64').toString();
    expect(identity).toBe(`HostName=${hub.host};DeviceId=${ns};ModuleId=$edgeHub;SharedAccessKey=${hub.registry.module(ns, '$edgeHub').keys.primaryKey}`);
    const modules = deployments.filter((d) => d.metadata?.name !== 'edgehub' && d.spec?.replicas !== 0);
    expect(stockEdgeHubViolations({
      namespace: ns, edgeHub: deployments.find((d) => d.metadata?.name === 'edgehub')!, edgeHubService: await cluster.core.readNamespacedService({ name: 'edgehub', namespace: ns }),
      modules, secrets, configSource: 'twin', routes: [], serviceName: 'edgehub',
    })).toEqual([]);
    // The emulator's connection log: $edgeAgent came and went through the outage above, $edgeHub never.
    const log = hub.admin.connectionLog({ deviceId: ns });
    expect(log.filter((e) => e.moduleId === '$edgeAgent' && e.outcome === 'connected').length).toBeGreaterThan(1);
    expect(log.filter((e) => e.moduleId === '$edgeHub')).toEqual([]);
  });

  it('answers ping, restarts a module with RestartModule, and refuses other methods', async () => {
    const methods = iothub.Client.fromConnectionString(hub.serviceConnectionString);
    const ping = await methods.invokeDeviceMethod(ns, '$edgeAgent', { methodName: 'ping', payload: null, responseTimeoutInSeconds: 20 });
    expect(ping.result).toMatchObject({ status: 200, payload: {} });
    const before = (await modulePods('filter')).map((p) => p.metadata?.uid);
    expect(before).toHaveLength(1);
    const restart = await methods.invokeDeviceMethod(ns, '$edgeAgent', { methodName: 'RestartModule', payload: { schemaVersion: '1.0', id: 'filter' }, responseTimeoutInSeconds: 20 });
    expect(restart.result).toMatchObject({ status: 200 });
    await eventually('a new filter pod', async () => {
      const pods = await modulePods('filter');
      return pods.length === 1 && pods[0]!.metadata?.uid !== before[0] && pods[0]!.status?.phase === 'Running' ? true : undefined;
    });
    const other = await methods.invokeDeviceMethod(ns, '$edgeAgent', { methodName: 'GetModuleLogs', payload: {}, responseTimeoutInSeconds: 20 });
    expect(other.result).toMatchObject({ status: 501, payload: { message: expect.stringContaining('not supported') } });
    methods.close();
  });
});
