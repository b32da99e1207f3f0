// `iotedge-operator run` as users start it: a process with flags, probes and metrics on loopback,
// reconciling a namespace, and a graceful exit on SIGTERM.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { freePort, repoRoot } from '../../scripts/cluster/control-plane.ts';
import { createTestNamespace, deleteTestNamespace, eventually, kubectl, testCluster } from '../support/cluster.ts';
import { ensureCrd } from '../support/operator.ts';
import { captureOutput } from '../support/secret-leaks.ts';
import { isReady, sampleEdgeDeployment, sampleModule } from '../support/samples.ts';
import type { EdgeDeployment } from '../../src/api/edge-deployment.ts';

const cluster = testCluster();
let ns: string;
let operator: ChildProcess | undefined;
let output = '';

beforeAll(async () => {
  await ensureCrd(cluster);
  ns = await createTestNamespace(cluster, 'process');
});
afterAll(async () => {
  captureOutput('operator-process', output);
  if (operator && operator.exitCode === null) operator.kill('SIGKILL');
  await deleteTestNamespace(cluster, ns);
});

describe('iotedge-operator run', () => {
  it('serves probes and metrics, reconciles, and exits cleanly on SIGTERM', async () => {
    const [probe, metrics] = [await freePort(), await freePort()];
    operator = spawn(process.execPath, [join(repoRoot, 'src/cli/main.ts'), 'run', '--kubeconfig', cluster.kubeconfigPath, '--namespaces', ns,
      '--health-probe-bind-address', `127.0.0.1:${probe}`, '--metrics-bind-address', `127.0.0.1:${metrics}`],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, IOTEDGE_OPERATOR_LEADER_ELECT: 'false', IOTEDGE_OPERATOR_LOG_LEVEL: 'info' } });
    operator.stdout!.on('data', (c: Buffer) => (output += c.toString()));
    operator.stderr!.on('data', (c: Buffer) => (output += c.toString()));

    await eventually('/readyz ok', async () => ((await fetch(`http://127.0.0.1:${probe}/readyz`)).ok ? true : undefined));
    expect(await (await fetch(`http://127.0.0.1:${probe}/healthz`)).text()).toBe('ok');

    await kubectl(cluster, ['apply', '--server-side', '-f', '-'], JSON.stringify(sampleEdgeDeployment(ns, { sensor: sampleModule('example.azurecr.io/sensor:1') })));
    await eventually('Ready', async () => {
      const ed = JSON.parse(await kubectl(cluster, ['-n', ns, 'get', 'edep', 'device', '-o', 'json'])) as EdgeDeployment;
      return isReady(ed) ? ed : undefined;
    });
    const text = await (await fetch(`http://127.0.0.1:${metrics}/metrics`)).text();
    expect(text).toMatch(/controller_runtime_reconcile_total\{controller="edgedeployment",result="success"\} [1-9]/);
    expect(text).toMatch(new RegExp(`iotedge_modules\\{namespace="${ns}",edge_deployment="device",runtime_status="running"\\} 2`));
    expect(text).toMatch(/iotedge_api_requests_total\{verb="patch"/);

    // Every log line is JSON (pino), so log pipelines can parse all of it.
    const lines = output.trim().split('\n').filter(Boolean);
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(() => JSON.parse(line)).not.toThrow();

    operator.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => operator!.once('exit', resolve));
    expect(code).toBe(0);
    expect(output).toContain('shutting down');
  });
});
