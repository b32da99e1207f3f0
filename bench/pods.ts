// Real module containers on the real worker: time from `kubectl apply` of an EdgeDeployment with N
// busybox modules to each module's container running (the kubelet's containerStatuses say running),
// for N = 1 and 20; next to it, in the same run and on the same node, the same N containers as plain
// Deployments applied with kubectl (API server, controllers, scheduler, kubelet and containerd alone).
// Also prints the cluster's start time (control plane + worker). Figures only; no assertions.
//   npm run bench -- pods [--sizes 1,20] [--runs 3]
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { Informer } from '../src/controller/informer.ts';
import { OperatorManager } from '../src/controller/manager.ts';
import { createLogger } from '../src/runtime/logger.ts';
import { defaultSettings } from '../src/translate/settings.ts';
import { sampleEdgeDeployment, sampleModule } from '../test/support/samples.ts';
import { kubectl, repoRoot, startControlPlane, stopControlPlane, type ClusterState } from '../scripts/cluster/control-plane.ts';
import { numberList, option, percentile } from './support.ts';

const image = 'localhost/busybox:1';
const sleeper = { Cmd: ['sleep', '86400'] };

interface Options {
  sizes: number[];
  runs: number;
}

/** edgeHub and the N modules in one startupOrder group, as the baseline knows no start-up order. */
function edgeDeployment(namespace: string, n: number): unknown {
  const modules = Object.fromEntries(Array.from({ length: n }, (_, i) => [`module${i}`, sampleModule(image, { startupOrder: 1 }, sleeper)]));
  return sampleEdgeDeployment(namespace, modules, { edgeHub: { startupOrder: 1, settings: { image, createOptions: sleeper } } });
}

function plainDeployments(namespace: string, n: number): unknown[] {
  return Array.from({ length: n + 1 }, (_, i) => ({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: `plain${i}`, namespace },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: `plain${i}` } },
      template: {
        metadata: { labels: { app: `plain${i}` } },
        spec: { automountServiceAccountToken: false, enableServiceLinks: false, containers: [{ name: 'main', image, command: ['sleep', '86400'] }] },
      },
    },
  }));
}

const running = (pod: V1Pod) => pod.status?.containerStatuses?.some((c) => c.state?.running) === true;

/**
 * Applies `docs` into a fresh namespace and resolves with the seconds from the apply to each of the
 * `count` pods first seen running (watch events, so no polling interval is added).
 */
async function timeToRunning(state: ClusterState, pods: Informer<V1Pod>, namespace: string, docs: unknown[], count: number): Promise<number[]> {
  await kubectl(state, ['create', 'namespace', namespace]);
  // Pods created before the namespace's default ServiceAccount exists are refused and retried with back-off.
  for (let i = 0; ; i++) {
    const found = await kubectl(state, ['-n', namespace, 'get', 'serviceaccount', 'default', '-o', 'name']).catch(() => '');
    if (found.trim()) break;
    if (i > 240) throw new Error(`no default ServiceAccount in ${namespace}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  const seen = new Map<string, number>();
  let start = 0;
  const done = new Promise<void>((resolveDone, reject) => {
    const timer = setTimeout(() => reject(new Error(`${namespace}: ${seen.size}/${count} pods running after 5 minutes`)), 300_000);
    const record = (pod: V1Pod) => {
      if (start === 0 || pod.metadata?.namespace !== namespace || !running(pod) || seen.has(pod.metadata.name!)) return;
      seen.set(pod.metadata.name!, (performance.now() - start) / 1000);
      if (seen.size >= count) {
        clearTimeout(timer);
        off1();
        off2();
        resolveDone();
      }
    };
    const off1 = pods.on('add', record);
    const off2 = pods.on('update', record);
  });
  start = performance.now();
  await kubectl(state, ['apply', '--server-side', '--field-manager=bench', '-f', '-'], docs.map((d) => JSON.stringify(d)).join('\n---\n'));
  await done;
  await kubectl(state, ['delete', 'namespace', namespace, '--wait=false']);
  return [...seen.values()];
}

interface Row {
  n: number;
  ours: number[];
  oursAll: number[];
  baseline: number[];
  baselineAll: number[];
}

export async function main(args: string[]): Promise<void> {
  const options: Options = { sizes: numberList(option(args, '--sizes') ?? '1,20'), runs: Number(option(args, '--runs') ?? 3) };
  const began = performance.now();
  const state = await startControlPlane(mkdtempSync(join(tmpdir(), 'iotedge-operator-pods-bench-')), { worker: true, kwokNodes: 0, ownerPid: process.pid });
  const clusterStart = (performance.now() - began) / 1000;
  let manager: OperatorManager | undefined;
  let pods: Informer<V1Pod> | undefined;
  try {
    await kubectl(state, ['apply', '--server-side', '-f', join(repoRoot, 'crds')]);
    await kubectl(state, ['wait', '--for=condition=Established', '--timeout=60s', 'crd/edgedeployments.iotedge-operator.io']);
    const kc = new KubeConfig();
    kc.loadFromFile(state.kubeconfig);
    manager = new OperatorManager({ kubeConfig: kc, namespaces: 'all', settings: { ...defaultSettings, edgeHub: 'stock' }, concurrency: 4, logger: createLogger({ level: 'silent', name: 'bench' }) });
    await manager.start();
    pods = new Informer<V1Pod>({ kubeConfig: kc, path: '/api/v1/pods' });
    await pods.start();

    const rows: Row[] = [];
    for (const n of options.sizes) {
      const row: Row = { n, ours: [], oursAll: [], baseline: [], baselineAll: [] };
      for (let run = 0; run < options.runs; run++) {
        // Alternate which goes first, so neither always meets a warmer node.
        const measureOurs = async () => {
          const ns = `ours-${n}-${run}`;
          const times = await timeToRunning(state, pods!, ns, [edgeDeployment(ns, n)], n + 1);
          row.ours.push(...times);
          row.oursAll.push(Math.max(...times));
        };
        const measureBaseline = async () => {
          const ns = `plain-${n}-${run}`;
          const times = await timeToRunning(state, pods!, ns, plainDeployments(ns, n), n + 1);
          row.baseline.push(...times);
          row.baselineAll.push(Math.max(...times));
        };
        process.stderr.write(`[bench] N=${n} run ${run + 1}/${options.runs}\n`);
        if (run % 2 === 0) {
          await measureOurs();
          await measureBaseline();
        } else {
          await measureBaseline();
          await measureOurs();
        }
      }
      rows.push(row);
    }

    const f = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '-');
    console.log(`\npods benchmark: apply → module containers running on the real worker ${state.worker?.nodeName}, ${options.runs} runs per N, 2-core machine`);
    console.log(`cluster start (control plane + real worker + CoreDNS, binaries and images cached): ${clusterStart.toFixed(1)} s`);
    console.log('N modules = N busybox containers plus edgeHub (also busybox), one startupOrder group; baseline = N+1 plain Deployments via kubectl apply\n');
    const header = ['N', 'ours p50 per container', 'baseline p50 per container', 'ours p50 all running', 'baseline p50 all running', 'ours/baseline (all)'];
    console.log(header.join(' | '));
    console.log(header.map(() => '---').join(' | '));
    for (const r of rows) {
      const ours = percentile(r.oursAll, 50);
      const base = percentile(r.baselineAll, 50);
      console.log([r.n, f(percentile(r.ours, 50)), f(percentile(r.baseline, 50)), f(ours), f(base), `${f(ours / base)}×`].join(' | '));
    }
  } finally {
    await pods?.stop();
    await manager?.stop(5_000);
    await stopControlPlane(state.dir);
  }
}
