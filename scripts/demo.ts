// npm run demo: the main job on the embedded default. Brings up the local control plane, the IoT Hub
// emulator and the operator; creates an edge device; pushes a sample deployment through IoT Hub with
// the service SDK; shows the modules converge; prints what to explore next; runs until Ctrl-C.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import { getCACertificates, setDefaultCACertificates } from 'node:tls';
import iothub from 'azure-iothub';
import type { EdgeDeployment } from '../src/api/edge-deployment.ts';
import { startHubEmulator, type HubEmulator } from '../src/emulator/index.ts';
import {
  defaultClusterDir, healthyCluster, kubectl, kwokNamespaceAnnotations, repoRoot, startControlPlane, stopControlPlane, type ClusterState,
} from './cluster/control-plane.ts';

const deviceId = 'demo-device';
const namespace = deviceId;
const demoDir = join(repoRoot, '.demo');
const manifestFile = join(repoRoot, 'manifests/examples/demo-deployment.json');
const began = performance.now();
const tty = process.stdout.isTTY;
const bold = (s: string) => (tty ? `\x1b[1m${s}\x1b[0m` : s);
const colour = (status: string) => {
  if (!tty) return status;
  const code = status === 'running' ? 32 : status === 'backoff' || status === 'failed' ? 31 : status === 'stopped' ? 90 : 33;
  return `\x1b[${code}m${status}\x1b[0m`;
};
const elapsed = () => `${((performance.now() - began) / 1000).toFixed(1)}s`;
const step = (text: string) => console.log(`${bold('▸')} ${text} ${tty ? '\x1b[90m' : ''}(${elapsed()})${tty ? '\x1b[0m' : ''}`);

let cluster: ClusterState | undefined;
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

async function ensureCluster(): Promise<ClusterState> {
  const running = await healthyCluster(defaultClusterDir);
  if (running) {
    step(`using the local control plane that is already running (${running.apiServerUrl})`);
    return running;
  }
  step('starting the local cluster (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, the real worker edge-worker-0, a KWOK node); the first run builds them from the Go module proxy');
  startedCluster = true;
  return startControlPlane(defaultClusterDir);
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

async function bindDevice(state: ClusterState, connectionString: string): Promise<void> {
  const docs = [
    // On the KWOK node: the sample's images are not built for the real worker yet.
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace, annotations: kwokNamespaceAnnotations } },
    // ca.crt: the operator trusts the emulator's CA for this device only (see docs/iothub.md).
    { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'iothub-device', namespace }, type: 'Opaque', stringData: { connectionString, 'ca.crt': hub!.caCertPem } },
    {
      apiVersion: 'iotedge-operator.io/v1alpha1', kind: 'EdgeDeployment', metadata: { name: 'device', namespace },
      spec: { deviceId, iotHub: { connectionStringSecretRef: { name: 'iothub-device', key: 'connectionString' } } },
    },
  ];
  await kubectl(state, ['apply', '--server-side', '-f', '-'], docs.map((d) => JSON.stringify(d)).join('\n---\n'));
}

function startOperator(state: ClusterState): ChildProcess {
  const log = openSync(join(demoDir, 'operator.log'), 'w');
  const child = spawn(process.execPath, [join(repoRoot, 'src/cli/main.ts'), 'run', '--kubeconfig', state.kubeconfig, '--namespaces', namespace,
    '--health-probe-bind-address', '127.0.0.1:0', '--metrics-bind-address', '127.0.0.1:0'], {
    stdio: ['ignore', log, log],
  });
  child.once('exit', (code) => {
    if (code !== 0 && code !== null) console.error(`\nthe operator exited with code ${code}; see ${relative(process.cwd(), join(demoDir, 'operator.log'))}`);
  });
  return child;
}

async function readEdgeDeployment(state: ClusterState): Promise<EdgeDeployment | undefined> {
  try {
    return JSON.parse(await kubectl(state, ['-n', namespace, 'get', 'edgedeployment', 'device', '-o', 'json'])) as EdgeDeployment;
  } catch {
    return undefined;
  }
}

interface PortsByModule {
  [module: string]: string;
}

async function portsByModule(state: ClusterState): Promise<PortsByModule> {
  const services = JSON.parse(await kubectl(state, ['-n', namespace, 'get', 'services', '-o', 'json'])) as {
    items: { metadata: { annotations?: Record<string, string>; labels?: Record<string, string> }; spec: { type: string; ports?: { port: number; protocol?: string }[] } }[];
  };
  // Port → how it is reachable; a port bound outside the cluster shows once, with its Service type.
  const ports: Record<string, Map<string, string>> = {};
  for (const s of services.items) {
    const module = s.metadata.labels?.['iotedge-operator.io/module'];
    if (!module) continue;
    for (const p of s.spec.ports ?? []) {
      const port = `${p.port}/${(p.protocol ?? 'TCP').toLowerCase()}`;
      const byPort = (ports[module] ??= new Map());
      if (s.spec.type !== 'ClusterIP' || !byPort.has(port)) byPort.set(port, s.spec.type === 'ClusterIP' ? port : `${port} ${s.spec.type}`);
    }
  }
  return Object.fromEntries(Object.entries(ports).map(([m, byPort]) => [m, [...byPort.values()].sort((a, b) => parseInt(a) - parseInt(b)).join(', ')]));
}

function table(ed: EdgeDeployment, ports: PortsByModule): string {
  const rows = Object.entries(ed.status?.modules ?? {}).sort(([, a], [, b]) => (a.startupOrder ?? 0) - (b.startupOrder ?? 0));
  const header = ['MODULE', 'KIND', 'STATUS', 'RESTARTS', 'PORTS', 'DETAIL'];
  const lines = rows.map(([id, m]) => [id, m.kind ?? '', m.runtimeStatus ?? 'unknown', String(m.restartCount ?? 0), ports[m.name ?? ''] ?? '', m.statusDescription ?? '']);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const format = (cells: string[], paint = false) =>
    cells.map((c, i) => (paint && i === 2 ? colour(c) + ' '.repeat(widths[i]! - c.length) : c.padEnd(widths[i]!))).join('  ');
  return [bold(format(header)), ...lines.map((l) => format(l, true))].join('\n');
}

const converged = (ed: EdgeDeployment | undefined) =>
  ed?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true &&
  ed.status.observedGeneration === ed.metadata?.generation && Object.keys(ed.status.modules ?? {}).length > 0;

async function watchConvergence(state: ClusterState): Promise<EdgeDeployment> {
  let drawn = 0;
  for (;;) {
    const ed = await readEdgeDeployment(state);
    const reported = reportedOf(hub!) as { lastDesiredStatus?: { code?: number } };
    const done = converged(ed) && reported?.lastDesiredStatus?.code === 200;
    if (ed && tty) {
      const view = `${table(ed, await portsByModule(state))}\n${ed.status?.conditions?.map((c) => `${c.type}=${c.status}`).join('  ') ?? 'waiting for the operator…'}   ${elapsed()}`;
      if (drawn) process.stdout.write(`\x1b[${drawn}A\x1b[J`);
      process.stdout.write(`${view}\n`);
      drawn = view.split('\n').length;
    }
    if (done) {
      if (tty) process.stdout.write(`\x1b[${drawn}A\x1b[J`);
      return ed!;
    }
    if (performance.now() - began > 15 * 60_000) throw new Error('the deployment did not converge within 15 minutes; see .demo/operator.log');
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** The $edgeAgent twin's reported properties, as the emulator holds them. */
function reportedOf(emulator: HubEmulator): Record<string, unknown> {
  const twin = emulator.admin.twin(deviceId, '$edgeAgent') as { properties?: { reported?: Record<string, unknown> } };
  return twin.properties?.reported ?? {};
}

function reportedSummary(): string {
  const reported = reportedOf(hub!) as {
    lastDesiredVersion?: number; lastDesiredStatus?: { code?: number; description?: string };
    runtime?: { platform?: { os?: string; architecture?: string } };
    modules?: Record<string, { runtimeStatus?: string }>; systemModules?: Record<string, { runtimeStatus?: string }>;
  };
  const modules = { ...reported.systemModules, ...reported.modules };
  return [
    `lastDesiredVersion ${reported.lastDesiredVersion ?? '-'}, lastDesiredStatus ${reported.lastDesiredStatus?.code ?? '-'}`,
    `runtime.platform ${reported.runtime?.platform?.os ?? '?'}/${reported.runtime?.platform?.architecture ?? '?'}`,
    `modules: ${Object.entries(modules).map(([id, m]) => `${id}=${m.runtimeStatus ?? '?'}`).join(', ')}`,
  ].join('\n  ');
}

async function main(): Promise<void> {
  mkdirSync(demoDir, { recursive: true });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.log('\nstopping the demo…');
      void cleanUp().then(() => process.exit(0));
    });
  }
  cluster = await ensureCluster();
  await kubectl(cluster, ['apply', '--server-side', '--force-conflicts', '-f', join(repoRoot, 'crds')]);
  await kubectl(cluster, ['wait', '--for=condition=Established', '--timeout=60s', 'crd/edgedeployments.iotedge-operator.io']);

  hub = await startHubEmulator({ hubName: 'demo-hub' });
  writeFileSync(join(demoDir, 'hub-ca.pem'), hub.caCertPem);
  trustHub(hub.caCertPem);
  step(`IoT Hub emulator on ${hub.host} (MQTT ${hub.mqttPort}, HTTPS ${hub.httpsPort})`);

  const registry = iothub.Registry.fromConnectionString(hub.serviceConnectionString);
  const deviceConnectionString = await createEdgeDevice(registry);
  step(`created IoT Edge device "${deviceId}" with the service SDK`);

  await bindDevice(cluster, deviceConnectionString);
  operator = startOperator(cluster);
  step(`operator started; EdgeDeployment ${namespace}/device is bound to the device (logs: .demo/operator.log)`);

  const content = JSON.parse(readFileSync(manifestFile, 'utf8')) as { modulesContent: Record<string, unknown> };
  await registry.applyConfigurationContentOnDevice(deviceId, content as never);
  step(`pushed ${relative(repoRoot, manifestFile)} to the device through IoT Hub (applyConfigurationContentOnDevice)`);

  const ed = await watchConvergence(cluster);
  step(bold('all modules are as desired'));
  console.log(`\n${table(ed, await portsByModule(cluster))}\n`);
  console.log(`reported to IoT Hub as $edgeAgent:\n  ${reportedSummary()}\n`);
  console.log(bold('Explore:'));
  console.log(`  export KUBECONFIG=${relative(process.cwd(), cluster.kubeconfig)} PATH=${cluster.bin}:$PATH`);
  console.log('  kubectl get edep -A');
  console.log(`  kubectl -n ${namespace} describe edep device`);
  console.log(`  kubectl -n ${namespace} get deploy,pods,svc,pvc,networkpolicies`);
  console.log('Change the deployment and watch it roll:');
  console.log(`  edit ${relative(process.cwd(), manifestFile)} (e.g. a module's image), then in another terminal:`);
  console.log('  source .demo/hub.env   # the emulator\'s service connection string and CA');
  console.log(`  npm run cli -- deploy --hub-connection-string "$IOTHUB_CONNECTION_STRING" --device ${deviceId} ${relative(process.cwd(), manifestFile)}`);
  writeFileSync(join(demoDir, 'hub.env'), `export IOTHUB_CONNECTION_STRING='${hub.serviceConnectionString}'\nexport NODE_EXTRA_CA_CERTS=${join(demoDir, 'hub-ca.pem')}\n`, { mode: 0o600 });
  console.log(`  kubectl -n ${namespace} get edep device -w`);
  console.log(`\nConverged in ${elapsed()}. Running until Ctrl-C${startedCluster ? ' (which also stops the control plane)' : ''}.`);
}

main().catch(async (error: unknown) => {
  console.error(`\ndemo failed: ${error instanceof Error ? error.message : String(error)}`);
  await cleanUp();
  process.exit(1);
});
