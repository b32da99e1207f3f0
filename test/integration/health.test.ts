// The operator's HTTP endpoints wired to real API-server traffic: readiness that follows a real
// informer's initial list, API requests counted from a real client, and the leader status of a
// real election, all read back over HTTP the way the kubelet and Prometheus read them.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CoordinationV1Api, CoreV1Api, makeInformer } from '@kubernetes/client-node';
import type { V1ConfigMap } from '@kubernetes/client-node';
import { HealthChecks, startOperatorEndpoints } from '../../src/runtime/health.ts';
import type { OperatorEndpoints } from '../../src/runtime/health.ts';
import { LeaderElector } from '../../src/runtime/leader-election.ts';
import { OperatorMetrics, makeCountedApiClient } from '../../src/runtime/metrics.ts';
import { createTestNamespace, deleteTestNamespace, eventually, testCluster } from '../support/cluster.ts';

const cluster = testCluster();
let namespace: string;
let endpoints: OperatorEndpoints;
const metrics = new OperatorMetrics();
const checks = new HealthChecks();
const stops: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  namespace = await createTestNamespace(cluster, 'health');
  endpoints = await startOperatorEndpoints({ probeAddress: '127.0.0.1:0', metricsAddress: '127.0.0.1:0', checks, metrics });
});

afterAll(async () => {
  for (const stop of stops.reverse()) await stop();
  await endpoints.stop();
  await deleteTestNamespace(cluster, namespace);
});

async function get(path: string): Promise<{ status: number; body: string }> {
  const response = await fetch(`${endpoints.servers[0]!.url}${path}`);
  return { status: response.status, body: await response.text() };
}

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('operator endpoints against the real API server', () => {
  it('is not ready until a real informer has listed, then ready', async () => {
    await cluster.core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'before-start' }, data: { a: '1' } } });
    const core = cluster.kc.makeApiClient(CoreV1Api);
    const informer = makeInformer<V1ConfigMap>(cluster.kc, `/api/v1/namespaces/${namespace}/configmaps`, () => core.listNamespacedConfigMap({ namespace }));
    let listed = false;
    checks.addReadinessCheck('informers-synced', () => {
      if (!listed) throw new Error(`configmaps informer in ${namespace} has not listed yet`);
    });

    const before = await get('/readyz');
    expect(before.status).toBe(500);
    expect(before.body).toContain(`[-]informers-synced failed: configmaps informer in ${namespace} has not listed yet`);
    expect((await get('/healthz')).status).toBe(200);

    await informer.start();
    stops.push(() => informer.stop());
    listed = true;
    expect(informer.get('before-start', namespace)?.data).toEqual({ a: '1' });
    expect(await get('/readyz')).toEqual({ status: 200, body: 'ok' });
    expect((await get('/readyz?verbose')).body).toContain('[+]informers-synced ok');
  });

  it('counts the requests a counted client sends, by verb, resource and status code', async () => {
    const leases = makeCountedApiClient(cluster.kc, CoordinationV1Api, metrics);
    await expect(leases.readNamespacedLease({ name: 'absent', namespace })).rejects.toMatchObject({ code: 404 });
    await leases.createNamespacedLease({ namespace, body: { metadata: { name: 'counted' }, spec: { holderIdentity: 'nobody' } } });
    await leases.readNamespacedLease({ name: 'counted', namespace });
    await leases.readNamespacedLease({ name: 'counted', namespace });
    await leases.listNamespacedLease({ namespace });
    const text = (await get('/metrics')).body;
    expect(sample(text, 'iotedge_api_requests_total{verb="get",resource="leases",code="404"}')).toBe(1);
    expect(sample(text, 'iotedge_api_requests_total{verb="create",resource="leases",code="201"}')).toBe(1);
    expect(sample(text, 'iotedge_api_requests_total{verb="get",resource="leases",code="200"}')).toBe(2);
    expect(sample(text, 'iotedge_api_requests_total{verb="list",resource="leases",code="200"}')).toBe(1);
  });

  it('reports the leader status of a real election on /metrics', async () => {
    const coordination = cluster.kc.makeApiClient(CoordinationV1Api);
    let started = false;
    const elector = new LeaderElector({
      coordination,
      namespace,
      name: 'iotedge-operator',
      leaseDurationMs: 3_000,
      renewDeadlineMs: 2_000,
      retryPeriodMs: 500,
      metrics,
      onStartedLeading: () => {
        started = true;
      },
    });
    const run = elector.run();
    stops.push(async () => {
      await elector.stop();
      await run;
    });
    await eventually('leadership', async () => (started ? true : undefined));
    expect(sample((await get('/metrics')).body, 'leader_election_master_status{name="iotedge-operator"}')).toBe(1);
    await elector.stop();
    expect(sample((await get('/metrics')).body, 'leader_election_master_status{name="iotedge-operator"}')).toBe(0);
    // Released on stop, so a restarted operator does not wait for expiry.
    const lease = await coordination.readNamespacedLease({ name: 'iotedge-operator', namespace });
    expect(lease.spec?.holderIdentity ?? '').toBe('');
    expect(lease.spec?.leaseDurationSeconds).toBe(1);
  });

  it('serves process metrics next to the operator ones', async () => {
    const text = (await get('/metrics')).body;
    expect(text).toContain('process_resident_memory_bytes');
    expect(text).toContain('# TYPE workqueue_depth gauge');
    expect(text).toContain('# TYPE controller_runtime_reconcile_time_seconds histogram');
  });
});
