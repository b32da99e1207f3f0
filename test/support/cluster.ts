// Helpers for tests that talk to the run's real API server. Each test file works in its own namespaces.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { kubectl as runKubectl, kwokNamespaceAnnotations } from '../../scripts/cluster/control-plane.ts';

export interface TestCluster {
  kubeconfigPath: string;
  bin: string;
  kc: k8s.KubeConfig;
  core: k8s.CoreV1Api;
  apps: k8s.AppsV1Api;
  objects: k8s.KubernetesObjectApi;
}

export function testCluster(): TestCluster {
  const kubeconfigPath = process.env.IOTEDGE_TEST_KUBECONFIG;
  const bin = process.env.IOTEDGE_TEST_BIN;
  if (!kubeconfigPath || !bin) throw new Error('no test cluster: run this file through jest with the integration or e2e project');
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  return {
    kubeconfigPath,
    bin,
    kc,
    core: kc.makeApiClient(k8s.CoreV1Api),
    apps: kc.makeApiClient(k8s.AppsV1Api),
    objects: k8s.KubernetesObjectApi.makeApiClient(kc),
  };
}

export function kubectl(cluster: TestCluster, args: string[], input?: string): Promise<string> {
  return runKubectl({ bin: cluster.bin, kubeconfig: cluster.kubeconfigPath }, args, input);
}

export function binary(cluster: TestCluster, name: 'kubectl' | 'helm'): string {
  return join(cluster.bin, name);
}

/** helm at the cluster's version against the test cluster; rejects with its stderr. */
export async function helm(cluster: TestCluster, ...args: string[]): Promise<string> {
  const child = spawn(binary(cluster, 'helm'), [...args, '--kubeconfig', cluster.kubeconfigPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', resolve);
  });
  if (code !== 0) throw new Error(`helm ${args.slice(0, 2).join(' ')} failed (${code}): ${stderr.trim()}`);
  return stdout;
}

/** Polls until `probe` returns a value other than undefined; fails with the last observation. */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}${last ? `: ${last instanceof Error ? last.message : String(last)}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Where a namespace's pods run: `kwok` (the default) on the tainted KWOK nodes, which mark any pod
 * Running without running it (for tests whose images exist only as names, and KWOK fault stages);
 * `real` on the real worker edge-worker-0, with real containers (images must be in its containerd).
 */
export type Placement = 'kwok' | 'real';

/** A namespace of its own for a test file, ready for pods (its default ServiceAccount exists). */
export async function createTestNamespace(cluster: TestCluster, prefix: string, placement: Placement = 'kwok'): Promise<string> {
  const name = `${prefix}-${randomBytes(3).toString('hex')}`.toLowerCase();
  const annotations = placement === 'kwok' ? kwokNamespaceAnnotations : {};
  await cluster.core.createNamespace({ body: { metadata: { name, labels: { 'iotedge-operator.io/test': 'true' }, annotations } } });
  await eventually(`ServiceAccount default in ${name}`, async () =>
    (await cluster.core.readNamespacedServiceAccount({ name: 'default', namespace: name })) ?? undefined,
  );
  return name;
}

export async function deleteTestNamespace(cluster: TestCluster, name: string): Promise<void> {
  await cluster.core.deleteNamespace({ name }).catch(() => undefined);
  // The operator under test is stopped by now: an IoT Hub finalizer it left would hold the namespace for ever.
  const names = await kubectl(cluster, ['-n', name, 'get', 'edgedeployments', '-o', 'name']).catch(() => '');
  for (const ed of names.split('\n').filter((n) => n.trim() !== '')) {
    await kubectl(cluster, ['-n', name, 'patch', ed.trim(), '--type=merge', '-p', '{"metadata":{"finalizers":null}}']).catch(() => undefined);
  }
}
