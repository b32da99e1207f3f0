// Starts one control plane for the whole jest run, or reuses the one `npm run cluster:up` started.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultClusterDir, healthyCluster, startControlPlane } from '../../scripts/cluster/control-plane.ts';

declare global {
  var __iotedgeClusterUsers: number | undefined;
  var __iotedgeClusterStartedDir: string | undefined;
}

export default async function globalSetup(): Promise<void> {
  // Both the integration and e2e projects declare this setup; the first one starts the cluster.
  globalThis.__iotedgeClusterUsers = (globalThis.__iotedgeClusterUsers ?? 0) + 1;
  if (process.env.IOTEDGE_TEST_KUBECONFIG) return;
  let state = process.env.IOTEDGE_TEST_FRESH_CLUSTER ? undefined : await healthyCluster(defaultClusterDir);
  if (state) {
    process.stderr.write(`\n[test] reusing the control plane from npm run cluster:up (${state.apiServerUrl})\n`);
  } else {
    const dir = mkdtempSync(join(tmpdir(), 'iotedge-operator-test-'));
    process.stderr.write(`\n[test] starting a control plane for this run in ${dir}\n`);
    state = await startControlPlane(dir);
    globalThis.__iotedgeClusterStartedDir = dir;
  }
  process.env.IOTEDGE_TEST_KUBECONFIG = state.kubeconfig;
  process.env.IOTEDGE_TEST_BIN = state.bin;
}
