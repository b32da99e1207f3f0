// A child the API server refuses is a visible fault: Degraded=True naming the object, its module and the
// API's message, a Warning Event, lastDesiredStatus 400 for IoT Hub; and since the changed generation is
// dry-run before anything is applied, the running modules stay exactly as they were.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { EdgeDeployment } from '../../src/api/edge-deployment.ts';
import { createTestNamespace, deleteTestNamespace, eventually, kubectl, testCluster } from '../support/cluster.ts';
import { ensureCrd, operatorKubeConfig, startTestOperator, type RunningOperator } from '../support/operator.ts';
import { sampleEdgeDeployment, sampleModule } from '../support/samples.ts';

const cluster = testCluster();
let ns: string;
let operator: RunningOperator;

const sensorImage = (tag: string) => `mcr.microsoft.com/azureiotedge-simulated-temperature-sensor:${tag}`;

async function apply(resource: unknown): Promise<void> {
  await kubectl(cluster, ['apply', '--server-side', '--force-conflicts', '--field-manager=test-user', '-f', '-'], JSON.stringify(resource));
}

async function read(): Promise<EdgeDeployment> {
  return JSON.parse(await kubectl(cluster, ['-n', ns, 'get', 'edgedeployment', 'device', '-o', 'json'])) as EdgeDeployment;
}

const condition = (ed: EdgeDeployment, type: string) => ed.status?.conditions?.find((c) => c.type === type);

async function until(what: string, predicate: (ed: EdgeDeployment) => boolean): Promise<EdgeDeployment> {
  return eventually(what, async () => {
    const ed = await read();
    return ed.status?.observedGeneration === ed.metadata?.generation && predicate(ed) ? ed : undefined;
  }, 90_000);
}

async function sensorDeploymentImage(): Promise<string | undefined> {
  const d = await cluster.apps.readNamespacedDeployment({ name: 'sensor', namespace: ns });
  return d.spec?.template.spec?.containers[0]?.image;
}

beforeAll(async () => {
  await ensureCrd(cluster);
  ns = await createTestNamespace(cluster, 'refusals');
  operator = await startTestOperator(await operatorKubeConfig(cluster, ns), [ns]);
});
afterAll(async () => {
  await operator?.stop();
  await deleteTestNamespace(cluster, ns);
});

describe('a child the API server refuses', () => {
  it('is reported as Degraded, with an Event and lastDesiredStatus 400, and nothing of the generation is applied', async () => {
    await apply(sampleEdgeDeployment(ns, { sensor: sampleModule(sensorImage('1.5')) }));
    await until('Ready=True', (e) => condition(e, 'Ready')?.status === 'True');

    // The sensor's image changes too: all or nothing, so it must stay at 1.5 while the camera is refused.
    await apply(sampleEdgeDeployment(ns, {
      sensor: sampleModule(sensorImage('1.6')),
      camera: sampleModule('example.azurecr.io/camera:1.0', {}, { k8s: { nodeSelector: { 'example.com/zone': 'not a label value!' } } }),
    }));
    const ed = await until('Degraded=True', (e) => condition(e, 'Degraded')?.status === 'True');
    const degraded = condition(ed, 'Degraded');
    expect(degraded?.reason).toBe('ApplyRefused');
    expect(degraded?.message).toContain('Deployment/camera (module "camera")');
    expect(degraded?.message).toContain('nodeSelector');
    expect(ed.status?.lastDesiredStatus?.code).toBe(400);
    expect(ed.status?.lastDesiredStatus?.description).toContain('Deployment/camera');
    const events = await eventually('a Warning Event', async () => {
      const list = await cluster.core.listNamespacedEvent({ namespace: ns, fieldSelector: 'involvedObject.name=device,type=Warning,reason=ApplyRefused' });
      return list.items.length ? list.items : undefined;
    });
    expect(events[0]?.message).toContain('Deployment/camera');
    expect(await sensorDeploymentImage()).toBe(sensorImage('1.5'));
    const deployments = await cluster.apps.listNamespacedDeployment({ namespace: ns });
    expect(deployments.items.map((d) => d.metadata?.name).sort()).toEqual(['edgehub', 'sensor']);

    // Fixed: the whole generation goes through and Degraded clears.
    await apply(sampleEdgeDeployment(ns, {
      sensor: sampleModule(sensorImage('1.6')),
      camera: sampleModule('example.azurecr.io/camera:1.0', {}, { k8s: { nodeSelector: { 'example.com/zone': 'a' } } }),
    }));
    const fixed = await until('Degraded=False', (e) => condition(e, 'Degraded')?.status === 'False');
    expect(fixed.status?.lastDesiredStatus?.code).toBe(200);
    expect(await sensorDeploymentImage()).toBe(sensorImage('1.6'));
  });
});
