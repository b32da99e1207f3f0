// IoT Hub mode end to end: the latency from a desired change (applyConfigurationContentOnDevice through
// the real service SDK and the emulator) to the EdgeDeployment updated, to its pods Running, and to the
// $edgeAgent reported properties saying so; for 1, 10 and 50 devices on one fresh local control plane.
// Next to it, in the same run, the part the API server, controllers and KWOK take on their own: the same
// image change applied straight to a Deployment with kubectl, until its new pod is Ready.
// Figures only; no assertions.
//   npm run bench -- twin [--devices 1,10,50] [--rounds 5]
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { getCACertificates, setDefaultCACertificates } from 'node:tls';
import { KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { KubeClient } from '../src/controller/kube-client.ts';
import type { EdgeDeployment } from '../src/api/edge-deployment.ts';
import { Informer } from '../src/controller/informer.ts';
import { startHubEmulator, type HubEmulator, type JsonObject } from '../src/emulator/index.ts';
import { kubectl, kwokNamespaceAnnotations, repoRoot, startControlPlane, stopControlPlane, type ClusterState } from '../scripts/cluster/control-plane.ts';
import { bindDevice, deploy, manifest, serviceRegistry } from '../test/e2e/iothub-support.ts';
import { isReady } from '../test/support/samples.ts';
import { startTestOperator } from '../test/support/operator.ts';
import type { TestCluster } from '../test/support/cluster.ts';
import { numberList, option, percentile } from './support.ts';

interface Options {
  devices: number[];
  rounds: number;
}

function parseArgs(args: string[]): Options {
  const value = (name: string) => option(args, name);
  return {
    devices: numberList(value('--devices') ?? '1,10,50'),
    rounds: Number(value('--rounds') ?? 5),
  };
}

const modulesOf = (image: string) => ({ sensor: { image }, filter: { image: 'example.azurecr.io/filter:1.0', startupOrder: 2 } });


function asTestCluster(state: ClusterState): TestCluster {
  const kc = new KubeConfig();
  kc.loadFromFile(state.kubeconfig);
  return { kubeconfigPath: state.kubeconfig, bin: state.bin, kc } as TestCluster;
}

/** Resolves when `predicate` holds for the device's reported properties, checking on every reported patch. */
function reportedWhen(hub: HubEmulator, deviceId: string, predicate: (reported: JsonObject) => boolean): Promise<number> {
  const reported = () => ((hub.admin.twin(deviceId, '$edgeAgent') as { properties?: { reported?: JsonObject } }).properties?.reported ?? {});
  return new Promise((resolve) => {
    if (predicate(reported())) return resolve(performance.now());
    const listener = () => {
      if (!predicate(reported())) return;
      hub.off('reportedPatch', listener);
      resolve(performance.now());
    };
    hub.on('reportedPatch', listener);
  });
}

/** Resolves when a pod of the plain Deployment in `namespace` runs `image` and is Ready. */
function podReadyWith(pods: Informer<V1Pod>, namespace: string, image: string): Promise<number> {
  const ok = (p: V1Pod) => p.metadata?.namespace === namespace && !p.metadata.deletionTimestamp && p.spec?.containers[0]?.image === image &&
    p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;
  return new Promise((resolve) => {
    const off = pods.onEvent((event) => {
      if (!ok(event.object)) return;
      off();
      resolve(performance.now());
    });
  });
}

/** Resolves when the EdgeDeployment in `namespace` satisfies `predicate`, timed when the informer sees it. */
function resourceWhen(informer: Informer<EdgeDeployment>, namespace: string, predicate: (ed: EdgeDeployment) => boolean): Promise<number> {
  return new Promise((resolve) => {
    const current = informer.get(namespace, 'device');
    if (current && predicate(current)) return resolve(performance.now());
    const off = informer.onEvent((event) => {
      if (event.object.metadata?.namespace !== namespace || !predicate(event.object)) return;
      off();
      resolve(performance.now());
    });
  });
}

interface Stage {
  toResource: number[];
  toRunning: number[];
  toReported: number[];
  baseline: number[];
}

async function measure(state: ClusterState, hub: HubEmulator, deviceCount: number, options: Options): Promise<Stage> {
  const cluster = asTestCluster(state);
  const registry = serviceRegistry(hub);
  const devices = Array.from({ length: deviceCount }, (_, i) => `twin-${deviceCount}-${i}`);
  await kubectl(state, ['apply', '-f', '-'], devices.map((name) => JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, annotations: kwokNamespaceAnnotations } })).join('\n---\n'));
  for (const d of devices) {
    hub.createEdgeDevice(d);
    await bindDevice(cluster, hub, d);
  }
  const operator = await startTestOperator(cluster.kc, devices, {}, { twinSync: {} });
  const informer = new Informer<EdgeDeployment>({ kubeConfig: cluster.kc, path: '/apis/iotedge-operator.io/v1alpha1/edgedeployments' });
  const pods = new Informer<V1Pod>({ kubeConfig: cluster.kc, path: '/api/v1/pods', labelSelector: 'app=plain' });
  const client = new KubeClient({ kubeConfig: cluster.kc });
  await Promise.all([informer.start(), pods.start()]);
  const stage: Stage = { toResource: [], toRunning: [], toReported: [], baseline: [] };
  try {
    for (let round = 0; round <= options.rounds; round += 1) {
      const image = `example.azurecr.io/sensor:${deviceCount}.${round}`;
      const results = await Promise.all(devices.map(async (d) => {
        const start = performance.now();
        await deploy(registry, d, manifest(modulesOf(image)));
        const version = (hub.admin.twin(d, '$edgeAgent') as { properties: { desired: { $version: number } } }).properties.desired.$version;
        const hasVersion = (ed: EdgeDeployment) => Number(ed.metadata?.annotations?.['iotedge-operator.io/desired-version'] ?? -1) >= version;
        const [resource, running, reported] = await Promise.all([
          resourceWhen(informer, d, hasVersion),
          resourceWhen(informer, d, (ed) => hasVersion(ed) && isReady(ed) && ed.status?.modules?.sensor?.image === image),
          reportedWhen(hub, d, (r) => {
            const modules = r.modules as Record<string, { runtimeStatus?: string; settings?: { image?: string } }> | undefined;
            return r.lastDesiredVersion === version && (r.lastDesiredStatus as { code?: number } | undefined)?.code === 200 &&
              modules?.sensor?.runtimeStatus === 'running' && modules.sensor.settings?.image === image;
          }),
        ]);
        return { resource: resource - start, running: running - start, reported: reported - start };
      }));
      // Round 0 creates the modules; later rounds are changes, which is what is measured.
      if (round === 0) {
        await Promise.all(devices.map((d) => kubectl(state, ['apply', '-f', '-'], JSON.stringify(plainDeployment(d, image)))));
        continue;
      }
      for (const r of results) {
        stage.toResource.push(r.resource);
        stage.toRunning.push(r.running);
        stage.toReported.push(r.reported);
      }
      // The same change without us: the image of a plain Deployment (Recreate, like a module's) patched
      // in-process, until a pod with the new image is Ready — the API server, controllers and KWOK alone.
      const times = await Promise.all(devices.map(async (d) => {
        const start = performance.now();
        const ready = podReadyWith(pods, d, image);
        await client.request('PATCH', `/apis/apps/v1/namespaces/${d}/deployments/plain`, {}, {
          body: { spec: { template: { spec: { containers: [{ name: 'main', image }] } } } },
          contentType: 'application/strategic-merge-patch+json',
        });
        return (await ready) - start;
      }));
      stage.baseline.push(...times);
    }
  } finally {
    await Promise.all([informer.stop(), pods.stop()]);
    client.close();
    await operator.stop();
  }
  return stage;
}

function plainDeployment(namespace: string, image: string) {
  return {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'plain', namespace },
    spec: {
      replicas: 1, strategy: { type: 'Recreate' }, selector: { matchLabels: { app: 'plain' } },
      template: { metadata: { labels: { app: 'plain' } }, spec: { containers: [{ name: 'main', image }] } },
    },
  };
}

const ms = (x: number) => (Number.isFinite(x) ? `${Math.round(x)}` : '-');
const row = (label: string, values: number[]) => [label, ms(percentile(values, 50)), ms(percentile(values, 95)), ms(percentile(values, 99))].join(' | ');

export async function main(args: string[]): Promise<void> {
  const options = parseArgs(args);
  // KWOK only: the figures are the operator's and the API server's, not a kubelet's.
  const state = await startControlPlane(mkdtempSync(join(tmpdir(), 'iotedge-operator-twin-bench-')), { worker: false, kwokNodes: 1, ownerPid: process.pid });
  const hub = await startHubEmulator({ hubName: 'bench-hub' });
  // One reportedPatch listener per device and change in flight.
  hub.setMaxListeners(0);
  const current = getCACertificates('default');
  setDefaultCACertificates([...current, hub.caCertPem]);
  const results: [number, Stage][] = [];
  try {
    await kubectl(state, ['apply', '--server-side', '-f', join(repoRoot, 'crds')]);
    await kubectl(state, ['wait', '--for=condition=Established', '--timeout=60s', 'crd/edgedeployments.iotedge-operator.io']);
    for (const n of options.devices) {
      process.stderr.write(`[bench] ${n} device(s), ${options.rounds} change(s) each\n`);
      results.push([n, await measure(state, hub, n, options)]);
    }
  } finally {
    await hub.stop();
    await stopControlPlane(state.dir);
  }
  console.log('\ntwin benchmark: latency in ms from applyConfigurationContentOnDevice (service SDK → emulator) for an image change');
  for (const [n, s] of results) {
    const diff = (a: number[], b: number[]) => a.map((x, i) => x - (b[i] ?? 0));
    console.log(`\n${n} device(s), ${s.toReported.length} changes`);
    console.log('stage | p50 | p95 | p99');
    console.log('--- | --- | --- | ---');
    console.log(row('hub → EdgeDeployment updated (our twin sync)', s.toResource));
    console.log(row('EdgeDeployment → pods Running, Ready=True (our reconcile + API server + controllers + KWOK)', diff(s.toRunning, s.toResource)));
    console.log(row('Ready → reported properties updated (our reporting)', diff(s.toReported, s.toRunning)));
    console.log(row('total: change → reported', s.toReported));
    console.log(row('baseline: plain Deployment image change → new pod Ready (API server + controllers + KWOK alone)', s.baseline));
    console.log(`our part at p50 ≈ ${ms(percentile(s.toReported, 50) - percentile(s.baseline, 50))} ms (total p50 minus the baseline's p50)`);
  }
  console.log('\ntarget: p50 under 1000 ms to reported, at 10 devices');
}
