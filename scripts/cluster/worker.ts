// The real worker node edge-worker-0, a second host inside this machine: its own network namespace
// (a veth on a bridge of the master's), Debian's containerd, runc and bridge CNI, kubelet, kube-proxy in
// iptables mode, and CoreDNS as a Deployment. Its images (pause, busybox, coredns) are built with podman.
//
// Several clusters may run on one machine at once (one per jest run of each worktree, plus
// `npm run cluster:up`), so everything that is machine-wide is numbered by a slot that a cluster claims
// under a lock: bridge ioe-br<N>, netns ioe-w<N>, veth ioe-v<N>, bridge network 10.200.<N>.0/24, pod
// network 10.246.<N>.0/24, cgroup root iotedge-operator-w<N>, and the CNI network name. Everything else
// (containerd's root, state and socket, kubelet's root, logs, iptables rules) lives in the cluster's
// directory or in the worker's network namespace, and goes with them.
import { spawnSync } from 'node:child_process';
import {
  existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmdirSync, unlinkSync, writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dump as toYaml } from 'js-yaml';
import { issueCertificate, kubeconfigYaml } from './pki.ts';
import { isOurProcess, kubectl, log, run, runBuildScript, startDetached, stopPids, waitFor, withFileLock } from './processes.ts';

const here = dirname(fileURLToPath(import.meta.url));
export const workerNodeName = 'edge-worker-0';
/** Slot claims: `slot-<N>.json` names the cluster directory that holds slot N. tmpfs, so a reboot frees them all. */
const slotDir = '/run/iotedge-operator/worker-slots';
const slotCount = 64;
const serviceDnsIp = '10.96.0.10';

/** The machine-wide names of one slot (see the header). */
export interface WorkerNetwork {
  slot: number;
  netns: string;
  bridge: string;
  hostVeth: string;
  /** The master's address on the bridge: the API server binds here, and pods reach the host here. */
  bridgeIp: string;
  /** The worker's address (eth0 in its netns): kubelet and kube-proxy bind here. */
  nodeIp: string;
  podCidr: string;
  /** A cgroup under every v1 hierarchy; kubelet puts kubepods below it. */
  cgroupRoot: string;
}

const workerComponents = ['containerd', 'kubelet', 'kube-proxy'] as const;
type WorkerComponent = (typeof workerComponents)[number];

export interface WorkerState extends WorkerNetwork {
  nodeName: string;
  containerdSocket: string;
  /** containerd's root and state, kubelet's root, pod logs, configs and logs of the node agents. */
  stateDir: string;
  /** kubelet, kube-proxy and coredns (by Kubernetes and CoreDNS version). */
  bin: string;
  /** pause and httpget (by source hash). */
  tools: string;
  pids: Partial<Record<WorkerComponent, number>>;
}

/** What the worker needs of the cluster state; structurally a ClusterState (control-plane.ts). */
export interface ClusterWithWorker {
  dir: string;
  bin: string;
  kubeconfig: string;
  worker?: WorkerState;
}

export function workerNetwork(slot: number): WorkerNetwork {
  return {
    slot,
    netns: `ioe-w${slot}`,
    bridge: `ioe-br${slot}`,
    hostVeth: `ioe-v${slot}`,
    bridgeIp: `10.200.${slot}.1`,
    nodeIp: `10.200.${slot}.2`,
    podCidr: `10.246.${slot}.0/24`,
    cgroupRoot: `iotedge-operator-w${slot}`,
  };
}

// ---------------------------------------------------------------------------------------------------
// Prerequisites: Debian packages, Go-built binaries, images.

export interface WorkerArtifacts {
  bin: string;
  tools: string;
  /** image reference → docker-archive path */
  images: Record<string, string>;
}

/** Installs missing Debian packages, builds (first time) kubelet, kube-proxy, CoreDNS, pause, httpget and the images. */
export async function ensureWorkerArtifacts(): Promise<WorkerArtifacts> {
  await runBuildScript(join(here, 'install-worker-packages.sh'));
  const [bin, tools] = await runBuildScript(join(here, 'build-worker-binaries.sh'));
  if (!bin || !tools) throw new Error('build-worker-binaries.sh printed no directories');
  const lines = await runBuildScript(join(here, 'build-worker-images.sh'), [bin, tools]);
  const images = Object.fromEntries(lines.map((line) => line.split(' ') as [string, string]));
  return { bin, tools, images };
}

// ---------------------------------------------------------------------------------------------------
// Slots.

interface SlotClaim {
  clusterDir: string;
  ownerPid: number;
}

/** Runs `critical` holding an exclusive flock on the slot directory (released if this process dies). */
const withSlotLock = <T>(critical: () => Promise<T>): Promise<T> => withFileLock(join(slotDir, '.lock'), critical);

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A claim is live while its owner runs, or while any process recorded in its cluster's state runs. */
function claimIsLive(claim: SlotClaim): boolean {
  if (pidAlive(claim.ownerPid)) return true;
  const stateFile = join(claim.clusterDir, 'state.json');
  if (!existsSync(stateFile)) return false;
  try {
    const state = JSON.parse(readFileSync(stateFile, 'utf8')) as { bin: string; pids: Record<string, number>; worker?: WorkerState };
    const controlPlaneUp = isOurProcess(state.pids['kube-apiserver'], join(state.bin, 'kube-apiserver'), claim.clusterDir);
    return controlPlaneUp || (state.worker !== undefined && workerComponents.some((c) => workerProcessAlive(state.worker!, c)));
  } catch {
    return false;
  }
}

/** Claims the lowest free slot for `clusterDir`, clearing what a dead cluster left in a stale one. */
export async function claimSlot(clusterDir: string): Promise<WorkerNetwork> {
  return withSlotLock(async () => {
    for (let slot = 0; slot < slotCount; slot++) {
      const file = join(slotDir, `slot-${slot}.json`);
      if (existsSync(file)) {
        const claim = JSON.parse(readFileSync(file, 'utf8')) as SlotClaim;
        if (claim.clusterDir !== clusterDir && claimIsLive(claim)) continue;
        log(`reclaiming worker slot ${slot} from ${claim.clusterDir}`);
        await removeMachineState(workerNetwork(slot), join(claim.clusterDir, 'worker'));
      }
      writeFileSync(file, JSON.stringify({ clusterDir, ownerPid: process.pid } satisfies SlotClaim));
      return workerNetwork(slot);
    }
    throw new Error(`all ${slotCount} worker slots in ${slotDir} are held by running clusters`);
  });
}

async function releaseSlot(slot: number, clusterDir: string): Promise<void> {
  await withSlotLock(async () => {
    const file = join(slotDir, `slot-${slot}.json`);
    if (existsSync(file) && (JSON.parse(readFileSync(file, 'utf8')) as SlotClaim).clusterDir === clusterDir) unlinkSync(file);
  });
}

// ---------------------------------------------------------------------------------------------------
// Network, cgroups, mounts.

async function ip(...args: string[]): Promise<void> {
  await run('ip', args);
}

/** The bridge on the master, the worker's netns with eth0 on it, the route to its pods, per-netns sysctls. */
export async function createNetwork(net: WorkerNetwork): Promise<void> {
  await ip('link', 'add', net.bridge, 'type', 'bridge');
  await ip('addr', 'add', `${net.bridgeIp}/24`, 'dev', net.bridge);
  await ip('link', 'set', net.bridge, 'up');
  await ip('netns', 'add', net.netns);
  await ip('link', 'add', net.hostVeth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', net.netns);
  await ip('link', 'set', net.hostVeth, 'master', net.bridge, 'up');
  await ip('-n', net.netns, 'addr', 'add', `${net.nodeIp}/24`, 'dev', 'eth0');
  await ip('-n', net.netns, 'link', 'set', 'eth0', 'up');
  await ip('-n', net.netns, 'link', 'set', 'lo', 'up');
  // No default route in the worker: pods reach the master's bridge address and nothing beyond this machine.
  await ip('route', 'add', net.podCidr, 'via', net.nodeIp);
  // Both start at 0 in a new netns; without bridge-nf, replies through a Service on the same bridge are not un-DNATed.
  await run('nsenter', [`--net=/run/netns/${net.netns}`, '--', 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1', 'net.bridge.bridge-nf-call-iptables=1']);
}

/** Deleting the netns takes its veth, its iptables rules and conntrack entries; deleting the bridge takes the route. */
async function deleteNetwork(net: WorkerNetwork): Promise<void> {
  await ip('netns', 'delete', net.netns).catch(() => undefined);
  await ip('link', 'delete', net.hostVeth).catch(() => undefined);
  await ip('link', 'delete', net.bridge).catch(() => undefined);
}

/** The hierarchies: on cgroup v1 (these machines) the real directories under /sys/fs/cgroup, not the aliases. */
function cgroupHierarchies(): string[] {
  const root = '/sys/fs/cgroup';
  if (existsSync(join(root, 'cgroup.controllers'))) return [root];
  return readdirSync(root)
    .map((name) => join(root, name))
    .filter((path) => !lstatSync(path).isSymbolicLink() && existsSync(join(path, 'cgroup.procs')) && !path.endsWith('/unified'));
}

function createCgroupRoot(name: string): void {
  for (const hierarchy of cgroupHierarchies()) {
    const dir = join(hierarchy, name);
    mkdirSync(dir, { recursive: true });
    // A new cpuset cgroup starts with no CPUs and no memory nodes; kubelet's children copy from it.
    if (existsSync(join(dir, 'cpuset.cpus')) && existsSync(join(hierarchy, 'cpuset.cpus'))) {
      for (const file of ['cpuset.cpus', 'cpuset.mems']) writeFileSync(join(dir, file), readFileSync(join(hierarchy, file)));
    }
  }
}

/** Every cgroup below `name` in every hierarchy, deepest first. */
function cgroupsBelow(name: string): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) if (entry.isDirectory()) walk(join(dir, entry.name));
    found.push(dir);
  };
  for (const hierarchy of [...cgroupHierarchies(), '/sys/fs/cgroup/unified']) {
    if (existsSync(join(hierarchy, name))) walk(join(hierarchy, name));
  }
  return found.sort((a, b) => b.split('/').length - a.split('/').length);
}

/** PIDs in the worker's cgroup tree: the pods' processes, which kubelet placed there. */
function podProcesses(cgroupRoot: string): number[] {
  const pids = new Set<number>();
  for (const dir of cgroupsBelow(cgroupRoot)) {
    for (const line of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n')) if (line) pids.add(Number(line));
  }
  return [...pids];
}

async function removeCgroups(cgroupRoot: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const left = cgroupsBelow(cgroupRoot).filter((dir) => {
      try {
        rmdirSync(dir);
        return false;
      } catch {
        return existsSync(dir);
      }
    });
    if (left.length === 0) return;
    if (Date.now() > deadline) throw new Error(`cgroups still busy: ${left.join(', ')}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Mount points at or below `dir` (kubelet's tmpfs volumes, container rootfs, pod netns), deepest first. */
export function mountsUnder(dir: string): string[] {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((point): point is string => point !== undefined && (point === dir || point.startsWith(prefix)))
    .map((point) => point.replace(/\\040/g, ' '))
    .sort((a, b) => b.length - a.length);
}

function unmountAll(dir: string): void {
  for (let pass = 0; pass < 3; pass++) {
    const points = mountsUnder(dir);
    if (points.length === 0) return;
    for (const point of points) spawnSync('umount', ['-l', point]);
  }
  const left = mountsUnder(dir);
  if (left.length > 0) throw new Error(`could not unmount ${left.join(', ')}`);
}

/** kubelet links every container's log into the machine-wide /var/log/containers; remove the links into ours. */
function removeContainerLogLinks(podLogsDir: string): void {
  const linkDir = '/var/log/containers';
  if (!existsSync(linkDir)) return;
  for (const name of readdirSync(linkDir)) {
    const link = join(linkDir, name);
    try {
      if (readlinkSync(link).startsWith(podLogsDir)) unlinkSync(link);
    } catch {
      // not a link, or gone already
    }
  }
}

/**
 * Shims outlive containerd by design. Each writes its PID into its task's bundle, but a bundle can be gone
 * while its shim still runs (seen: four of a demo's five shims, and one of each test run's, stayed after
 * teardown), so the shims are found by their command line, which names this containerd's socket.
 */
function shimPids(socket: string): number[] {
  return readdirSync('/proc').filter((entry) => /^\d+$/.test(entry)).map(Number).filter((pid) => isShimOf(pid, socket));
}

function isShimOf(pid: number, socket: string): boolean {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return (argv[0] ?? '').endsWith('containerd-shim-runc-v2') && argv.includes(socket);
  } catch {
    return false;
  }
}

/**
 * Removes what a worker put on the machine outside its directory, and unmounts what it mounted inside:
 * pods' processes (from its cgroups), shims, mounts, cgroups, log links, the netns and the bridge.
 * Safe on a half-made or already-removed worker.
 */
async function removeMachineState(net: WorkerNetwork, stateDir: string): Promise<void> {
  const socket = join(stateDir, 'containerd', 'containerd.sock');
  await stopPids(podProcesses(net.cgroupRoot), (pid) => pidAlive(pid), 0);
  await stopPids(shimPids(socket), (pid) => isShimOf(pid, socket), 2_000);
  unmountAll(stateDir);
  await removeCgroups(net.cgroupRoot);
  removeContainerLogLinks(join(stateDir, 'pod-logs'));
  await deleteNetwork(net);
}

// ---------------------------------------------------------------------------------------------------
// The node's processes and configuration.

function workerProgram(worker: WorkerState, name: WorkerComponent): string {
  return name === 'containerd' ? '/usr/bin/containerd' : join(worker.bin, name);
}

function workerProcessAlive(worker: WorkerState, name: WorkerComponent): boolean {
  return isOurProcess(worker.pids[name], workerProgram(worker, name), worker.stateDir);
}

function startWorkerProcess(worker: WorkerState, name: WorkerComponent, args: string[]): void {
  worker.pids[name] = startDetached(join(worker.stateDir, 'log', `${name}.log`), workerProgram(worker, name), args, worker.netns);
}

function containerdConfig(worker: WorkerState): string {
  const s = worker.stateDir;
  return `version = 2
root = "${s}/containerd/root"
state = "${s}/containerd/state"
[grpc]
  address = "${worker.containerdSocket}"
[ttrpc]
  address = "${worker.containerdSocket}.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/pause:1"
  disable_apparmor = true
  # These machines lack CAP_SYS_RESOURCE: runc cannot lower a sandbox's oom_score_adj below its own.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
    SystemdCgroup = false
    Root = "${s}/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${s}/cni/net.d"
    max_conf_num = 1
`;
}

/** bridge + portmap; CRI adds loopback. Pods get the slot's /24 and a default route via cni0. */
function cniConfig(worker: WorkerState): string {
  return JSON.stringify({
    cniVersion: '1.0.0',
    name: `iotedge-operator-pods-${worker.slot}`,
    plugins: [
      {
        type: 'bridge',
        bridge: 'cni0',
        isGateway: true,
        ipMasq: false,
        hairpinMode: true,
        ipam: { type: 'host-local', ranges: [[{ subnet: worker.podCidr }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: join(worker.stateDir, 'cni', 'ipam') },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  }, null, 2);
}

function kubeletConfig(worker: WorkerState, pki: string): string {
  return toYaml({
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    cgroupDriver: 'cgroupfs',
    cgroupRoot: `/${worker.cgroupRoot}`,
    failSwapOn: false,
    failCgroupV1: false,
    address: worker.nodeIp,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    authentication: { anonymous: { enabled: false }, webhook: { enabled: true }, x509: { clientCAFile: join(pki, 'ca.crt') } },
    authorization: { mode: 'Webhook' },
    clusterDomain: 'cluster.local',
    clusterDNS: [serviceDnsIp],
    // Pods with dnsPolicy Default get no upstream: this node has no route off the machine.
    resolvConf: join(worker.stateDir, 'resolv.conf'),
    containerRuntimeEndpoint: `unix://${worker.containerdSocket}`,
    podLogsDir: join(worker.stateDir, 'pod-logs'),
    // The disk is shared with everything else on the machine: evict only when it is really full, never GC our images.
    evictionHard: { 'nodefs.available': '2%', 'imagefs.available': '2%', 'memory.available': '100Mi' },
    imageGCHighThresholdPercent: 99,
    imageGCLowThresholdPercent: 98,
    serializeImagePulls: false,
    maxPods: 110,
    rotateCertificates: false,
    // kubelet reports status every 10 s by default; tests read restart counts and phases from it.
    nodeStatusUpdateFrequency: '4s',
    syncFrequency: '10s',
  });
}

function kubeProxyConfig(worker: WorkerState): string {
  return toYaml({
    apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
    kind: 'KubeProxyConfiguration',
    mode: 'iptables',
    clientConnection: { kubeconfig: join(worker.stateDir, 'kube-proxy.kubeconfig') },
    hostnameOverride: worker.nodeName,
    clusterCIDR: worker.podCidr,
    bindAddress: worker.nodeIp,
    healthzBindAddress: '127.0.0.1:10256',
    metricsBindAddress: '127.0.0.1:10249',
    // 0: leave the machine-wide nf_conntrack_max and the timeouts alone.
    conntrack: { maxPerCore: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s' },
  });
}

/** The node's client certificates (system:node:<name>, system:kube-proxy) and their kubeconfigs. */
async function issueNodeCredentials(worker: WorkerState, pki: string, apiServerUrl: string): Promise<void> {
  await Promise.all([
    issueCertificate(pki, 'kubelet', `/CN=system:node:${worker.nodeName}/O=system:nodes`),
    issueCertificate(pki, 'kube-proxy', '/CN=system:kube-proxy'),
  ]);
  writeFileSync(join(worker.stateDir, 'kubelet.kubeconfig'), kubeconfigYaml(apiServerUrl, pki, 'kubelet'), { mode: 0o600 });
  writeFileSync(join(worker.stateDir, 'kube-proxy.kubeconfig'), kubeconfigYaml(apiServerUrl, pki, 'kube-proxy'), { mode: 0o600 });
}

/** The client certificate the API server presents to kubelets (logs, exec, port-forward). */
export async function issueApiServerKubeletClient(pki: string): Promise<{ cert: string; key: string }> {
  await issueCertificate(pki, 'apiserver-kubelet-client', '/CN=kube-apiserver-kubelet-client/O=system:masters');
  return { cert: join(pki, 'apiserver-kubelet-client.crt'), key: join(pki, 'apiserver-kubelet-client.key') };
}

/**
 * Phase 1, before the control plane: claims a slot, makes the network (the API server binds on the
 * bridge), the cgroup root and the state directory. Returns the worker's state with no process yet.
 */
export async function prepareWorker(clusterDir: string, artifacts: WorkerArtifacts): Promise<WorkerState> {
  const net = await claimSlot(clusterDir);
  const stateDir = join(clusterDir, 'worker');
  const worker: WorkerState = {
    ...net,
    nodeName: workerNodeName,
    containerdSocket: join(stateDir, 'containerd', 'containerd.sock'),
    stateDir,
    bin: artifacts.bin,
    tools: artifacts.tools,
    pids: {},
  };
  try {
    for (const sub of ['log', 'containerd', 'cni/net.d', 'cni/ipam', 'kubelet', 'pod-logs']) mkdirSync(join(stateDir, sub), { recursive: true });
    await createNetwork(net);
    createCgroupRoot(net.cgroupRoot);
  } catch (error) {
    await removeMachineState(net, stateDir).catch(() => undefined);
    await releaseSlot(net.slot, clusterDir);
    throw error;
  }
  return worker;
}

/** Phase 2, in parallel with the control plane: containerd up, the node's images imported. */
export async function startContainerd(worker: WorkerState, artifacts: WorkerArtifacts): Promise<void> {
  writeFileSync(join(worker.stateDir, 'containerd.toml'), containerdConfig(worker));
  writeFileSync(join(worker.stateDir, 'cni', 'net.d', '10-pods.conflist'), cniConfig(worker));
  startWorkerProcess(worker, 'containerd', ['--config', join(worker.stateDir, 'containerd.toml'), '--log-level', 'warn']);
  await waitFor('containerd', async () => {
    await run('ctr', ['-a', worker.containerdSocket, 'version']);
    return true;
  }, 60_000);
  await Promise.all(Object.values(artifacts.images).map((archive) => importArchive(worker.containerdSocket, archive)));
}

async function importArchive(socket: string, tarPath: string): Promise<void> {
  await run('ctr', ['-a', socket, '-n', 'k8s.io', 'images', 'import', tarPath], { maxBuffer: 16 * 1024 * 1024 });
}

/** Imports a docker-archive (e.g. from `podman save --format docker-archive`) into the worker's containerd. */
export async function importImageArchive(state: ClusterWithWorker, tarPath: string): Promise<void> {
  if (!state.worker) throw new Error(`the cluster in ${state.dir} has no real worker`);
  await importArchive(state.worker.containerdSocket, tarPath);
}

/** Phase 3, once the API server is ready: kubelet registers the node, kube-proxy, CoreDNS. */
export async function joinWorker(cluster: ClusterWithWorker & { apiServerUrl: string }, pki: string): Promise<void> {
  const worker = cluster.worker!;
  await issueNodeCredentials(worker, pki, cluster.apiServerUrl);
  writeFileSync(join(worker.stateDir, 'resolv.conf'), '');
  writeFileSync(join(worker.stateDir, 'kubelet.yaml'), kubeletConfig(worker, pki));
  writeFileSync(join(worker.stateDir, 'kube-proxy.yaml'), kubeProxyConfig(worker));
  startWorkerProcess(worker, 'kubelet', [
    `--config=${join(worker.stateDir, 'kubelet.yaml')}`,
    `--kubeconfig=${join(worker.stateDir, 'kubelet.kubeconfig')}`,
    `--root-dir=${join(worker.stateDir, 'kubelet')}`,
    `--cert-dir=${join(worker.stateDir, 'kubelet', 'pki')}`,
    `--hostname-override=${worker.nodeName}`,
    `--node-ip=${worker.nodeIp}`,
    '--node-labels=iotedge-operator.io/node=real',
  ]);
  startWorkerProcess(worker, 'kube-proxy', [`--config=${join(worker.stateDir, 'kube-proxy.yaml')}`]);
  await kubectl(cluster, ['apply', '--server-side', '-f', '-'], coreDnsManifests().map((o) => JSON.stringify(o)).join('\n---\n'));
  await waitFor(`node ${worker.nodeName} Ready`, async () =>
    (await kubectl(cluster, ['get', 'node', worker.nodeName, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'])) === 'True',
  );
  // kubelet may not set a node-role label on its own node (NodeRestriction); the admin may.
  await kubectl(cluster, ['label', 'node', worker.nodeName, 'node-role.kubernetes.io/worker=', '--overwrite']);
  await kubectl(cluster, ['-n', 'kube-system', 'rollout', 'status', 'deployment/coredns', '--timeout=120s']);
}

export function workerHealthy(worker: WorkerState): boolean {
  return workerComponents.every((c) => workerProcessAlive(worker, c));
}

export function workerComponentStatus(worker: WorkerState): { name: WorkerComponent; pid?: number; running: boolean }[] {
  return workerComponents.map((name) => ({ name, pid: worker.pids[name], running: workerProcessAlive(worker, name) }));
}

/**
 * Stops the node agents by recorded PID, then the pods' processes (from the worker's cgroups) and the
 * shims (from their pid files), and removes every mount, cgroup, log link, netns and bridge it made.
 */
export async function stopWorker(clusterDir: string, worker: WorkerState): Promise<void> {
  const byPid = (names: WorkerComponent[]) =>
    stopPids(names.map((n) => worker.pids[n] ?? 0), (pid) => names.some((n) => worker.pids[n] === pid && workerProcessAlive(worker, n)));
  await byPid(['kube-proxy', 'kubelet']);
  await stopPids(podProcesses(worker.cgroupRoot), pidAlive, 0);
  await byPid(['containerd']);
  await removeMachineState(worker, worker.stateDir);
  await releaseSlot(worker.slot, clusterDir);
}

// ---------------------------------------------------------------------------------------------------
// CoreDNS: cluster DNS at 10.96.0.10, answering for cluster.local only (nothing to forward to).

const corefile = `.:1053 {
    errors
    health :8080
    ready :8181
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    cache 30
    loop
    reload
    loadbalance
}
`;

function coreDnsManifests(): object[] {
  const labels = { 'k8s-app': 'kube-dns' };
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'coredns', namespace: 'kube-system' } },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'system:coredns' },
      rules: [
        { apiGroups: [''], resources: ['endpoints', 'services', 'pods', 'namespaces'], verbs: ['list', 'watch'] },
        { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'watch'] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: 'system:coredns' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:coredns' },
      subjects: [{ kind: 'ServiceAccount', name: 'coredns', namespace: 'kube-system' }],
    },
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'coredns', namespace: 'kube-system' }, data: { Corefile: corefile } },
    {
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'coredns', namespace: 'kube-system', labels },
      spec: {
        replicas: 1,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: 'coredns',
            dnsPolicy: 'Default',
            nodeSelector: { 'kubernetes.io/hostname': workerNodeName },
            containers: [{
              name: 'coredns',
              image: 'localhost/coredns:1',
              imagePullPolicy: 'Never',
              args: ['-conf', '/etc/coredns/Corefile'],
              // Unprivileged port: the image runs as nobody with no capabilities; the Service maps 53 to it.
              ports: [{ containerPort: 1053, protocol: 'UDP', name: 'dns' }, { containerPort: 1053, protocol: 'TCP', name: 'dns-tcp' }],
              readinessProbe: { httpGet: { path: '/ready', port: 8181 }, periodSeconds: 2 },
              livenessProbe: { httpGet: { path: '/health', port: 8080 }, periodSeconds: 10, failureThreshold: 5 },
              resources: { requests: { cpu: '50m', memory: '32Mi' }, limits: { memory: '128Mi' } },
              securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
              volumeMounts: [{ name: 'config', mountPath: '/etc/coredns', readOnly: true }],
            }],
            volumes: [{ name: 'config', configMap: { name: 'coredns' } }],
          },
        },
      },
    },
    {
      apiVersion: 'v1', kind: 'Service', metadata: { name: 'kube-dns', namespace: 'kube-system', labels },
      spec: {
        clusterIP: serviceDnsIp,
        selector: labels,
        ports: [
          { name: 'dns', port: 53, targetPort: 1053, protocol: 'UDP' },
          { name: 'dns-tcp', port: 53, targetPort: 1053, protocol: 'TCP' },
        ],
      },
    },
  ];
}
