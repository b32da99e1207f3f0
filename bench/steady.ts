// IoT Hub mode at steady state: after a device converges, how many write requests the operator sends to the
// API server and how many reported patches to the hub while edgeAgent's hourly full re-read of the twins is
// forced to run every few seconds. The target is 0 of each. Beside it, the same run's baseline: the writes of
// converging the same deployment. Figures only; no assertions.
//   npm run bench -- steady [--minutes 10] [--refresh-seconds 10] [--devices 3]
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { getCACertificates, setDefaultCACertificates } from 'node:tls';
import { KubeConfig } from '@kubernetes/client-node';
import { startHubEmulator, type JsonObject } from '../src/emulator/index.ts';
import { kubectl, repoRoot, startControlPlane, stopControlPlane } from '../scripts/cluster/control-plane.ts';
import { allRunning, bindDevice, deploy, desiredVersionOf, manifest, serviceRegistry } from '../test/e2e/iothub-support.ts';
import { startTestOperator } from '../test/support/operator.ts';
import type { TestCluster } from '../test/support/cluster.ts';
import { option } from './support.ts';

export async function main(args: string[]): Promise<void> {
  const minutes = Number(option(args, '--minutes') ?? 10);
  const refreshMs = Number(option(args, '--refresh-seconds') ?? 10) * 1000;
  const deviceCount = Number(option(args, '--devices') ?? 3);
  // KWOK only: the figures are the operator's writes, not a kubelet's.
  const state = await startControlPlane(mkdtempSync(join(tmpdir(), 'iotedge-operator-steady-bench-')), { worker: false, kwokNodes: 1, ownerPid: process.pid });
  const hub = await startHubEmulator({ hubName: 'steady-bench-hub' });
  hub.setMaxListeners(0);
  setDefaultCACertificates([...getCACertificates('default'), hub.caCertPem]);
  try {
    await kubectl(state, ['apply', '--server-side', '-f', join(repoRoot, 'crds')]);
    await kubectl(state, ['wait', '--for=condition=Established', '--timeout=60s', 'crd/edgedeployments.iotedge-operator.io']);
    const kc = new KubeConfig();
    kc.loadFromFile(state.kubeconfig);
    const cluster = { kubeconfigPath: state.kubeconfig, bin: state.bin, kc } as TestCluster;
    const devices = Array.from({ length: deviceCount }, (_, i) => `steady-${i}`);
    await kubectl(state, ['apply', '-f', '-'], devices.map((name) => JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } })).join('\n---\n'));
    const operator = await startTestOperator(kc, devices, {}, { twinSync: { timings: { refreshMs } } });
    const registry = serviceRegistry(hub);
    let reportedPatches = 0;
    let edgeHubReads = 0;
    hub.on('reportedPatch', () => { reportedPatches += 1; });
    hub.on('connected', (c: { moduleId?: string }) => { if (c.moduleId === '$edgeHub') edgeHubReads += 1; });
    const writes = (from: number) => operator.requests.slice(from).filter((r) => r.method !== 'GET');
    try {
      for (const d of devices) {
        hub.createEdgeDevice(d);
        await bindDevice(cluster, hub, d);
        await deploy(registry, d, manifest({ sensor: {}, filter: {} }));
      }
      const reported = (d: string) => ((hub.admin.twin(d, '$edgeAgent') as { properties?: { reported?: JsonObject } }).properties?.reported ?? {});
      while (!devices.every((d) => allRunning(reported(d), ['sensor', 'filter'], desiredVersionOf(hub, d)))) await sleep(500);
      await sleep(2 * refreshMs);
      const converge = { writes: writes(0).length, reported: reportedPatches };
      const from = operator.requests.length;
      const reportedFrom = reportedPatches;
      const readsFrom = edgeHubReads;
      process.stderr.write(`[bench] converged; watching ${minutes} min with the twins re-read every ${refreshMs / 1000} s\n`);
      await sleep(minutes * 60_000);
      const steady = writes(from);
      console.log(`\nsteady benchmark: ${deviceCount} device(s), IoT Hub mode, full twin re-read every ${refreshMs / 1000} s (edgeAgent: hourly)`);
      console.log(`baseline (converging):  ${converge.writes} API writes, ${converge.reported} reported patches`);
      console.log(`steady (${minutes} min):       ${steady.length} API writes, ${reportedPatches - reportedFrom} reported patches, ${edgeHubReads - readsFrom} full re-reads done`);
      for (const w of steady.slice(0, 10)) console.log(`  write: ${w.method} ${w.path} -> ${w.code}`);
    } finally {
      await operator.stop();
    }
  } finally {
    await hub.stop();
    await stopControlPlane(state.dir);
  }
}
