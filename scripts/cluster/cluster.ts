// Command line for the local control plane: up, down, status.
import { relative } from 'node:path';
import {
  componentStatus, defaultClusterDir, healthyCluster, kubectl, readState, repoRoot, restartKwok, startControlPlane, stopControlPlane,
} from './control-plane.ts';

const command = process.argv[2];
const rel = (path: string) => relative(process.cwd(), path) || '.';

async function up(): Promise<void> {
  const existing = await healthyCluster(defaultClusterDir);
  const state = existing ?? (await startControlPlane(defaultClusterDir));
  if (existing) console.log('The local control plane is already running.');
  console.log(await kubectl(state, ['get', 'nodes', '-o', 'wide']));
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
  for (const c of componentStatus(state)) console.log(`${c.name.padEnd(24)} ${c.running ? 'running' : 'STOPPED'}  pid ${c.pid ?? '-'}`);
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
  console.log(stopped ? 'Stopped the local control plane and removed its data.' : 'No local control plane was running.');
}

async function reloadStages(): Promise<void> {
  await restartKwok(defaultClusterDir);
  console.log('Restarted KWOK with the current stages.');
}

const commands: Record<string, () => Promise<void>> = { up, down, status, 'reload-stages': reloadStages };
const action = command ? commands[command] : undefined;
if (!action) {
  console.error(`usage: cluster.ts up|down|status|reload-stages   (state in ${rel(defaultClusterDir)} under ${repoRoot})`);
  process.exit(2);
}
action().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
