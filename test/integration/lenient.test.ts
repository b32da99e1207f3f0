// Every class of manifest in test/fixtures/manifests/lenient/ converts, is applied as a user would apply
// it, and becomes Valid and Ready on the real API server, with every security policy allowed.
import { readFileSync, readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { EdgeDeployment } from '../../src/api/edge-deployment.ts';
import { resourceFromManifest } from '../../src/manifest/resource.ts';
import { createTestNamespace, deleteTestNamespace, eventually, kubectl, testCluster } from '../support/cluster.ts';
import { ensureCrd, operatorKubeConfig, startTestOperator, type RunningOperator } from '../support/operator.ts';

const cluster = testCluster();
const dir = new URL('../fixtures/manifests/lenient/', import.meta.url);
const fixtures = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
const namespaces = new Map<string, string>();
let operator: RunningOperator;

beforeAll(async () => {
  await ensureCrd(cluster);
  for (const f of fixtures) namespaces.set(f, await createTestNamespace(cluster, `lenient-${f.slice(0, 12).replace(/[^a-z0-9]+/g, '-')}`));
  const first = namespaces.get(fixtures[0]!)!;
  operator = await startTestOperator(await operatorKubeConfig(cluster, first), [...namespaces.values()], {
    allowPrivileged: true, allowHostPath: true, allowDevices: true, allowHostNetwork: true, allowAddedCapabilities: true,
  });
});
afterAll(async () => {
  await operator?.stop();
  for (const ns of namespaces.values()) await deleteTestNamespace(cluster, ns);
});

describe('manifests IoT Edge accepts', () => {
  it.each(fixtures)('%s converts, and becomes Valid and Ready', async (fixture) => {
    const ns = namespaces.get(fixture)!;
    const converted = resourceFromManifest(readFileSync(new URL(fixture, dir), 'utf8'), { namespace: ns, name: 'device' });
    if (!converted.ok) throw new Error(JSON.stringify(converted.errors, null, 2));
    const documents = [...converted.value.secrets, converted.value.resource];
    await kubectl(cluster, ['apply', '--server-side', '--field-manager=test-user', '-f', '-'], documents.map((d) => JSON.stringify(d)).join('\n'));
    const ed = await eventually(`${fixture} Ready`, async () => {
      const read = JSON.parse(await kubectl(cluster, ['-n', ns, 'get', 'edgedeployment', 'device', '-o', 'json'])) as EdgeDeployment;
      const ready = read.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
      return read.status?.observedGeneration === read.metadata?.generation && ready ? read : undefined;
    }, 120_000);
    expect(ed.status?.conditions?.find((c) => c.type === 'Valid')?.status).toBe('True');
    expect(ed.status?.conditions?.find((c) => c.type === 'Degraded')?.status).toBe('False');
    expect(ed.status?.lastDesiredStatus?.code).toBe(200);
  });
});
