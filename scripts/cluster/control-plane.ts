// A real Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler and KWOK playing one worker node. Used by `npm run cluster:*` and the jest global setup.
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { dump as toYaml } from 'js-yaml';

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, '../..');
/** Where `npm run cluster:up` keeps its state; the admin kubeconfig is `<this>/kubeconfig`. */
export const defaultClusterDir = join(repoRoot, '.cluster');
export const workerNodeName = 'edge-worker-0';

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
}

const log = (message: string) => process.stderr.write(`[cluster] ${message}\n`);

/** Builds (first time) or finds the cached binaries; returns their directory. */
export async function ensureBinaries(): Promise<string> {
  const script = join(here, 'build-binaries.sh');
  return new Promise((resolveBin, reject) => {
    const child = spawn('bash', [script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolveBin(out.trim().split('\n').pop() ?? '') : reject(new Error(`build-binaries.sh exited with ${code}`)),
    );
  });
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

async function openssl(cwd: string, ...args: string[]): Promise<void> {
  await run('openssl', args, { cwd });
}

/** A throwaway CA, the serving certificate, an admin client certificate and the service-account key pair. */
async function createPki(pki: string): Promise<void> {
  mkdirSync(pki, { recursive: true });
  const sans = [
    'IP:127.0.0.1',
    'IP:10.96.0.1',
    'DNS:localhost',
    'DNS:kubernetes',
    'DNS:kubernetes.default',
    'DNS:kubernetes.default.svc',
    'DNS:kubernetes.default.svc.cluster.local',
  ].join(',');
  writeFileSync(join(pki, 'serving.ext'), `subjectAltName=${sans}\nextendedKeyUsage=serverAuth\n`);
  writeFileSync(join(pki, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  await openssl(pki, 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '30', '-subj', '/CN=iotedge-operator-local-ca', '-keyout', 'ca.key', '-out', 'ca.crt');
  const leaf = async (name: string, subject: string, ext: string) => {
    await openssl(pki, 'req', '-newkey', 'rsa:2048', '-nodes', '-subj', subject, '-keyout', `${name}.key`, '-out', `${name}.csr`);
    await openssl(pki, 'x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '30', '-out', `${name}.crt`, '-extfile', ext);
  };
  await leaf('apiserver', '/CN=kube-apiserver', 'serving.ext');
  await leaf('admin', '/CN=admin/O=system:masters', 'client.ext');
  await openssl(pki, 'genrsa', '-out', 'sa.key', '2048');
  await openssl(pki, 'rsa', '-in', 'sa.key', '-pubout', '-out', 'sa.pub');
}

function kubeconfigYaml(server: string, pki: string): string {
  const b64 = (file: string) => readFileSync(join(pki, file)).toString('base64');
  return toYaml({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'local', cluster: { server, 'certificate-authority-data': b64('ca.crt') } }],
    users: [{ name: 'admin', user: { 'client-certificate-data': b64('admin.crt'), 'client-key-data': b64('admin.key') } }],
    contexts: [{ name: 'local', context: { cluster: 'local', user: 'admin' } }],
    'current-context': 'local',
  });
}

/** The executable of a component: its binary, or node for the project's own volume provisioner. */
function programOf(state: Pick<ClusterState, 'bin'>, name: Component): string {
  return name === 'volume-provisioner' ? process.execPath : join(state.bin, name);
}

function startProcess(dir: string, name: Component, binary: string, args: string[], state?: ClusterState): number {
  if (state) (state.commands ??= {})[name] = [binary, ...args];
  const out = openSync(join(dir, 'log', `${name}.log`), 'a');
  // Detached so the cluster outlives `cluster:up`; its PID is recorded so `cluster:down` stops exactly it.
  const child = spawn(binary, args, { detached: true, stdio: ['ignore', out, out] });
  child.unref();
  if (child.pid === undefined) throw new Error(`could not start ${name}`);
  return child.pid;
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

export async function kubectl(state: Pick<ClusterState, 'bin' | 'kubeconfig'>, args: string[], input?: string): Promise<string> {
  const child = spawn(join(state.bin, 'kubectl'), ['--kubeconfig', state.kubeconfig, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdin.end(input ?? '');
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  if (code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${code}): ${stderr.trim()}`);
  return stdout;
}

/** True when this PID is alive and still runs the binary we started (guards against PID reuse). */
export function isOurProcess(pid: number | undefined, binary: string, dir?: string): boolean {
  if (!pid) return false;
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    // A process of ours was given this cluster's directory (its kubeconfig or data dir) in its arguments.
    return argv[0] === binary && (dir === undefined || argv.some((a) => a.includes(dir)));
  } catch {
    return false;
  }
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

/** Starts a fresh control plane in `dir` (which must not hold a running one) and waits until a pod can run. */
export async function startControlPlane(dir: string): Promise<ClusterState> {
  const began = Date.now();
  const bin = await ensureBinaries();
  await goModCacheEnv();
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'log'), { recursive: true });
  const pki = join(dir, 'pki');
  await createPki(pki);
  const ports = {
    etcdClient: await freePort(),
    etcdPeer: await freePort(),
    apiServer: await freePort(),
    controllerManager: await freePort(),
    scheduler: await freePort(),
  };
  const apiServerUrl = `https://127.0.0.1:${ports.apiServer}`;
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, kubeconfigYaml(apiServerUrl, pki), { mode: 0o600 });
  const state: ClusterState = { dir, bin, kubeconfig, apiServerUrl, ports, pids: {}, startedAt: new Date().toISOString() };
  const save = () => writeFileSync(join(dir, 'state.json'), JSON.stringify(state, null, 2));
  const p = (file: string) => join(pki, file);

  try {
    const etcdUrl = `http://127.0.0.1:${ports.etcdClient}`;
    const peerUrl = `http://127.0.0.1:${ports.etcdPeer}`;
    state.pids.etcd = startProcess(dir, 'etcd', join(bin, 'etcd'), [
      '--name=local', `--data-dir=${join(dir, 'etcd')}`, '--unsafe-no-fsync', '--log-level=warn',
      `--listen-client-urls=${etcdUrl}`, `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=${peerUrl}`, `--initial-advertise-peer-urls=${peerUrl}`, `--initial-cluster=local=${peerUrl}`,
      '--quota-backend-bytes=4294967296',
    ], state);
    save();
    await waitFor('etcd', async () => (await fetch(`${etcdUrl}/health`)).ok);

    state.pids['kube-apiserver'] = startProcess(dir, 'kube-apiserver', join(bin, 'kube-apiserver'), [
      `--etcd-servers=${etcdUrl}`, '--bind-address=127.0.0.1', `--secure-port=${ports.apiServer}`,
      // Loopback only: advertising 127.0.0.1 requires turning the endpoint reconciler off.
      '--advertise-address=127.0.0.1', '--endpoint-reconciler-type=none',
      `--tls-cert-file=${p('apiserver.crt')}`, `--tls-private-key-file=${p('apiserver.key')}`, `--client-ca-file=${p('ca.crt')}`,
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${p('sa.pub')}`, `--service-account-signing-key-file=${p('sa.key')}`,
      '--service-cluster-ip-range=10.96.0.0/16', '--authorization-mode=Node,RBAC', '--allow-privileged=true',
      `--cert-dir=${join(dir, 'apiserver-certs')}`, '--profiling=false',
      // PodTemplate watches (a kind nothing here uses) go straight to etcd, so a compacted revision gives a real 410
      // Gone at once (the informer test relies on it); through the watch cache that only happens once it evicts.
      '--watch-cache-sizes=podtemplates#0',
    ], state);
    save();
    await waitFor('kube-apiserver /readyz', async () => (await kubectl(state, ['get', '--raw=/readyz'])).trim() === 'ok');

    const common = [`--kubeconfig=${kubeconfig}`, `--authentication-kubeconfig=${kubeconfig}`, `--authorization-kubeconfig=${kubeconfig}`,
      '--bind-address=127.0.0.1', '--leader-elect=false'];
    state.pids['kube-controller-manager'] = startProcess(dir, 'kube-controller-manager', join(bin, 'kube-controller-manager'), [
      ...common, `--secure-port=${ports.controllerManager}`, '--use-service-account-credentials=true',
      `--service-account-private-key-file=${p('sa.key')}`, `--root-ca-file=${p('ca.crt')}`,
      `--cluster-signing-cert-file=${p('ca.crt')}`, `--cluster-signing-key-file=${p('ca.key')}`,
      // Without a kubelet nothing reports volume attachment; the attach/detach controller would only log noise.
      '--controllers=*,-attachdetach', '--concurrent-deployment-syncs=10', '--concurrent-replicaset-syncs=10',
      '--kube-api-qps=200', '--kube-api-burst=400',
    ], state);
    state.pids['kube-scheduler'] = startProcess(dir, 'kube-scheduler', join(bin, 'kube-scheduler'), [
      ...common, `--secure-port=${ports.scheduler}`, '--kube-api-qps=200', '--kube-api-burst=400',
    ], state);
    save();
    const healthz = (port: number) => async () => {
      // Self-signed serving certs of KCM and scheduler; this only reads /healthz on loopback.
      const { stdout } = await run('curl', ['-fsk', `https://127.0.0.1:${port}/healthz`]);
      return stdout.trim() === 'ok';
    };
    await waitFor('kube-controller-manager /healthz', healthz(ports.controllerManager));
    await waitFor('kube-scheduler /healthz', healthz(ports.scheduler));

    startKwok(state);
    save();
    await kubectl(state, ['apply', '-f', '-'], [workerNode(), defaultStorageClass()].map((o) => toYaml(o)).join('---\n'));
    state.pids['volume-provisioner'] = startProcess(dir, 'volume-provisioner', process.execPath, [join(here, 'volume-provisioner.ts'), kubeconfig], state);
    save();
    await waitFor('the worker node to be Ready', async () =>
      (await kubectl(state, ['get', 'node', workerNodeName, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'])) === 'True',
    );
    await waitFor('the default ServiceAccount', async () => {
      await kubectl(state, ['-n', 'default', 'get', 'serviceaccount', 'default']);
      return true;
    });
    log(`control plane ready in ${((Date.now() - began) / 1000).toFixed(1)}s at ${apiServerUrl}`);
    return state;
  } catch (error) {
    log(`start failed; logs are in ${join(dir, 'log')}`);
    await stopProcesses(state);
    throw error;
  }
}

function startKwok(state: ClusterState): void {
  writeFileSync(join(state.dir, 'kwok.yaml'), kwokStages());
  state.pids.kwok = startProcess(state.dir, 'kwok', join(state.bin, 'kwok'), [
    `--kubeconfig=${state.kubeconfig}`, `--config=${join(state.dir, 'kwok.yaml')}`,
    '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
    '--cidr=10.244.0.0/16', '--node-ip=127.0.0.1', '--node-lease-duration-seconds=40',
  ], state);
}

async function stopComponent(state: ClusterState, name: Component): Promise<void> {
  const pid = state.pids[name];
  const alive = () => isOurProcess(pid, programOf(state, name), state.dir);
  if (!alive()) return;
  process.kill(pid!, 'SIGTERM');
  const deadline = Date.now() + 10_000;
  while (alive() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (alive()) process.kill(pid!, 'SIGKILL');
}

/** Restarts KWOK alone, e.g. to load changed fault stages into a running cluster. */
export async function restartKwok(dir: string): Promise<void> {
  const state = readState(dir);
  if (!state) throw new Error(`no control plane in ${dir}`);
  await goModCacheEnv();
  await stopComponent(state, 'kwok');
  startKwok(state);
  writeFileSync(join(dir, 'state.json'), JSON.stringify(state, null, 2));
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
  writeFileSync(join(dir, 'state.json'), JSON.stringify(state, null, 2));
  if (name === 'kube-apiserver') await waitFor('kube-apiserver /readyz', async () => (await kubectl(state, ['get', '--raw=/readyz'])).trim() === 'ok');
}

/** The worker of the Azure Stack Edge Pro shape: one node, managed by KWOK, with a GPU to schedule GPU modules. */
function workerNode() {
  // Room for the benchmarks' thousands of pods; KWOK runs none of them.
  const resources = { cpu: '64', memory: '256Gi', pods: '10000', 'nvidia.com/gpu': '1', 'ephemeral-storage': '1Ti' };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: workerNodeName,
      annotations: { 'kwok.x-k8s.io/node': 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
      labels: {
        'kubernetes.io/hostname': workerNodeName,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        'node-role.kubernetes.io/worker': '',
        type: 'kwok',
      },
    },
    spec: {},
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
  const ours = (name: Component) => isOurProcess(state.pids[name], programOf(state, name), state.dir);
  const running = [...components].reverse().filter(ours);
  for (const name of running) process.kill(state.pids[name]!, 'SIGTERM');
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && running.some(ours)) {
    await new Promise((r) => setTimeout(r, 100));
  }
  for (const name of running) {
    if (ours(name)) process.kill(state.pids[name]!, 'SIGKILL');
  }
}

/** Stops exactly the processes recorded in `dir` and removes their data. */
export async function stopControlPlane(dir: string): Promise<boolean> {
  const state = readState(dir);
  if (!state) return false;
  await stopProcesses(state);
  rmSync(dir, { recursive: true, force: true });
  return true;
}

export interface ComponentStatus {
  name: Component;
  pid?: number;
  running: boolean;
}

export function componentStatus(state: ClusterState): ComponentStatus[] {
  return components.map((name) => ({ name, pid: state.pids[name], running: isOurProcess(state.pids[name], programOf(state, name), state.dir) }));
}

/** A running cluster in `dir` whose every process is alive and whose API server answers. */
export async function healthyCluster(dir: string): Promise<ClusterState | undefined> {
  const state = readState(dir);
  if (!state || componentStatus(state).some((c) => !c.running)) return undefined;
  try {
    return (await kubectl(state, ['get', '--raw=/readyz'])).trim() === 'ok' ? state : undefined;
  } catch {
    return undefined;
  }
}
