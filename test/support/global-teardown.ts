import { stopControlPlane } from '../../scripts/cluster/control-plane.ts';

export default async function globalTeardown(): Promise<void> {
  globalThis.__iotedgeClusterUsers = (globalThis.__iotedgeClusterUsers ?? 1) - 1;
  const dir = globalThis.__iotedgeClusterStartedDir;
  if (globalThis.__iotedgeClusterUsers > 0 || !dir) return;
  if (process.env.IOTEDGE_TEST_KEEP_CLUSTER) {
    process.stderr.write(`[test] leaving the control plane in ${dir} running (IOTEDGE_TEST_KEEP_CLUSTER)\n`);
    return;
  }
  await stopControlPlane(dir);
  globalThis.__iotedgeClusterStartedDir = undefined;
}
