// npm run demo [-- --until-messages N]: the main job on the embedded default, with real containers.
// Brings up the local cluster (control plane + the real worker edge-worker-0), builds and imports the images
// (the operator's and the sample modules'; cached after the first run), starts the IoT Hub emulator on the
// bridge address pods reach, creates an edge device, runs the operator, pushes a deployment through IoT Hub
// with the service SDK, and shows it converge and the messages flow: sensor → hub route (WHERE) → filter →
// $upstream → the emulator. Runs until Ctrl-C, or until the emulator holds N upstream messages.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import { getCACertificates, setDefaultCACertificates } from 'node:tls';
import iothub from 'azure-iothub';
import type { EdgeDeployment } from '../src/api/edge-deployment.ts';
import { runCommand } from '../src/cli/run.ts';
import { startHubEmulator, type HubEmulator } from '../src/emulator/index.ts';
import { defaultClusterDir, healthyCluster, installCrds, kubectl, repoRoot, startControlPlane, stopControlPlane } from './cluster/control-plane.ts';
import { deliveredOnRoute, parsePrometheus, receivedFromModule, sum, type Sample } from './demo/flow.ts';
import { buildAll, operatorImage } from './images/build.ts';
import { withProjectImagesLock } from './images/podman.ts';
import { importIntoWorker, type StateWithWorker } from './images/worker-import.ts';

const deviceId = 'demo-device';
const namespace = deviceId;
const demoDir = join(repoRoot, '.demo');
const manifestFile = join(repoRoot, 'manifests/examples/demo-deployment.json');
const untilMessages = (() => {
  const i = process.argv.indexOf('--until-messages');
  return i >= 0 ? Number(process.argv[i + 1]) : undefined;
})();
/** The operator of this checkout can run the project's own hub as edgeHub (`--edge-hub builtin`). */
const builtinHubAvailable = runCommand().options.some((o) => o.long === '--edge-hub');
const began = performance.now();
const tty = process.stdout.isTTY && untilMessages === undefined;
const bold = (s: string) => (tty ? `\x1b[1m${s}\x1b[0m` : s);
const colour = (status: string) => {
  if (!tty) return status;
  const code = status === 'running' ? 32 : status === 'backoff' || status === 'failed' ? 31 : status === 'stopped' ? 90 : 33;
  return `\x1b[${code}m${status}\x1b[0m`;
};
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`;
const elapsed = () => seconds(performance.now() - began);
const step = (text: string) => console.log(`${bold('▸')} ${text} ${tty ? '\x1b[90m' : ''}(${elapsed()})${tty ? '\x1b[0m' : ''}`);

let cluster: StateWithWorker | undefined;
let startedCluster = false;
let hub: HubEmulator | undefined;
let operator: ChildProcess | undefined;

async function cleanUp(): Promise<void> {
  if (operator && operator.exitCode === null) {
    operator.kill('SIGTERM');
    await new Promise((r) => operator!.once('exit', r));
  }
  await hub?.stop().catch(() => undefined);
  if (cluster && startedCluster) await stopControlPlane(cluster.dir);
  else if (cluster) await kubectl(cluster, ['delete', 'namespace', namespace, '--wait=false']).catch(() => undefined);
}

async function ensureCluster(): Promise<StateWithWorker> {
  const running = (await healthyCluster(defaultClusterDir)) as StateWithWorker | undefined;
  if (running?.worker) {
    step(`using the local cluster that is already running (${running.apiServerUrl}, real worker ${running.worker.nodeName})`);
    return running;
  }
  if (running) throw new Error('the running local cluster has no real worker; stop it with `npm run cluster:down` and run the demo again');
  step('starting the local cluster (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, the real worker edge-worker-0); the first run builds them from the Go module proxy');
  startedCluster = true;
  const state = (await startControlPlane(defaultClusterDir)) as StateWithWorker;
  if (!state.worker) throw new Error('the cluster started without a real worker: modules cannot run as containers here');
  return state;
}

/** Builds what changed (the first run takes minutes; no deadline counts it) and imports what the worker lacks. */
async function provideImages(state: StateWithWorker): Promise<void> {
  step('building the images with podman (first run: about 10 minutes; later runs reuse them by content hash)');
  const imported = await withProjectImagesLock(async () => {
    const images = await buildAll();
    for (const i of images) console.log(`    ${i.reference.padEnd(60)} ${i.built ? `built in ${seconds(i.seconds * 1000)}` : 'cached'}`);
    return importIntoWorker(state, images.filter((i) => !i.reference.startsWith('docker.io/library/node:')));
  });
  step(`images in ${state.worker!.nodeName}'s containerd (${imported.imported.length ? `imported ${imported.imported.length} in ${seconds(imported.seconds * 1000)}` : 'all present'})`);
}

/** The service SDK, like any HTTPS client, must trust the emulator's CA. */
function trustHub(pem: string): void {
  const current = getCACertificates('default');
  if (!current.includes(pem)) setDefaultCACertificates([...current, pem]);
}

async function createEdgeDevice(registry: iothub.Registry): Promise<string> {
  const created = await registry.create({ deviceId, capabilities: { iotEdge: true } } as never);
  const key = (created.responseBody as { authentication?: { symmetricKey?: { primaryKey?: string } } }).authentication?.symmetricKey?.primaryKey;
  if (!key) throw new Error('the hub returned no device key');
  return `HostName=${hub!.host};DeviceId=${deviceId};SharedAccessKey=${key}`;
}

async function bindDevice(state: StateWithWorker, connectionString: string): Promise<void> {
  const docs = [
    // No KWOK annotations: the device's modules run on the real worker.
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } },
    // ca.crt: the operator trusts the emulator's CA for this device only (see docs/iothub.md).
    { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'iothub-device', namespace }, type: 'Opaque', stringData: { connectionString, 'ca.crt': hub!.caCertPem } },
    {
      apiVersion: 'iotedge-operator.io/v1alpha1', kind: 'EdgeDeployment', metadata: { name: 'device', namespace },
      spec: { deviceId, iotHub: { connectionStringSecretRef: { name: 'iothub-device', key: 'connectionString' } } },
    },
  ];
  await kubectl(state, ['apply', '--server-side', '-f', '-'], docs.map((d) => JSON.stringify(d)).join('\n---\n'));
}

function startOperator(state: StateWithWorker): ChildProcess {
  const log = openSync(join(demoDir, 'operator.log'), 'w');
  const hubFlags = builtinHubAvailable ? ['--edge-hub', 'builtin', '--edge-hub-image', operatorImage] : [];
  const child = spawn(process.execPath, [join(repoRoot, 'src/cli/main.ts'), 'run', '--kubeconfig', state.kubeconfig, '--namespaces', namespace,
    '--health-probe-bind-address', '127.0.0.1:0', '--metrics-bind-address', '127.0.0.1:0', ...hubFlags], {
    stdio: ['ignore', log, log],
  });
  child.once('exit', (code) => {
    if (code !== 0 && code !== null) console.error(`\nthe operator exited with code ${code}; see ${relative(process.cwd(), join(demoDir, 'operator.log'))}`);
  });
  return child;
}

async function readEdgeDeployment(state: StateWithWorker): Promise<EdgeDeployment | undefined> {
  try {
    return JSON.parse(await kubectl(state, ['-n', namespace, 'get', 'edgedeployment', 'device', '-o', 'json'])) as EdgeDeployment;
  } catch {
    return undefined;
  }
}

/** The built-in hub's /metrics, read through the API server's pod proxy; undefined (with why) when unreadable. */
async function hubMetrics(state: StateWithWorker): Promise<{ samples?: Sample[]; why?: string }> {
  try {
    const pods = JSON.parse(await kubectl(state, ['-n', namespace, 'get', 'pods', '-l', 'iotedge-operator.io/module=edgehub', '-o', 'json'])) as {
      items: { metadata: { name: string }; status?: { phase?: string }; spec: { containers: { ports?: { name?: string; containerPort: number }[] }[] } }[];
    };
    const pod = pods.items.find((p) => p.status?.phase === 'Running');
    if (!pod) return { why: 'edgeHub is not running' };
    const port = pod.spec.containers.flatMap((c) => c.ports ?? []).find((p) => p.name === 'metrics')?.containerPort;
    if (!port) return { why: 'the edgeHub pod exposes no port named metrics' };
    return { samples: parsePrometheus(await kubectl(state, ['get', '--raw', `/api/v1/namespaces/${namespace}/pods/${pod.metadata.name}:${port}/proxy/metrics`])) };
  } catch (error) {
    return { why: error instanceof Error ? error.message.split('\n')[0] : String(error) };
  }
}

/** Messages the emulator received from the device's modules: what reached "IoT Hub". */
const upstreamCount = () => hub!.admin.messages({ deviceId }).length;

function moduleMessages(id: string, samples: Sample[] | undefined): string {
  if (!samples) return '';
  const out = receivedFromModule(samples, id);
  const delivered = sum(samples, 'edgehub_messages_sent_total', { to: id });
  return [delivered ? `in ${delivered}` : '', out ? `out ${out}` : ''].filter(Boolean).join(' · ');
}

function moduleTable(ed: EdgeDeployment, samples: Sample[] | undefined): string {
  const rows = Object.entries(ed.status?.modules ?? {}).sort(([, a], [, b]) => (a.startupOrder ?? 0) - (b.startupOrder ?? 0));
  const header = ['MODULE', 'KIND', 'STATUS', 'RESTARTS', 'MESSAGES', 'DETAIL'];
  const detail = (d: string | undefined) => (d && d.length > 110 ? `${d.slice(0, 109)}…` : d ?? '');
  const lines = rows.map(([id, m]) => [id, m.kind ?? '', m.runtimeStatus ?? 'unknown', String(m.restartCount ?? 0), moduleMessages(id, samples), detail(m.statusDescription)]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const format = (cells: string[], paint = false) =>
    cells.map((c, i) => (paint && i === 2 ? colour(c) + ' '.repeat(widths[i]! - c.length) : c.padEnd(widths[i]!))).join('  ');
  return [bold(format(header)), ...lines.map((l) => format(l, true))].join('\n');
}

function routeTable(ed: EdgeDeployment, metrics: { samples?: Sample[]; why?: string }): string {
  const routes = Object.entries(ed.spec?.hub?.routes ?? {}) as [string, { route: string } | string][];
  const width = Math.max(5, ...routes.map(([name]) => name.length));
  const lines = routes.map(([name, r]) => {
    const text = typeof r === 'string' ? r : r.route;
    const delivered = metrics.samples ? deliveredOnRoute(metrics.samples, text) : undefined;
    return `${name.padEnd(width)}  ${String(delivered ?? '-').padStart(6)}  ${text}`;
  });
  const why = metrics.samples ? '' : `\n  (hub metrics unavailable: ${metrics.why})`;
  return [bold(`${'ROUTE'.padEnd(width)}  ${'SENT'.padStart(6)}  DEFINITION`), ...lines].join('\n') + why +
    `\n${bold('IoT Hub (emulator) received')} ${upstreamCount()} message(s) from ${deviceId}`;
}

const converged = (ed: EdgeDeployment | undefined) =>
  ed?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true &&
  ed.status.observedGeneration === ed.metadata?.generation && Object.keys(ed.status.modules ?? {}).length > 0;

/** Redraws the view in place on a terminal; elsewhere prints a line now and then. */
function drawer(): (view: string) => void {
  let drawn = 0;
  let lastPrinted = 0;
  return (view: string) => {
    if (tty) {
      if (drawn) process.stdout.write(`\x1b[${drawn}A\x1b[J`);
      process.stdout.write(`${view}\n`);
      drawn = view.split('\n').length;
    } else if (performance.now() - lastPrinted > 15_000) {
      console.log(`${view}\n`);
      lastPrinted = performance.now();
    }
  };
}

async function view(state: StateWithWorker): Promise<{ ed?: EdgeDeployment; text: string }> {
  const ed = await readEdgeDeployment(state);
  if (!ed) return { text: 'waiting for the operator…' };
  const metrics = await hubMetrics(state);
  const conditions = ed.status?.conditions?.map((c) => `${c.type}=${c.status}`).join('  ') ?? 'waiting for the operator…';
  return { ed, text: `${moduleTable(ed, metrics.samples)}\n${conditions}   ${elapsed()}\n\n${routeTable(ed, metrics)}` };
}

/** Until the deployment is Ready (the clock starts at the push, after any build), drawing the table. */
async function watchConvergence(state: StateWithWorker, pushedAt: number, draw: (v: string) => void): Promise<EdgeDeployment> {
  for (;;) {
    const { ed, text } = await view(state);
    draw(text);
    const reported = reportedOf(hub!) as { lastDesiredStatus?: { code?: number } };
    if (converged(ed) && reported?.lastDesiredStatus?.code === 200) return ed!;
    if (performance.now() - pushedAt > 10 * 60_000) throw new Error('the deployment did not converge within 10 minutes of the push; see .demo/operator.log and kubectl -n demo-device get pods');
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** The $edgeAgent twin's reported properties, as the emulator holds them. */
function reportedOf(emulator: HubEmulator): Record<string, unknown> {
  const twin = emulator.admin.twin(deviceId, '$edgeAgent') as { properties?: { reported?: Record<string, unknown> } };
  return twin.properties?.reported ?? {};
}

function explore(state: StateWithWorker): void {
  console.log(bold('Explore:'));
  console.log(`  export KUBECONFIG=${relative(process.cwd(), state.kubeconfig)} PATH=${state.bin}:$PATH`);
  console.log(`  kubectl -n ${namespace} get edep,deploy,pods -o wide`);
  console.log(`  kubectl -n ${namespace} logs -f deploy/simulatedtemperaturesensor   # each reading sent`);
  console.log(`  kubectl -n ${namespace} logs -f deploy/filter                       # each reading received, and the hot ones forwarded`);
  console.log('Change the deployment and watch it roll:');
  console.log(`  edit ${relative(process.cwd(), manifestFile)}, then in another terminal:`);
  console.log('  source .demo/hub.env   # the emulator\'s service connection string and CA');
  console.log(`  npm run cli -- deploy --device ${deviceId} ${relative(process.cwd(), manifestFile)}`);
  writeFileSync(join(demoDir, 'hub.env'), `export IOTEDGE_HUB_CONNECTION_STRING='${hub!.serviceConnectionString}'\nexport NODE_EXTRA_CA_CERTS=${join(demoDir, 'hub-ca.pem')}\n`, { mode: 0o600 });
}

/** Keeps the view live; returns when the emulator holds `until` messages (never without it). */
async function watchMessages(state: StateWithWorker, pushedAt: number, until: number | undefined): Promise<void> {
  const draw = drawer();
  let firstAt: number | undefined;
  const convergedAt = performance.now();
  for (;;) {
    const count = upstreamCount();
    if (count > 0 && firstAt === undefined) {
      firstAt = performance.now();
      if (!tty) step(`first message reached IoT Hub ${seconds(firstAt - pushedAt)} after the push`);
    }
    if (until !== undefined && count >= until) return;
    if (until !== undefined && performance.now() - convergedAt > 5 * 60_000) {
      throw new Error(`IoT Hub received ${count} of ${until} messages within 5 minutes of convergence; see kubectl -n ${namespace} logs of the modules and edgeHub`);
    }
    const first = firstAt === undefined ? 'no message has reached IoT Hub yet' : `first message reached IoT Hub ${seconds(firstAt - pushedAt)} after the push`;
    draw(`${(await view(state)).text}\n${first}; Ctrl-C stops the demo${startedCluster ? ' and the cluster' : ''}`);
    await new Promise((r) => setTimeout(r, 2000));
  }
}

/**
 * Without the built-in hub the stock edgeHub image cannot run here (no registry), so the modules after it
 * (startupOrder) never start and no message can flow: shows that state as it really is, then says so.
 */
async function showWithoutHub(state: StateWithWorker, pushedAt: number): Promise<void> {
  const draw = drawer();
  while (performance.now() - pushedAt < 60_000) {
    draw((await view(state)).text);
    await new Promise((r) => setTimeout(r, 2000));
  }
  console.log(`\n${(await view(state)).text}\n`);
  console.log(bold('Missing: the built-in hub (iotedge-operator edgehub, operator setting --edge-hub builtin) is not in this build.'));
  console.log('edgeHub runs the stock image, which cannot be pulled here, so the sensor and filter never start and no message moves.');
  if (untilMessages !== undefined) throw new Error('no message can reach IoT Hub without the built-in hub');
  console.log('Running until Ctrl-C.');
}

async function main(): Promise<void> {
  mkdirSync(demoDir, { recursive: true });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.log('\nstopping the demo…');
      void cleanUp().then(() => process.exit(0));
    });
  }
  const started = await ensureCluster();
  cluster = started;
  await provideImages(started);
  await installCrds((args) => kubectl(started, args), join(repoRoot, 'crds'));

  // On the bridge: the operator on this host and the modules' hub in its pod both reach it there.
  hub = await startHubEmulator({ hubName: 'demo-hub', host: cluster.worker!.bridgeIp });
  writeFileSync(join(demoDir, 'hub-ca.pem'), hub.caCertPem);
  trustHub(hub.caCertPem);
  step(`IoT Hub emulator on ${hub.host} (MQTT ${hub.mqttPort}, HTTPS ${hub.httpsPort})`);

  const registry = iothub.Registry.fromConnectionString(hub.serviceConnectionString);
  await bindDevice(cluster, await createEdgeDevice(registry));
  operator = startOperator(cluster);
  step(`created IoT Edge device "${deviceId}"; operator started${builtinHubAvailable ? ' with the built-in hub as edgeHub' : ''} (logs: .demo/operator.log)`);
  if (!builtinHubAvailable) {
    console.log(bold('  note: this build of the operator has no built-in hub (--edge-hub builtin): edgeHub stays the stock image, which'));
    console.log(bold('  cannot be pulled here, so the modules never start and no message can flow. Everything else below is real.'));
  }

  const content = JSON.parse(readFileSync(manifestFile, 'utf8')) as { modulesContent: Record<string, unknown> };
  await registry.applyConfigurationContentOnDevice(deviceId, content as never);
  const pushedAt = performance.now();
  step(`pushed ${relative(repoRoot, manifestFile)} through IoT Hub (applyConfigurationContentOnDevice)`);

  if (!builtinHubAvailable) {
    await showWithoutHub(cluster, pushedAt);
    return;
  }
  await watchConvergence(cluster, pushedAt, drawer());
  step(bold(`all modules are running as real containers on ${cluster.worker!.nodeName}, ${seconds(performance.now() - pushedAt)} after the push`));
  if (untilMessages === undefined) explore(cluster);
  await watchMessages(cluster, pushedAt, untilMessages);
  console.log(`\n${(await view(cluster)).text}\n`);
  step(`IoT Hub received ${upstreamCount()} messages; stopping`);
  await cleanUp();
}

main().catch(async (error: unknown) => {
  console.error(`\ndemo failed: ${error instanceof Error ? error.message : String(error)}`);
  await cleanUp();
  process.exit(1);
});
