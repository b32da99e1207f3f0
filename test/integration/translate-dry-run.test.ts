// The real API server accepts what translate() produces: every golden file (wire form, through
// `kubectl apply --dry-run=server`) and the model-form objects of the fixtures and of generated manifests
// (through KubernetesObjectApi with dryRun=All, the path the controller takes).
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { KubernetesObject, V1NetworkPolicy } from '@kubernetes/client-node';
import fc from 'fast-check';
import { loadAll } from 'js-yaml';
import { settingsWith, translate, type TranslationResult } from '../../src/translate/index.ts';
import { createTestNamespace, deleteTestNamespace, kubectl, testCluster } from '../support/cluster.ts';
import { wellFormedManifest } from '../unit/translate/arbitraries.ts';
import { goldenCases, translateCase } from '../unit/translate/golden-cases.ts';

const cluster = testCluster();
let ns: string;

beforeAll(async () => {
  ns = await createTestNamespace(cluster, 'translate-dry-run');
});
afterAll(async () => {
  await deleteTestNamespace(cluster, ns);
});

function inNamespace<T extends KubernetesObject>(object: T): T {
  return { ...object, metadata: { ...object.metadata, namespace: ns } };
}

/**
 * Dry-run persists nothing, but the ServiceAccount admission plugin rejects a bare Pod whose account does
 * not exist; so the accounts are created for real first (the namespace is deleted afterwards).
 */
async function createServiceAccounts(objects: KubernetesObject[]): Promise<void> {
  const accounts = objects.filter((o) => o.kind === 'ServiceAccount').map(inNamespace);
  if (accounts.length === 0) return;
  await kubectl(cluster, ['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: accounts }));
}

/** Dry-run creates every object but the ServiceAccounts, which are created for real (see above). */
async function dryRunCreate(objects: KubernetesObject[]): Promise<KubernetesObject[]> {
  await createServiceAccounts(objects);
  const accepted: KubernetesObject[] = [];
  for (const object of objects.filter((o) => o.kind !== 'ServiceAccount').map(inNamespace)) {
    try {
      accepted.push(await cluster.objects.create(object, undefined, 'All'));
    } catch (error) {
      const body = (error as { body?: unknown }).body;
      throw new Error(`${object.kind}/${object.metadata?.name} rejected: ${typeof body === 'string' ? body : JSON.stringify(body ?? String(error))}`, { cause: error });
    }
  }
  return accepted;
}

const cases = goldenCases();
const goldenWithObjects = cases.filter((c) => translateCase(c).outcome.ok);

describe('golden files against the API server (kubectl apply --dry-run=server)', () => {
  it('has golden files with objects to check', () => {
    expect(goldenWithObjects.length).toBeGreaterThan(10);
  });

  it.each(goldenWithObjects.map((c) => [c.golden] as const))('%s is accepted', async (golden) => {
    const documents = loadAll(readFileSync(new URL(`../golden/${golden}`, import.meta.url), 'utf8')) as KubernetesObject[];
    const objects = documents.filter((d) => d && typeof d === 'object' && 'kind' in d).map(inNamespace);
    expect(objects.length).toBeGreaterThan(0);
    await createServiceAccounts(objects);
    const out = await kubectl(cluster, ['apply', '--dry-run=server', '-o', 'name', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }));
    expect(out.trim().split('\n')).toHaveLength(objects.length);
  });
});

describe('model-form objects through KubernetesObjectApi (dryRun=All)', () => {
  it.each(goldenWithObjects.map((c) => [c.golden, c] as const))('%s is accepted', async (_golden, c) => {
    const result = translateCase(c).outcome as { ok: true; value: TranslationResult };
    const objects = [...result.value.objects, ...result.value.volumeClaims].filter((o) => o.kind !== 'ServiceAccount');
    const accepted = await dryRunCreate([...result.value.objects, ...result.value.volumeClaims]);
    expect(accepted.map((o) => `${o.kind}/${o.metadata?.name}`)).toEqual(objects.map((o) => `${o.kind}/${o.metadata?.name}`));
    // The peers rule survives the client's serializer (its model calls the wire field `from` `_from`).
    for (const [i, object] of objects.entries()) {
      if (object.kind !== 'NetworkPolicy') continue;
      const sent = (object as V1NetworkPolicy).spec?.ingress?.map((rule) => rule._from?.length ?? 0);
      const stored = (accepted[i] as V1NetworkPolicy).spec?.ingress?.map((rule) => rule._from?.length ?? 0);
      expect(stored).toEqual(sent);
    }
  });

  it('accepts the objects of generated manifests', async () => {
    const allowAll = settingsWith({
      allowPrivileged: true, allowHostNetwork: true, allowHostPid: true, allowHostIpc: true,
      allowHostPath: true, allowAddedCapabilities: true, allowDevices: true, portBindingServiceType: 'NodePort',
    });
    const samples = fc.sample(wellFormedManifest, { numRuns: 40, seed: 20240613 });
    let checked = 0;
    for (const manifest of samples) {
      if (checked >= 6) break;
      const outcome = translate({ manifest, settings: allowAll, namespace: ns, deviceId: 'generated', ownerName: `generated-${checked}`, hubHostName: 'hub.azure-devices.net' });
      if (!outcome.ok || Object.keys(manifest.agent.modules).length === 0) continue;
      // Generated port bindings pick NodePorts at random; drop fixed node ports so two samples cannot clash.
      const objects = [...outcome.value.objects, ...outcome.value.volumeClaims].map((o) =>
        o.kind === 'Service' ? JSON.parse(JSON.stringify(o).replace(/"nodePort":\d+,?/g, '').replace(/,}/g, '}')) : o,
      );
      await dryRunCreate(objects);
      checked += 1;
    }
    expect(checked).toBe(6);
  });
});
