// The local cluster: a real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler), the real worker node edge-worker-0 (worker.ts) and tainted KWOK nodes for scale.
// Used by `npm run cluster:*`, the jest global setup, the benchmarks and the demo.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { dump as toYaml } from 'js-yaml';
import { createPki, kubeconfigYaml } from './pki.ts';
import { installCrds, isOurProcess, kubectl, log, runBuildScript, startDetached, stopPids, waitFor } from './processes.ts';
import {
  ensureWorkerArtifacts, issueApiServerKubeletClient, joinWorker, mountsUnder, prepareWorker, startContainerd, stopWorker,
  workerHealthy, workerNodeName, type WorkerState,
} from './worker.ts';

export { installCrds, isOurProcess, kubectl, workerNodeName };
export { importImageArchive, type WorkerState } from './worker.ts';

const run = promisify(execFile);
/** The addresses KWOK gives its pods, and the Services' cluster IPs: nothing on this machine holds them. */
const kwokPodCidr = '10.244.0.0/16';
const serviceCidr = '10.96.0.0/16';
const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, '../..');
/** Where `npm run cluster:up` keeps its state; the admin kubeconfig is `<this>/kubeconfig`. */
export const defaultClusterDir = join(repoRoot, '.cluster');

/** Processes in start order; they are stopped in reverse. */
const components = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kwok', 'volume-provisioner'] as const;
type Component = (typeof components)[number];

export interface ClusterState {
  dir: string;
  bin: string;
  kubeconfig: string;
  apiServerUrl: string;
  ports: Record<'etcdClient' | 'etcdPeer' | 'apiServer' | 'controllerManager' | 'scheduler', number>;
  pids: Partial<Record<Component, number>>;
  /** How each component was started, so one can be stopped and started again alone. */
  commands?: Partial<Record<Component, string[]>>;
  startedAt: string;
  /** The real worker node (absent when started with `worker: false`). */
  worker?: WorkerState;
  /** Names of the KWOK nodes: tainted, for benchmarks and tests that place their namespace there (kwokNamespaceAnnotations). */
  kwokNodes?: string[];
  /** The process this cluster belongs to (a test or bench run); `cluster:prune` stops the cluster once it is gone. */
  ownerPid?: number;
}

export interface StartOptions {
  /** Start the real worker node edge-worker-0 (needs root, netns, cgroups). Default true. */
  worker?: boolean;
  /** How many KWOK nodes to register. Default 1. */
  kwokNodes?: number;
  /** Record this process as the owner, for `cluster:prune` (a cluster:up cluster has none: it outlives its CLI). */
  ownerPid?: number;
}

/** Pods run only on KWOK nodes that tolerate this taint; kwokNamespaceAnnotations does it per namespace. */
export const kwokTaint = { key: 'kwok.x-k8s.io/node', value: 'fake', effect: 'NoSchedule' } as const;

/**
 * Namespace annotations that put every pod of the namespace on the KWOK nodes (the PodNodeSelector and
 * PodTolerationRestriction admission plugins add the selector and the toleration to each pod). For
 * benchmarks and for tests whose images exist only as names.
 */
export const kwokNamespaceAnnotations: Record<string, string> = {
  'scheduler.alpha.kubernetes.io/node-selector': 'type=kwok',
  'scheduler.alpha.kubernetes.io/defaultTolerations': JSON.stringify([{ key: kwokTaint.key, operator: 'Exists', effect: kwokTaint.effect }]),
};

/**
 * What the API server audits: writes of Secrets (their values are the keys and passwords a run used),
 * Events and EdgeDeployment status (what users read). test/support/secret-leaks.ts greps the second for the
 * first after a test run. Nothing else is logged, so the log stays small.
 */
const auditPolicy = {
  apiVersion: 'audit.k8s.io/v1',
  kind: 'Policy',
  omitStages: ['RequestReceived', 'ResponseStarted', 'Panic'],
  rules: [
    { level: 'Request', verbs: ['create', 'update', 'patch'], resources: [{ group: '', resources: ['secrets', 'events'] }, { group: 'events.k8s.io', resources: ['events'] }] },
    { level: 'Request', verbs: ['update', 'patch'], resources: [{ group: 'iotedge-operator.io', resources: ['edgedeployments/status'] }] },
    { level: 'None' },
  ],
};

/** The API server's audit log (JSON lines) of a control plane started here. */
export function auditLogPath(dir: string): string {
  return join(dir, 'audit.log');
}

/** Builds (first time) or finds the cached binaries; returns their directory. */
export async function ensureBinaries(): Promise<string> {
  const lines = await runBuildScript(join(here, 'build-binaries.sh'));
  return lines.pop() ?? '';
}

/** A port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolvePort(address.port) : reject(new Error('no port'))));
    });
  });
}

/** The executable of a component: its binary, or node for the project's own volume provisioner. */
function programOf(state: Pick<ClusterState, 'bin'>, name: Component): string {
  return name === 'volume-provisioner' ? process.execPath : join(state.bin, name);
}

function startProcess(dir: string, name: Component, binary: string, args: string[], state?: ClusterState): number {
  if (state) (state.commands ??= {})[name] = [binary, ...args];
  // Detached so the cluster outlives `cluster:up`; its PID is recorded so `cluster:down` stops exactly it.
  return startDetached(join(dir, 'log', `${name}.log`), binary, args);
}

/** KWOK v0.7+ takes stages only from --config: the node stages come from KWOK's own module source, the pod stages are ours. */
function kwokStages(): string {
  const modCache = process.env.GOMODCACHE ?? join(process.env.GOPATH ?? join(homedir(), 'go'), 'pkg', 'mod');
  const versions = readFileSync(join(here, 'versions.env'), 'utf8');
  const kwokVersion = /KWOK_VERSION=(\S+)/.exec(versions)?.[1];
  const stageRoot = join(modCache, 'sigs.k8s.io', `kwok@${kwokVersion}`, 'kustomize', 'stage', 'node');
  const docs: string[] = [];
  for (const sub of ['fast', 'heartbeat-with-lease']) {
    for (const file of readdirSync(join(stageRoot, sub)).sort()) {
      if (file.endsWith('.yaml') && file !== 'kustomization.yaml') docs.push(readFileSync(join(stageRoot, sub, file), 'utf8'));
    }
  }
  docs.push(readFileSync(join(here, 'kwok-fault-stages.yaml'), 'utf8'));
  return docs.join('\n---\n');
}

async function goModCacheEnv(): Promise<void> {
  if (!process.env.GOMODCACHE) {
    const { stdout } = await run('go', ['env', 'GOMODCACHE']);
    process.env.GOMODCACHE = stdout.trim();
  }
}

export function readState(dir: string): ClusterState | undefined {
  const file = join(dir, 'state.json');
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as ClusterState) : undefined;
}

function saveState(state: ClusterState): void {
  writeFileSync(join(state.dir, 'state.json'), JSON.stringify(state, null, 2));
}

/**
 * Starts a fresh cluster in `dir` (which must not hold a running one): the control plane, the real
 * worker edge-worker-0 (unless `worker: false`) and `kwokNodes` KWOK nodes; waits until pods can run.
 */
export async function startControlPlane(dir: string, options: StartOptions = {}): Promise<ClusterState> {
  const withWorker = options.worker ?? true;
  const kwokNodeCount = options.kwokNodes ?? 1;
  const began = Date.now();
  const [bin, artifacts] = await Promise.all([ensureBinaries(), withWorker ? ensureWorkerArtifacts() : undefined]);
  await goModCacheEnv();
  if (mountsUnder(dir).length > 0) throw new Error(`${dir} still has mounts of an earlier cluster; run cluster:down first`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'log'), { recursive: true });
  const built = Date.now();
  const ports = {
    etcdClient: await freePort(),
    etcdPeer: await freePort(),
    apiServer: await freePort(),
    controllerManager: await freePort(),
    scheduler: await freePort(),
  };
  await keepClusterRangesLocal();
  const kubeconfig = join(dir, 'kubeconfig');
  const state: ClusterState = { dir, bin, kubeconfig, apiServerUrl: '', ports, pids: {}, startedAt: new Date().toISOString(), kwokNodes: [], ownerPid: options.ownerPid };
  const pki = join(dir, 'pki');
  const p = (file: string) => join(pki, file);

  try {
    // The worker's network first: with a worker, the API server binds on the bridge so pods reach it.
    if (artifacts) state.worker = await prepareWorker(dir, artifacts);
    saveState(state);
    const apiServerIp = state.worker?.bridgeIp ?? '127.0.0.1';
    state.apiServerUrl = `https://${apiServerIp}:${ports.apiServer}`;
    await createPki(pki, [apiServerIp]);
    const kubeletClient = state.worker ? await issueApiServerKubeletClient(pki) : undefined;
    writeFileSync(kubeconfig, kubeconfigYaml(state.apiServerUrl, pki), { mode: 0o600 });
    const containerd = state.worker && artifacts ? startContainerd(state.worker, artifacts) : Promise.resolve();
    containerd.catch(() => undefined); // awaited below; this only keeps an early failure from being unhandled

    const etcdUrl = `http://127.0.0.1:${ports.etcdClient}`;
    const peerUrl = `http://127.0.0.1:${ports.etcdPeer}`;
    state.pids.etcd = startProcess(dir, 'etcd', join(bin, 'etcd'), [
      '--name=local', `--data-dir=${join(dir, 'etcd')}`, '--unsafe-no-fsync', '--log-level=warn',
      `--listen-client-urls=${etcdUrl}`, `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=${peerUrl}`, `--initial-advertise-peer-urls=${peerUrl}`, `--initial-cluster=local=${peerUrl}`,
      '--quota-backend-bytes=4294967296',
    ], state);
    saveState(state);
    await waitFor('etcd', async () => (await fetch(`${etcdUrl}/health`)).ok);

    writeFileSync(join(dir, 'audit-policy.yaml'), toYaml(auditPolicy));
    const addressing = kubeletClient
      // Pods reach the API server through the `kubernetes` Service, whose endpoint the reconciler keeps at this address.
      ? [`--bind-address=${apiServerIp}`, `--advertise-address=${apiServerIp}`,
        `--kubelet-client-certificate=${kubeletClient.cert}`, `--kubelet-client-key=${kubeletClient.key}`,
        '--kubelet-preferred-address-types=InternalIP']
      // Loopback only: advertising 127.0.0.1 requires turning the endpoint reconciler off.
      : ['--bind-address=127.0.0.1', '--advertise-address=127.0.0.1', '--endpoint-reconciler-type=none'];
    state.pids['kube-apiserver'] = startProcess(dir, 'kube-apiserver', join(bin, 'kube-apiserver'), [
      `--etcd-servers=${etcdUrl}`, `--secure-port=${ports.apiServer}`, ...addressing,
      `--tls-cert-file=${p('apiserver.crt')}`, `--tls-private-key-file=${p('apiserver.key')}`, `--client-ca-file=${p('ca.crt')}`,
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${p('sa.pub')}`, `--service-account-signing-key-file=${p('sa.key')}`,
      `--service-cluster-ip-range=${serviceCidr}`, '--authorization-mode=Node,RBAC', '--allow-privileged=true',
      // PodNodeSelector and PodTolerationRestriction place a namespace's pods on KWOK (kwokNamespaceAnnotations).
      '--enable-admission-plugins=NodeRestriction,PodNodeSelector,PodTolerationRestriction',
      `--cert-dir=${join(dir, 'apiserver-certs')}`, '--profiling=false',
      // PodTemplate watches (a kind nothing here uses) go straight to etcd, so a compacted revision gives a real 410
      // Gone at once (the informer test relies on it); through the watch cache that only happens once it evicts.
      '--watch-cache-sizes=podtemplates#0',
      `--audit-policy-file=${join(dir, 'audit-policy.yaml')}`, `--audit-log-path=${auditLogPath(dir)}`, '--audit-log-format=json', '--audit-log-maxsize=512',
    ], state);
    saveState(state);
    await waitFor('kube-apiserver /readyz', async () => (await kubectl(state, ['get', '--raw=/readyz'])).trim() === 'ok');

    const common = [`--kubeconfig=${kubeconfig}`, `--authentication-kubeconfig=${kubeconfig}`, `--authorization-kubeconfig=${kubeconfig}`,
      '--bind-address=127.0.0.1', '--leader-elect=false'];
    state.pids['kube-controller-manager'] = startProcess(dir, 'kube-controller-manager', join(bin, 'kube-controller-manager'), [
      ...common, `--secure-port=${ports.controllerManager}`, '--use-service-account-credentials=true',
      `--service-account-private-key-file=${p('sa.key')}`, `--root-ca-file=${p('ca.crt')}`,
      `--cluster-signing-cert-file=${p('ca.crt')}`, `--cluster-signing-key-file=${p('ca.key')}`,
      // Without a kubelet nothing reports volume attachment; the attach/detach controller would only log noise.
      state.worker ? '--controllers=*' : '--controllers=*,-attachdetach',
      '--concurrent-deployment-syncs=10', '--concurrent-replicaset-syncs=10',
      '--kube-api-qps=200', '--kube-api-burst=400',
    ], state);
    state.pids['kube-scheduler'] = startProcess(dir, 'kube-scheduler', join(bin, 'kube-scheduler'), [
      ...common, `--secure-port=${ports.scheduler}`, '--kube-api-qps=200', '--kube-api-burst=400',
    ], state);
    saveState(state);
    const healthz = (port: number) => async () => {
      // Self-signed serving certs of KCM and scheduler; this only reads /healthz on loopback.
      const { stdout } = await run('curl', ['-fsk', `https://127.0.0.1:${port}/healthz`]);
      return stdout.trim() === 'ok';
    };
    await waitFor('kube-controller-manager /healthz', healthz(ports.controllerManager));
    await waitFor('kube-scheduler /healthz', healthz(ports.scheduler));

    startKwok(state);
    state.kwokNodes = Array.from({ length: kwokNodeCount }, (_, i) => `kwok-node-${i}`);
    await kubectl(state, ['apply', '-f', '-'], [...state.kwokNodes.map((name) => kwokNode(name, state.worker !== undefined)), defaultStorageClass()].map((o) => toYaml(o)).join('---\n'));
    state.pids['volume-provisioner'] = startProcess(dir, 'volume-provisioner', process.execPath,
      [join(here, 'volume-provisioner.ts'), kubeconfig, join(dir, 'volumes')], state);
    saveState(state);
    for (const node of state.kwokNodes) {
      await waitFor(`KWOK node ${node} to be Ready`, async () =>
        (await kubectl(state, ['get', 'node', node, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'])) === 'True',
      );
    }
    await waitFor('the default ServiceAccount', async () => {
      await kubectl(state, ['-n', 'default', 'get', 'serviceaccount', 'default']);
      return true;
    });
    const controlPlaneReady = Date.now();
    if (state.worker) {
      await containerd;
      await joinWorker(state, pki);
      saveState(state);
    }
    const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`;
    log(`cluster ready in ${seconds(Date.now() - built)} at ${state.apiServerUrl}` +
      ` (control plane ${seconds(controlPlaneReady - built)}${state.worker ? `, then worker ${workerNodeName} ${seconds(Date.now() - controlPlaneReady)}` : ''}` +
      `, ${kwokNodeCount} KWOK node${kwokNodeCount === 1 ? '' : 's'}; checking or building binaries and images took ${seconds(built - began)})`);
    return state;
  } catch (error) {
    log(`start failed; logs are in ${join(dir, 'log')}${state.worker ? ` and ${join(state.worker.stateDir, 'log')}` : ''}`);
    await stopEverything(state);
    throw error;
  }
}

/**
 * Routes KWOK's pod range and the Service range to `unreachable` on this machine. A KWOK pod's address
 * belongs to no host, so the default route would carry a connection to it off the machine: the API
 * server's pod proxy does that whenever the operator reads the /status of a built-in hub that runs on a
 * KWOK node. With these routes such a connection fails at once (EHOSTUNREACH) and no packet leaves. The
 * worker's netns has no default route, so its pods need nothing. The routes are left in place when a
 * cluster stops: another cluster on the machine may rely on them, and they send nothing anywhere.
 */
async function keepClusterRangesLocal(): Promise<void> {
  for (const cidr of [kwokPodCidr, serviceCidr]) {
    try {
      await run('ip', ['route', 'replace', 'unreachable', cidr]);
    } catch (error) {
      log(`warning: cannot route ${cidr} to unreachable (${(error as Error).message.split('\n')[0]}); connections to its addresses follow the default route`);
    }
  }
}

function startKwok(state: ClusterState): void {
  writeFileSync(join(state.dir, 'kwok.yaml'), kwokStages());
  state.pids.kwok = startProcess(state.dir, 'kwok', join(state.bin, 'kwok'), [
    `--kubeconfig=${state.kubeconfig}`, `--config=${join(state.dir, 'kwok.yaml')}`,
    '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
    `--cidr=${kwokPodCidr}`, '--node-ip=127.0.0.1', '--node-lease-duration-seconds=40',
  ], state);
}

async function stopComponent(state: ClusterState, name: Component): Promise<void> {
  await stopPids([state.pids[name] ?? 0], (pid) => isOurProcess(pid, programOf(state, name), state.dir));
}

/** Restarts KWOK alone, e.g. to load changed fault stages into a running cluster. */
export async function restartKwok(dir: string): Promise<void> {
  const state = readState(dir);
  if (!state) throw new Error(`no control plane in ${dir}`);
  await goModCacheEnv();
  await stopComponent(state, 'kwok');
  startKwok(state);
  saveState(state);
}

/**
 * Stops one component (e.g. the API server, to test resilience), keeps it down for `downMs`, and starts
 * it again with the same command. Resolves when it is back.
 */
export async function bounceComponent(dir: string, name: Component, downMs: number): Promise<void> {
  const state = readState(dir);
  const command = state?.commands?.[name];
  if (!state || !command) throw new Error(`no recorded command for ${name} in ${dir}`);
  await stopComponent(state, name);
  await new Promise((r) => setTimeout(r, downMs));
  const [program, ...args] = command as [string, ...string[]];
  state.pids[name] = startProcess(dir, name, program, args, state);
  saveState(state);
  if (name === 'kube-apiserver') await waitFor('kube-apiserver /readyz', async () => (await kubectl(state, ['get', '--raw=/readyz'])).trim() === 'ok');
}

/**
 * A KWOK node of the Azure Stack Edge Pro shape, with a GPU to schedule GPU modules. KWOK marks its pods
 * Running without running anything. Next to a real worker it is tainted: only pods that tolerate it run
 * here (see kwokNamespaceAnnotations); in a cluster without a worker it takes every pod.
 */
function kwokNode(name: string, tainted: boolean) {
  // Room for the benchmarks' thousands of pods; KWOK runs none of them.
  const resources = { cpu: '64', memory: '256Gi', pods: '10000', 'nvidia.com/gpu': '1', 'ephemeral-storage': '1Ti' };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      annotations: { 'kwok.x-k8s.io/node': 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
      labels: {
        'kubernetes.io/hostname': name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        'node-role.kubernetes.io/worker': '',
        type: 'kwok',
      },
    },
    spec: tainted ? { taints: [kwokTaint] } : {},
    status: { allocatable: resources, capacity: resources, nodeInfo: { architecture: 'amd64', operatingSystem: 'linux', kubeletVersion: 'fake' } },
  };
}

/** The default class: claims get volumes from the project's volume provisioner (see volume-provisioner.ts). */
function defaultStorageClass() {
  return {
    apiVersion: 'storage.k8s.io/v1',
    kind: 'StorageClass',
    metadata: { name: 'standard', annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } },
    provisioner: 'kwok.iotedge-operator.io/local',
    reclaimPolicy: 'Retain',
    volumeBindingMode: 'Immediate',
  };
}

async function stopProcesses(state: ClusterState): Promise<void> {
  const running = [...components].reverse().map((name) => ({ name, pid: state.pids[name] ?? 0 }));
  await stopPids(running.map((r) => r.pid), (pid) => running.some((r) => r.pid === pid && isOurProcess(pid, programOf(state, r.name), state.dir)));
}

/** The worker (its pods, agents, mounts, cgroups, network) and then the control plane. */
async function stopEverything(state: ClusterState): Promise<void> {
  if (state.worker) await stopWorker(state.dir, state.worker);
  await stopProcesses(state);
}

/** Stops exactly the processes recorded in `dir`, removes what the worker made on the machine, and removes the data. */
export async function stopControlPlane(dir: string): Promise<boolean> {
  const state = readState(dir);
  if (!state) return false;
  await stopEverything(state);
  // Never recurse into a mount: rmSync would delete what it shows.
  const left = mountsUnder(dir);
  if (left.length > 0) throw new Error(`not removing ${dir}: still mounted: ${left.join(', ')}`);
  rmSync(dir, { recursive: true, force: true });
  return true;
}

/**
 * Stops the clusters of test and bench runs that died without their teardown (a jest run killed hard):
 * clusters under the temp directory whose recorded owner process is gone. Never touches a cluster without
 * an owner (cluster:up, the demo) or one whose owner still runs. Returns the directories it removed.
 */
export async function pruneOrphanClusters(parent: string = tmpdir()): Promise<string[]> {
  const removed: string[] = [];
  for (const entry of readdirSync(parent)) {
    if (!entry.startsWith('iotedge-operator-')) continue;
    const state = readState(join(parent, entry));
    if (!state?.ownerPid || processExists(state.ownerPid)) continue;
    await stopControlPlane(state.dir);
    removed.push(state.dir);
  }
  return removed;
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface ComponentStatus {
  name: string;
  pid?: number;
  running: boolean;
}

export function componentStatus(state: ClusterState): ComponentStatus[] {
  return components.map((name) => ({ name, pid: state.pids[name], running: isOurProcess(state.pids[name], programOf(state, name), state.dir) }));
}

/** A running cluster in `dir` whose every process (worker included) is alive and whose API server answers. */
export async function healthyCluster(dir: string): Promise<ClusterState | undefined> {
  const state = readState(dir);
  if (!state || componentStatus(state).some((c) => !c.running)) return undefined;
  if (state.worker && !workerHealthy(state.worker)) return undefined;
  try {
    return (await kubectl(state, ['get', '--raw=/readyz'])).trim() === 'ok' ? state : undefined;
  } catch {
    return undefined;
  }
}
