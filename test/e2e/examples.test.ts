// Every example in manifests/examples is an end-to-end test: applied in kubectl mode to its own
// namespace on the real control plane, the operator must bring it to Ready with every module as desired.
// EdgeDeployment YAML is applied as is; a deployment.json goes through `iotedge-operator convert` first.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadAll } from 'js-yaml';
import type { EdgeDeployment } from '../../src/api/edge-deployment.ts';
import { repoRoot } from '../../scripts/cluster/control-plane.ts';
import { createTestNamespace, deleteTestNamespace, eventually, kubectl, testCluster } from '../support/cluster.ts';
import { ensureCrd, operatorKubeConfig, startTestOperator, type RunningOperator } from '../support/operator.ts';

const run = promisify(execFile);
const cluster = testCluster();
const examplesDir = join(repoRoot, 'manifests/examples');
const examples = readdirSync(examplesDir).filter((f) => f.endsWith('.yaml') || f.endsWith('.json')).sort();
const namespaces = new Map<string, string>();
let operator: RunningOperator;

async function resourcesFor(file: string, namespace: string): Promise<string> {
  const path = join(examplesDir, file);
  if (file.endsWith('.json')) {
    const { stdout } = await run(process.execPath, [join(repoRoot, 'src/cli/main.ts'), 'convert', path, '--namespace', namespace, '--name', 'device']);
    return stdout;
  }
  return readFileSync(path, 'utf8');
}

beforeAll(async () => {
  await ensureCrd(cluster);
  for (const file of examples) namespaces.set(file, await createTestNamespace(cluster, 'example'));
  const home = [...namespaces.values()][0]!;
  operator = await startTestOperator(await operatorKubeConfig(cluster, home), [...namespaces.values()]);
});
afterAll(async () => {
  await operator?.stop();
  for (const ns of namespaces.values()) await deleteTestNamespace(cluster, ns);
});

describe('manifests/examples', () => {
  it('has examples', () => {
    expect(examples.length).toBeGreaterThan(0);
  });

  it.each(examples)('%s converges to Ready in kubectl mode', async (file) => {
    const namespace = namespaces.get(file)!;
    const yaml = await resourcesFor(file, namespace);
    const docs = loadAll(yaml) as { kind: string }[];
    expect(docs.filter((d) => d?.kind === 'EdgeDeployment')).toHaveLength(1);
    await kubectl(cluster, ['apply', '--server-side', '-n', namespace, '-f', '-'], yaml);
    const ed = await eventually(`${file} Ready`, async () => {
      const current = JSON.parse(await kubectl(cluster, ['-n', namespace, 'get', 'edgedeployment', '-o', 'json'])) as { items: EdgeDeployment[] };
      const only = current.items[0];
      const ready = only?.status?.observedGeneration === only?.metadata?.generation && only?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
      return ready ? only : undefined;
    }, 120_000);
    expect(ed.status?.conditions?.find((c) => c.type === 'Valid')?.status).toBe('True');
    for (const [id, module] of Object.entries(ed.status?.modules ?? {})) {
      expect({ id, runtimeStatus: module.runtimeStatus }).toEqual({ id, runtimeStatus: module.status === 'stopped' ? 'stopped' : 'running' });
    }
  });
});
