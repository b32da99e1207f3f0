// The kustomize base (`kubectl apply -k manifests/base`) against the real API server. The base installs
// cluster-wide objects under fixed names, so the real apply goes through an overlay that renames everything
// into a namespace of its own; the base itself is checked by rendering and a server-side dry run.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { V1Deployment, V1PolicyRule } from '@kubernetes/client-node';
import { load, loadAll } from 'js-yaml';
import { kwokNamespaceAnnotations, repoRoot } from '../../scripts/cluster/control-plane.ts';
import { eventually, kubectl, testCluster } from '../support/cluster.ts';
import { ensureCrd } from '../support/operator.ts';

const cluster = testCluster();
const base = join(repoRoot, 'manifests/base');

interface K8sObject { apiVersion: string; kind: string; metadata: { name: string; namespace?: string }; [key: string]: unknown }
const parse = (text: string) => (loadAll(text) as (K8sObject | null)[]).filter((o): o is K8sObject => o !== null);
const one = (objects: K8sObject[], kind: string) => {
  const found = objects.filter((o) => o.kind === kind);
  expect(found.map((o) => o.kind)).toEqual([kind]);
  return found[0]!;
};
const shippedRbac = parse(readFileSync(join(base, 'rbac.yaml'), 'utf8')) as (K8sObject & { rules: V1PolicyRule[] })[];

beforeAll(async () => {
  await ensureCrd(cluster);
});

describe('manifests/base', () => {
  let rendered: K8sObject[];
  beforeAll(async () => {
    rendered = parse(await kubectl(cluster, ['kustomize', base]));
  });

  it('renders the operator, its rights and the CRD into namespace iotedge-operator', () => {
    expect(rendered.map((o) => o.kind).sort()).toEqual([
      'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition', 'Deployment', 'Namespace', 'Role', 'RoleBinding', 'ServiceAccount',
      'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding',
    ]);
    expect(one(rendered, 'Namespace').metadata.name).toBe('iotedge-operator');
    for (const o of rendered.filter((x) => ['ServiceAccount', 'Role', 'RoleBinding', 'Deployment'].includes(x.kind))) {
      expect({ kind: o.kind, namespace: o.metadata.namespace }).toEqual({ kind: o.kind, namespace: 'iotedge-operator' });
    }
  });

  it('grants the rules of rbac.yaml to the ServiceAccount the Deployment runs as', () => {
    expect(one(rendered, 'ClusterRole').rules).toEqual(shippedRbac.find((o) => o.kind === 'ClusterRole')!.rules);
    expect(one(rendered, 'Role').rules).toEqual(shippedRbac.find((o) => o.kind === 'Role')!.rules);
    const serviceAccount = one(rendered, 'ServiceAccount').metadata;
    const subject = { kind: 'ServiceAccount', name: serviceAccount.name, namespace: serviceAccount.namespace };
    for (const kind of ['ClusterRoleBinding', 'RoleBinding']) {
      const binding = one(rendered, kind) as K8sObject & { subjects: unknown[]; roleRef: { kind: string; name: string } };
      expect(binding.subjects).toEqual([subject]);
      const role = one(rendered, binding.roleRef.kind);
      expect(binding.roleRef.name).toBe(role.metadata.name);
    }
    const deployment = one(rendered, 'Deployment') as unknown as V1Deployment;
    expect(deployment.spec?.template.spec?.serviceAccountName).toBe(serviceAccount.name);
    expect(deployment.spec?.template.spec?.containers[0]?.image).toMatch(/^iotedge-operator:\d+\.\d+\.\d+$/);
  });

  it('carries the repository\'s CRD', () => {
    const crd = one(rendered, 'CustomResourceDefinition') as K8sObject & { spec: unknown };
    const source = load(readFileSync(join(repoRoot, 'crds/edgedeployments.iotedge-operator.io.yaml'), 'utf8')) as K8sObject & { spec: unknown };
    expect(crd.metadata.name).toBe(source.metadata.name);
    expect(crd.spec).toEqual(source.spec);
  });

  it('is accepted by the API server (server-side dry run of its cluster-scoped objects)', async () => {
    // Its namespaced objects cannot be dry-run before namespace iotedge-operator exists; the overlay below applies them.
    const clusterScoped = rendered.filter((o) => ['Namespace', 'CustomResourceDefinition', 'ClusterRole', 'ClusterRoleBinding', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding'].includes(o.kind));
    const out = await kubectl(cluster, ['apply', '--server-side', '--force-conflicts', '--dry-run=server', '-f', '-'], clusterScoped.map((o) => JSON.stringify(o)).join('\n---\n'));
    expect(out.trim().split('\n')).toHaveLength(6);
    expect(out).toContain('validatingadmissionpolicy.admissionregistration.k8s.io/iotedge-operator-writes serverside-applied (server dry run)');
    expect(out).toContain('clusterrolebinding.rbac.authorization.k8s.io/iotedge-operator serverside-applied (server dry run)');
  });
});

describe('an overlay of manifests/base into a namespace of its own', () => {
  const id = `kz-${randomBytes(3).toString('hex')}`;
  const overlay = mkdtempSync(join(tmpdir(), 'iotedge-operator-overlay-'));
  beforeAll(() => {
    // kustomize refuses absolute paths to a base; the CRD is already installed (and is not the overlay's to delete).
    writeFileSync(join(overlay, 'kustomization.yaml'), [
      'apiVersion: kustomize.config.k8s.io/v1beta1',
      'kind: Kustomization',
      `namespace: ${id}`,
      `namePrefix: ${id}-`,
      'resources:',
      `  - ${relative(overlay, base)}`,
      'patches:',
      '  - target: { kind: CustomResourceDefinition }',
      '    patch: |',
      '      $patch: delete',
      '      apiVersion: apiextensions.k8s.io/v1',
      '      kind: CustomResourceDefinition',
      '      metadata: { name: any }',
      // The operator's image exists only as a name here: its pod goes to the KWOK node.
      '  - target: { kind: Namespace }',
      '    patch: |',
      '      apiVersion: v1',
      '      kind: Namespace',
      '      metadata:',
      '        name: any',
      `        annotations: ${JSON.stringify(kwokNamespaceAnnotations)}`,
      '',
    ].join('\n'));
  });
  afterAll(async () => {
    await kubectl(cluster, ['delete', '-k', overlay, '--ignore-not-found', '--wait=false']).catch(() => undefined);
    rmSync(overlay, { recursive: true, force: true });
  });

  it('installs with kubectl apply -k: the operator pod runs under the restricted Pod Security Standard', async () => {
    await kubectl(cluster, ['apply', '--server-side', '-k', overlay]);
    const namespace = await cluster.core.readNamespace({ name: id });
    expect(namespace.metadata?.labels?.['pod-security.kubernetes.io/enforce']).toBe('restricted');
    const binding = JSON.parse(await kubectl(cluster, ['get', 'clusterrolebinding', `${id}-iotedge-operator`, '-o', 'json'])) as { subjects: unknown[]; roleRef: { name: string } };
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: `${id}-iotedge-operator`, namespace: id }]);
    expect(binding.roleRef.name).toBe(`${id}-iotedge-operator`);
    // The namePrefix renames the admission policy and the binding's reference with it (kustomizeconfig.yaml).
    const policyBinding = JSON.parse(await kubectl(cluster, ['get', 'validatingadmissionpolicybinding', `${id}-iotedge-operator-writes`, '-o', 'json'])) as { spec: { policyName: string } };
    expect(policyBinding.spec.policyName).toBe(`${id}-iotedge-operator-writes`);
    await kubectl(cluster, ['get', 'validatingadmissionpolicy', policyBinding.spec.policyName]);
    await eventually('the operator pod Running', async () => {
      const pods = await cluster.core.listNamespacedPod({ namespace: id, labelSelector: 'app.kubernetes.io/component=operator' });
      return pods.items.length === 1 && pods.items[0]?.status?.phase === 'Running' ? pods.items : undefined;
    }, 90_000);
  });

  it('holds the overlay\'s renamed ServiceAccount to the admission policy: an unlabelled Secret is refused, a labelled one created', async () => {
    const as = `--as=system:serviceaccount:${id}:${id}-iotedge-operator`;
    const secret = (name: string, labels: Record<string, string>) => JSON.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: id, labels }, stringData: { k: 'v' } });
    // A new policy takes effect within a second or so: until then a create may pass, and is undone.
    const refusal = await eventually('the unlabelled Secret refused by the admission policy', async () => {
      const outcome = await kubectl(cluster, [as, 'create', '-f', '-'], secret('unlabelled', {})).then(() => 'created', (error: Error) => error.message);
      if (outcome === 'created') {
        await kubectl(cluster, ['-n', id, 'delete', 'secret', 'unlabelled']);
        return undefined;
      }
      if (!outcome.includes('ValidatingAdmissionPolicy')) throw new Error(outcome);
      return outcome;
    });
    expect(refusal).toMatch(/ValidatingAdmissionPolicy '[^']*iotedge-operator-writes'.*denied request: iotedge-operator writes only objects labelled/);
    expect(await eventually('the labelled Secret created', async () =>
      kubectl(cluster, [as, 'create', '-f', '-'], secret('labelled', { 'app.kubernetes.io/managed-by': 'iotedge-operator' })).catch(() => undefined))).toContain('secret/labelled created');
  });

  it('uninstalls with kubectl delete -k, cluster-scoped objects included', async () => {
    await kubectl(cluster, ['delete', '-k', overlay, '--wait=true', '--timeout=120s']);
    for (const [resource, name] of [['clusterrole', `${id}-iotedge-operator`], ['clusterrolebinding', `${id}-iotedge-operator`],
      ['validatingadmissionpolicy', `${id}-iotedge-operator-writes`], ['validatingadmissionpolicybinding', `${id}-iotedge-operator-writes`], ['namespace', id]] as const) {
      await eventually(`${resource} ${name} gone`, async () =>
        (await kubectl(cluster, ['get', resource, name, '--ignore-not-found', '-o', 'name'])).trim() === '' ? true : undefined, 120_000);
    }
    await kubectl(cluster, ['get', 'crd', 'edgedeployments.iotedge-operator.io']);
  });
});
