// The operator in-cluster, for real: `helm install` of the chart with the image built from the project's
// Dockerfile (localhost/iotedge-operator:dev, imported into the real worker's containerd by the global setup).
// The operator pod runs on edge-worker-0 with the in-cluster config and nothing but the chart's
// ServiceAccount and RBAC, and reconciles a sample to Ready whose modules are real containers there.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { V1Pod } from '@kubernetes/client-node';
import type { EdgeDeployment } from '../../src/api/edge-deployment.ts';
import { repoRoot } from '../../scripts/cluster/control-plane.ts';
import { operatorImage } from '../../scripts/images/build.ts';
import { createTestNamespace, deleteTestNamespace, eventually, kubectl, testCluster, helm as helmIn } from '../support/cluster.ts';
import { ensureCrd } from '../support/operator.ts';
import { isReady, sampleEdgeDeployment, sampleModule } from '../support/samples.ts';

const cluster = testCluster();
const chart = join(repoRoot, 'helm/iotedge-operator');
const busybox = 'localhost/busybox:1';
const [imageRepository, imageTag] = operatorImage.split(/:(?=[^:]+$)/) as [string, string];
const namespaces: string[] = [];
const releases: { name: string; namespace: string }[] = [];

const helm = (...args: string[]) => helmIn(cluster, ...args);

async function realNamespace(prefix: string): Promise<string> {
  const ns = await createTestNamespace(cluster, prefix, 'real');
  namespaces.push(ns);
  return ns;
}

/** helm install with the locally built image; imagePullPolicy Never: it must come from the worker's containerd. */
async function install(release: string, namespace: string, ...sets: string[]): Promise<void> {
  releases.push({ name: release, namespace });
  await helm('install', release, chart, '-n', namespace,
    '--set', `image.repository=${imageRepository}`, '--set', `image.tag=${imageTag}`, '--set', 'image.pullPolicy=Never',
    ...sets.flatMap((s) => ['--set', s]), '--wait', '--timeout', '180s');
}

/** The release's operator pod, Running and Ready as a real container on the real worker. */
async function operatorPod(namespace: string, release: string): Promise<V1Pod> {
  return eventually(`the ${release} operator pod Ready on edge-worker-0`, async () => {
    const pods = await cluster.core.listNamespacedPod({ namespace, labelSelector: `app.kubernetes.io/instance=${release},app.kubernetes.io/component=operator` });
    const [pod] = pods.items;
    const status = pod?.status?.containerStatuses?.[0];
    return pods.items.length === 1 && pod?.spec?.nodeName === 'edge-worker-0' && status?.ready && status.state?.running ? pod : undefined;
  }, 120_000);
}

/** edgeHub and one module as real busybox containers; the module prints what proves it ran. */
function realSample(namespace: string): EdgeDeployment {
  const edgeHub = { settings: { image: busybox, createOptions: { Cmd: ['sleep', '86400'] } } };
  return sampleEdgeDeployment(namespace, {
    reporter: sampleModule(busybox, { startupOrder: 1, env: { GREETING: { value: 'from the operator in its pod' } } },
      { Cmd: ['sh', '-c', 'echo "module=$IOTEDGE_MODULEID greeting=$GREETING"; sleep 86400'] }),
  }, { edgeHub });
}

async function readyEdgeDeployment(namespace: string): Promise<EdgeDeployment> {
  return eventually(`EdgeDeployment ${namespace}/device Ready`, async () => {
    const ed = JSON.parse(await kubectl(cluster, ['-n', namespace, 'get', 'edgedeployment', 'device', '-o', 'json'])) as EdgeDeployment;
    return isReady(ed) ? ed : undefined;
  }, 180_000);
}

/** Every module pod runs real containers on edge-worker-0, and the module's own output is in kubectl logs. */
async function expectRealModules(namespace: string): Promise<void> {
  const pods = (await cluster.core.listNamespacedPod({ namespace, labelSelector: 'iotedge-operator.io/module' })).items;
  expect(pods.map((p) => p.metadata?.labels?.['iotedge-operator.io/module']).sort()).toEqual(['edgehub', 'reporter']);
  for (const pod of pods) {
    expect(pod.spec?.nodeName).toBe('edge-worker-0');
    // A containerd container ID: the kubelet started it, nothing stamped it Running.
    expect(pod.status?.containerStatuses?.[0]?.containerID).toMatch(/^containerd:\/\/[0-9a-f]{64}$/);
  }
  const logs = await eventually('the module output in kubectl logs', async () => {
    const out = await kubectl(cluster, ['-n', namespace, 'logs', '-l', 'iotedge-operator.io/module=reporter']);
    return out.includes('greeting=') ? out : undefined;
  });
  expect(logs).toContain('module=reporter greeting=from the operator in its pod');
}

/** The operator's log shows no request the API server refused: the chart's RBAC covers what it does. */
async function expectNoForbidden(namespace: string, pod: V1Pod): Promise<string> {
  const logs = await kubectl(cluster, ['-n', namespace, 'logs', pod.metadata!.name!]);
  expect(logs).toContain('iotedge-operator starting');
  expect(logs).not.toMatch(/forbidden|\b403\b/i);
  return logs;
}

beforeAll(async () => {
  await ensureCrd(cluster);
});

afterAll(async () => {
  for (const r of releases) await helm('uninstall', r.name, '-n', r.namespace, '--wait', '--timeout', '120s').catch(() => undefined);
  for (const ns of namespaces) await deleteTestNamespace(cluster, ns);
});

describe('helm install runs the operator from the image built from the Dockerfile, on the real worker', () => {
  it('namespace mode: the operator pod, with the in-cluster config and the chart\'s Role, reconciles its device to Ready with real containers', async () => {
    // Not PSS-restricted: the device's modules share the namespace (the operator pod alone passes restricted; helm.test.ts).
    const ns = await realNamespace('incluster-dev');
    const release = `dev-${randomBytes(2).toString('hex')}`;
    await install(release, ns);
    const pod = await operatorPod(ns, release);
    expect(pod.spec?.containers[0]?.image).toBe(operatorImage);
    expect(pod.spec?.serviceAccountName).toBe(`${release}-iotedge-operator`);
    // No kubeconfig anywhere: the only credentials are the ServiceAccount's projected token.
    expect(pod.spec?.containers[0]?.env?.map((e) => e.name)).not.toContain('IOTEDGE_OPERATOR_KUBECONFIG');

    await kubectl(cluster, ['apply', '--server-side', '--field-manager=test-user', '-f', '-'], JSON.stringify(realSample(ns)));
    const ed = await readyEdgeDeployment(ns);
    expect(ed.status?.moduleSummary).toBe('2/2');
    await expectRealModules(ns);
    await expectNoForbidden(ns, pod);
    expect((await operatorPod(ns, release)).status?.containerStatuses?.[0]?.restartCount).toBe(0);
  });

  it('cluster mode: one operator pod, with the chart\'s ClusterRole, serves a device in another namespace', async () => {
    const ops = await realNamespace('incluster-ops');
    const device = await realNamespace('incluster-device');
    const release = `ops-${randomBytes(2).toString('hex')}`;
    await install(release, ops, 'mode=cluster', `watchNamespaces={${device}}`);
    const pod = await operatorPod(ops, release);

    await kubectl(cluster, ['apply', '--server-side', '--field-manager=test-user', '-f', '-'], JSON.stringify(realSample(device)));
    const ed = await readyEdgeDeployment(device);
    expect(ed.status?.moduleSummary).toBe('2/2');
    await expectRealModules(device);
    const logs = await expectNoForbidden(ops, pod);
    expect(logs).toContain(device);
  });
});
