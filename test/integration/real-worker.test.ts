// Real pods on the real worker edge-worker-0 (kubelet, containerd, runc; see scripts/cluster/worker.ts):
// the operator under test translates EdgeDeployments whose modules run localhost/busybox:1, and each
// test reads what really happened: container logs, restart counts, exit codes, DNS, files on a volume.
// Nothing here is scripted by KWOK: a crash is a process exiting 1, a missing image is really missing.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { KubeConfig, V1Pod } from '@kubernetes/client-node';
import type { EdgeDeployment } from '../../src/api/edge-deployment.ts';
import { createTestNamespace, deleteTestNamespace, eventually, kubectl, testCluster } from '../support/cluster.ts';
import { ensureCrd, operatorKubeConfig, startTestOperator, type RunningOperator } from '../support/operator.ts';
import { isReady, sampleEdgeDeployment, sampleModule, type ModuleFields } from '../support/samples.ts';

const cluster = testCluster();
const busybox = 'localhost/busybox:1';
const namespaces: string[] = [];
let home: string;
let kubeConfig: KubeConfig;
let operator: RunningOperator;

/** A busybox module running `script` with sh; `createOptions` adds to the Docker create body. */
function shellModule(script: string, extra: ModuleFields = {}, createOptions: Record<string, unknown> = {}): ModuleFields {
  return sampleModule(busybox, extra, { Cmd: ['sh', '-c', script], ...createOptions });
}

/** edgeHub as a real container that only waits, so the modules after it (startupOrder) are started. */
const edgeHub: ModuleFields = { settings: { image: busybox, createOptions: { Cmd: ['sleep', '86400'] } } };

async function deploy(namespace: string, modules: Record<string, ModuleFields>): Promise<void> {
  const resource = sampleEdgeDeployment(namespace, modules, { edgeHub });
  await kubectl(cluster, ['apply', '--server-side', '--force-conflicts', '--field-manager=test-user', '-f', '-'], JSON.stringify(resource));
}

async function until(namespace: string, what: string, predicate: (ed: EdgeDeployment) => boolean, timeoutMs = 120_000): Promise<EdgeDeployment> {
  return eventually(what, async () => {
    const ed = JSON.parse(await kubectl(cluster, ['-n', namespace, 'get', 'edgedeployment', 'device', '-o', 'json'])) as EdgeDeployment;
    return predicate(ed) ? ed : undefined;
  }, timeoutMs);
}

/** The module's pods (Deployment- or Pod-backed), newest first. */
async function modulePods(namespace: string, module: string): Promise<V1Pod[]> {
  const pods = await cluster.core.listNamespacedPod({ namespace, labelSelector: `iotedge-operator.io/module=${module}` });
  return pods.items.sort((a, b) => String(b.metadata?.creationTimestamp ?? '').localeCompare(String(a.metadata?.creationTimestamp ?? '')));
}

/** Polls `kubectl logs` of the module's newest pod until it contains `text`. */
async function logsContaining(namespace: string, module: string, text: string, timeoutMs = 90_000): Promise<string> {
  return eventually(`"${text}" in the logs of ${module}`, async () => {
    const [pod] = await modulePods(namespace, module);
    if (!pod) return undefined;
    const logs = await kubectl(cluster, ['-n', namespace, 'logs', pod.metadata!.name!]);
    return logs.includes(text) ? logs : undefined;
  }, timeoutMs);
}

const running = (pod: V1Pod) => pod.status?.containerStatuses?.every((c) => c.state?.running) === true;

async function freshNamespace(prefix: string): Promise<string> {
  const ns = await createTestNamespace(cluster, prefix, 'real');
  namespaces.push(ns);
  await operator?.stop();
  // stock: edgeHub runs the manifest's image (busybox here), not the built-in hub's operator image.
  operator = await startTestOperator(kubeConfig, [home, ...namespaces], { edgeHub: 'stock' });
  return ns;
}

beforeAll(async () => {
  await ensureCrd(cluster);
  home = await createTestNamespace(cluster, 'real-home', 'real');
  kubeConfig = await operatorKubeConfig(cluster, home);
});
afterAll(async () => {
  await operator?.stop();
  for (const ns of [...namespaces, home]) await deleteTestNamespace(cluster, ns);
});

describe('modules as real containers on edge-worker-0', () => {
  it('runs a module with its env, command and named volume as the translation says, visible in kubectl logs', async () => {
    const ns = await freshNamespace('real-env');
    await deploy(ns, {
      printer: shellModule(
        'echo "greeting=$GREETING module=$IOTEDGE_MODULEID device=$IOTEDGE_DEVICEID"; echo "argv=$0"; ' +
          'echo from-the-module > /data/file; echo "volume=$(cat /data/file)"; grep -q " /data " /proc/mounts && echo "mounted=/data"; sleep 86400',
        { env: { GREETING: { value: 'hello world' } } },
        { HostConfig: { Binds: ['printerdata:/data'] } },
      ),
    });
    const ed = await until(ns, 'Ready', isReady);
    expect(ed.status?.modules?.printer?.runtimeStatus).toBe('running');
    const logs = await logsContaining(ns, 'printer', 'mounted=/data');
    expect(logs).toContain(`greeting=hello world module=printer device=${ns}`);
    expect(logs).toContain('argv=sh');
    expect(logs).toContain('volume=from-the-module');
    const [pod] = await modulePods(ns, 'printer');
    expect(pod?.spec?.nodeName).toBe('edge-worker-0');
    expect(pod?.spec?.volumes?.find((v) => v.persistentVolumeClaim)?.persistentVolumeClaim?.claimName).toBe('printerdata');
  });

  it('keeps a named volume\'s data when the module\'s pod is replaced', async () => {
    const ns = await freshNamespace('real-volume');
    // Each start counts itself in a file on the claim; a fresh volume would start at 1 again.
    await deploy(ns, {
      counter: shellModule('n=$(cat /data/count 2>/dev/null || echo 0); n=$((n+1)); echo $n > /data/count; echo "start $n"; sleep 86400', {}, {
        HostConfig: { Binds: ['counterdata:/data'] },
      }),
    });
    await until(ns, 'Ready', isReady);
    await logsContaining(ns, 'counter', 'start 1');
    const [first] = await modulePods(ns, 'counter');
    await cluster.core.deleteNamespacedPod({ name: first!.metadata!.name!, namespace: ns, gracePeriodSeconds: 0 });
    const logs = await logsContaining(ns, 'counter', 'start 2');
    expect(logs).not.toContain('start 1');
    const [second] = await modulePods(ns, 'counter');
    expect(second?.metadata?.uid).not.toBe(first?.metadata?.uid);
  });

  it('restarts an on-unhealthy module whose Healthcheck fails: restartCount rises and the status says backoff', async () => {
    const ns = await freshNamespace('real-health');
    await deploy(ns, {
      sick: shellModule('echo started; sleep 86400', { restartPolicy: 'on-unhealthy' }, {
        // Docker durations are nanoseconds: probe every second, unhealthy after one failure.
        Healthcheck: { Test: ['CMD', 'false'], Interval: 1_000_000_000, Timeout: 1_000_000_000, Retries: 1 },
        // sh as PID 1 ignores SIGTERM: without this the kubelet would wait the default 30 s before each kill.
        StopTimeout: 1,
      }),
    });
    const restarted = await until(ns, 'sick restarted by its failing probe', (e) => (e.status?.modules?.sick?.restartCount ?? 0) >= 1);
    const count = restarted.status!.modules!.sick!.restartCount!;
    const backoff = await until(ns, 'sick in backoff', (e) => e.status?.modules?.sick?.runtimeStatus === 'backoff');
    expect(backoff.status?.modules?.sick?.statusDescription).toContain('CrashLoopBackOff');
    expect(backoff.status?.modules?.sick?.restartCount).toBeGreaterThanOrEqual(count);
    const [pod] = await modulePods(ns, 'sick');
    // The kubelet killed it for the probe: SIGKILL after the liveness failure, exit code 137.
    expect(pod?.status?.containerStatuses?.[0]?.lastState?.terminated?.exitCode).toBe(137);
  });

  it('runs a restartPolicy never module to completion and does not restart it', async () => {
    const ns = await freshNamespace('real-never');
    await deploy(ns, { once: shellModule('echo did-the-job; exit 0', { restartPolicy: 'never' }) });
    const done = await until(ns, 'once completed', (e) => e.status?.modules?.once?.runtimeStatus === 'stopped' && e.status.modules.once.exitCode === 0);
    expect(done.status?.modules?.once).toMatchObject({ kind: 'Pod', exitCode: 0 });
    await logsContaining(ns, 'once', 'did-the-job');
    const pod = await cluster.core.readNamespacedPod({ name: 'once', namespace: ns });
    expect(pod.spec?.restartPolicy).toBe('Never');
    expect(pod.status?.phase).toBe('Succeeded');
    expect(pod.status?.containerStatuses?.[0]?.restartCount).toBe(0);
  });

  it('reports a module that exits 1 as backoff with its exit code, and an image that does not exist as ImagePullBackOff', async () => {
    const ns = await freshNamespace('real-faults');
    await deploy(ns, {
      crashy: shellModule('echo failing; exit 1'),
      unpullable: sampleModule('localhost/does-not-exist:1'),
    });
    const crashed = await until(ns, 'crashy in backoff', (e) => e.status?.modules?.crashy?.runtimeStatus === 'backoff' && e.status.modules.crashy.exitCode === 1);
    expect(crashed.status?.modules?.crashy?.statusDescription).toContain('CrashLoopBackOff');
    expect(crashed.status?.conditions?.find((c) => c.type === 'Degraded')?.status).toBe('True');
    const pulled = await until(ns, 'unpullable reported', (e) => /ImagePullBackOff|ErrImagePull/.test(e.status?.modules?.unpullable?.statusDescription ?? ''));
    expect(pulled.status?.modules?.unpullable?.runtimeStatus).toBe('backoff');
    expect(pulled.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('False');
  });

  it('lets a module reach another by its Service name through CoreDNS', async () => {
    const ns = await freshNamespace('real-dns');
    await deploy(ns, {
      web: shellModule('mkdir -p /www && echo hello-from-web > /www/index.html && exec httpd -f -p 8080 -h /www', {}, { ExposedPorts: { '8080/tcp': {} } }),
      // DNS may answer a moment after CoreDNS is Ready (a known blip): the client retries for a while.
      client: shellModule('for i in $(seq 60); do httpget -timeout 2s http://web:8080/ && echo reached-web && break; sleep 1; done; sleep 86400'),
    });
    const service = await eventually('Service web', () => cluster.core.readNamespacedService({ name: 'web', namespace: ns }));
    expect(service.spec?.ports?.[0]?.port).toBe(8080);
    const logs = await logsContaining(ns, 'client', 'reached-web', 120_000);
    expect(logs).toContain('hello-from-web');
  });

  it('gives a module its StopTimeout: SIGTERM first, and time to finish before the kill', async () => {
    const ns = await freshNamespace('real-stop');
    // On SIGTERM the module writes to its volume, takes 2 s to finish, and writes again.
    const script = 'trap \'echo got-SIGTERM >> /data/stop.log; sleep 2; echo finished-cleanly >> /data/stop.log; exit 0\' TERM; ' +
      'echo running; while true; do sleep 1; done';
    await deploy(ns, { graceful: shellModule(script, {}, { StopTimeout: 20, HostConfig: { Binds: ['gracefuldata:/data'] } }) });
    await until(ns, 'Ready', isReady);
    await logsContaining(ns, 'graceful', 'running');
    const [first] = await modulePods(ns, 'graceful');
    expect(first?.spec?.terminationGracePeriodSeconds).toBe(20);
    // Deleted as Kubernetes deletes a pod: SIGTERM, then SIGKILL when the pod's grace period (StopTimeout) ends.
    await cluster.core.deleteNamespacedPod({ name: first!.metadata!.name!, namespace: ns });
    await eventually('the first pod gone', async () => ((await modulePods(ns, 'graceful')).some((p) => p.metadata?.uid === first!.metadata!.uid) ? undefined : true));
    // Its replacement mounts the same claim: read what the stopped container wrote.
    const written = await eventually('the replacement running', async () => {
      const [pod] = await modulePods(ns, 'graceful');
      if (!pod || !running(pod)) return undefined;
      return kubectl(cluster, ['-n', ns, 'exec', pod.metadata!.name!, '--', 'cat', '/data/stop.log']);
    });
    expect(written.split('\n').filter(Boolean)).toEqual(['got-SIGTERM', 'finished-cleanly']);
  });
});
