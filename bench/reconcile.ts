// The operator at scale on a real control plane: N EdgeDeployments × 10 modules, for each N a fresh
// local control plane. Printed next to the physical limit measured in the same run: `kubectl apply
// --server-side` of exactly the objects our render produces for the same resources, until their pods
// are Ready. Figures only; no assertions.
//   npm run bench -- reconcile [--sizes 50,200] [--steady-seconds 60] [--modules 10]
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { dump } from 'js-yaml';
import type { EdgeDeployment } from '../src/api/edge-deployment.ts';
import { manifestFromResource } from '../src/manifest/resource.ts';
import { defaultSettings, toWire, translate } from '../src/translate/index.ts';
import { isReady, sampleEdgeDeployment, sampleModule } from '../test/support/samples.ts';
import { freePort, kubectl, kwokNamespaceAnnotations, repoRoot, startControlPlane, stopControlPlane, type ClusterState } from '../scripts/cluster/control-plane.ts';
import { numberList, option, percentile } from './support.ts';

interface Options {
  sizes: number[];
  steadySeconds: number;
  modules: number;
}

function parseArgs(args: string[]): Options {
  const value = (name: string) => option(args, name);
  return {
    sizes: numberList(value('--sizes') ?? '50,200'),
    steadySeconds: Number(value('--steady-seconds') ?? 60),
    modules: Number(value('--modules') ?? 10),
  };
}

/**
 * Every module, edgeHub included, in one startupOrder group: the baseline knows no start-up order, so the
 * comparison measures the controller's cost, not the wait that gating by startupOrder means by design.
 */
function edgeDeployment(namespace: string, modules: number): EdgeDeployment {
  return sampleEdgeDeployment(namespace, Object.fromEntries(Array.from({ length: modules - 1 }, (_, i) => [`module${i}`,
    sampleModule(`benchacr.azurecr.io/module${i}:1.0`, { startupOrder: 1 }, { Env: [`INDEX=${i}`], ExposedPorts: { [`${9000 + i}/tcp`]: {} } })])),
  { edgeHub: { startupOrder: 1 } });
}

/** What `iotedge-operator render` would produce for the resource: the objects the operator applies. */
function rendered(ed: EdgeDeployment): unknown[] {
  const manifest = manifestFromResource(ed.spec!);
  if (!manifest.ok) throw new Error(JSON.stringify(manifest.errors));
  const namespace = ed.metadata!.namespace!;
  const result = translate({ manifest: manifest.value, namespace, deviceId: namespace, ownerName: 'device', hubHostName: '', settings: defaultSettings });
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return [...result.value.volumeClaims, ...result.value.objects].map((o) => ({ ...toWire(o), metadata: { ...toWire(o).metadata, namespace } }));
}

const yamlStream = (docs: unknown[]) => docs.map((d) => dump(d, { noRefs: true })).join('---\n');


async function poll<T>(probe: () => Promise<T | undefined>, timeoutMs: number, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Seconds from `start` until each namespace's pods are all Ready (the baseline's notion of done). */
async function podsReadyTimes(state: ClusterState, namespaces: string[], podsPerNamespace: number, start: number): Promise<number[]> {
  const doneAt = new Map<string, number>();
  await poll(async () => {
    const pods = JSON.parse(await kubectl(state, ['get', 'pods', '-A', '-o', 'json'])) as { items: { metadata: { namespace: string }; status?: { conditions?: { type: string; status: string }[] } }[] };
    const readyBy = new Map<string, number>();
    for (const p of pods.items) {
      if (p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')) readyBy.set(p.metadata.namespace, (readyBy.get(p.metadata.namespace) ?? 0) + 1);
    }
    const now = performance.now();
    for (const ns of namespaces) if (!doneAt.has(ns) && (readyBy.get(ns) ?? 0) >= podsPerNamespace) doneAt.set(ns, (now - start) / 1000);
    return doneAt.size === namespaces.length ? true : undefined;
  }, 30 * 60_000, 500);
  return namespaces.map((ns) => doneAt.get(ns)!);
}

async function edgeDeploymentsReadyTimes(state: ClusterState, namespaces: string[], start: number): Promise<number[]> {
  const doneAt = new Map<string, number>();
  await poll(async () => {
    const list = JSON.parse(await kubectl(state, ['get', 'edgedeployments', '-A', '-o', 'json'])) as { items: EdgeDeployment[] };
    const now = performance.now();
    for (const ed of list.items) {
      if (isReady(ed) && !doneAt.has(ed.metadata!.namespace!)) doneAt.set(ed.metadata!.namespace!, (now - start) / 1000);
    }
    return doneAt.size === namespaces.length ? true : undefined;
  }, 30 * 60_000, 500);
  return namespaces.map((ns) => doneAt.get(ns)!);
}

interface OperatorProcess {
  child: ChildProcess;
  metricsUrl: string;
  stop(): Promise<void>;
}

async function startOperator(state: ClusterState): Promise<OperatorProcess> {
  const metricsPort = await freePort();
  const probePort = await freePort();
  // The compiled operator, as the image runs it (no type stripping in the process being measured).
  const child = spawn(process.execPath, [join(repoRoot, 'dist/cli/main.js'), 'run', '--kubeconfig', state.kubeconfig, '--namespaces', 'all',
    '--concurrency', '8', '--log-level', 'warn', '--metrics-bind-address', `127.0.0.1:${metricsPort}`, '--health-probe-bind-address', `127.0.0.1:${probePort}`],
  { stdio: ['ignore', 'ignore', 'inherit'] });
  await poll(async () => ((await fetch(`http://127.0.0.1:${probePort}/readyz`)).ok ? true : undefined), 120_000);
  return {
    child,
    metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

type Samples = Map<string, number>;

async function scrape(url: string): Promise<Samples> {
  const text = await (await fetch(url)).text();
  const samples: Samples = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    samples.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return samples;
}

function sum(samples: Samples, metric: string, filter: (labels: string) => boolean = () => true): number {
  let total = 0;
  for (const [key, value] of samples) {
    const brace = key.indexOf('{');
    const name = brace < 0 ? key : key.slice(0, brace);
    if (name === metric && filter(brace < 0 ? '' : key.slice(brace))) total += value;
  }
  return total;
}

const isWrite = (labels: string) => !/verb="(get|list|watch)"/.test(labels);

interface Figures {
  n: number;
  baselineApply: number;
  baselineTotal: number;
  baselineP50: number;
  baselineP95: number;
  total: number;
  p50: number;
  p95: number;
  requestsPerResource: number;
  steadyWrites: number;
  rssMb: number;
  heapMb: number;
  resync: number;
}

async function measure(n: number, options: Options): Promise<Figures> {
  // KWOK only: thousands of pods, none of them run.
  const state = await startControlPlane(mkdtempSync(join(tmpdir(), `iotedge-operator-bench-${n}-`)), { worker: false, kwokNodes: 1, ownerPid: process.pid });
  try {
    await kubectl(state, ['apply', '--server-side', '-f', join(repoRoot, 'crds')]);
    await kubectl(state, ['wait', '--for=condition=Established', '--timeout=60s', 'crd/edgedeployments.iotedge-operator.io']);
    const base = Array.from({ length: n }, (_, i) => `base-${i}`);
    const ours = Array.from({ length: n }, (_, i) => `ours-${i}`);
    await kubectl(state, ['apply', '-f', '-'], yamlStream([...base, ...ours].map((name) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, annotations: kwokNamespaceAnnotations } }))));
    await poll(async () => {
      const sas = JSON.parse(await kubectl(state, ['get', 'serviceaccounts', '-A', '--field-selector', 'metadata.name=default', '-o', 'json'])) as { items: unknown[] };
      return sas.items.length >= 2 * n + 4 ? true : undefined;
    }, 120_000);

    // Baseline: the same objects written by kubectl's server-side apply, then their pods becoming Ready.
    const dir = mkdtempSync(join(tmpdir(), 'iotedge-operator-bench-objects-'));
    const file = join(dir, 'objects.yaml');
    writeFileSync(file, yamlStream(base.flatMap((ns) => rendered(edgeDeployment(ns, options.modules)))));
    process.stderr.write(`[bench] N=${n}: baseline kubectl apply --server-side of the rendered objects\n`);
    const baselineStart = performance.now();
    await kubectl(state, ['apply', '--server-side', '--field-manager=bench-baseline', '-f', file]);
    const baselineApply = (performance.now() - baselineStart) / 1000;
    const baselineTimes = await podsReadyTimes(state, base, options.modules, baselineStart);

    process.stderr.write(`[bench] N=${n}: operator\n`);
    let operator = await startOperator(state);
    const before = await scrape(operator.metricsUrl);
    const start = performance.now();
    await kubectl(state, ['apply', '--server-side', '-f', '-'], yamlStream(ours.map((ns) => edgeDeployment(ns, options.modules))));
    const times = await edgeDeploymentsReadyTimes(state, ours, start);
    const afterConverge = await scrape(operator.metricsUrl);
    const requests = sum(afterConverge, 'iotedge_api_requests_total') - sum(before, 'iotedge_api_requests_total');

    process.stderr.write(`[bench] N=${n}: ${options.steadySeconds}s at steady state\n`);
    await new Promise((r) => setTimeout(r, options.steadySeconds * 1000));
    const afterSteady = await scrape(operator.metricsUrl);
    const steadyWrites = sum(afterSteady, 'iotedge_api_requests_total', isWrite) - sum(afterConverge, 'iotedge_api_requests_total', isWrite);
    const rssMb = sum(afterSteady, 'process_resident_memory_bytes') / 2 ** 20;
    const heapMb = sum(afterSteady, 'nodejs_heap_size_used_bytes') / 2 ** 20;

    process.stderr.write(`[bench] N=${n}: restart over unchanged resources\n`);
    await operator.stop();
    const restartAt = performance.now();
    operator = await startOperator(state);
    await poll(async () => {
      const m = await scrape(operator.metricsUrl);
      const reconciled = sum(m, 'controller_runtime_reconcile_total');
      return reconciled >= n && sum(m, 'workqueue_depth') === 0 && sum(m, 'controller_runtime_active_workers') === 0 ? true : undefined;
    }, 30 * 60_000, 100);
    const resync = (performance.now() - restartAt) / 1000;
    await operator.stop();

    return {
      n,
      baselineApply,
      baselineTotal: Math.max(...baselineTimes),
      baselineP50: percentile(baselineTimes, 50),
      baselineP95: percentile(baselineTimes, 95),
      total: Math.max(...times),
      p50: percentile(times, 50),
      p95: percentile(times, 95),
      requestsPerResource: requests / n,
      steadyWrites,
      rssMb,
      heapMb,
      resync,
    };
  } finally {
    await stopControlPlane(state.dir);
  }
}

const f = (x: number, digits = 1) => (Number.isFinite(x) ? x.toFixed(digits) : '-');

export async function main(args: string[]): Promise<void> {
  const options = parseArgs(args);
  await promisify(execFile)(process.execPath, [join(repoRoot, 'node_modules/typescript/bin/tsc'), '-p', join(repoRoot, 'tsconfig.build.json')]);
  const results: Figures[] = [];
  for (const n of options.sizes) results.push(await measure(n, options));

  console.log(`\nreconcile benchmark: N EdgeDeployments × ${options.modules} modules, fresh local control plane per N, 2-core machine`);
  console.log('times in seconds from apply to Ready; baseline = kubectl apply --server-side of the rendered objects until their pods are Ready');
  console.log('all modules share one startupOrder group (gating by startupOrder would add a pod start-up per group by design)\n');
  const header = ['N', 'baseline apply', 'baseline total', 'ours total', 'ours/baseline', 'ours p50', 'ours p95', 'base p50', 'base p95', 'API req/resource', 'steady writes', 'RSS MB', 'heap MB', 'resync s'];
  console.log(header.join(' | '));
  console.log(header.map(() => '---').join(' | '));
  for (const r of results) {
    console.log([r.n, f(r.baselineApply), f(r.baselineTotal), f(r.total), `${f(r.total / r.baselineTotal, 2)}×`, f(r.p50), f(r.p95), f(r.baselineP50), f(r.baselineP95),
      f(r.requestsPerResource), r.steadyWrites, f(r.rssMb), f(r.heapMb), f(r.resync, 2)].join(' | '));
  }
  if (results.length >= 2) {
    const [small, large] = [results[0]!, results[results.length - 1]!];
    const growth = (a: number, b: number) => `${f(b / a, 2)}×`;
    console.log(`\ngrowth from N=${small.n} to N=${large.n} (×${f(large.n / small.n, 1)} resources): total ${growth(small.total, large.total)}, baseline ${growth(small.baselineTotal, large.baselineTotal)}, ` +
      `requests/resource ${growth(small.requestsPerResource, large.requestsPerResource)}, RSS ${growth(small.rssMb, large.rssMb)}, resync ${growth(small.resync, large.resync)}`);
  }
  console.log('targets: ours/baseline ≤ 1.3×, 0 steady-state writes, RSS < 200 MB at N=200');
}
