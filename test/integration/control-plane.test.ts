// Proves the harness: the real control plane has the real worker and a tainted KWOK node, places a
// namespace's pods on KWOK when the namespace asks for it, garbage-collects through ownerReferences, and
// the project's KWOK fault stages give the documented pod statuses. (Real pods: real-worker.test.ts.)
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { V1Pod } from '@kubernetes/client-node';
import { createTestNamespace, deleteTestNamespace, eventually, kubectl, testCluster } from '../support/cluster.ts';

const cluster = testCluster();
let ns: string;

beforeAll(async () => {
  ns = await createTestNamespace(cluster, 'harness');
});
afterAll(async () => {
  await deleteTestNamespace(cluster, ns);
});

function barePod(name: string, fault?: string): V1Pod {
  return {
    metadata: { name, annotations: fault ? { 'iotedge-operator.io/kwok-fault': fault } : {} },
    spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'example.invalid/app:1' }] },
  };
}

async function podWhen(name: string, predicate: (pod: V1Pod) => boolean, timeoutMs = 60_000): Promise<V1Pod> {
  return eventually(`pod ${name}`, async () => {
    const pod = await cluster.core.readNamespacedPod({ name, namespace: ns });
    return predicate(pod) ? pod : undefined;
  }, timeoutMs);
}

describe('local control plane', () => {
  it('has the Ready real worker edge-worker-0 and a Ready KWOK node that is tainted', async () => {
    const nodes = (await cluster.core.listNode()).items;
    const ready = (name: string) => nodes.find((n) => n.metadata?.name === name)?.status?.conditions?.find((c) => c.type === 'Ready')?.status;
    expect(ready('edge-worker-0')).toBe('True');
    expect(nodes.find((n) => n.metadata?.name === 'edge-worker-0')?.status?.nodeInfo?.kubeletVersion).toMatch(/^v1\.34\.\d+$/);
    const kwok = nodes.filter((n) => n.metadata?.labels?.type === 'kwok');
    expect(kwok.length).toBeGreaterThanOrEqual(1);
    for (const node of kwok) {
      expect(ready(node.metadata!.name!)).toBe('True');
      expect(node.spec?.taints).toContainEqual(expect.objectContaining({ key: 'kwok.x-k8s.io/node', effect: 'NoSchedule' }));
    }
  });

  it('runs API server version 1.34 with RBAC on', async () => {
    const version = JSON.parse(await kubectl(cluster, ['version', '-o', 'json'])) as { serverVersion: { gitVersion: string } };
    expect(version.serverVersion.gitVersion).toMatch(/^v1\.34\.\d+$/);
    const apis = await kubectl(cluster, ['api-versions']);
    expect(apis).toContain('rbac.authorization.k8s.io/v1');
  });

  it("schedules a KWOK namespace's Deployment pod onto a KWOK node and it becomes Running and Ready", async () => {
    await cluster.apps.createNamespacedDeployment({
      namespace: ns,
      body: {
        metadata: { name: 'web' },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'web' } },
          template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'web', image: 'example.invalid/web:1' }] } },
        },
      },
    });
    const pod = await eventually('a Running web pod', async () => {
      const pods = await cluster.core.listNamespacedPod({ namespace: ns, labelSelector: 'app=web' });
      return pods.items.find((p) => p.status?.phase === 'Running');
    });
    expect(pod.spec?.nodeName).toMatch(/^kwok-node-\d+$/);
    expect(pod.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    await eventually('deployment available', async () => {
      const d = await cluster.apps.readNamespacedDeployment({ name: 'web', namespace: ns });
      return d.status?.readyReplicas === 1 ? d : undefined;
    });
  });

  it('garbage-collects children when their owner is deleted', async () => {
    const owner = await cluster.core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'owner' } } });
    await cluster.core.createNamespacedConfigMap({
      namespace: ns,
      body: {
        metadata: {
          name: 'child',
          ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: owner.metadata!.uid!, controller: true, blockOwnerDeletion: true }],
        },
      },
    });
    await cluster.core.deleteNamespacedConfigMap({ name: 'owner', namespace: ns, propagationPolicy: 'Background' });
    await eventually('the child to be collected', async () => {
      const list = await cluster.core.listNamespacedConfigMap({ namespace: ns, fieldSelector: 'metadata.name=child' });
      return list.items.length === 0 ? true : undefined;
    });
  });

  it('binds a PersistentVolumeClaim of the default StorageClass', async () => {
    await cluster.core.createNamespacedPersistentVolumeClaim({
      namespace: ns,
      body: { metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '2Gi' } } } },
    });
    const claim = await eventually('the claim to bind', async () => {
      const c = await cluster.core.readNamespacedPersistentVolumeClaim({ name: 'data', namespace: ns });
      return c.status?.phase === 'Bound' ? c : undefined;
    });
    expect(claim.spec?.storageClassName).toBe('standard');
    expect(claim.status?.capacity?.storage).toBe('2Gi');
  });

  describe('fault stages', () => {
    it('crashloop: CrashLoopBackOff with a growing restartCount and last exit code 1', async () => {
      await cluster.core.createNamespacedPod({ namespace: ns, body: barePod('crash', 'crashloop') });
      const first = await podWhen('crash', (p) => p.status?.containerStatuses?.[0]?.state?.waiting?.reason === 'CrashLoopBackOff');
      const firstCount = first.status!.containerStatuses![0]!.restartCount;
      expect(first.status?.containerStatuses?.[0]?.lastState?.terminated?.exitCode).toBe(1);
      expect(first.status?.phase).toBe('Running');
      const later = await podWhen('crash', (p) => (p.status?.containerStatuses?.[0]?.restartCount ?? 0) > firstCount);
      expect(later.status?.containerStatuses?.[0]?.state?.waiting?.reason).toBe('CrashLoopBackOff');
    });

    it('image-pull-backoff: Pending with the container waiting in ImagePullBackOff', async () => {
      await cluster.core.createNamespacedPod({ namespace: ns, body: barePod('nopull', 'image-pull-backoff') });
      const pod = await podWhen('nopull', (p) => p.status?.containerStatuses?.[0]?.state?.waiting !== undefined);
      expect(pod.status?.phase).toBe('Pending');
      expect(pod.status?.containerStatuses?.[0]?.state?.waiting?.reason).toBe('ImagePullBackOff');
    });

    it('fail: the pod ends Failed with a non-zero exit code', async () => {
      await cluster.core.createNamespacedPod({ namespace: ns, body: barePod('fails', 'fail') });
      const pod = await podWhen('fails', (p) => p.status?.phase === 'Failed');
      expect(pod.status?.containerStatuses?.[0]?.state?.terminated?.exitCode).toBe(1);
    });

    it('succeed: the pod ends Succeeded with exit code 0', async () => {
      await cluster.core.createNamespacedPod({ namespace: ns, body: barePod('job', 'succeed') });
      const pod = await podWhen('job', (p) => p.status?.phase === 'Succeeded');
      expect(pod.status?.containerStatuses?.[0]?.state?.terminated?.exitCode).toBe(0);
      expect(pod.status?.containerStatuses?.[0]?.state?.terminated?.reason).toBe('Completed');
    });
  });
});
