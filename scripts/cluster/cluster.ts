// Command line for the local cluster: up [--kwok-nodes N] [--no-worker], down, status, prune.
import { relative } from 'node:path';
import { parseArgs } from 'node:util';
import {
  componentStatus, defaultClusterDir, healthyCluster, kubectl, pruneOrphanClusters, readState, repoRoot, restartKwok, startControlPlane,
  stopControlPlane,
} from './control-plane.ts';
import { workerComponentStatus } from './worker.ts';

const command = process.argv[2];
const rel = (path: string) => relative(process.cwd(), path) || '.';

function upOptions(): { kwokNodes: number; worker: boolean } {
  const { values } = parseArgs({
    args: process.argv.slice(3),
    options: { 'kwok-nodes': { type: 'string', default: '1' }, 'no-worker': { type: 'boolean', default: false } },
  });
  const kwokNodes = Number(values['kwok-nodes']);
  if (!Number.isInteger(kwokNodes) || kwokNodes < 0) throw new Error(`--kwok-nodes takes a whole number, not ${values['kwok-nodes']}`);
  return { kwokNodes, worker: !values['no-worker'] };
}

async function up(): Promise<void> {
  const options = upOptions();
  const existing = await healthyCluster(defaultClusterDir);
  const began = Date.now();
  const state = existing ?? (await startControlPlane(defaultClusterDir, options));
  if (existing) console.log('The local cluster is already running.');
  else console.log(`Cluster started in ${((Date.now() - began) / 1000).toFixed(1)}s.`);
  console.log(await kubectl(state, ['get', 'nodes', '-o', 'wide']));
  if (state.worker) {
    console.log(`Real worker ${state.worker.nodeName}: netns ${state.worker.netns}, bridge ${state.worker.bridge} (${state.worker.bridgeIp}), pods ${state.worker.podCidr}`);
    console.log(`  containerd: ${state.worker.containerdSocket}   (ctr -a <socket> -n k8s.io images ls)`);
  }
  if (state.kwokNodes?.length) console.log(`KWOK nodes (tainted; a namespace opts in with kwokNamespaceAnnotations): ${state.kwokNodes.join(', ')}`);
  console.log(`API server: ${state.apiServerUrl}`);
  console.log(`Admin kubeconfig: ${state.kubeconfig}`);
  console.log(`  export KUBECONFIG=${state.kubeconfig}`);
  console.log(`  export PATH=${state.bin}:$PATH   # kubectl and helm at the cluster's version`);
}

async function status(): Promise<void> {
  const state = readState(defaultClusterDir);
  if (!state) {
    console.log(`No local control plane in ${rel(defaultClusterDir)}. Start one with: npm run cluster:up`);
    process.exitCode = 1;
    return;
  }
  const statuses = [...componentStatus(state), ...(state.worker ? workerComponentStatus(state.worker) : [])];
  for (const c of statuses) console.log(`${c.name.padEnd(24)} ${c.running ? 'running' : 'STOPPED'}  pid ${c.pid ?? '-'}`);
  const healthy = await healthyCluster(defaultClusterDir);
  if (!healthy) {
    console.log('The control plane is not healthy. Logs: ' + rel(`${state.dir}/log`));
    process.exitCode = 1;
    return;
  }
  console.log(`\nAPI server ${state.apiServerUrl}: ready`);
  console.log(await kubectl(state, ['get', '--raw=/readyz?verbose']).then((s) => s.split('\n').filter((l) => l.startsWith('readyz')).join('\n')));
  console.log(await kubectl(state, ['get', 'nodes']));
  console.log(`KUBECONFIG=${state.kubeconfig}`);
}

async function down(): Promise<void> {
  const stopped = await stopControlPlane(defaultClusterDir);
  console.log(stopped ? 'Stopped the local cluster and removed its data, network namespace, bridge, mounts and cgroups.' : 'No local cluster was running.');
}

async function prune(): Promise<void> {
  const removed = await pruneOrphanClusters();
  for (const dir of removed) console.log(`Stopped and removed the orphaned cluster ${dir}.`);
  console.log(removed.length ? `Pruned ${removed.length} cluster(s) whose test or bench run had died.` : 'No orphaned test or bench cluster found.');
}

async function reloadStages(): Promise<void> {
  await restartKwok(defaultClusterDir);
  console.log('Restarted KWOK with the current stages.');
}

const commands: Record<string, () => Promise<void>> = { up, down, status, prune, 'reload-stages': reloadStages };
const action = command ? commands[command] : undefined;
if (!action) {
  console.error(`usage: cluster.ts up [--kwok-nodes N] [--no-worker] | down | status | prune | reload-stages   (state in ${rel(defaultClusterDir)} under ${repoRoot})`);
  process.exit(2);
}
action().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
