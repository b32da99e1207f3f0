// Cluster-wide knobs of the translation: the security policy, storage defaults, how port bindings are
// exposed and whether NetworkPolicies are emitted. The controller reads them from its configuration and
// passes them in; translate itself reads no environment.

import type { PodSecurityLevel } from './pod-policy.ts';

export type PortBindingServiceType = 'LoadBalancer' | 'NodePort' | 'ClusterIP';
export type VolumeAccessMode = 'ReadWriteOnce' | 'ReadWriteMany' | 'ReadWriteOncePod' | 'ReadOnlyMany';

export interface OperatorSettings {
  /**
   * The Pod Security Standards profile every module pod must meet (src/translate/pod-policy.ts): baseline (the
   * default: what a Docker container gets by default), restricted (non-root, no escalation, RuntimeDefault
   * seccomp, drop ALL) or privileged (the profile is lifted; the volume, Secret and token rules still hold).
   */
  podSecurity: PodSecurityLevel;
  /** Permit HostConfig.Privileged / k8s.securityContext.privileged. Off: a privileged module is an IEO_POLICY_DENIED error. */
  allowPrivileged: boolean;
  /** Permit HostConfig.NetworkMode "host" (pod hostNetwork). */
  allowHostNetwork: boolean;
  /** Permit HostConfig.PidMode "host" (pod hostPID). */
  allowHostPid: boolean;
  /** Permit HostConfig.IpcMode "host" (pod hostIPC). */
  allowHostIpc: boolean;
  /** Permit host path binds (Binds "/host:/ctr", Mounts type bind, k8s.volumes hostPath). */
  allowHostPath: boolean;
  /** Permit HostConfig.CapAdd / k8s.securityContext.capabilities.add. CapDrop is always allowed. */
  allowAddedCapabilities: boolean;
  /** Permit HostConfig.Devices (mounted as hostPath device nodes). GPU DeviceRequests go through the device plugin and need no permission. */
  allowDevices: boolean;
  /** Permit sysctls outside Kubernetes' safe set (HostConfig.Sysctls, k8s pod securityContext.sysctls). */
  allowUnsafeSysctls: boolean;
  /** Permit a module a Kubernetes API token (k8s.automountServiceAccountToken, projected serviceAccountToken volumes). */
  allowServiceAccountToken: boolean;
  /** Volume types a module may use beyond emptyDir, configMap, persistentVolumeClaim and secret (e.g. downwardAPI, csi). */
  allowVolumeTypes: string[];
  /** Secrets of the device namespace that modules may mount or read, beyond their manifest's own registry credentials. */
  mountableSecrets: string[];
  storage: {
    /** StorageClass of the PVCs made for named volumes; unset means the cluster's default class. */
    storageClassName?: string;
    /** Requested size of a named volume's PVC unless the module's k8s.volumeClaims says otherwise. */
    defaultVolumeSize: string;
    accessMode: VolumeAccessMode;
    /** PVCs outlive the modules that mount them (Docker keeps named volumes too); the controller never prunes them. */
    retainVolumesOnModuleRemoval: boolean;
    /**
     * Bind each named volume's claim to the pre-created PersistentVolume of the same (sanitised) name, as the
     * preview's useMountSourceForVolumeName did. A module's k8s.volumeClaims.<volume>.volumeName overrides it.
     */
    useMountSourceForVolumeName: boolean;
  };
  /**
   * Every module's pod runs with runAsNonRoot, and as `runAsUser` unless the module names its own user (the
   * preview's RunAsNonRoot setting). A module's own securityContext fields win over these defaults.
   */
  runAsNonRoot: boolean;
  /** The uid given to pods under runAsNonRoot when the module names none (the preview used 1000). */
  runAsUser: number;
  /** Service type for HostConfig.PortBindings (a module's k8s.serviceOptions.type overrides it). */
  portBindingServiceType: PortBindingServiceType;
  /** Emit a default-deny ingress policy plus per-module allow rules. */
  networkPolicies: boolean;
  /** Name of edgeHub's ClusterIP Service, i.e. the IOTEDGE_GATEWAYHOSTNAME modules connect to. */
  edgeHubServiceName: string;
  /** RuntimeLogLevel given to every module that does not set its own. */
  runtimeLogLevel: string;
  /**
   * What runs as the $edgeHub system module: `builtin` (the operator's own hub, `iotedge-operator edgehub`),
   * `stock` (the manifest's edgeHub image), or `auto`: builtin in kubectl mode (no spec.iotHub), stock in IoT Hub mode.
   */
  edgeHub: 'auto' | 'builtin' | 'stock';
  /** The built-in hub's image: the operator's own. */
  edgeHubImage: string;
  /** The built-in hub's NODE_OPTIONS (V8's heap settings); undefined: builtinHubNodeOptions. */
  edgeHubNodeOptions?: string;
}

export const defaultSettings: OperatorSettings = Object.freeze({
  podSecurity: 'baseline',
  allowPrivileged: false,
  allowHostNetwork: false,
  allowHostPid: false,
  allowHostIpc: false,
  allowHostPath: false,
  allowAddedCapabilities: false,
  allowDevices: false,
  allowUnsafeSysctls: false,
  allowServiceAccountToken: false,
  allowVolumeTypes: Object.freeze([]) as unknown as string[],
  mountableSecrets: Object.freeze([]) as unknown as string[],
  storage: Object.freeze({
    defaultVolumeSize: '1Gi',
    accessMode: 'ReadWriteOnce',
    retainVolumesOnModuleRemoval: true,
    useMountSourceForVolumeName: false,
  }) as OperatorSettings['storage'],
  runAsNonRoot: false,
  runAsUser: 1000,
  portBindingServiceType: 'LoadBalancer',
  networkPolicies: true,
  edgeHubServiceName: 'edgehub',
  runtimeLogLevel: 'info',
  edgeHub: 'auto',
  edgeHubImage: 'localhost/iotedge-operator:dev',
}) as OperatorSettings;

/** defaultSettings with some fields replaced (storage is merged one level deep). */
export function settingsWith(overrides: Partial<Omit<OperatorSettings, 'storage'>> & { storage?: Partial<OperatorSettings['storage']> }): OperatorSettings {
  return { ...defaultSettings, ...overrides, storage: { ...defaultSettings.storage, ...overrides.storage } };
}
