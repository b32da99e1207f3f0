// `iotedge-operator run`: the operator process. Every flag also reads an environment variable, so the
// Helm chart and plain manifests configure it the same way.
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { CliError } from './io.ts';
import { CoordinationV1Api, KubeConfig } from '@kubernetes/client-node';
import { OperatorManager } from '../controller/manager.ts';
import { defaultSettings, type OperatorSettings } from '../translate/settings.ts';
import { builtinHubNodeOptions } from '../translate/builtin-hub.ts';
import { createLogger, isLogLevel, type Logger } from '../runtime/logger.ts';
import { OperatorMetrics, describeApiRequest } from '../runtime/metrics.ts';
import { HealthChecks, startOperatorEndpoints } from '../runtime/health.ts';
import { LeaderElector, defaultIdentity } from '../runtime/leader-election.ts';
import { onShutdownSignal } from '../runtime/shutdown.ts';
import { TwinSyncSupervisor } from '../iothub/supervisor.ts';

const serviceAccountNamespaceFile = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

/** The security policy switches are flags of the same names. */
type PolicyFlags = Pick<OperatorSettings, 'allowPrivileged' | 'allowHostNetwork' | 'allowHostPid' | 'allowHostIpc' | 'allowHostPath' | 'allowAddedCapabilities' | 'allowDevices'>
  & Partial<Pick<OperatorSettings, 'podSecurity' | 'allowUnsafeSysctls' | 'allowServiceAccountToken'>>
  & { allowVolumeTypes?: string; mountableSecrets?: string; labelNamespaces?: boolean };

export interface RunFlags extends PolicyFlags {
  kubeconfig?: string;
  namespaces: string;
  storageClass?: string;
  volumeSize: string;
  volumeAccessMode: OperatorSettings['storage']['accessMode'];
  deleteVolumesWithModules: boolean;
  useMountSourceForVolumeName: boolean;
  runAsNonRoot: boolean;
  runAsUser: string;
  portBindingServiceType: OperatorSettings['portBindingServiceType'];
  networkPolicies: boolean;
  leaderElect: boolean;
  leaderElectionNamespace?: string;
  leaderElectionId: string;
  /** Seconds, as strings from the command line. */
  leaderElectionLeaseDuration?: string;
  leaderElectionRenewDeadline?: string;
  leaderElectionRetryPeriod?: string;
  cacheSyncTimeout?: string;
  healthProbeBindAddress: string;
  metricsBindAddress: string;
  concurrency: string;
  logLevel: string;
  hubHostName?: string;
  /** False with --no-twin-sync; absent means on. */
  twinSync?: boolean;
  edgeHub?: 'builtin' | 'stock';
  edgeHubImage?: string;
  edgeHubNodeOptions?: string;
  /** Lifetimes of the device CA and edgeHub's certificate, e.g. 90d, 12h, 600s. */
  deviceCaLifetime: string;
  edgehubCertLifetime: string;
}

const durationUnits: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `90d`, `12h`, `30m`, `600s` in milliseconds; throws naming the flag for anything else. */
export function parseDuration(flag: string, value: string): number {
  const match = /^(\d+)([smhd])$/.exec(value.trim());
  if (!match || Number(match[1]) === 0) throw new Error(`${flag}: "${value}" is not a duration such as 90d, 12h, 30m or 600s`);
  return Number(match[1]) * durationUnits[match[2]!]!;
}

/** The device CA's and edgeHub certificate's lifetimes, from their flags. */
export function certificateLifetimesFromFlags(flags: Pick<RunFlags, 'deviceCaLifetime' | 'edgehubCertLifetime'>): { caMs: number; serverMs: number } {
  return {
    caMs: parseDuration('--device-ca-lifetime', flags.deviceCaLifetime),
    serverMs: parseDuration('--edgehub-cert-lifetime', flags.edgehubCertLifetime),
  };
}

const flag = (name: string, env: string, description: string) => new Option(name, description).env(env);

/** Switches read from the environment; commander treats a switch's variable as set whenever it exists. */
const switchVariables = [
  'IOTEDGE_OPERATOR_ALLOW_PRIVILEGED', 'IOTEDGE_OPERATOR_ALLOW_HOST_NETWORK', 'IOTEDGE_OPERATOR_ALLOW_HOST_PID', 'IOTEDGE_OPERATOR_ALLOW_HOST_IPC',
  'IOTEDGE_OPERATOR_ALLOW_HOST_PATH', 'IOTEDGE_OPERATOR_ALLOW_ADDED_CAPABILITIES', 'IOTEDGE_OPERATOR_ALLOW_DEVICES',
  'IOTEDGE_OPERATOR_ALLOW_UNSAFE_SYSCTLS', 'IOTEDGE_OPERATOR_ALLOW_SERVICE_ACCOUNT_TOKEN', 'IOTEDGE_OPERATOR_NO_LABEL_NAMESPACES',
  'IOTEDGE_OPERATOR_DELETE_VOLUMES_WITH_MODULES', 'IOTEDGE_OPERATOR_USE_MOUNT_SOURCE_FOR_VOLUME_NAME', 'IOTEDGE_OPERATOR_RUN_AS_NON_ROOT', 'IOTEDGE_OPERATOR_NO_NETWORK_POLICIES', 'IOTEDGE_OPERATOR_LEADER_ELECT', 'IOTEDGE_OPERATOR_NO_TWIN_SYNC',
];

/** So that VAR=false means off, a switch variable holding a false-like value is treated as unset. */
export function normaliseSwitchVariables(env: NodeJS.ProcessEnv = process.env): void {
  for (const name of switchVariables) {
    const value = env[name];
    if (value === undefined) continue;
    if (/^(false|0|no|off|)$/i.test(value.trim())) delete env[name];
    else if (!/^(true|1|yes|on)$/i.test(value.trim())) throw new Error(`${name}="${value}": expected true or false`);
  }
}

export function runCommand(): Command {
  const command = new Command('run')
    .description('run the operator: reconcile EdgeDeployments into Kubernetes objects')
    .addOption(flag('--kubeconfig <path>', 'KUBECONFIG', 'kubeconfig to use; in a pod the in-cluster config is used when absent'))
    .addOption(flag('--namespaces <list>', 'IOTEDGE_OPERATOR_NAMESPACES', '"all", "own" (the operator\'s namespace) or a comma-separated list').default('all'))
    .addOption(flag('--allow-privileged', 'IOTEDGE_OPERATOR_ALLOW_PRIVILEGED', 'allow privileged modules').default(false))
    .addOption(flag('--allow-host-network', 'IOTEDGE_OPERATOR_ALLOW_HOST_NETWORK', 'allow NetworkMode host').default(false))
    .addOption(flag('--allow-host-pid', 'IOTEDGE_OPERATOR_ALLOW_HOST_PID', 'allow PidMode host').default(false))
    .addOption(flag('--allow-host-ipc', 'IOTEDGE_OPERATOR_ALLOW_HOST_IPC', 'allow IpcMode host').default(false))
    .addOption(flag('--allow-host-path', 'IOTEDGE_OPERATOR_ALLOW_HOST_PATH', 'allow host path binds').default(false))
    .addOption(flag('--allow-added-capabilities', 'IOTEDGE_OPERATOR_ALLOW_ADDED_CAPABILITIES', 'allow CapAdd').default(false))
    .addOption(flag('--allow-devices', 'IOTEDGE_OPERATOR_ALLOW_DEVICES', 'allow HostConfig.Devices').default(false))
    .addOption(flag('--pod-security <level>', 'IOTEDGE_OPERATOR_POD_SECURITY', 'Pod Security Standards profile module pods must meet').choices(['restricted', 'baseline', 'privileged']).default(defaultSettings.podSecurity))
    .addOption(flag('--allow-unsafe-sysctls', 'IOTEDGE_OPERATOR_ALLOW_UNSAFE_SYSCTLS', 'allow sysctls outside the safe set').default(false))
    .addOption(flag('--allow-service-account-token', 'IOTEDGE_OPERATOR_ALLOW_SERVICE_ACCOUNT_TOKEN', 'allow modules a Kubernetes API token').default(false))
    .addOption(flag('--allow-volume-types <list>', 'IOTEDGE_OPERATOR_ALLOW_VOLUME_TYPES', 'comma-separated volume types beyond emptyDir, configMap, persistentVolumeClaim, secret'))
    .addOption(flag('--mountable-secrets <list>', 'IOTEDGE_OPERATOR_MOUNTABLE_SECRETS', 'comma-separated Secrets modules may mount (never the operator\'s own)'))
    .addOption(flag('--no-label-namespaces', 'IOTEDGE_OPERATOR_NO_LABEL_NAMESPACES', 'do not label device namespaces for Pod Security Admission'))
    .addOption(flag('--storage-class <name>', 'IOTEDGE_OPERATOR_STORAGE_CLASS', 'StorageClass for named volumes (default: the cluster default)'))
    .addOption(flag('--volume-size <quantity>', 'IOTEDGE_OPERATOR_VOLUME_SIZE', 'size of a named volume\'s PVC').default(defaultSettings.storage.defaultVolumeSize))
    .addOption(flag('--volume-access-mode <mode>', 'IOTEDGE_OPERATOR_VOLUME_ACCESS_MODE', 'access mode of named volumes').choices(['ReadWriteOnce', 'ReadWriteMany', 'ReadWriteOncePod', 'ReadOnlyMany']).default(defaultSettings.storage.accessMode))
    .addOption(flag('--delete-volumes-with-modules', 'IOTEDGE_OPERATOR_DELETE_VOLUMES_WITH_MODULES', 'delete a named volume\'s PVC when no module uses it and with its EdgeDeployment (default: retain)').default(false))
    .addOption(flag('--use-mount-source-for-volume-name', 'IOTEDGE_OPERATOR_USE_MOUNT_SOURCE_FOR_VOLUME_NAME', 'bind each named volume\'s claim to the PersistentVolume of the same name (the preview\'s useMountSourceForVolumeName)').default(false))
    .addOption(flag('--run-as-non-root', 'IOTEDGE_OPERATOR_RUN_AS_NON_ROOT', 'run every module pod with runAsNonRoot (the preview\'s RunAsNonRoot); a module\'s own securityContext wins').default(false))
    .addOption(flag('--run-as-user <uid>', 'IOTEDGE_OPERATOR_RUN_AS_USER', 'uid of module pods under --run-as-non-root when the module names no user').default(String(defaultSettings.runAsUser)))
    .addOption(flag('--port-binding-service-type <type>', 'IOTEDGE_OPERATOR_PORT_BINDING_SERVICE_TYPE', 'Service type for PortBindings').choices(['LoadBalancer', 'NodePort', 'ClusterIP']).default(defaultSettings.portBindingServiceType))
    .addOption(flag('--no-network-policies', 'IOTEDGE_OPERATOR_NO_NETWORK_POLICIES', 'do not create NetworkPolicies'))
    .addOption(flag('--leader-elect', 'IOTEDGE_OPERATOR_LEADER_ELECT', 'elect a leader on a Lease before reconciling (run more than one replica)').default(false))
    .addOption(flag('--leader-election-namespace <ns>', 'IOTEDGE_OPERATOR_LEADER_ELECTION_NAMESPACE', 'namespace of the Lease (default: the operator\'s own)'))
    .addOption(flag('--leader-election-id <name>', 'IOTEDGE_OPERATOR_LEADER_ELECTION_ID', 'name of the Lease').default('iotedge-operator'))
    .addOption(flag('--leader-election-lease-duration <seconds>', 'IOTEDGE_OPERATOR_LEADER_ELECTION_LEASE_DURATION', 'how long a Lease holds without renewal').default('15'))
    .addOption(flag('--leader-election-renew-deadline <seconds>', 'IOTEDGE_OPERATOR_LEADER_ELECTION_RENEW_DEADLINE', 'how long the leader keeps trying to renew before it stops leading and exits').default('10'))
    .addOption(flag('--leader-election-retry-period <seconds>', 'IOTEDGE_OPERATOR_LEADER_ELECTION_RETRY_PERIOD', 'time between Lease attempts').default('2'))
    .addOption(flag('--cache-sync-timeout <seconds>', 'IOTEDGE_OPERATOR_CACHE_SYNC_TIMEOUT', 'a leader whose caches have not synced by then releases the Lease and exits non-zero').default('120'))
    .addOption(flag('--health-probe-bind-address <addr>', 'IOTEDGE_OPERATOR_HEALTH_PROBE_BIND_ADDRESS', '/healthz and /readyz address ("0" disables)').default('127.0.0.1:8081'))
    .addOption(flag('--metrics-bind-address <addr>', 'IOTEDGE_OPERATOR_METRICS_BIND_ADDRESS', '/metrics address ("0" disables)').default('127.0.0.1:8080'))
    .addOption(flag('--concurrency <n>', 'IOTEDGE_OPERATOR_CONCURRENCY', 'EdgeDeployments reconciled at once').default('4'))
    .addOption(flag('--log-level <level>', 'IOTEDGE_OPERATOR_LOG_LEVEL', 'trace, debug, info, warn, error').default('info'))
    .addOption(flag('--hub-host-name <host>', 'IOTEDGE_OPERATOR_HUB_HOST_NAME', 'IoT Hub host name given to modules when an EdgeDeployment has no IoT Hub binding'))
    .addOption(flag('--edge-hub <kind>', 'IOTEDGE_OPERATOR_EDGE_HUB', 'what runs as $edgeHub: builtin (iotedge-operator edgehub) or stock (the manifest\'s image); default: builtin without spec.iotHub (kubectl mode), stock with it').choices(['builtin', 'stock']))
    .addOption(flag('--edge-hub-node-options <flags>', 'IOTEDGE_OPERATOR_EDGE_HUB_NODE_OPTIONS', `NODE_OPTIONS of the built-in hub's process (V8's heap settings; default "${builtinHubNodeOptions}", measured in docs/builtin-hub.md)`))
    .addOption(flag('--edge-hub-image <image>', 'IOTEDGE_OPERATOR_EDGE_HUB_IMAGE', 'image of the built-in hub (default: $IOTEDGE_OPERATOR_IMAGE, the operator\'s own image)'))
    .addOption(flag('--device-ca-lifetime <duration>', 'IOTEDGE_OPERATOR_DEVICE_CA_LIFETIME', 'lifetime of each device CA the operator makes (renewed at 2/3)').default('1825d'))
    .addOption(flag('--edgehub-cert-lifetime <duration>', 'IOTEDGE_OPERATOR_EDGEHUB_CERT_LIFETIME', 'lifetime of edgeHub\'s server certificate (renewed at 2/3; the stock edgeHub needs more than 5 minutes)').default('90d'))
    .addOption(flag('--no-twin-sync', 'IOTEDGE_OPERATOR_NO_TWIN_SYNC', 'do not connect EdgeDeployments with spec.iotHub to IoT Hub (twin sync runs by default and only acts on bound resources)'))
    .action(async (flags: RunFlags) => {
      await runOperator(flags);
    });
  // Commander reads the variables while parsing; normalise them first, reporting a bad one as a usage error.
  try {
    normaliseSwitchVariables();
  } catch (error) {
    throw new CliError((error as Error).message, 2);
  }
  return command;
}

export function settingsFromFlags(flags: RunFlags): OperatorSettings {
  return {
    ...defaultSettings,
    allowPrivileged: flags.allowPrivileged,
    allowHostNetwork: flags.allowHostNetwork,
    allowHostPid: flags.allowHostPid,
    allowHostIpc: flags.allowHostIpc,
    allowHostPath: flags.allowHostPath,
    allowAddedCapabilities: flags.allowAddedCapabilities,
    allowDevices: flags.allowDevices,
    podSecurity: flags.podSecurity ?? defaultSettings.podSecurity,
    allowUnsafeSysctls: flags.allowUnsafeSysctls ?? false,
    allowServiceAccountToken: flags.allowServiceAccountToken ?? false,
    allowVolumeTypes: commaList(flags.allowVolumeTypes),
    mountableSecrets: commaList(flags.mountableSecrets),
    storage: {
      ...defaultSettings.storage,
      ...(flags.storageClass ? { storageClassName: flags.storageClass } : {}),
      defaultVolumeSize: flags.volumeSize,
      accessMode: flags.volumeAccessMode,
      retainVolumesOnModuleRemoval: !flags.deleteVolumesWithModules,
      useMountSourceForVolumeName: flags.useMountSourceForVolumeName,
    },
    runAsNonRoot: flags.runAsNonRoot,
    runAsUser: parseUid(flags.runAsUser),
    portBindingServiceType: flags.portBindingServiceType,
    networkPolicies: flags.networkPolicies,
    edgeHub: flags.edgeHub ?? 'auto',
    edgeHubImage: flags.edgeHubImage ?? process.env.IOTEDGE_OPERATOR_IMAGE ?? defaultSettings.edgeHubImage,
    ...(flags.edgeHubNodeOptions !== undefined ? { edgeHubNodeOptions: flags.edgeHubNodeOptions } : {}),
  };
}

function parseUid(text: string): number {
  if (!/^\d+$/.test(text.trim())) throw new CliError(`--run-as-user ${JSON.stringify(text)}: expected a numeric uid`, 2);
  return Number(text);
}

function commaList(value: string | undefined): string[] {
  return (value ?? '').split(',').map((v) => v.trim()).filter(Boolean);
}

function loadKubeConfig(path: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else if (process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
  else kc.loadFromDefault();
  return kc;
}

function ownNamespace(): string {
  if (process.env.POD_NAMESPACE) return process.env.POD_NAMESPACE;
  try {
    return readFileSync(serviceAccountNamespaceFile, 'utf8').trim();
  } catch {
    throw new Error('cannot tell the operator\'s own namespace: set POD_NAMESPACE (the Helm chart does) or run in a pod');
  }
}

export function parseNamespaces(value: string): 'all' | string[] {
  const trimmed = value.trim();
  if (trimmed === '' || trimmed === 'all') return 'all';
  if (trimmed === 'own') return [ownNamespace()];
  return trimmed.split(',').map((n) => n.trim()).filter(Boolean);
}

export async function runOperator(flags: RunFlags, logger?: Logger): Promise<void> {
  if (!isLogLevel(flags.logLevel)) throw new Error(`--log-level: "${flags.logLevel}" is not a log level`);
  const log = logger ?? createLogger({ level: flags.logLevel, name: 'iotedge-operator' });
  const concurrency = Number(flags.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error(`--concurrency: "${flags.concurrency}" is not a positive integer`);
  const seconds = (value: string | undefined, fallback: number, name: string) => {
    const n = Number(value ?? fallback);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${name}: "${value}" is not a positive number of seconds`);
    return n * 1000;
  };
  const cacheSyncTimeoutMs = seconds(flags.cacheSyncTimeout, 120, '--cache-sync-timeout');
  const kc = loadKubeConfig(flags.kubeconfig);
  const namespaces = parseNamespaces(flags.namespaces);
  const metrics = new OperatorMetrics();
  metrics.registerController('edgedeployment', concurrency);
  const checks = new HealthChecks();
  const queueHooks = metrics.queueHooks('edgedeployment');
  const controllerHooks = metrics.controllerHooks('edgedeployment');
  // The work queue reports a reconcile's result and then its duration; pair them in order.
  const pendingResults: ('success' | 'error' | 'requeue_after')[] = [];
  // The queue samples in-flight work; the metrics read the latest sample at scrape time.
  const unfinished = { unfinishedSeconds: 0, longestRunningSeconds: 0 };
  let activeWorkers = 0;
  queueHooks.unfinishedWork(() => unfinished);
  const manager = new OperatorManager({
    kubeConfig: kc,
    namespaces,
    settings: settingsFromFlags(flags),
    concurrency,
    logger: log,
    defaultHubHostName: flags.hubHostName,
    certificateLifetimes: certificateLifetimesFromFlags(flags),
    cacheSyncTimeoutMs,
    labelNamespaces: flags.labelNamespaces !== false,
    queueMetrics: {
      depth: queueHooks.onDepth,
      addsTotal: queueHooks.onAdd,
      queueDurationSeconds: queueHooks.onQueueLatency,
      workDurationSeconds: queueHooks.onWorkDuration,
      retriesTotal: queueHooks.onRetry,
      unfinishedWorkSeconds: (seconds) => (unfinished.unfinishedSeconds = seconds),
      longestRunningProcessorSeconds: (seconds) => (unfinished.longestRunningSeconds = seconds),
    },
    reconcileMetrics: {
      reconcileTotal: (result) => pendingResults.push(result),
      reconcileTimeSeconds: (seconds) => controllerHooks.reconcileDone(pendingResults.shift() ?? 'success', seconds),
      activeWorkers: (count) => {
        for (; activeWorkers < count; activeWorkers++) controllerHooks.workerBusy();
        for (; activeWorkers > count; activeWorkers--) controllerHooks.workerIdle();
      },
      terminalReconcileErrorsTotal: controllerHooks.terminalError,
      reconcilePanicsTotal: controllerHooks.panic,
    },
    onModuleStatus: (namespace, name, counts) => metrics.setModules(namespace, name, counts),
    onEdgeDeploymentDeleted: (namespace, name) => metrics.forgetEdgeDeployment(namespace, name),
    onRequest: (method, path, code) => {
      const { verb, resource } = describeApiRequest(method, path);
      metrics.apiRequest(verb, resource, code);
    },
  });
  // A standby replica has no caches to sync; it is ready to take over, so it must not block a rollout.
  let elector: LeaderElector | undefined;
  // Ready = leading (or running without election) with synced caches, or standing by.
  checks.addReadinessCheck('informers-synced', () => {
    if (manager.hasSynced() || (elector !== undefined && !elector.isLeader())) return;
    throw new Error(elector ? 'leading, but the caches have not synced' : 'the caches have not synced');
  });
  // Twin sync acts only on EdgeDeployments with spec.iotHub, so it is on unless switched off.
  const twinSync = flags.twinSync === false ? undefined : new TwinSyncSupervisor({
    client: manager.client,
    namespaces,
    logger: log.child({ component: 'twin-sync' }),
    metrics: { twinSync: (result, namespace) => metrics.twinSync(result, namespace) },
    edgeHub: settingsFromFlags(flags).edgeHub,
  });
  const endpoints = await startOperatorEndpoints({
    probeAddress: flags.healthProbeBindAddress,
    metricsAddress: flags.metricsBindAddress,
    checks,
    metrics,
    logger: log,
  });
  log.info({ namespaces, leaderElect: flags.leaderElect, concurrency }, 'iotedge-operator starting');

  /** Starts the caches and workers; a cache that does not sync in time ends the process, never a silent standstill. */
  const startReconciling = async (): Promise<boolean> => {
    try {
      await manager.start();
      await twinSync?.start();
      return true;
    } catch (error) {
      log.error({ err: error, cacheSyncTimeoutSeconds: cacheSyncTimeoutMs / 1000 }, 'the caches did not sync; giving up so that a healthy replica can lead');
      return false;
    }
  };
  const exitFailed = async (): Promise<never> => {
    await elector?.stop({ release: true });
    await endpoints.stop();
    process.exit(1);
  };

  if (flags.leaderElect) {
    elector = new LeaderElector({
      coordination: kc.makeApiClient(CoordinationV1Api),
      namespace: flags.leaderElectionNamespace ?? ownNamespace(),
      name: flags.leaderElectionId,
      identity: defaultIdentity(),
      leaseDurationMs: seconds(flags.leaderElectionLeaseDuration, 15, '--leader-election-lease-duration'),
      renewDeadlineMs: seconds(flags.leaderElectionRenewDeadline, 10, '--leader-election-renew-deadline'),
      retryPeriodMs: seconds(flags.leaderElectionRetryPeriod, 2, '--leader-election-retry-period'),
      logger: log,
      metrics,
      onStartedLeading: async () => {
        // A leader that cannot reconcile must not keep the Lease (a zombie leader): release it and exit.
        if (!(await startReconciling())) await exitFailed();
      },
      onStoppedLeading: (reason) => {
        if (reason === 'lost') {
          // Another replica may already reconcile: stop at once rather than race it (controller-runtime exits too).
          log.error('lost the leader lease; exiting so that no two replicas reconcile');
          process.exit(1);
        }
      },
    });
    void elector.run();
  } else if (!(await startReconciling())) {
    await exitFailed();
  }

  onShutdownSignal(async () => {
    log.info('shutting down: no new work, finishing what is in flight');
    await twinSync?.stop();
    await manager.stop();
    await elector?.stop({ release: true });
    await endpoints.stop();
  }, { logger: log, name: 'operator' });
}
