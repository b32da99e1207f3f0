// Two failure modes a first-class controller must survive, each on real parts:
//  - two operator replicas with leader election on a Lease: exactly one reconciles, and when the leader
//    dies without releasing the Lease the other takes over;
//  - the API server is killed and restarted in the middle of reconciling: everything converges.
// The API-server test runs its own private control plane, so the shared one is never disturbed.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoordinationV1Api, KubeConfig } from '@kubernetes/client-node';
import type { EdgeDeployment } from '../../src/api/edge-deployment.ts';
import { OperatorManager } from '../../src/controller/manager.ts';
import { LeaderElector } from '../../src/runtime/leader-election.ts';
import { createLogger } from '../../src/runtime/logger.ts';
import { defaultSettings } from '../../src/translate/settings.ts';
import { bounceComponent, installCrds, kubectl as clusterKubectl, repoRoot, startControlPlane, stopControlPlane, type ClusterState } from '../../scripts/cluster/control-plane.ts';
import { createTestNamespace, deleteTestNamespace, eventually, kubectl, testCluster } from '../support/cluster.ts';
import { ensureCrd, operatorKubeConfig } from '../support/operator.ts';
import { isReady, sampleEdgeDeployment, sampleModule } from '../support/samples.ts';

const cluster = testCluster();
const quiet = createLogger({ level: 'silent' });

function sample(namespace: string, modules: string[]): EdgeDeployment {
  return sampleEdgeDeployment(namespace, Object.fromEntries(modules.map((m) => [m, sampleModule(`example.azurecr.io/${m}:1`)])));
}

interface Replica {
  identity: string;
  manager: OperatorManager;
  elector: LeaderElector;
  requests: number;
  running: Promise<void>;
}

/** One operator replica as `run --leader-elect` wires it: the manager starts only once this replica leads. */
function replica(kc: KubeConfig, namespace: string, identity: string): Replica {
  const r = { identity, requests: 0 } as Replica;
  r.manager = new OperatorManager({
    kubeConfig: kc, namespaces: [namespace], settings: defaultSettings, concurrency: 2, logger: quiet,
    onRequest: () => (r.requests += 1),
  });
  r.elector = new LeaderElector({
    coordination: kc.makeApiClient(CoordinationV1Api),
    namespace,
    name: 'iotedge-operator',
    identity,
    // Short timings keep the test quick; the order of events is what is checked, not their timing.
    leaseDurationMs: 4_000,
    renewDeadlineMs: 3_000,
    retryPeriodMs: 500,
    logger: quiet,
    onStartedLeading: async () => {
      await r.manager.start();
    },
  });
  r.running = r.elector.run();
  return r;
}

describe('leader election between two operator replicas', () => {
  let ns: string;
  const replicas: Replica[] = [];

  beforeAll(async () => {
    await ensureCrd(cluster);
    ns = await createTestNamespace(cluster, 'ha');
  });
  afterAll(async () => {
    for (const r of replicas) {
      await r.elector.stop({ release: true }).catch(() => undefined);
      await r.manager.stop(2_000).catch(() => undefined);
    }
    await deleteTestNamespace(cluster, ns);
  });

  it('lets exactly one replica reconcile, and the other take over when the leader dies', async () => {
    const kc = await operatorKubeConfig(cluster, ns);
    replicas.push(replica(kc, ns, 'replica-a'), replica(kc, ns, 'replica-b'));
    const leader = await eventually('a leader', async () => replicas.find((r) => r.elector.isLeader()));
    const follower = replicas.find((r) => r !== leader)!;

    await kubectl(cluster, ['apply', '--server-side', '-f', '-'], JSON.stringify(sample(ns, ['sensor'])));
    await eventually('Ready under the first leader', async () => {
      const ed = JSON.parse(await kubectl(cluster, ['-n', ns, 'get', 'edep', 'device', '-o', 'json'])) as EdgeDeployment;
      return isReady(ed) ? ed : undefined;
    });
    expect(follower.elector.isLeader()).toBe(false);
    expect(follower.requests).toBe(0);

    // The leader dies: it stops renewing and never releases the Lease, like a killed process.
    await leader.elector.stop({ release: false });
    await leader.manager.stop(2_000);
    await eventually('the follower to lead', async () => (follower.elector.isLeader() ? true : undefined), 60_000);
    const lease = JSON.parse(await kubectl(cluster, ['-n', ns, 'get', 'lease', 'iotedge-operator', '-o', 'json'])) as { spec: { holderIdentity: string } };
    expect(lease.spec.holderIdentity).toBe(follower.identity);

    // The new leader reconciles changes.
    await kubectl(cluster, ['apply', '--server-side', '-f', '-'], JSON.stringify(sample(ns, ['sensor', 'filter'])));
    await eventually('filter created by the new leader', async () => {
      const ed = JSON.parse(await kubectl(cluster, ['-n', ns, 'get', 'edep', 'device', '-o', 'json'])) as EdgeDeployment;
      return isReady(ed) && ed.status?.modules?.filter ? ed : undefined;
    });
    expect(follower.requests).toBeGreaterThan(0);
  });
});

describe('API server restarted mid-reconcile', () => {
  let state: ClusterState;
  let manager: OperatorManager | undefined;

  beforeAll(async () => {
    // A second, KWOK-only cluster of its own: this test stops its API server.
    state = await startControlPlane(mkdtempSync(join(tmpdir(), 'iotedge-operator-bounce-')), { worker: false, kwokNodes: 1, ownerPid: process.pid });
    await installCrds((args) => clusterKubectl(state, args), join(repoRoot, 'crds'));
  });
  afterAll(async () => {
    await manager?.stop(2_000).catch(() => undefined);
    if (state) await stopControlPlane(state.dir);
  });

  it('converges after the API server comes back', async () => {
    const kc = new KubeConfig();
    kc.loadFromFile(state.kubeconfig);
    manager = new OperatorManager({ kubeConfig: kc, namespaces: 'all', settings: defaultSettings, concurrency: 2, logger: quiet });
    await manager.start();
    const modules = Array.from({ length: 12 }, (_, i) => `module${i}`);
    await clusterKubectl(state, ['apply', '--server-side', '-f', '-'], JSON.stringify(sample('default', modules)));
    // Kill the API server while the operator is creating the module objects, keep it down, restart it.
    await eventually('the first module objects', async () => {
      const out = await clusterKubectl(state, ['-n', 'default', 'get', 'deployments', '-o', 'name']);
      return out.trim() ? true : undefined;
    });
    await bounceComponent(state.dir, 'kube-apiserver', 4_000);
    const ed = await eventually('Ready after the restart', async () => {
      const current = JSON.parse(await clusterKubectl(state, ['-n', 'default', 'get', 'edep', 'device', '-o', 'json'])) as EdgeDeployment;
      return isReady(current) ? current : undefined;
    }, 180_000);
    expect(ed.status?.moduleSummary).toBe(`${modules.length + 1}/${modules.length + 1}`);
    const deployments = (await clusterKubectl(state, ['-n', 'default', 'get', 'deployments', '-o', 'name'])).trim().split('\n');
    expect(deployments).toHaveLength(modules.length + 1);
  });
});
