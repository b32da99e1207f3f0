// Module lifecycle through the operator on the real API server: restart policies, desired status,
// runtime faults (via the project's KWOK stages), startupOrder, deletion and volume retention,
// a restart over unchanged resources, and several devices at once.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { EdgeDeployment } from '../../src/api/edge-deployment.ts';
import { createTestNamespace, deleteTestNamespace, eventually, kubectl, testCluster } from '../support/cluster.ts';
import { ensureCrd, operatorKubeConfig, startTestOperator, type RunningOperator } from '../support/operator.ts';
import type { KubeConfig } from '@kubernetes/client-node';
import { isReady, sampleEdgeDeployment, sampleModule, type ModuleFields } from '../support/samples.ts';

const cluster = testCluster();
const namespaces: string[] = [];
let home: string;
let kubeConfig: KubeConfig;
let operator: RunningOperator;

const module = sampleModule;
const fault = (name: string) => ({ Labels: { 'iotedge-operator.io/kwok-fault': name } });
const edgeDeployment = (namespace: string, modules: Record<string, ModuleFields>, edgeHub: ModuleFields = {}) => sampleEdgeDeployment(namespace, modules, { edgeHub });

async function apply(resource: unknown): Promise<void> {
  await kubectl(cluster, ['apply', '--server-side', '--force-conflicts', '--field-manager=test-user', '-f', '-'], JSON.stringify(resource));
}

async function read(namespace: string): Promise<EdgeDeployment> {
  return JSON.parse(await kubectl(cluster, ['-n', namespace, 'get', 'edgedeployment', 'device', '-o', 'json'])) as EdgeDeployment;
}

async function until(namespace: string, what: string, predicate: (ed: EdgeDeployment) => boolean, timeoutMs = 90_000): Promise<EdgeDeployment> {
  return eventually(what, async () => {
    const ed = await read(namespace);
    return predicate(ed) ? ed : undefined;
  }, timeoutMs);
}

const ready = isReady;

/** (Re)starts the operator serving `extra` namespaces besides the home one. */
async function serve(extra: string[], settings: Parameters<typeof startTestOperator>[2] = {}): Promise<void> {
  await operator?.stop();
  operator = await startTestOperator(kubeConfig, [home, ...extra], settings);
}

async function freshNamespace(prefix: string): Promise<string> {
  const ns = await createTestNamespace(cluster, prefix);
  namespaces.push(ns);
  return ns;
}

beforeAll(async () => {
  await ensureCrd(cluster);
  home = await freshNamespace('lifecycle');
  kubeConfig = await operatorKubeConfig(cluster, home);
});
afterAll(async () => {
  await operator?.stop();
  for (const ns of namespaces) await deleteTestNamespace(cluster, ns);
});

describe('module lifecycle', () => {
  it('maps status stopped to 0 replicas and restartPolicy never / on-failure to bare Pods', async () => {
    const ns = await freshNamespace('policies');
    await serve([ns]);
    await apply(edgeDeployment(ns, {
      paused: module('example.azurecr.io/paused:1', { status: 'stopped' }),
      job: module('example.azurecr.io/job:1', { restartPolicy: 'never' }, fault('succeed')),
      retrying: module('example.azurecr.io/retrying:1', { restartPolicy: 'on-failure' }),
    }));
    const ed = await until(ns, 'Ready', ready);
    const paused = await cluster.apps.readNamespacedDeployment({ name: 'paused', namespace: ns });
    expect(paused.spec?.replicas).toBe(0);
    expect(ed.status?.modules?.paused).toMatchObject({ runtimeStatus: 'stopped', kind: 'Deployment' });

    const job = await cluster.core.readNamespacedPod({ name: 'job', namespace: ns });
    expect(job.spec?.restartPolicy).toBe('Never');
    expect(job.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'EdgeDeployment', controller: true });
    const retrying = await cluster.core.readNamespacedPod({ name: 'retrying', namespace: ns });
    expect(retrying.spec?.restartPolicy).toBe('OnFailure');

    // A never-restart job that finished with exit code 0 counts as done, not as failing.
    const done = await until(ns, 'job completed', (e) => e.status?.modules?.job?.runtimeStatus === 'stopped');
    expect(done.status?.modules?.job).toMatchObject({ kind: 'Pod', exitCode: 0 });
  });

  it('reports a crash loop as backoff with a rising restartCount, and ImagePullBackOff in statusDescription', async () => {
    const ns = await freshNamespace('faults');
    await serve([ns]);
    await apply(edgeDeployment(ns, {
      crashy: module('example.azurecr.io/crashy:1', {}, fault('crashloop')),
      unpullable: module('example.azurecr.io/missing:1', {}, fault('image-pull-backoff')),
    }));
    const first = await until(ns, 'crashy in backoff', (e) => e.status?.modules?.crashy?.runtimeStatus === 'backoff');
    const firstCount = first.status!.modules!.crashy!.restartCount!;
    expect(first.status?.modules?.crashy?.statusDescription).toContain('CrashLoopBackOff');
    expect(first.status?.modules?.crashy?.exitCode).toBe(1);
    const later = await until(ns, 'restartCount to rise', (e) => (e.status?.modules?.crashy?.restartCount ?? 0) > firstCount);
    expect(later.status?.modules?.crashy?.lastRestartTimeUtc).toBeDefined();
    expect(later.status?.conditions?.find((c) => c.type === 'Degraded')?.status).toBe('True');

    const pulled = await until(ns, 'ImagePullBackOff reported', (e) => (e.status?.modules?.unpullable?.statusDescription ?? '').includes('ImagePullBackOff'));
    expect(pulled.status?.modules?.unpullable?.runtimeStatus).toBe('backoff');
    expect(pulled.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('False');
  });

  it('holds later startupOrder groups back until the earlier ones are Ready, and says who waits for whom', async () => {
    const ns = await freshNamespace('order');
    await serve([ns]);
    const modules = {
      sensor: module('example.azurecr.io/sensor:1', { startupOrder: 1 }),
      filter: module('example.azurecr.io/filter:1', { startupOrder: 2 }),
    };
    // edgeHub cannot pull its image, so it never becomes Ready and group 1 must wait.
    await apply(edgeDeployment(ns, modules, { settings: { image: 'mcr.microsoft.com/azureiotedge-hub:1.5', createOptions: fault('image-pull-backoff') } }));
    const held = await until(ns, 'sensor waiting for edgeHub', (e) => (e.status?.modules?.sensor?.waitingFor ?? []).includes('edgeHub'));
    expect(held.status?.modules?.filter?.waitingFor).toEqual(expect.arrayContaining(['edgeHub', 'sensor']));
    expect(held.status?.modules?.sensor?.statusDescription).toContain('waiting for edgeHub');
    const deployments = await cluster.apps.listNamespacedDeployment({ namespace: ns });
    expect(deployments.items.map((d) => d.metadata?.name)).toEqual(['edgehub']);

    // edgeHub recovers: its new pod is Ready, then sensor starts, then filter.
    await apply(edgeDeployment(ns, modules));
    await until(ns, 'all Ready', ready);
    const sensor = await cluster.apps.readNamespacedDeployment({ name: 'sensor', namespace: ns });
    const filter = await cluster.apps.readNamespacedDeployment({ name: 'filter', namespace: ns });
    expect(new Date(sensor.metadata!.creationTimestamp!).getTime()).toBeLessThanOrEqual(new Date(filter.metadata!.creationTimestamp!).getTime());
  });

  it('removes every child through garbage collection when the EdgeDeployment is deleted, and keeps retained claims', async () => {
    const ns = await freshNamespace('delete');
    await serve([ns]);
    await apply(edgeDeployment(ns, { store: module('mcr.microsoft.com/azure-blob-storage:latest', {}, { HostConfig: { Binds: ['blobdata:/blobroot'] } }) }));
    await until(ns, 'Ready', ready);
    await kubectl(cluster, ['-n', ns, 'delete', 'edgedeployment', 'device', '--wait=true']);
    await eventually('children collected', async () => {
      const [deployments, services, accounts] = await Promise.all([
        cluster.apps.listNamespacedDeployment({ namespace: ns }),
        cluster.core.listNamespacedService({ namespace: ns }),
        cluster.core.listNamespacedServiceAccount({ namespace: ns, labelSelector: 'app.kubernetes.io/managed-by=iotedge-operator' }),
      ]);
      return deployments.items.length + services.items.length + accounts.items.length === 0 ? true : undefined;
    });
    const claims = await cluster.core.listNamespacedPersistentVolumeClaim({ namespace: ns });
    // edgeHub's store (the built-in hub's, in kubectl mode) is retained like any named volume.
    expect(claims.items.map((c) => c.metadata?.name).sort()).toEqual(['blobdata', 'edgehub-storage']);
    const deleted = await eventually('a Deleted Event', async () => {
      const list = await cluster.core.listNamespacedEvent({ namespace: ns, fieldSelector: 'involvedObject.name=device,reason=Deleted' });
      return list.items[0];
    });
    expect(deleted.message).toContain('retained volume claims stay');
  });

  it('lets claims go with the EdgeDeployment when retention is off', async () => {
    const ns = await freshNamespace('noretain');
    await serve([ns], { storage: { retainVolumesOnModuleRemoval: false } as never });
    await apply(edgeDeployment(ns, { store: module('mcr.microsoft.com/azure-blob-storage:latest', {}, { HostConfig: { Binds: ['blobdata:/blobroot'] } }) }));
    await until(ns, 'Ready', ready);
    const claim = await cluster.core.readNamespacedPersistentVolumeClaim({ name: 'blobdata', namespace: ns });
    expect(claim.metadata?.ownerReferences?.[0]?.kind).toBe('EdgeDeployment');
    await kubectl(cluster, ['-n', ns, 'delete', 'edgedeployment', 'device', '--wait=true']);
    await eventually('claim collected', async () => {
      const claims = await cluster.core.listNamespacedPersistentVolumeClaim({ namespace: ns });
      return claims.items.every((c) => c.metadata?.deletionTimestamp) ? true : undefined;
    });
  });

  it('makes no writes when restarted over unchanged resources', async () => {
    const ns = await freshNamespace('steady');
    await serve([ns]);
    await apply(edgeDeployment(ns, { a: module('example.azurecr.io/a:1', { startupOrder: 1 }), b: module('example.azurecr.io/b:1', {}, { ExposedPorts: { '80/tcp': {} } }) }));
    await until(ns, 'Ready', ready);
    // Let the status write and the pod events after it settle before restarting.
    await new Promise((r) => setTimeout(r, 3000));
    await serve([ns]);
    await new Promise((r) => setTimeout(r, 5000));
    const writes = operator.requests.filter((r) => r.method !== 'GET');
    expect(writes).toEqual([]);
  });

  it('reconciles three device namespaces at once without crosstalk', async () => {
    const devices = await Promise.all(['dev-a', 'dev-b', 'dev-c'].map((p) => freshNamespace(p)));
    await serve(devices);
    await Promise.all(devices.map((ns, i) => apply(edgeDeployment(ns, { [`m${i}`]: module(`example.azurecr.io/m${i}:1`) }))));
    for (const [i, ns] of devices.entries()) {
      const ed = await until(ns, `${ns} Ready`, ready);
      expect(Object.keys(ed.status?.modules ?? {}).sort()).toEqual(['edgeHub', `m${i}`]);
      expect(ed.status?.deviceId).toBe(ns);
      const names = (await cluster.apps.listNamespacedDeployment({ namespace: ns })).items.map((d) => d.metadata?.name).sort();
      expect(names).toEqual(['edgehub', `m${i}`]);
    }
  });
});
