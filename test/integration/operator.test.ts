// The operator against the real API server, as a ServiceAccount with only the rules it ships with.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { V1Pod } from '@kubernetes/client-node';
import type { EdgeDeployment } from '../../src/api/edge-deployment.ts';
import { errorCatalogue } from '../../src/api/errors.ts';
import { createTestNamespace, deleteTestNamespace, eventually, kubectl, testCluster } from '../support/cluster.ts';
import { ensureCrd, operatorKubeConfig, startTestOperator, type RunningOperator } from '../support/operator.ts';

const cluster = testCluster();
let ns: string;
let operator: RunningOperator;

const group = 'iotedge-operator.io';
const moduleSettings = (image: string, createOptions: unknown = {}) => ({ image, createOptions });

function sample(name = 'device'): EdgeDeployment {
  return {
    apiVersion: `${group}/v1alpha1`,
    kind: 'EdgeDeployment',
    metadata: { name, namespace: ns },
    spec: {
      agent: {
        schemaVersion: '1.1',
        runtime: { type: 'docker', settings: { minDockerVersion: 'v1.25' } },
        systemModules: {
          edgeAgent: { type: 'docker', settings: moduleSettings('mcr.microsoft.com/azureiotedge-agent:1.5') },
          edgeHub: { type: 'docker', status: 'running', restartPolicy: 'always', startupOrder: 0, settings: moduleSettings('mcr.microsoft.com/azureiotedge-hub:1.5') },
        },
        modules: {
          SimulatedTemperatureSensor: {
            version: '1.0', type: 'docker', status: 'running', restartPolicy: 'always', startupOrder: 1,
            settings: moduleSettings('mcr.microsoft.com/azureiotedge-simulated-temperature-sensor:1.5'),
          },
          filter: {
            version: '1.0', type: 'docker', status: 'running', restartPolicy: 'always', startupOrder: 2,
            settings: moduleSettings('example.azurecr.io/filter:1.0', { ExposedPorts: { '8080/tcp': {} }, HostConfig: { Binds: ['filterdata:/data'] } }),
          },
        },
      },
      hub: {
        schemaVersion: '1.1',
        routes: {
          sensorToFilter: { route: 'FROM /messages/modules/SimulatedTemperatureSensor/outputs/temperatureOutput INTO BrokeredEndpoint("/modules/filter/inputs/input1")' },
          filterToUpstream: { route: 'FROM /messages/modules/filter/outputs/* INTO $upstream', priority: 0 },
        },
        storeAndForwardConfiguration: { timeToLiveSecs: 7200 },
      },
    },
  } as EdgeDeployment;
}

async function apply(resource: unknown): Promise<void> {
  await kubectl(cluster, ['apply', '--server-side', '--force-conflicts', '--field-manager=test-user', '-f', '-'], JSON.stringify(resource));
}

async function edgeDeployment(name = 'device'): Promise<EdgeDeployment> {
  return JSON.parse(await kubectl(cluster, ['-n', ns, 'get', 'edgedeployment', name, '-o', 'json'])) as EdgeDeployment;
}

const condition = (ed: EdgeDeployment, type: string) => ed.status?.conditions?.find((c) => c.type === type);

async function until(what: string, predicate: (ed: EdgeDeployment) => boolean, name = 'device'): Promise<EdgeDeployment> {
  return eventually(what, async () => {
    const ed = await edgeDeployment(name);
    return predicate(ed) ? ed : undefined;
  }, 90_000);
}

beforeAll(async () => {
  await ensureCrd(cluster);
  ns = await createTestNamespace(cluster, 'operator');
  operator = await startTestOperator(await operatorKubeConfig(cluster, ns), [ns]);
});
afterAll(async () => {
  await operator?.stop();
  await deleteTestNamespace(cluster, ns);
});

describe('operator', () => {
  it('reconciles a multi-module EdgeDeployment until every module runs and Ready=True', async () => {
    await apply(sample());
    const ed = await until('Ready=True', (e) => condition(e, 'Ready')?.status === 'True');
    expect(condition(ed, 'Valid')?.status).toBe('True');
    expect(ed.status?.observedGeneration).toBe(ed.metadata?.generation);
    expect(ed.status?.lastDesiredStatus?.code).toBe(200);
    expect(ed.status?.moduleSummary).toBe('3/3');
    expect(ed.status?.modules?.SimulatedTemperatureSensor).toMatchObject({ runtimeStatus: 'running', kind: 'Deployment', restartCount: 0 });
    expect(ed.status?.routes?.map((r) => r.name).sort()).toEqual(['filterToUpstream', 'sensorToFilter']);

    const deployments = await cluster.apps.listNamespacedDeployment({ namespace: ns });
    expect(deployments.items.map((d) => d.metadata?.name).sort()).toEqual(['edgehub', 'filter', 'simulatedtemperaturesensor']);
    for (const d of deployments.items) {
      const owner = d.metadata?.ownerReferences?.[0];
      expect(owner).toMatchObject({ kind: 'EdgeDeployment', name: 'device', controller: true, blockOwnerDeletion: true });
    }
    const pods = await cluster.core.listNamespacedPod({ namespace: ns });
    expect(pods.items.filter((p: V1Pod) => p.status?.phase === 'Running')).toHaveLength(3);
    const claims = await cluster.core.listNamespacedPersistentVolumeClaim({ namespace: ns });
    expect(claims.items.map((c) => c.metadata?.name)).toContain('filterdata');
  });

  it('rolls out an image change and prunes a removed module, keeping its volume claim', async () => {
    const changed = sample();
    changed.spec!.agent!.modules!.filter!.settings!.image = 'example.azurecr.io/filter:2.0';
    await apply(changed);
    await eventually('filter image 2.0', async () => {
      const d = await cluster.apps.readNamespacedDeployment({ name: 'filter', namespace: ns });
      return d.spec?.template.spec?.containers[0]?.image === 'example.azurecr.io/filter:2.0' ? d : undefined;
    });
    const removed = sample();
    delete removed.spec!.agent!.modules!.filter;
    removed.spec!.hub!.routes = { up: { route: 'FROM /messages/* INTO $upstream' } };
    await apply(removed);
    await eventually('filter pruned', async () => {
      const list = await cluster.apps.listNamespacedDeployment({ namespace: ns });
      return list.items.some((d) => d.metadata?.name === 'filter') ? undefined : true;
    });
    const claims = await cluster.core.listNamespacedPersistentVolumeClaim({ namespace: ns });
    expect(claims.items.map((c) => c.metadata?.name)).toContain('filterdata');
    const ed = await until('2 modules', (e) => e.status?.moduleSummary === '2/2');
    expect(Object.keys(ed.status?.modules ?? {}).sort()).toEqual(['SimulatedTemperatureSensor', 'edgeHub']);
  });

  it('applies the desired state again when someone else changes a module\'s Deployment', async () => {
    await kubectl(cluster, ['-n', ns, 'scale', 'deployment/simulatedtemperaturesensor', '--replicas=3']);
    await eventually('the operator to restore one replica', async () => {
      const d = await cluster.apps.readNamespacedDeployment({ name: 'simulatedtemperaturesensor', namespace: ns });
      return d.spec?.replicas === 1 && (d.metadata?.generation ?? 0) > 1 ? d : undefined;
    });
  });

  it('keeps the running modules when an update is invalid, and says why with Valid=False and an Event', async () => {
    // The CRD's own rules catch many mistakes at admission; a policy denial is only known to the operator.
    const bad = sample();
    delete bad.spec!.agent!.modules!.filter;
    bad.spec!.hub!.routes = { up: { route: 'FROM /messages/* INTO $upstream' } };
    bad.spec!.agent!.modules!.SimulatedTemperatureSensor!.settings!.createOptions = { HostConfig: { Privileged: true } };
    await apply(bad);
    const ed = await until('Valid=False', (e) => condition(e, 'Valid')?.status === 'False');
    expect(condition(ed, 'Valid')?.message).toContain('/spec/agent/modules/SimulatedTemperatureSensor/settings/createOptions/HostConfig/Privileged');
    // edgeAgent reports a desired state it cannot apply as 500 ("failed"), a malformed one as 400.
    expect(ed.status?.lastDesiredStatus?.code).toBe(errorCatalogue.IEO_POLICY_DENIED.edgeAgentStatus);
    expect(ed.status?.lastDesiredStatus?.description).toContain('IEO_POLICY_DENIED');
    const deployments = await cluster.apps.listNamespacedDeployment({ namespace: ns });
    expect(deployments.items.map((d) => d.metadata?.name).sort()).toEqual(['edgehub', 'simulatedtemperaturesensor']);
    const events = await eventually('a Warning Event', async () => {
      const list = await cluster.core.listNamespacedEvent({ namespace: ns, fieldSelector: 'involvedObject.name=device,type=Warning' });
      return list.items.length ? list.items : undefined;
    });
    expect(events[0]?.reason).toBe('PolicyDenied');
    expect(events[0]?.message).toContain('HostConfig/Privileged');
    const sensor = await cluster.apps.readNamespacedDeployment({ name: 'simulatedtemperaturesensor', namespace: ns });
    expect(sensor.spec?.template.spec?.containers[0]?.securityContext?.privileged).not.toBe(true);
  });

  it('takes registry passwords from a referenced Secret, and waits for the Secret when it is missing', async () => {
    const withRegistry = sample();
    delete withRegistry.spec!.agent!.modules!.filter;
    withRegistry.spec!.hub!.routes = { up: { route: 'FROM /messages/* INTO $upstream' } };
    withRegistry.spec!.agent!.runtime!.settings = {
      registryCredentials: { myacr: { address: 'myacr.azurecr.io', username: 'puller', passwordSecretRef: { name: 'acr-password', key: 'password' } } },
    } as never;
    withRegistry.spec!.agent!.modules!.private = {
      version: '1.0', type: 'docker', status: 'running', restartPolicy: 'always', startupOrder: 1,
      settings: { image: 'myacr.azurecr.io/private:1.0', createOptions: {} },
    } as never;
    await apply(withRegistry);
    const waiting = await until('the missing Secret reported', (e) => e.status?.conditions?.find((c) => c.type === 'Valid')?.reason === 'InvalidDesiredState' && e.status.lastDesiredStatus?.description?.includes('IEO_REGISTRY_SECRET') === true);
    expect(condition(waiting, 'Valid')?.message).toContain('acr-password');

    await cluster.core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'acr-password' }, stringData: { password: 'not-a-real-password' } } });
    await until('valid and Ready once the Secret exists', (e) => condition(e, 'Valid')?.status === 'True' && condition(e, 'Ready')?.status === 'True');
    const deployment = await cluster.apps.readNamespacedDeployment({ name: 'private', namespace: ns });
    const pullSecret = deployment.spec?.template.spec?.imagePullSecrets?.[0]?.name;
    expect(pullSecret).toBeDefined();
    const secret = await cluster.core.readNamespacedSecret({ name: pullSecret!, namespace: ns });
    expect(secret.type).toBe('kubernetes.io/dockerconfigjson');
    const auth = JSON.parse(Buffer.from(secret.data!['.dockerconfigjson']!, 'base64').toString()) as { auths: Record<string, { password?: string; auth?: string }> };
    expect(JSON.stringify(auth.auths)).toContain(Buffer.from('puller:not-a-real-password').toString('base64'));
    // The password is in that Secret only: never in the resource.
    expect(JSON.stringify(await edgeDeployment())).not.toContain('not-a-real-password');
  });
});
