// Least privilege, proven by running under it. The Helm chart is installed in each of its three modes
// (namespace; cluster with watchNamespaces; cluster for every namespace), the operator runs in this process
// as the chart's ServiceAccount and reconciles an EdgeDeployment to Ready with no request refused, and then
// the things the rights must NOT allow are tried as that ServiceAccount: each must fail, by RBAC (403) or by
// the chart's admission policy. SubjectAccessReviews check the shape of the grants quickly; the real
// requests (kubectl --as the ServiceAccount) check that the API server enforces them.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { AuthorizationV1Api, RbacAuthorizationV1Api, type V1ResourceAttributes, type V1Secret } from '@kubernetes/client-node';
import type { EdgeDeployment } from '../../src/api/edge-deployment.ts';
import { labelKeys, managedBy } from '../../src/translate/names.ts';
import { repoRoot } from '../../scripts/cluster/control-plane.ts';
import { createTestNamespace, deleteTestNamespace, eventually, kubectl, testCluster, helm as helmIn } from '../support/cluster.ts';
import { ensureCrd, serviceAccountKubeConfig, startTestOperator, type RunningOperator } from '../support/operator.ts';
import { isReady, sampleEdgeDeployment, sampleModule } from '../support/samples.ts';

const cluster = testCluster();
const chart = join(repoRoot, 'helm/iotedge-operator');
const authorization = cluster.kc.makeApiClient(AuthorizationV1Api);
const rbacApi = cluster.kc.makeApiClient(RbacAuthorizationV1Api);
const namespaces: string[] = [];
const releases: { name: string; namespace: string }[] = [];

const helm = (...args: string[]) => helmIn(cluster, ...args);

async function namespace(prefix: string): Promise<string> {
  const ns = await createTestNamespace(cluster, prefix);
  namespaces.push(ns);
  return ns;
}

interface Release { name: string; namespace: string; serviceAccount: string; user: string; policy: string }

/**
 * helm install of the chart; its operator pod goes to the KWOK node (the image exists only as a name). The
 * objects are named <release>-op: the test operators' policy (manifests/base, installed by other files in the
 * same cluster) holds every ServiceAccount named *iotedge-operator, and here the chart's own policy must be
 * the one that refuses.
 */
async function install(namespace: string, ...sets: string[]): Promise<Release> {
  const name = `rb-${randomBytes(3).toString('hex')}`;
  releases.push({ name, namespace });
  const serviceAccount = `${name}-op`;
  await helm('install', name, chart, '-n', namespace, '--set', `fullnameOverride=${serviceAccount}`, ...sets.flatMap((s) => ['--set', s]));
  return { name, namespace, serviceAccount, user: `system:serviceaccount:${namespace}:${serviceAccount}`, policy: `${serviceAccount}-${namespace}-writes` };
}

/** What the API server's authorizer answers for the release's ServiceAccount (kubectl auth can-i, by API). */
async function can(release: Release, attributes: V1ResourceAttributes): Promise<boolean> {
  const review = await authorization.createSubjectAccessReview({
    body: {
      apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview',
      spec: { user: release.user, groups: ['system:serviceaccounts', `system:serviceaccounts:${release.namespace}`, 'system:authenticated'], resourceAttributes: attributes },
    },
  });
  return review.status?.allowed === true;
}

/** kubectl as the release's ServiceAccount; rejects with the API server's message. */
function asOperator(release: Release, args: string[], input?: string): Promise<string> {
  return kubectl(cluster, [`--as=${release.user}`, ...args], input);
}

const secretJson = (ns: string, name: string, labels: Record<string, string>) =>
  JSON.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: ns, labels }, stringData: { key: 'value' } });
const operatorLabels = { [labelKeys.managedBy]: managedBy };

/**
 * Creating an unlabelled Secret as the operator is refused by the release's admission policy. A new policy
 * takes a moment to take effect: a create that passed before then is undone and tried again.
 */
async function expectUnlabelledSecretRefused(release: Release, ns: string): Promise<void> {
  const refusal = await eventually(`an unlabelled Secret in ${ns} refused by ${release.policy}`, async () => {
    const outcome = await asOperator(release, ['create', '-f', '-'], secretJson(ns, 'unlabelled', {})).then(() => 'created', (e: Error) => e.message);
    if (outcome === 'created') {
      await kubectl(cluster, ['-n', ns, 'delete', 'secret', 'unlabelled']);
      return undefined;
    }
    if (!outcome.includes('ValidatingAdmissionPolicy')) throw new Error(outcome);
    return outcome;
  });
  expect(refusal).toContain(`ValidatingAdmissionPolicy '${release.policy}' with binding '${release.policy}' denied request: iotedge-operator writes only objects labelled app.kubernetes.io/managed-by=iotedge-operator; secrets ${ns}/unlabelled is not`);
  // The label is all it takes: the policy narrows the operator to its own objects, not to nothing.
  expect(await asOperator(release, ['create', '-f', '-'], secretJson(ns, 'labelled', operatorLabels))).toContain('secret/labelled created');
}

/** The sample: a module with a named volume (a PVC) and an image from a registry whose password is in the user's Secret. */
function sample(ns: string): EdgeDeployment {
  const ed = sampleEdgeDeployment(ns, {
    sensor: sampleModule('mcr.microsoft.com/azureiotedge-simulated-temperature-sensor:1.5', { startupOrder: 1 }, { HostConfig: { Binds: ['sensordata:/data'] } }),
    private: sampleModule('myacr.azurecr.io/private:1.0', { startupOrder: 1 }),
  });
  ed.spec!.agent!.runtime!.settings = {
    registryCredentials: { myacr: { address: 'myacr.azurecr.io', username: 'puller', passwordSecretRef: { name: 'acr-password', key: 'password' } } },
  } as never;
  return ed;
}

/**
 * Runs the operator as the release's ServiceAccount over `watched` until the sample in `device` is Ready.
 * Every request it made must have been allowed; every object it made carries its label.
 */
async function reconcileAsRelease(release: Release, watched: string[], device: string): Promise<void> {
  // The user's registry password: the operator reads it, never writes it (it is not labelled as the operator's).
  await kubectl(cluster, ['-n', device, 'create', 'secret', 'generic', 'acr-password', '--from-literal=password=rbac-test-registry-password']);
  let operator: RunningOperator | undefined;
  try {
    operator = await startTestOperator(await serviceAccountKubeConfig(cluster, release.namespace, release.serviceAccount), watched);
    await kubectl(cluster, ['apply', '--server-side', '--field-manager=test-user', '-f', '-'], JSON.stringify(sample(device)));
    const ed = await eventually(`EdgeDeployment ${device}/device Ready`, async () => {
      const found = JSON.parse(await kubectl(cluster, ['-n', device, 'get', 'edgedeployment', 'device', '-o', 'json'])) as EdgeDeployment;
      return isReady(found) ? found : undefined;
    }, 120_000);
    expect(ed.status?.moduleSummary).toBe('3/3');
    expect(operator.requests.filter((r) => r.code === 403)).toEqual([]);
    expect(operator.requests.some((r) => r.method === 'PATCH' && r.path.includes('/secrets/'))).toBe(true);
    const made = JSON.parse(await kubectl(cluster, ['-n', device, 'get', 'deployments,services,configmaps,secrets,serviceaccounts,persistentvolumeclaims,networkpolicies',
      '-l', `${labelKeys.edgeDeployment}=device`, '-o', 'json'])) as { items: { kind: string; metadata: { labels: Record<string, string> } }[] };
    expect([...new Set(made.items.map((o) => o.kind))]).toEqual(expect.arrayContaining(['Deployment', 'Secret', 'PersistentVolumeClaim', 'NetworkPolicy']));
    for (const o of made.items) expect(o.metadata.labels[labelKeys.managedBy]).toBe(managedBy);
    const pullSecrets = (await cluster.core.listNamespacedSecret({ namespace: device, fieldSelector: 'type=kubernetes.io/dockerconfigjson' })).items as V1Secret[];
    expect(pullSecrets.length).toBe(1);
  } finally {
    await operator?.stop();
  }
}

beforeAll(async () => {
  await ensureCrd(cluster);
});

afterAll(async () => {
  for (const r of releases) await helm('uninstall', r.name, '-n', r.namespace, '--wait', '--timeout', '120s').catch(() => undefined);
  for (const ns of namespaces) await deleteTestNamespace(cluster, ns);
});

describe('namespace mode: a Role in the device namespace', () => {
  let device: string;
  let other: string;
  let release: Release;
  beforeAll(async () => {
    device = await namespace('rbac-dev');
    other = await namespace('rbac-other');
    release = await install(device);
  });

  it('reconciles its device to Ready under the chart\'s rights, with no request refused', async () => {
    await reconcileAsRelease(release, [device], device);
  });

  it('reaches no other namespace, and of the Namespace objects only its own', async () => {
    const secrets = (ns?: string, verb = 'get') => can(release, { verb, resource: 'secrets', ...(ns ? { namespace: ns } : {}) });
    expect(await secrets(device)).toBe(true);
    expect(await secrets(other)).toBe(false);
    expect(await secrets(undefined, 'list')).toBe(false);
    // GET /api/v1/namespaces/<ns> is authorized in namespace <ns>: the Role reaches that Namespace alone.
    expect(await can(release, { verb: 'patch', resource: 'namespaces', namespace: device, name: device })).toBe(true);
    expect(await can(release, { verb: 'patch', resource: 'namespaces', namespace: other, name: other })).toBe(false);
    expect(await can(release, { verb: 'delete', resource: 'namespaces', namespace: device, name: device })).toBe(false);
    expect(await can(release, { verb: 'list', resource: 'nodes' })).toBe(true);
    expect(await can(release, { verb: 'get', resource: 'nodes', name: 'edge-worker-0' })).toBe(false);
    await expect(asOperator(release, ['-n', other, 'get', 'secrets'])).rejects.toThrow(`User "${release.user}" cannot list resource "secrets" in API group "" in the namespace "${other}"`);
    const clusterBindings = (await rbacApi.listClusterRoleBinding()).items.filter((b) => b.subjects?.some((s) => s.kind === 'ServiceAccount' && s.name === release.serviceAccount && s.namespace === device));
    expect(clusterBindings.map((b) => b.roleRef.name)).toEqual([`${release.serviceAccount}-${device}-nodes`]);
  });

  it('writes only objects labelled as its own: not an unlabelled Secret, not Helm\'s release record', async () => {
    await expectUnlabelledSecretRefused(release, device);
    // RBAC lets the Role delete Secrets in the namespace; the admission policy keeps Helm's record of the release.
    await expect(asOperator(release, ['-n', device, 'delete', 'secret', `sh.helm.release.v1.${release.name}.v1`]))
      .rejects.toThrow('iotedge-operator changes or deletes only objects labelled app.kubernetes.io/managed-by=iotedge-operator');
    await expect(asOperator(release, ['-n', device, 'label', 'secret', 'acr-password', `${labelKeys.managedBy}=${managedBy}`]))
      .rejects.toThrow('changes or deletes only objects labelled');
  });

  it('runs no pod as its own ServiceAccount, which lives in the device namespace', async () => {
    const pod = (name: string, serviceAccountName: string) => JSON.stringify({
      apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: device, labels: operatorLabels },
      spec: { serviceAccountName, automountServiceAccountToken: false, containers: [{ name: 'c', image: 'localhost/busybox:1' }] },
    });
    await expect(asOperator(release, ['create', '-f', '-'], pod('as-operator', release.serviceAccount))).rejects.toThrow(`iotedge-operator does not run pods as its own ServiceAccount; pods ${device}/as-operator`);
    const deployment = JSON.stringify({
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'as-operator', namespace: device, labels: operatorLabels },
      spec: { selector: { matchLabels: { app: 'x' } }, template: { metadata: { labels: { app: 'x' } }, spec: { serviceAccountName: release.serviceAccount, containers: [{ name: 'c', image: 'localhost/busybox:1' }] } } },
    });
    await expect(asOperator(release, ['create', '-f', '-'], deployment)).rejects.toThrow('iotedge-operator does not run pods as its own ServiceAccount; deployments');
    expect(await asOperator(release, ['create', '-f', '-'], pod('as-default', 'default'))).toContain('pod/as-default created');
  });

  it('changes nothing of its Namespace but the Pod Security Admission labels', async () => {
    await expect(asOperator(release, ['label', 'namespace', device, 'team=anyone'])).rejects.toThrow('iotedge-operator changes nothing of a Namespace but its labels pod-security.kubernetes.io/enforce and enforce-version');
    expect(await asOperator(release, ['label', 'namespace', device, 'pod-security.kubernetes.io/enforce=baseline'])).toContain('labeled');
    await expect(asOperator(release, ['label', 'namespace', other, 'pod-security.kubernetes.io/enforce=privileged'])).rejects.toThrow('forbidden');
  });
});

describe('cluster mode with watchNamespaces: a RoleBinding per watched namespace', () => {
  let ops: string;
  let watched: string[];
  let unwatched: string;
  let release: Release;
  beforeAll(async () => {
    ops = await namespace('rbac-ops');
    watched = [await namespace('rbac-w1'), await namespace('rbac-w2')];
    unwatched = await namespace('rbac-unwatched');
    release = await install(ops, 'mode=cluster', `watchNamespaces={${watched.join(',')}}`);
  });

  it('binds its rules in each watched namespace, and no ClusterRoleBinding carries a namespaced right', async () => {
    for (const ns of watched) {
      const binding = await rbacApi.readNamespacedRoleBinding({ name: release.serviceAccount, namespace: ns });
      expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: release.serviceAccount });
    }
    const clusterBindings = (await rbacApi.listClusterRoleBinding()).items.filter((b) => b.subjects?.some((s) => s.kind === 'ServiceAccount' && s.name === release.serviceAccount && s.namespace === ops));
    expect(clusterBindings.map((b) => b.roleRef.name)).toEqual([`${release.serviceAccount}-${ops}-nodes`]);
    expect((await rbacApi.readClusterRole({ name: `${release.serviceAccount}-${ops}-nodes` })).rules).toEqual([{ apiGroups: [''], resources: ['nodes'], verbs: ['list'] }]);
  });

  it('reconciles a device in a watched namespace under the chart\'s rights, with no request refused', async () => {
    await reconcileAsRelease(release, watched, watched[1]!);
  });

  it('cannot read a Secret in a namespace it does not watch (403), nor list Secrets across the cluster', async () => {
    await kubectl(cluster, ['-n', unwatched, 'create', 'secret', 'generic', 'not-yours', '--from-literal=k=v']);
    await expect(asOperator(release, ['-n', unwatched, 'get', 'secret', 'not-yours'])).rejects.toThrow(`User "${release.user}" cannot get resource "secrets" in API group "" in the namespace "${unwatched}"`);
    expect(await can(release, { verb: 'get', resource: 'secrets', namespace: watched[0]! })).toBe(true);
    expect(await can(release, { verb: 'list', resource: 'secrets' })).toBe(false);
    expect(await can(release, { verb: 'create', resource: 'pods', namespace: unwatched })).toBe(false);
    expect(await can(release, { verb: 'create', resource: 'pods', namespace: ops })).toBe(false);
    expect(await can(release, { verb: 'patch', resource: 'namespaces', namespace: watched[0]!, name: watched[0]! })).toBe(true);
    expect(await can(release, { verb: 'patch', resource: 'namespaces', namespace: unwatched, name: unwatched })).toBe(false);
  });

  it('writes only objects labelled as its own in a watched namespace', async () => {
    await expectUnlabelledSecretRefused(release, watched[0]!);
  });
});

describe('cluster mode for every namespace: a ClusterRoleBinding, writes narrowed by the admission policy', () => {
  let ops: string;
  let device: string;
  let bystander: string;
  let release: Release;
  beforeAll(async () => {
    ops = await namespace('rbac-all-ops');
    device = await namespace('rbac-all-dev');
    bystander = await namespace('rbac-bystander');
    release = await install(ops, 'mode=cluster');
  });

  it('reconciles a device under the chart\'s rights, with no request refused', async () => {
    // The operator watches the device's namespace only: watching all of them would reconcile other test files' EdgeDeployments.
    await reconcileAsRelease(release, [device], device);
    expect(await can(release, { verb: 'list', resource: 'secrets' })).toBe(true);
    expect(await can(release, { verb: 'watch', resource: 'edgedeployments', group: 'iotedge-operator.io' })).toBe(true);
  });

  it('cannot create an unlabelled Secret in any namespace, nor change or delete a Secret that is not its own', async () => {
    await expectUnlabelledSecretRefused(release, bystander);
    await kubectl(cluster, ['-n', bystander, 'create', 'secret', 'generic', 'users-own', '--from-literal=k=v']);
    expect(await can(release, { verb: 'delete', resource: 'secrets', namespace: bystander, name: 'users-own' })).toBe(true); // RBAC alone would allow it
    await expect(asOperator(release, ['-n', bystander, 'delete', 'secret', 'users-own'])).rejects.toThrow('changes or deletes only objects labelled');
    await expect(asOperator(release, ['-n', bystander, 'patch', 'secret', 'users-own', '--type=merge', '-p', '{"stringData":{"k":"stolen"}}'])).rejects.toThrow('only objects labelled app.kubernetes.io/managed-by=iotedge-operator');
    await expect(asOperator(release, ['-n', bystander, 'run', 'escape', '--image=localhost/busybox:1', '--restart=Never'])).rejects.toThrow('writes only objects labelled');
    expect(Buffer.from((await cluster.core.readNamespacedSecret({ name: 'users-own', namespace: bystander })).data!.k!, 'base64').toString()).toBe('v');
  });

  it('changes nothing of a Namespace but the Pod Security Admission labels', async () => {
    await expect(asOperator(release, ['label', 'namespace', bystander, 'team=anyone'])).rejects.toThrow('changes nothing of a Namespace but its labels pod-security.kubernetes.io/enforce');
    await expect(asOperator(release, ['annotate', 'namespace', bystander, 'note=x'])).rejects.toThrow('changes nothing of a Namespace');
    expect(await can(release, { verb: 'delete', resource: 'namespaces', name: bystander })).toBe(false);
    expect(await can(release, { verb: 'create', resource: 'clusterrolebindings', group: 'rbac.authorization.k8s.io' })).toBe(false);
  });
});
