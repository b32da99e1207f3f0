// Starts one cluster (control plane, the real worker edge-worker-0, one KWOK node) for the whole jest
// run, or reuses the one `npm run cluster:up` started in this worktree if it has a real worker. Several
// runs on one machine each get their own worker slot (see scripts/cluster/worker.ts).
import { existsSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { auditLogPath, defaultClusterDir, healthyCluster, startControlPlane, stopControlPlane } from '../../scripts/cluster/control-plane.ts';
import { provideProjectImages } from './images.ts';

declare global {
  var __iotedgeClusterUsers: number | undefined;
  var __iotedgeClusterStartedDir: string | undefined;
}

export default async function globalSetup(): Promise<void> {
  // Both the integration and e2e projects declare this setup; the first one starts the cluster.
  globalThis.__iotedgeClusterUsers = (globalThis.__iotedgeClusterUsers ?? 0) + 1;
  if (process.env.IOTEDGE_TEST_KUBECONFIG) return;
  let state = process.env.IOTEDGE_TEST_FRESH_CLUSTER ? undefined : await healthyCluster(defaultClusterDir);
  if (state && (!state.worker || !state.kwokNodes?.length)) {
    process.stderr.write('\n[test] the cluster from npm run cluster:up has no real worker or no KWOK node; starting one for this run\n');
    state = undefined;
  }
  if (state) {
    process.stderr.write(`\n[test] reusing the control plane from npm run cluster:up (${state.apiServerUrl})\n`);
  } else {
    const dir = mkdtempSync(join(tmpdir(), 'iotedge-operator-test-'));
    process.stderr.write(`\n[test] starting a cluster for this run in ${dir}\n`);
    state = await startControlPlane(dir, { worker: true, kwokNodes: 1, ownerPid: process.pid });
    globalThis.__iotedgeClusterStartedDir = dir;
  }
  // The operator's and the sample modules' images, for the tests that run them on the worker. Here, where no
  // jest timeout applies: a cold machine builds them once (minutes), later runs reuse them.
  try {
    await provideProjectImages(state);
  } catch (error) {
    // jest runs no global teardown after a failed setup: stop the cluster this run started, or it stays up.
    if (globalThis.__iotedgeClusterStartedDir) await stopControlPlane(globalThis.__iotedgeClusterStartedDir);
    throw error;
  }
  process.env.IOTEDGE_TEST_KUBECONFIG = state.kubeconfig;
  process.env.IOTEDGE_TEST_BIN = state.bin;
  // For the secret-leak check at teardown: this run's part of the audit log, and a directory for log lines.
  const audit = auditLogPath(state.dir);
  process.env.IOTEDGE_TEST_AUDIT_LOG = audit;
  process.env.IOTEDGE_TEST_AUDIT_OFFSET = String(existsSync(audit) ? statSync(audit).size : 0);
  process.env.IOTEDGE_TEST_CAPTURE_DIR ??= mkdtempSync(join(tmpdir(), 'iotedge-operator-capture-'));
}
