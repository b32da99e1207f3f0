import { describe, expect, it } from '@jest/globals';
import { describeApiRequest, OperatorMetrics } from '../../../src/runtime/metrics.ts';

/** The value of one series in the exposition text, or undefined when the series is absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('OperatorMetrics', () => {
  it('keeps its own registry, so two instances do not collide', async () => {
    const a = new OperatorMetrics({ processMetrics: false });
    const b = new OperatorMetrics({ processMetrics: false });
    a.reconcileDone('edgedeployment', 'success', 0.01);
    expect(sample(await a.text(), 'controller_runtime_reconcile_total{controller="edgedeployment",result="success"}')).toBe(1);
    expect(sample(await b.text(), 'controller_runtime_reconcile_total{controller="edgedeployment",result="success"}')).toBeUndefined();
  });

  it('publishes zeroes for every result once a controller is registered', async () => {
    const m = new OperatorMetrics({ processMetrics: false });
    m.registerController('edgedeployment', 4);
    const text = await m.text();
    for (const result of ['success', 'error', 'requeue', 'requeue_after']) {
      expect(sample(text, `controller_runtime_reconcile_total{controller="edgedeployment",result="${result}"}`)).toBe(0);
    }
    expect(sample(text, 'controller_runtime_max_concurrent_reconciles{controller="edgedeployment"}')).toBe(4);
    expect(sample(text, 'controller_runtime_active_workers{controller="edgedeployment"}')).toBe(0);
    expect(sample(text, 'controller_runtime_reconcile_errors_total{controller="edgedeployment"}')).toBe(0);
  });

  it('counts reconciliations by result, errors separately, and observes their duration', async () => {
    const m = new OperatorMetrics({ processMetrics: false });
    const hooks = m.controllerHooks('edgedeployment');
    hooks.reconcileDone('success', 0.02);
    hooks.reconcileDone('error', 0.3);
    hooks.terminalError();
    m.reconcileDone('edgedeployment', 'requeue_after', 0.004);
    hooks.reconcileResult('requeue');
    hooks.reconcileSeconds(2);
    hooks.panic();
    hooks.workerBusy();
    hooks.workerBusy();
    hooks.workerIdle();
    const text = await m.text();
    expect(sample(text, 'controller_runtime_reconcile_total{controller="edgedeployment",result="success"}')).toBe(1);
    expect(sample(text, 'controller_runtime_reconcile_total{controller="edgedeployment",result="error"}')).toBe(1);
    expect(sample(text, 'controller_runtime_reconcile_total{controller="edgedeployment",result="requeue_after"}')).toBe(1);
    expect(sample(text, 'controller_runtime_reconcile_total{controller="edgedeployment",result="requeue"}')).toBe(1);
    expect(sample(text, 'controller_runtime_reconcile_errors_total{controller="edgedeployment"}')).toBe(1);
    expect(sample(text, 'controller_runtime_terminal_reconcile_errors_total{controller="edgedeployment"}')).toBe(1);
    expect(sample(text, 'controller_runtime_reconcile_panics_total{controller="edgedeployment"}')).toBe(1);
    expect(sample(text, 'controller_runtime_active_workers{controller="edgedeployment"}')).toBe(1);
    expect(sample(text, 'controller_runtime_reconcile_time_seconds_count{controller="edgedeployment"}')).toBe(4);
    expect(sample(text, 'controller_runtime_reconcile_time_seconds_bucket{le="0.005",controller="edgedeployment"}')).toBe(1);
    expect(sample(text, 'controller_runtime_reconcile_time_seconds_bucket{le="60",controller="edgedeployment"}')).toBe(4);
    expect(text).toContain('# TYPE controller_runtime_reconcile_time_seconds histogram');
  });

  it('records what a work queue reports through its hooks, and reads in-flight work at scrape time', async () => {
    const m = new OperatorMetrics({ processMetrics: false });
    const queue = m.queueHooks('edgedeployment');
    let inFlight = { unfinishedSeconds: 1.5, longestRunningSeconds: 1.25 };
    queue.unfinishedWork(() => inFlight);
    queue.onAdd();
    queue.onAdd();
    queue.onDepth(2);
    queue.onQueueLatency(0.001);
    queue.onWorkDuration(0.2);
    queue.onRetry();
    let text = await m.text();
    expect(sample(text, 'workqueue_adds_total{name="edgedeployment"}')).toBe(2);
    expect(sample(text, 'workqueue_depth{name="edgedeployment"}')).toBe(2);
    expect(sample(text, 'workqueue_retries_total{name="edgedeployment"}')).toBe(1);
    expect(sample(text, 'workqueue_queue_duration_seconds_count{name="edgedeployment"}')).toBe(1);
    expect(sample(text, 'workqueue_work_duration_seconds_count{name="edgedeployment"}')).toBe(1);
    expect(sample(text, 'workqueue_work_duration_seconds_bucket{le="1e-8",name="edgedeployment"}')).toBe(0);
    expect(sample(text, 'workqueue_work_duration_seconds_bucket{le="1",name="edgedeployment"}')).toBe(1);
    expect(sample(text, 'workqueue_unfinished_work_seconds{name="edgedeployment"}')).toBe(1.5);
    expect(sample(text, 'workqueue_longest_running_processor_seconds{name="edgedeployment"}')).toBe(1.25);

    inFlight = { unfinishedSeconds: 0, longestRunningSeconds: 0 };
    queue.onDepth(0);
    text = await m.text();
    expect(sample(text, 'workqueue_unfinished_work_seconds{name="edgedeployment"}')).toBe(0);
    expect(sample(text, 'workqueue_depth{name="edgedeployment"}')).toBe(0);

    m.forgetQueue('edgedeployment');
    expect(sample(await m.text(), 'workqueue_unfinished_work_seconds{name="edgedeployment"}')).toBeUndefined();
  });

  it('replaces module counts per EdgeDeployment and drops a deleted one', async () => {
    const m = new OperatorMetrics({ processMetrics: false });
    m.setModules('factory', 'line-3', { running: 3, backoff: 1 });
    m.setModules('factory', 'line-4', { running: 1 });
    m.setModules('factory', 'line-3', { running: 4 });
    let text = await m.text();
    expect(sample(text, 'iotedge_modules{namespace="factory",edge_deployment="line-3",runtime_status="running"}')).toBe(4);
    expect(sample(text, 'iotedge_modules{namespace="factory",edge_deployment="line-3",runtime_status="backoff"}')).toBe(0);
    m.forgetEdgeDeployment('factory', 'line-3');
    text = await m.text();
    expect(sample(text, 'iotedge_modules{namespace="factory",edge_deployment="line-3",runtime_status="running"}')).toBeUndefined();
    expect(sample(text, 'iotedge_modules{namespace="factory",edge_deployment="line-4",runtime_status="running"}')).toBe(1);
  });

  it('counts twin syncs, stamps the last success, counts API requests and leader status', async () => {
    const m = new OperatorMetrics({ processMetrics: false });
    m.twinSync('success', 'factory', new Date('2026-01-02T03:04:05Z'));
    m.twinSync('error', 'factory');
    m.apiRequest('get', 'leases', 200);
    m.apiRequest('get', 'leases', 200);
    m.apiRequest('update', 'leases', 409);
    m.apiRequest('list', 'pods', 'error');
    m.setLeader('iotedge-operator', true);
    const text = await m.text();
    expect(sample(text, 'iotedge_twin_sync_total{result="success"}')).toBe(1);
    expect(sample(text, 'iotedge_twin_sync_total{result="error"}')).toBe(1);
    expect(sample(text, 'iotedge_twin_last_sync_timestamp_seconds{namespace="factory"}')).toBe(Date.parse('2026-01-02T03:04:05Z') / 1000);
    expect(sample(text, 'iotedge_api_requests_total{verb="get",resource="leases",code="200"}')).toBe(2);
    expect(sample(text, 'iotedge_api_requests_total{verb="update",resource="leases",code="409"}')).toBe(1);
    expect(sample(text, 'iotedge_api_requests_total{verb="list",resource="pods",code="error"}')).toBe(1);
    expect(sample(text, 'leader_election_master_status{name="iotedge-operator"}')).toBe(1);
  });

  it('includes process metrics unless told not to', async () => {
    expect(await new OperatorMetrics().text()).toContain('process_cpu_user_seconds_total');
    expect(await new OperatorMetrics({ processMetrics: false }).text()).not.toContain('process_cpu_user_seconds_total');
  });
});

describe('describeApiRequest', () => {
  it.each([
    ['GET', 'https://127.0.0.1:6443/api/v1/namespaces/factory/pods', 'list', 'pods'],
    ['GET', 'https://127.0.0.1:6443/api/v1/namespaces/factory/pods/sensor-0', 'get', 'pods'],
    ['GET', 'https://127.0.0.1:6443/api/v1/pods?watch=true&resourceVersion=5', 'watch', 'pods'],
    ['PATCH', 'https://127.0.0.1:6443/apis/iotedge.example/v1/namespaces/f/edgedeployments/line-3/status', 'patch', 'edgedeployments/status'],
    ['PUT', 'https://127.0.0.1:6443/apis/coordination.k8s.io/v1/namespaces/f/leases/op', 'update', 'leases'],
    ['POST', 'https://127.0.0.1:6443/apis/apps/v1/namespaces/f/deployments', 'create', 'deployments'],
    ['DELETE', 'https://127.0.0.1:6443/api/v1/namespaces/f/configmaps', 'deletecollection', 'configmaps'],
    ['DELETE', 'https://127.0.0.1:6443/api/v1/namespaces/f', 'delete', 'namespaces'],
    ['GET', 'https://127.0.0.1:6443/api/v1/namespaces', 'list', 'namespaces'],
  ])('%s %s is %s %s', (method, url, verb, resource) => {
    expect(describeApiRequest(method, url)).toEqual({ verb, resource });
  });
});
