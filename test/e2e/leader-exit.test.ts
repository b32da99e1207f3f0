// No zombie leader: `iotedge-operator run --leader-elect` as a process exits non-zero when it loses the
// Lease, and a leader whose caches cannot sync releases the Lease and exits non-zero instead of holding
// it while reconciling nothing.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Lease } from '@kubernetes/client-node';
import { load } from 'js-yaml';
import { freePort, repoRoot } from '../../scripts/cluster/control-plane.ts';
import { createTestNamespace, deleteTestNamespace, eventually, kubectl, testCluster } from '../support/cluster.ts';
import { ensureCrd } from '../support/operator.ts';
import { captureOutput } from '../support/secret-leaks.ts';

const cluster = testCluster();
let ns: string;
const running: ChildProcess[] = [];

beforeAll(async () => {
  await ensureCrd(cluster);
  ns = await createTestNamespace(cluster, 'leader-exit');
});
afterAll(async () => {
  for (const p of running) if (p.exitCode === null) p.kill('SIGKILL');
  await deleteTestNamespace(cluster, ns);
});

interface Operator {
  process: ChildProcess;
  output: () => string;
  exit: Promise<number | null>;
  probe: number;
}

async function startOperator(kubeconfig: string, lease: string, extra: string[] = []): Promise<Operator> {
  const probe = await freePort();
  const child = spawn(process.execPath, [join(repoRoot, 'src/cli/main.ts'), 'run', '--kubeconfig', kubeconfig, '--namespaces', ns,
    '--leader-elect', '--leader-election-namespace', ns, '--leader-election-id', lease,
    '--leader-election-lease-duration', '4', '--leader-election-renew-deadline', '3', '--leader-election-retry-period', '1',
    '--health-probe-bind-address', `127.0.0.1:${probe}`, '--metrics-bind-address', '0', '--no-twin-sync', ...extra],
  { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, IOTEDGE_OPERATOR_LOG_LEVEL: 'info' } });
  running.push(child);
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => {
    captureOutput(`leader-exit-${lease}`, output);
    resolve(code);
  }));
  return { process: child, output: () => output, exit, probe };
}

async function lease(name: string): Promise<V1Lease | undefined> {
  const text = await kubectl(cluster, ['-n', ns, 'get', 'lease', name, '-o', 'json', '--ignore-not-found']);
  return text.trim() === '' ? undefined : JSON.parse(text) as V1Lease;
}

/** A kubeconfig for a ServiceAccount that may hold Leases in the namespace and nothing else. */
async function leaseOnlyKubeconfig(): Promise<string> {
  const docs = [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'lease-only', namespace: ns } },
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'lease-only', namespace: ns },
      rules: [{ apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] }] },
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'lease-only', namespace: ns },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'lease-only' }, subjects: [{ kind: 'ServiceAccount', name: 'lease-only', namespace: ns }] },
  ];
  await kubectl(cluster, ['apply', '--server-side', '-f', '-'], docs.map((d) => JSON.stringify(d)).join('\n---\n'));
  const token = (await kubectl(cluster, ['-n', ns, 'create', 'token', 'lease-only', '--duration=1h'])).trim();
  const admin = load(readFileSync(cluster.kubeconfigPath, 'utf8')) as { clusters: { cluster: Record<string, string> }[] };
  const file = join(mkdtempSync(join(tmpdir(), 'lease-only-')), 'kubeconfig');
  writeFileSync(file, JSON.stringify({
    apiVersion: 'v1', kind: 'Config', 'current-context': 'c',
    clusters: [{ name: 'c', cluster: admin.clusters[0]!.cluster }],
    users: [{ name: 'u', user: { token } }],
    contexts: [{ name: 'c', context: { cluster: 'c', user: 'u', namespace: ns } }],
  }), { mode: 0o600 });
  return file;
}

describe('leader election in the operator process', () => {
  it('exits non-zero when another identity takes the Lease', async () => {
    const operator = await startOperator(cluster.kubeconfigPath, 'lost-lease');
    const held = await eventually('the operator leads', async () => {
      const l = await lease('lost-lease');
      const ready = await fetch(`http://127.0.0.1:${operator.probe}/readyz`).then((r) => r.ok, () => false);
      return l?.spec?.holderIdentity && ready ? l : undefined;
    });
    expect(held.spec?.holderIdentity).not.toBe('thief');
    await kubectl(cluster, ['-n', ns, 'patch', 'lease', 'lost-lease', '--type=merge', '-p',
      JSON.stringify({ spec: { holderIdentity: 'thief', renewTime: new Date().toISOString().replace(/Z$/, '000Z') } })]);
    expect(await operator.exit).toBe(1);
    expect(operator.output()).toContain('lost the leader lease');
  });

  it('releases the Lease and exits non-zero when its caches cannot sync', async () => {
    const operator = await startOperator(await leaseOnlyKubeconfig(), 'no-sync', ['--cache-sync-timeout', '3']);
    await eventually('the operator takes the Lease', async () => ((await lease('no-sync'))?.spec?.holderIdentity ? true : undefined));
    expect(await operator.exit).toBe(1);
    expect(operator.output()).toContain('the caches did not sync');
    expect((await lease('no-sync'))?.spec?.holderIdentity ?? '').toBe('');
  });
});
