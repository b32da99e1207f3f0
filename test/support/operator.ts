// Runs the real operator (OperatorManager) in the test process, authenticated as a ServiceAccount that
// holds exactly the rules in manifests/base/rbac.yaml and is held to manifests/base/admission-policy.yaml,
// so a missing RBAC rule, or a write of an object the operator does not label as its own, fails the tests.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { load, loadAll } from 'js-yaml';
import type { CertificateLifetimes } from '../../src/controller/device-trust.ts';
import type { HubStatusTimings } from '../../src/controller/hub-status.ts';
import { OperatorManager } from '../../src/controller/manager.ts';
import { TwinSyncSupervisor } from '../../src/iothub/supervisor.ts';
import type { TwinSyncTimings } from '../../src/iothub/twin-sync.ts';
import { pino } from 'pino';
import { createLogger, type Logger } from '../../src/runtime/logger.ts';
import { defaultSettings, type OperatorSettings } from '../../src/translate/settings.ts';
import { installCrds, repoRoot } from '../../scripts/cluster/control-plane.ts';
import { kubectl, type TestCluster } from './cluster.ts';

let crdInstalled: Promise<void> | undefined;

/** Installs the EdgeDeployment CRD (once per test file) and waits until it is served. */
export function ensureCrd(cluster: TestCluster): Promise<void> {
  crdInstalled ??= (async () => {
    await installCrds((args) => kubectl(cluster, args), join(repoRoot, 'crds'));
  })();
  return crdInstalled;
}

let admissionPolicyInstalled: Promise<void> | undefined;

/**
 * Installs the kustomize base's admission policy (once per test file). It holds every ServiceAccount whose
 * name ends in iotedge-operator, the test operators' included, to writing only objects labelled as the
 * operator's. A new policy takes a moment to take effect; the first test operator's writes are all labelled
 * anyway, so nothing waits for it.
 */
export function ensureAdmissionPolicy(cluster: TestCluster): Promise<void> {
  admissionPolicyInstalled ??= kubectl(cluster, ['apply', '--server-side', '--force-conflicts', '-f', join(repoRoot, 'manifests/base/admission-policy.yaml')]).then(() => undefined);
  return admissionPolicyInstalled;
}

/**
 * A ServiceAccount bound to the operator's ClusterRole (and leader-election Role), held to the operator's
 * admission policy, and a kubeconfig for it.
 */
export async function operatorKubeConfig(cluster: TestCluster, namespace: string): Promise<KubeConfig> {
  await ensureAdmissionPolicy(cluster);
  const suffix = randomBytes(3).toString('hex');
  const rbac = loadAll(readFileSync(join(repoRoot, 'manifests/base/rbac.yaml'), 'utf8')) as { kind: string; metadata: { name: string } }[];
  const clusterRole = rbac.find((o) => o.kind === 'ClusterRole')!;
  const role = rbac.find((o) => o.kind === 'Role')!;
  const docs = [
    clusterRole,
    { ...role, metadata: { ...role.metadata, namespace } },
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'iotedge-operator', namespace } },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding',
      metadata: { name: `iotedge-operator-test-${namespace}-${suffix}`, labels: { 'iotedge-operator.io/test': 'true' } },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: clusterRole.metadata.name },
      subjects: [{ kind: 'ServiceAccount', name: 'iotedge-operator', namespace }],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding',
      metadata: { name: 'iotedge-operator-leader-election', namespace },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: role.metadata.name },
      subjects: [{ kind: 'ServiceAccount', name: 'iotedge-operator', namespace }],
    },
  ];
  await kubectl(cluster, ['apply', '--server-side', '--force-conflicts', '-f', '-'], docs.map((d) => JSON.stringify(d)).join('\n---\n'));
  return serviceAccountKubeConfig(cluster, namespace, 'iotedge-operator');
}

/** A kubeconfig that authenticates as the given ServiceAccount, with a token from the TokenRequest API. */
export async function serviceAccountKubeConfig(cluster: TestCluster, namespace: string, serviceAccount: string): Promise<KubeConfig> {
  const token = (await kubectl(cluster, ['-n', namespace, 'create', 'token', serviceAccount, '--duration=2h'])).trim();
  const admin = load(readFileSync(cluster.kubeconfigPath, 'utf8')) as { clusters: { cluster: { server: string; 'certificate-authority-data': string } }[] };
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'local', server: admin.clusters[0]!.cluster.server, caData: admin.clusters[0]!.cluster['certificate-authority-data'] }],
    users: [{ name: serviceAccount, token }],
    contexts: [{ name: 'operator', cluster: 'local', user: serviceAccount, namespace }],
    currentContext: 'operator',
  });
  return kc;
}

let loggers = 0;

/**
 * The operator's logger in tests: IOTEDGE_TEST_LOG_LEVEL to stdout when set; otherwise debug lines into the
 * run's capture directory, which the secret-leak check at teardown greps for every key the run used.
 */
function testLogger(name: string): Logger {
  if (process.env.IOTEDGE_TEST_LOG_LEVEL !== undefined) return createLogger({ level: process.env.IOTEDGE_TEST_LOG_LEVEL as 'info', name });
  const dir = process.env.IOTEDGE_TEST_CAPTURE_DIR;
  if (!dir) return createLogger({ level: 'silent', name });
  const file = join(dir, `${name}-${process.pid}-${++loggers}.log`);
  return createLogger({ level: 'debug', name, destination: pino.destination({ dest: file, sync: true }) });
}

export interface RunningOperator {
  manager: OperatorManager;
  /** Present when started with `twinSync`: IoT Hub twin sync, as `iotedge-operator run` wires it. */
  twinSync?: TwinSyncSupervisor;
  requests: { method: string; path: string; code: number | 'error' }[];
  stop(): Promise<void>;
}

export async function startTestOperator(
  kubeConfig: KubeConfig,
  namespaces: string[],
  settings: Partial<OperatorSettings> = {},
  options: { twinSync?: { timings?: Partial<TwinSyncTimings> }; certificateLifetimes?: CertificateLifetimes; hubStatus?: Partial<HubStatusTimings> | false } = {},
): Promise<RunningOperator> {
  const requests: RunningOperator['requests'] = [];
  const manager = new OperatorManager({
    kubeConfig,
    namespaces,
    settings: { ...defaultSettings, ...settings, storage: { ...defaultSettings.storage, ...settings.storage } },
    concurrency: 4,
    logger: testLogger('operator-under-test'),
    onRequest: (method, path, code) => requests.push({ method, path, code }),
    ...(options.certificateLifetimes ? { certificateLifetimes: options.certificateLifetimes } : {}),
    ...(options.hubStatus !== undefined ? { hubStatus: options.hubStatus } : {}),
  });
  await manager.start();
  let twinSync: TwinSyncSupervisor | undefined;
  if (options.twinSync) {
    twinSync = new TwinSyncSupervisor({
      client: manager.client,
      namespaces,
      logger: testLogger('twin-sync-under-test'),
      timings: options.twinSync.timings,
    });
    await twinSync.start();
  }
  return {
    manager,
    requests,
    ...(twinSync ? { twinSync } : {}),
    stop: async () => {
      await twinSync?.stop();
      await manager.stop(5_000);
    },
  };
}
