// The Helm chart against the real API server: lint, schema errors, server-side dry runs, install, upgrade
// and uninstall in both modes, and the operator reconciling with nothing but the chart's ServiceAccount.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { KubeConfig, RbacAuthorizationV1Api, type V1Deployment, type V1PolicyRule } from '@kubernetes/client-node';
import { load, loadAll } from 'js-yaml';
import type { EdgeDeployment } from '../../src/api/edge-deployment.ts';
import { runCommand } from '../../src/cli/run.ts';
import { repoRoot } from '../../scripts/cluster/control-plane.ts';
import { binary, createTestNamespace, deleteTestNamespace, eventually, kubectl, testCluster } from '../support/cluster.ts';
import { ensureCrd, startTestOperator, type RunningOperator } from '../support/operator.ts';
import { sampleEdgeDeployment as sample, sampleModule } from '../support/samples.ts';

const cluster = testCluster();
const rbacApi = cluster.kc.makeApiClient(RbacAuthorizationV1Api);
const chart = join(repoRoot, 'helm/iotedge-operator');
const sharedAccessKey = 'c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seQ==';
const connectionString = (deviceId: string) => `HostName=test-hub.azure-devices.net;DeviceId=${deviceId};SharedAccessKey=${sharedAccessKey}`;

interface Result { code: number | null; stdout: string; stderr: string }

function helmRun(args: string[]): Promise<Result> {
  const child = spawn(binary(cluster, 'helm'), [...args, '--kubeconfig', cluster.kubeconfigPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

async function helm(...args: string[]): Promise<string> {
  const result = await helmRun(args);
  if (result.code !== 0) throw new Error(`helm ${args[0]} failed (${result.code}): ${result.stderr.trim()}`);
  return result.stdout;
}

interface K8sObject { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; [key: string]: unknown }

async function render(namespace: string, ...sets: string[]): Promise<K8sObject[]> {
  const text = await helm('template', 'rel', chart, '-n', namespace, ...sets.flatMap((s) => ['--set', s]));
  return (loadAll(text) as (K8sObject | null)[]).filter((o): o is K8sObject => o !== null);
}

const parse = (text: string) => (loadAll(text) as (K8sObject | null)[]).filter((o): o is K8sObject => o !== null);
const find = (objects: K8sObject[], kind: string, name?: string) =>
  objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
const deploymentOf = (objects: K8sObject[]) => find(objects, 'Deployment')[0] as unknown as V1Deployment;
const envOf = (objects: K8sObject[]) => deploymentOf(objects).spec!.template.spec!.containers[0]!.env ?? [];

/** Rules as comparable strings, order-insensitive, so that two rule lists compare as sets of grants. */
const grants = (rules: V1PolicyRule[]) =>
  rules.flatMap((r) => (r.apiGroups ?? []).flatMap((g) => (r.resources ?? []).flatMap((res) => (r.verbs ?? []).map((v) => `${g}/${res}:${v}`)))).sort();
const shippedRbac = loadAll(readFileSync(join(repoRoot, 'manifests/base/rbac.yaml'), 'utf8')) as (K8sObject & { rules: V1PolicyRule[] })[];
const shippedClusterRules = shippedRbac.find((o) => o.kind === 'ClusterRole')!.rules;
const shippedLeaderRules = shippedRbac.find((o) => o.kind === 'Role')!.rules;
const rulesOf = (o: K8sObject | undefined) => (o as { rules?: V1PolicyRule[] } | undefined)?.rules ?? [];
/** The shipped leader-election rules for a Lease of another name (the chart names it after the release). */
const leaderRulesFor = (lease: string) => shippedLeaderRules.map((r) => (r.resourceNames ? { ...r, resourceNames: [lease] } : r));
const clusterScopedKinds = ['ClusterRole', 'ClusterRoleBinding', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding'];

/** A kubeconfig that authenticates as the given ServiceAccount, with a token from the TokenRequest API. */
async function serviceAccountKubeConfig(namespace: string, serviceAccount: string): Promise<KubeConfig> {
  const token = (await kubectl(cluster, ['-n', namespace, 'create', 'token', serviceAccount, '--duration=1h'])).trim();
  const admin = load(readFileSync(cluster.kubeconfigPath, 'utf8')) as { clusters: { cluster: { server: string; 'certificate-authority-data': string } }[] };
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'local', server: admin.clusters[0]!.cluster.server, caData: admin.clusters[0]!.cluster['certificate-authority-data'] }],
    users: [{ name: serviceAccount, token }],
    contexts: [{ name: 'chart', cluster: 'local', user: serviceAccount, namespace }],
    currentContext: 'chart',
  });
  return kc;
}

function sampleEdgeDeployment(namespace: string): EdgeDeployment {
  return sample(namespace, {
    SimulatedTemperatureSensor: sampleModule('mcr.microsoft.com/azureiotedge-simulated-temperature-sensor:1.5', { startupOrder: 1 }, { HostConfig: { Binds: ['sensordata:/data'] } }),
  }, { routes: { sensorToUpstream: { route: 'FROM /messages/modules/SimulatedTemperatureSensor/outputs/* INTO $upstream' } } });
}

/** Runs the operator in this process as the chart's ServiceAccount until a sample EdgeDeployment is Ready. */
async function reconcileAsChartServiceAccount(releaseNamespace: string, serviceAccount: string, deviceNamespace: string): Promise<EdgeDeployment> {
  const kc = await serviceAccountKubeConfig(releaseNamespace, serviceAccount);
  let operator: RunningOperator | undefined;
  try {
    operator = await startTestOperator(kc, [deviceNamespace]);
    await kubectl(cluster, ['apply', '--server-side', '--field-manager=test-user', '-f', '-'], JSON.stringify(sampleEdgeDeployment(deviceNamespace)));
    const ready = await eventually('the sample EdgeDeployment Ready=True', async () => {
      const ed = JSON.parse(await kubectl(cluster, ['-n', deviceNamespace, 'get', 'edgedeployment', 'device', '-o', 'json'])) as EdgeDeployment;
      return ed.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? ed : undefined;
    }, 120_000);
    // Every request the operator made was allowed: a missing rule would show up as a 403 here.
    expect(operator.requests.filter((r) => r.code === 403)).toEqual([]);
    return ready;
  } finally {
    await operator?.stop();
  }
}

async function operatorPodsRunning(namespace: string, release: string, count: number): Promise<void> {
  await eventually(`${count} operator pod(s) Running`, async () => {
    const pods = await cluster.core.listNamespacedPod({ namespace, labelSelector: `app.kubernetes.io/instance=${release},app.kubernetes.io/component=operator` });
    const running = pods.items.filter((p) => p.status?.phase === 'Running' && !p.metadata?.deletionTimestamp);
    return running.length === count && pods.items.length === count ? running : undefined;
  }, 90_000);
}

/** After uninstall: nothing the release rendered remains, nor anything derived from it (ReplicaSets, pods). */
async function expectNothingLeft(namespace: string, release: string, manifest: K8sObject[]): Promise<void> {
  await eventually(`release ${release}'s objects deleted`, async () => {
    const left: string[] = [];
    for (const o of manifest) {
      const ns = o.metadata.namespace ?? (clusterScopedKinds.includes(o.kind) ? undefined : namespace);
      const group = o.apiVersion.includes('/') ? o.apiVersion.split('/')[0] : undefined;
      const resource = group ? `${o.kind.toLowerCase()}.${group}` : o.kind.toLowerCase();
      const found = await kubectl(cluster, ['get', resource, o.metadata.name, ...(ns ? ['-n', ns] : []), '--ignore-not-found', '-o', 'name']);
      if (found.trim()) left.push(found.trim());
    }
    for (const kinds of ['deployments,replicasets,pods,services,serviceaccounts,secrets,configmaps,roles,rolebindings,edgedeployments', 'clusterroles,clusterrolebindings,validatingadmissionpolicies,validatingadmissionpolicybindings']) {
      const byLabel = await kubectl(cluster, ['get', kinds, ...(kinds.startsWith('cluster') ? [] : ['-n', namespace]), '-l', `app.kubernetes.io/instance=${release},app.kubernetes.io/managed-by=Helm`, '-o', 'name']);
      left.push(...byLabel.split('\n').filter(Boolean));
    }
    return left.length === 0 ? true : undefined;
  }, 90_000);
}

beforeAll(async () => {
  await ensureCrd(cluster);
});

describe('helm lint and values', () => {
  it('lints clean with --strict in both modes', async () => {
    for (const sets of [[], ['mode=cluster', 'replicas=2'], [`iotHub.connectionString=${connectionString('d1')}`]]) {
      const out = await helm('lint', '--strict', chart, ...sets.flatMap((s) => ['--set', s]));
      expect(out).toContain('1 chart(s) linted, 0 chart(s) failed');
      expect(out).not.toMatch(/\[(WARNING|ERROR)\]/);
    }
  });

  it.each([
    ['mode=bogus', "at '/mode': value must be one of 'namespace', 'cluster'"],
    ['replicas=-1', "at '/replicas': minimum: got -1, want 0"],
    ['logLevel=loud', "at '/logLevel': value must be one of"],
    ['storage.accessMode=ReadWriteSometimes', "at '/storage/accessMode': value must be one of"],
    ['securityPolicy.allowPrivilged=true', "additional properties 'allowPrivilged' not allowed"],
    ['watchNamespaces={dev1}', "at '/watchNamespaces': maxItems: got 1, want 0"],
  ])('refuses --set %s with the schema\'s message', async (set, message) => {
    const result = await helmRun(['template', 'rel', chart, '--set', set]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("values don't meet the specifications of the schema");
    expect(result.stderr).toContain(message);
  });

  it('refuses a malformed connection string without repeating it', async () => {
    const result = await helmRun(['template', 'rel', chart, '--set', `iotHub.connectionString=HostName=h;DeviceId=d;SharedAcessKey=${sharedAccessKey}`]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('iotHub.connectionString: has no SharedAccessKey=');
    expect(result.stderr).not.toContain(sharedAccessKey);
    const both = await helmRun(['template', 'rel', chart, '--set', `iotHub.connectionString=${connectionString('d')}`, '--set', 'iotHub.existingSecret=s']);
    expect(both.stderr).toContain('give iotHub.connectionString or iotHub.existingSecret, not both');
  });

  it('fails helm install on a bad value before creating anything', async () => {
    const ns = await createTestNamespace(cluster, 'helm-bad');
    try {
      const result = await helmRun(['install', 'bad', chart, '-n', ns, '--set', 'mode=bogus']);
      expect(result.stderr).toContain("at '/mode': value must be one of 'namespace', 'cluster'");
      expect((await helmRun(['status', 'bad', '-n', ns])).code).not.toBe(0);
      expect((await cluster.apps.listNamespacedDeployment({ namespace: ns })).items).toEqual([]);
    } finally {
      await deleteTestNamespace(cluster, ns);
    }
  });
});

describe('rendered objects', () => {
  it('grant exactly the rules of manifests/base/rbac.yaml in cluster mode', async () => {
    const objects = await render('ops', 'mode=cluster');
    expect(find(objects, 'ClusterRole')).toHaveLength(1);
    expect(rulesOf(find(objects, 'ClusterRole')[0])).toEqual(shippedClusterRules);
    expect(rulesOf(find(objects, 'Role', 'rel-iotedge-operator-leader-election')[0])).toEqual(leaderRulesFor('rel-iotedge-operator'));
    const binding = find(objects, 'ClusterRoleBinding')[0] as unknown as { subjects: unknown[]; roleRef: { name: string } };
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'rel-iotedge-operator', namespace: 'ops' }]);
    expect(binding.roleRef.name).toBe('rel-iotedge-operator');
  });

  it('grant the same rules in namespace mode: a namespaced Role plus Nodes through a ClusterRole', async () => {
    const objects = await render('dev1');
    const role = find(objects, 'Role', 'rel-iotedge-operator')[0];
    const nodeReader = find(objects, 'ClusterRole')[0];
    expect(grants(rulesOf(role)).some((g) => g.includes('/nodes:'))).toBe(false);
    expect(grants(rulesOf(nodeReader))).toEqual(['/nodes:list']);
    expect(grants([...rulesOf(role), ...rulesOf(nodeReader)])).toEqual(grants(shippedClusterRules));
    // The Namespace rule (Pod Security Admission labels) reaches the release namespace alone.
    expect(rulesOf(role).find((r) => r.resources?.includes('namespaces'))?.resourceNames).toEqual(['dev1']);
    expect(rulesOf(find(objects, 'Role', 'rel-iotedge-operator-leader-election')[0])).toEqual(leaderRulesFor('rel-iotedge-operator'));
    const withoutNodes = await render('dev1', 'rbac.readNodes=false');
    expect(find(withoutNodes, 'ClusterRole')).toEqual([]);
    expect(find(withoutNodes, 'ClusterRoleBinding')).toEqual([]);
  });

  it('bind the rules per watched namespace in cluster mode with watchNamespaces: no ClusterRoleBinding but for Nodes', async () => {
    const objects = await render('ops', 'mode=cluster', 'watchNamespaces={dev1,dev2}');
    expect(rulesOf(find(objects, 'ClusterRole', 'rel-iotedge-operator')[0])).toEqual(shippedClusterRules.filter((r) => !r.resources?.includes('nodes')));
    const bindings = find(objects, 'RoleBinding', 'rel-iotedge-operator') as unknown as { metadata: { namespace: string }; roleRef: { kind: string; name: string }; subjects: unknown[] }[];
    expect(bindings.map((b) => b.metadata.namespace)).toEqual(['dev1', 'dev2']);
    for (const b of bindings) {
      expect(b.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'rel-iotedge-operator' });
      expect(b.subjects).toEqual([{ kind: 'ServiceAccount', name: 'rel-iotedge-operator', namespace: 'ops' }]);
    }
    const clusterBindings = find(objects, 'ClusterRoleBinding') as unknown as { roleRef: { name: string } }[];
    expect(clusterBindings.map((b) => b.roleRef.name)).toEqual(['rel-iotedge-operator-ops-nodes']);
    expect(grants(rulesOf(find(objects, 'ClusterRole', 'rel-iotedge-operator-ops-nodes')[0]))).toEqual(['/nodes:list']);
    expect(find(await render('ops', 'mode=cluster', 'watchNamespaces={dev1}', 'rbac.readNodes=false'), 'ClusterRoleBinding')).toEqual([]);
  });

  it('render the admission policy of manifests/base for the release\'s ServiceAccount alone, in every mode', async () => {
    const shipped = parse(readFileSync(join(repoRoot, 'manifests/base/admission-policy.yaml'), 'utf8'));
    const shippedSpec = (find(shipped, 'ValidatingAdmissionPolicy')[0] as unknown as { spec: Record<string, unknown> }).spec;
    for (const sets of [[], ['mode=cluster'], ['mode=cluster', 'watchNamespaces={dev1}']]) {
      const objects = await render('ops', ...sets);
      const policy = find(objects, 'ValidatingAdmissionPolicy')[0] as unknown as { metadata: { name: string }; spec: Record<string, unknown> };
      expect(policy.metadata.name).toBe('rel-iotedge-operator-ops-writes');
      expect({ ...policy.spec, matchConditions: undefined }).toEqual({ ...shippedSpec, matchConditions: undefined });
      expect(policy.spec.matchConditions).toEqual([{ name: 'the-operator', expression: "request.userInfo.username == 'system:serviceaccount:ops:rel-iotedge-operator'" }]);
      const binding = find(objects, 'ValidatingAdmissionPolicyBinding')[0] as unknown as { spec: unknown };
      expect(binding.spec).toEqual({ policyName: 'rel-iotedge-operator-ops-writes', validationActions: ['Deny'] });
    }
    expect(find(await render('ops', 'rbac.admissionPolicy=false'), 'ValidatingAdmissionPolicy')).toEqual([]);
  });

  it('configure the operator only through variables `iotedge-operator run` reads', async () => {
    // IOTEDGE_OPERATOR_IMAGE is read as the built-in hub's default image (--edge-hub-image).
    const known = new Set([...runCommand().options.map((o) => o.envVar), 'POD_NAMESPACE', 'IOTEDGE_OPERATOR_IMAGE']);
    const everything = await render('ops', 'mode=cluster', 'replicas=3', 'storage.storageClass=fast', 'storage.retainVolumes=false',
      'networkPolicies=false', 'defaultHubHostName=hub.example.net', 'securityPolicy.podSecurity=restricted', 'securityPolicy.labelNamespaces=false',
      'securityPolicy.allowVolumeTypes={csi,downwardAPI}', 'securityPolicy.mountableSecrets={plc-cert}',
      ...['allowPrivileged', 'allowHostNetwork', 'allowHostPid', 'allowHostIpc', 'allowHostPath', 'allowAddedCapabilities', 'allowDevices', 'allowUnsafeSysctls', 'allowServiceAccountToken'].map((s) => `securityPolicy.${s}=true`));
    const env = envOf(everything);
    expect(env.map((e) => e.name).filter((n) => !known.has(n))).toEqual([]);
    expect(Object.fromEntries(env.filter((e) => e.value !== undefined).map((e) => [e.name, e.value]))).toEqual({
      IOTEDGE_OPERATOR_NAMESPACES: 'all',
      IOTEDGE_OPERATOR_HEALTH_PROBE_BIND_ADDRESS: '0.0.0.0:8081',
      IOTEDGE_OPERATOR_METRICS_BIND_ADDRESS: '0.0.0.0:8080',
      IOTEDGE_OPERATOR_LOG_LEVEL: 'info',
      IOTEDGE_OPERATOR_IMAGE: 'iotedge-operator:0.1.0',
      IOTEDGE_OPERATOR_CONCURRENCY: '4',
      IOTEDGE_OPERATOR_VOLUME_SIZE: '1Gi',
      IOTEDGE_OPERATOR_VOLUME_ACCESS_MODE: 'ReadWriteOnce',
      IOTEDGE_OPERATOR_PORT_BINDING_SERVICE_TYPE: 'LoadBalancer',
      IOTEDGE_OPERATOR_RUN_AS_USER: '1000',
      IOTEDGE_OPERATOR_STORAGE_CLASS: 'fast',
      IOTEDGE_OPERATOR_HUB_HOST_NAME: 'hub.example.net',
      IOTEDGE_OPERATOR_ALLOW_PRIVILEGED: 'true',
      IOTEDGE_OPERATOR_ALLOW_HOST_NETWORK: 'true',
      IOTEDGE_OPERATOR_ALLOW_HOST_PID: 'true',
      IOTEDGE_OPERATOR_ALLOW_HOST_IPC: 'true',
      IOTEDGE_OPERATOR_ALLOW_HOST_PATH: 'true',
      IOTEDGE_OPERATOR_ALLOW_ADDED_CAPABILITIES: 'true',
      IOTEDGE_OPERATOR_ALLOW_DEVICES: 'true',
      IOTEDGE_OPERATOR_ALLOW_UNSAFE_SYSCTLS: 'true',
      IOTEDGE_OPERATOR_ALLOW_SERVICE_ACCOUNT_TOKEN: 'true',
      IOTEDGE_OPERATOR_POD_SECURITY: 'restricted',
      IOTEDGE_OPERATOR_ALLOW_VOLUME_TYPES: 'csi,downwardAPI',
      IOTEDGE_OPERATOR_MOUNTABLE_SECRETS: 'plc-cert',
      IOTEDGE_OPERATOR_NO_LABEL_NAMESPACES: 'true',
      IOTEDGE_OPERATOR_DELETE_VOLUMES_WITH_MODULES: 'true',
      IOTEDGE_OPERATOR_NO_NETWORK_POLICIES: 'true',
      IOTEDGE_OPERATOR_LEADER_ELECT: 'true',
      IOTEDGE_OPERATOR_LEADER_ELECTION_ID: 'rel-iotedge-operator',
    });
    expect(env.find((e) => e.name === 'POD_NAMESPACE')?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.namespace');
    // The operator's boolean switches are on when their variable exists at all, so the defaults set none of them.
    const defaults = envOf(await render('dev1')).map((e) => e.name);
    expect(defaults.filter((n) => /ALLOW_|DELETE_VOLUMES|NO_NETWORK|NO_LABEL|LEADER_ELECT|MOUNTABLE/.test(n))).toEqual([]);
    expect(envOf(await render('dev1')).find((e) => e.name === 'IOTEDGE_OPERATOR_NAMESPACES')?.value).toBe('own');
    expect(envOf(await render('ops', 'mode=cluster', 'watchNamespaces={dev1,dev2}')).find((e) => e.name === 'IOTEDGE_OPERATOR_NAMESPACES')?.value).toBe('dev1,dev2');
    expect(envOf(await render('ops', 'leaderElection.enabled=true', 'leaderElection.leaseName=my-lease')))
      .toEqual(expect.arrayContaining([{ name: 'IOTEDGE_OPERATOR_LEADER_ELECT', value: 'true' }, { name: 'IOTEDGE_OPERATOR_LEADER_ELECTION_ID', value: 'my-lease' }]));
  });

  it('run the operator locked down, with probes and metrics on the pod IP', async () => {
    const deployment = deploymentOf(await render('dev1'));
    const pod = deployment.spec!.template.spec!;
    const container = pod.containers[0]!;
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } });
    expect(container.securityContext).toMatchObject({
      runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(container.ports).toEqual([{ name: 'metrics', containerPort: 8080, protocol: 'TCP' }, { name: 'health', containerPort: 8081, protocol: 'TCP' }]);
    expect(container.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'health' });
    expect(container.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'health' });
    expect(container.resources?.requests).toEqual({ cpu: '50m', memory: '128Mi' });
    expect(deployment.spec!.strategy?.type).toBe('Recreate');
    const ha = deploymentOf(await render('dev1', 'replicas=2'));
    expect(ha.spec!.strategy).toBeUndefined();
  });

  it('render a ServiceMonitor only when asked, and a metrics Service always', async () => {
    expect(find(await render('dev1'), 'ServiceMonitor')).toEqual([]);
    const objects = await render('dev1', 'serviceMonitor.enabled=true', 'serviceMonitor.labels.release=prom', 'serviceMonitor.interval=15s');
    const monitor = find(objects, 'ServiceMonitor')[0] as unknown as { apiVersion: string; metadata: { labels: Record<string, string> }; spec: { endpoints: unknown[]; selector: { matchLabels: Record<string, string> } } };
    expect(monitor.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(monitor.metadata.labels.release).toBe('prom');
    expect(monitor.spec.endpoints).toEqual([{ port: 'metrics', path: '/metrics', interval: '15s' }]);
    const service = find(objects, 'Service')[0] as unknown as { metadata: { labels: Record<string, string> }; spec: { selector: Record<string, string>; ports: unknown[] } };
    expect(service.spec.ports).toEqual([{ name: 'metrics', port: 8080, targetPort: 'metrics', protocol: 'TCP' }]);
    expect(service.metadata.labels).toMatchObject(monitor.spec.selector.matchLabels);
    expect(service.spec.selector).toEqual(deploymentOf(objects).spec!.selector.matchLabels);
  });

  it('bind an EdgeDeployment to the IoT Hub device, keeping the connection string in a Secret only', async () => {
    const objects = await render('dev1', `iotHub.connectionString=${connectionString('dev-1')}`, 'iotHub.hostName=hub.local');
    const secret = find(objects, 'Secret')[0] as unknown as { metadata: { name: string }; data: Record<string, string> };
    expect(Buffer.from(secret.data.connectionString!, 'base64').toString()).toBe(connectionString('dev-1'));
    const ed = find(objects, 'EdgeDeployment')[0] as unknown as EdgeDeployment;
    expect(ed.metadata?.name).toBe('rel');
    expect(ed.spec).toEqual({ deviceId: 'dev-1', iotHub: { connectionStringSecretRef: { name: secret.metadata.name, key: 'connectionString' }, hostName: 'hub.local' } });
    for (const o of objects.filter((x) => x.kind !== 'Secret')) expect(JSON.stringify(o)).not.toContain(sharedAccessKey);

    const existing = await render('dev1', 'iotHub.existingSecret=my-device', 'iotHub.existingSecretKey=cs', 'iotHub.deviceId=dev-2');
    expect(find(existing, 'Secret')).toEqual([]);
    expect((find(existing, 'EdgeDeployment')[0] as unknown as EdgeDeployment).spec?.iotHub?.connectionStringSecretRef).toEqual({ name: 'my-device', key: 'cs' });
    expect(find(await render('dev1', `iotHub.connectionString=${connectionString('d')}`, 'iotHub.createEdgeDeployment=false'), 'EdgeDeployment')).toEqual([]);
  });
});

describe('server-side dry run', () => {
  let ns: string;
  beforeAll(async () => {
    ns = await createTestNamespace(cluster, 'helm-dry');
  });
  afterAll(async () => {
    await deleteTestNamespace(cluster, ns);
  });

  it.each([
    ['namespace', [`iotHub.connectionString=${connectionString('d1')}`]],
    // The watched namespace must exist for its RoleBinding; the release's own serves here.
    ['cluster', ['mode=cluster', 'replicas=2', 'watchNamespaces={<release namespace>}']],
  ])('the API server accepts helm template output in %s mode, CRD included', async (_, sets) => {
    const manifest = await helm('template', `dry-${randomBytes(2).toString('hex')}`, chart, '-n', ns, '--include-crds',
      ...sets.flatMap((s) => ['--set', s.replace('<release namespace>', ns)]));
    const out = await kubectl(cluster, ['apply', '--dry-run=server', '-n', ns, '-f', '-'], manifest);
    expect(out).toMatch(/deployment\.apps\/\S+ (created|configured) \(server dry run\)/);
    expect(out).toContain('customresourcedefinition.apiextensions.k8s.io/edgedeployments.iotedge-operator.io');
  });
});

describe('helm install, upgrade and uninstall', () => {
  it('namespace mode: the one-liner runs one IoT Hub device; upgrade rolls the operator; uninstall leaves nothing', async () => {
    const ns = await createTestNamespace(cluster, 'helm-dev');
    try {
      // The operator pod passes the strictest Pod Security Standard.
      await kubectl(cluster, ['label', 'namespace', ns, 'pod-security.kubernetes.io/enforce=restricted']);
      const install = await helm('install', ns, chart, '-n', ns, '--set', `iotHub.connectionString=${connectionString(ns)}`, '--wait', '--timeout', '120s');
      expect(install).toContain('STATUS: deployed');
      expect(install).toContain(`kubectl get edgedeployments -n ${ns}`);
      expect(install).not.toContain(sharedAccessKey);
      await operatorPodsRunning(ns, ns, 1);
      const ed = JSON.parse(await kubectl(cluster, ['-n', ns, 'get', 'edep', ns, '-o', 'json'])) as EdgeDeployment;
      expect(ed.spec).toEqual({ deviceId: ns, iotHub: { connectionStringSecretRef: { name: `${ns}-iotedge-operator-iothub`, key: 'connectionString' } } });
      const secret = await cluster.core.readNamespacedSecret({ name: `${ns}-iotedge-operator-iothub`, namespace: ns });
      expect(Buffer.from(secret.data!.connectionString!, 'base64').toString()).toBe(connectionString(ns));
      expect(grants((await rbacApi.readNamespacedRole({ name: `${ns}-iotedge-operator`, namespace: ns })).rules ?? []))
        .toEqual(grants(shippedClusterRules).filter((g) => !g.includes('/nodes:')));
      expect((await rbacApi.readClusterRole({ name: `${ns}-iotedge-operator-${ns}-nodes` })).rules).toEqual([{ apiGroups: [''], resources: ['nodes'], verbs: ['list'] }]);

      const upgrade = await helm('upgrade', ns, chart, '-n', ns, '--reuse-values', '--set', 'logLevel=debug', '--wait', '--timeout', '120s');
      expect(upgrade).toContain('REVISION: 2');
      const deployment = await cluster.apps.readNamespacedDeployment({ name: `${ns}-iotedge-operator`, namespace: ns });
      expect(deployment.spec?.template.spec?.containers[0]?.env).toContainEqual({ name: 'IOTEDGE_OPERATOR_LOG_LEVEL', value: 'debug' });
      await eventually('the upgraded pod Running', async () => {
        const pods = await cluster.core.listNamespacedPod({ namespace: ns, labelSelector: `app.kubernetes.io/instance=${ns},app.kubernetes.io/component=operator` });
        const current = pods.items.filter((p) => p.status?.phase === 'Running' && !p.metadata?.deletionTimestamp
          && p.spec?.containers[0]?.env?.some((e) => e.name === 'IOTEDGE_OPERATOR_LOG_LEVEL' && e.value === 'debug'));
        return current.length === 1 && pods.items.length === 1 ? current : undefined;
      }, 90_000);

      const manifest = (loadAll(await helm('get', 'manifest', ns, '-n', ns)) as (K8sObject | null)[]).filter((o): o is K8sObject => o !== null);
      expect(manifest.map((o) => o.kind).sort()).toEqual(['ClusterRole', 'ClusterRoleBinding', 'Deployment', 'EdgeDeployment', 'Role', 'Role', 'RoleBinding', 'RoleBinding', 'Secret', 'Service', 'ServiceAccount', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding']);
      await helm('uninstall', ns, '-n', ns, '--wait', '--timeout', '120s');
      await expectNothingLeft(ns, ns, manifest);
      // The CRD is not the release's to delete.
      await kubectl(cluster, ['get', 'crd', 'edgedeployments.iotedge-operator.io']);
    } finally {
      await helmRun(['uninstall', ns, '-n', ns]); // a failed test must not leave its ClusterRole behind
      await deleteTestNamespace(cluster, ns);
    }
  });

  it('namespace mode: the operator reconciles its device with only the chart\'s ServiceAccount', async () => {
    const ns = await createTestNamespace(cluster, 'helm-rbac');
    try {
      await helm('install', 'edge', chart, '-n', ns);
      const ed = await reconcileAsChartServiceAccount(ns, 'edge-iotedge-operator', ns);
      expect(ed.status?.moduleSummary).toBe('2/2');
      const manifest = (loadAll(await helm('get', 'manifest', 'edge', '-n', ns)) as (K8sObject | null)[]).filter((o): o is K8sObject => o !== null);
      await helm('uninstall', 'edge', '-n', ns, '--wait', '--timeout', '120s');
      await expectNothingLeft(ns, 'edge', manifest);
    } finally {
      await helmRun(['uninstall', 'edge', '-n', ns]); // a failed test must not leave its ClusterRole behind
      await deleteTestNamespace(cluster, ns);
    }
  });

  it('cluster mode: one operator serves another namespace; upgrade to two replicas elects a leader; uninstall removes the ClusterRole', async () => {
    const ns = await createTestNamespace(cluster, 'helm-ops');
    const device = await createTestNamespace(cluster, 'helm-device');
    const release = `ops-${randomBytes(3).toString('hex')}`;
    try {
      await kubectl(cluster, ['label', 'namespace', ns, 'pod-security.kubernetes.io/enforce=restricted']);
      await helm('install', release, chart, '-n', ns, '--set', 'mode=cluster', '--wait', '--timeout', '120s');
      await operatorPodsRunning(ns, release, 1);
      expect((await rbacApi.readClusterRole({ name: `${release}-iotedge-operator` })).rules).toEqual(shippedClusterRules);
      expect((await rbacApi.readClusterRoleBinding({ name: `${release}-iotedge-operator` })).subjects)
        .toEqual([{ kind: 'ServiceAccount', name: `${release}-iotedge-operator`, namespace: ns }]);

      const ed = await reconcileAsChartServiceAccount(ns, `${release}-iotedge-operator`, device);
      expect(ed.status?.moduleSummary).toBe('2/2');

      await helm('upgrade', release, chart, '-n', ns, '--reuse-values', '--set', 'replicas=2', '--wait', '--timeout', '120s');
      const deployment = await cluster.apps.readNamespacedDeployment({ name: `${release}-iotedge-operator`, namespace: ns });
      expect(deployment.spec?.strategy?.type).toBe('RollingUpdate');
      expect(deployment.spec?.template.spec?.containers[0]?.env).toContainEqual({ name: 'IOTEDGE_OPERATOR_LEADER_ELECT', value: 'true' });
      await operatorPodsRunning(ns, release, 2);

      const manifest = (loadAll(await helm('get', 'manifest', release, '-n', ns)) as (K8sObject | null)[]).filter((o): o is K8sObject => o !== null);
      expect(manifest.map((o) => o.kind).sort()).toEqual(['ClusterRole', 'ClusterRoleBinding', 'Deployment', 'Role', 'RoleBinding', 'Service', 'ServiceAccount', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding']);
      await helm('uninstall', release, '-n', ns, '--wait', '--timeout', '120s');
      await expectNothingLeft(ns, release, manifest);
    } finally {
      await helmRun(['uninstall', release, '-n', ns]);
      await deleteTestNamespace(cluster, device);
      await deleteTestNamespace(cluster, ns);
    }
  });
});
