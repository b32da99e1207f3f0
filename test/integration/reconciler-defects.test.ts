// Regression tests for defects found in review, each against the real API server with the real operator.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { EdgeDeployment } from '../../src/api/edge-deployment.ts';
import { createTestNamespace, deleteTestNamespace, eventually, kubectl, testCluster } from '../support/cluster.ts';
import { ensureCrd, operatorKubeConfig, startTestOperator, type RunningOperator } from '../support/operator.ts';
import { sampleEdgeDeployment, sampleModule } from '../support/samples.ts';

const cluster = testCluster();
const namespaces: string[] = [];
let operator: RunningOperator;
let ns: (i: number) => string;

const sensor = 'mcr.microsoft.com/azureiotedge-simulated-temperature-sensor:1.5';

async function apply(resource: unknown): Promise<void> {
  await kubectl(cluster, ['apply', '--server-side', '--force-conflicts', '--field-manager=test-user', '-f', '-'], JSON.stringify(resource));
}

async function read(namespace: string, name: string): Promise<EdgeDeployment> {
  return JSON.parse(await kubectl(cluster, ['-n', namespace, 'get', 'edgedeployment', name, '-o', 'json'])) as EdgeDeployment;
}

const condition = (ed: EdgeDeployment, type: string) => ed.status?.conditions?.find((c) => c.type === type);

async function until(namespace: string, name: string, what: string, predicate: (ed: EdgeDeployment) => boolean, timeoutMs = 90_000): Promise<EdgeDeployment> {
  return eventually(what, async () => {
    const ed = await read(namespace, name);
    return ed.status?.observedGeneration === ed.metadata?.generation && predicate(ed) ? ed : undefined;
  }, timeoutMs);
}

beforeAll(async () => {
  await ensureCrd(cluster);
  for (const prefix of ['long-name', 'startup-done', 'bounded', 'takeover']) namespaces.push(await createTestNamespace(cluster, `defect-${prefix}`));
  ns = (i) => namespaces[i]!;
  operator = await startTestOperator(await operatorKubeConfig(cluster, ns(0)), namespaces);
});
afterAll(async () => {
  await operator?.stop();
  for (const n of namespaces) await deleteTestNamespace(cluster, n);
});

describe('review defects', () => {
  it('an EdgeDeployment name longer than 63 characters: status, startupOrder and pruning work, and memory follows the objects', async () => {
    const name = `plant-7-line-3-packaging-cell-12-vision-inspection-gateway-${'x'.repeat(20)}`;
    expect(name.length).toBeGreaterThan(63);
    await apply(sampleEdgeDeployment(ns(0), {
      first: sampleModule(sensor, { startupOrder: 1 }),
      second: sampleModule(sensor, { startupOrder: 2 }),
    }, { name }));
    const ready = await until(ns(0), name, 'Ready=True', (e) => condition(e, 'Ready')?.status === 'True');
    expect(ready.status?.moduleSummary).toBe('3/3');
    expect(ready.status?.modules?.second?.runtimeStatus).toBe('running');
    const remembered = operator.manager.rememberedGenerations();
    await apply(sampleEdgeDeployment(ns(0), { first: sampleModule(sensor, { startupOrder: 1 }) }, { name }));
    await eventually('second pruned', async () => {
      const list = await cluster.apps.listNamespacedDeployment({ namespace: ns(0) });
      return list.items.some((d) => d.metadata?.name === 'second') ? undefined : true;
    });
    await until(ns(0), name, '2 modules', (e) => e.status?.moduleSummary === '2/2');
    expect(operator.manager.rememberedGenerations()).toBeLessThan(remembered);
    await kubectl(cluster, ['-n', ns(0), 'delete', 'edgedeployment', name, '--wait=true']);
    await eventually('nothing remembered for the deleted EdgeDeployment', async () => (operator.manager.rememberedGenerations() === 0 ? true : undefined));
  });

  it('a finished never module counts as started: the next startupOrder group starts', async () => {
    const job = sampleModule(sensor, { restartPolicy: 'never', startupOrder: 1 }, { Labels: { 'iotedge-operator.io/kwok-fault': 'succeed' } });
    await apply(sampleEdgeDeployment(ns(1), { job }));
    await until(ns(1), 'device', 'job completed', (e) => e.status?.modules?.job?.runtimeStatus === 'stopped' && e.status?.modules?.job?.exitCode === 0);
    await apply(sampleEdgeDeployment(ns(1), { job, after: sampleModule(sensor, { startupOrder: 2 }) }));
    const ed = await until(ns(1), 'device', 'after running', (e) => e.status?.modules?.after?.runtimeStatus === 'running');
    expect(ed.status?.modules?.after?.waitingFor).toBeUndefined();
  });

  it('lastDesiredStatus.description stays within IoT Hub\'s 4 KB string limit', async () => {
    const modules = Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`module${i}`,
      sampleModule(sensor, {}, { HostConfig: { Privileged: true, CapAdd: ['SYS_ADMIN'], NetworkMode: 'host' } })]));
    await apply(sampleEdgeDeployment(ns(2), modules));
    const ed = await until(ns(2), 'device', 'Valid=False', (e) => condition(e, 'Valid')?.status === 'False');
    const description = ed.status?.lastDesiredStatus?.description ?? '';
    expect(description).toContain('IEO_POLICY_DENIED');
    expect(Buffer.byteLength(description, 'utf8')).toBeLessThanOrEqual(4000);
  });

  it('an object the operator did not create is never taken over or pruned: a Degraded conflict instead', async () => {
    await kubectl(cluster, ['-n', ns(3), 'create', 'deployment', 'iotedge-operator', `--image=${sensor}`]);
    await apply(sampleEdgeDeployment(ns(3), { 'iotedge-operator': sampleModule(sensor) }));
    const ed = await until(ns(3), 'device', 'Degraded=True', (e) => condition(e, 'Degraded')?.status === 'True');
    expect(condition(ed, 'Degraded')?.message).toContain('Deployment/iotedge-operator (module "iotedge-operator")');
    expect(condition(ed, 'Degraded')?.message).toContain('not owned by this EdgeDeployment');
    await apply(sampleEdgeDeployment(ns(3), { other: sampleModule(sensor) }));
    await until(ns(3), 'device', 'Ready=True', (e) => condition(e, 'Ready')?.status === 'True' && condition(e, 'Degraded')?.status === 'False');
    const theirs = await cluster.apps.readNamespacedDeployment({ name: 'iotedge-operator', namespace: ns(3) });
    expect(theirs.metadata?.ownerReferences ?? []).toEqual([]);
    expect(theirs.metadata?.labels?.['app.kubernetes.io/managed-by']).toBeUndefined();
  });
});
